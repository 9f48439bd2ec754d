#include "exec/netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "core/fd.h"
#include "core/fs.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Status;

namespace {

Status LoopbackUp() {
  core::UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (s.get() < 0) return core::SysError("socket");
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return core::SysError("get flags of lo");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) return core::SysError("bring up lo");
  return core::Ok();
}

// Runs fn on a new thread (whose namespace changes stay with it) and returns its status.
Status OnThread(const std::function<Status()>& fn) {
  Status result;
  std::thread t([&] { result = fn(); });
  t.join();
  return result;
}

}  // namespace

Status CreateNetns(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0 && errno == EEXIST) return Error(Code::kAlreadyExists, "network namespace " + path + " exists");
  if (fd < 0) return core::SysError("create " + path);
  ::close(fd);
  Status made = OnThread([&]() -> Status {
    if (::unshare(CLONE_NEWNET) != 0) return core::SysError("unshare the network namespace");
    XB_TRY(LoopbackUp());
    std::string self = "/proc/self/task/" + std::to_string(::syscall(SYS_gettid)) + "/ns/net";
    if (::mount(self.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return core::SysError("bind-mount the network namespace on " + path);
    }
    return core::Ok();
  });
  if (!made.ok()) ::unlink(path.c_str());
  return made;
}

Status RemoveNetns(const std::string& path) {
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return core::SysError("unmount " + path);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return core::SysError("remove " + path);
  return core::Ok();
}

Status EnterNetns(const std::string& path) {
  XB_ASSIGN(core::UniqueFd ns, core::Open(path, O_RDONLY | O_CLOEXEC));
  if (::setns(ns.get(), CLONE_NEWNET) != 0) return core::SysError("enter network namespace " + path);
  return core::Ok();
}

Status RunInNetns(const std::string& path, const std::function<Status()>& fn) {
  return OnThread([&]() -> Status {
    XB_TRY(EnterNetns(path));
    return fn();
  });
}

}  // namespace xbuild::exec
