#include "exec/netns_pool.h"

#include <unistd.h>

#include "core/dir.h"
#include "core/fs.h"
#include "exec/netns.h"
#include "exec/outbound.h"
#include "exec/sandbox.h"

namespace xbuild::exec {

using core::Result;
using core::Status;

namespace {

std::string PoolDir(const std::string& root) { return core::JoinPath(root, "build-netns"); }

// Stops its slirp4netns (kExit: a stale one is waited for; kNoWait: only signalled), then the
// namespace and the directory go.
void RemoveOne(const std::string& dir, Outbound::StopWait wait) {
  std::string netns = core::JoinPath(dir, "netns");
  if (auto out = Outbound::Lock(dir, netns); out.ok()) (void)out->Stop(wait);
  (void)RemoveNetns(netns);
  (void)core::RemoveAll(dir);
}

}  // namespace

NetnsPool::~NetnsPool() {
  if (prewarm_.joinable()) prewarm_.join();
  for (const std::string& dir : dirs_) RemoveOne(dir, Outbound::StopWait::kNoWait);
}

Result<std::string> NetnsPool::Make() {
  std::string dir;
  {
    std::lock_guard<std::mutex> l(mu_);
    dir = core::JoinPath(PoolDir(root_), std::to_string(::getpid()) + "-" + std::to_string(next_++));
    dirs_.push_back(dir);
  }
  XB_TRY(core::MkdirAll(dir, 0700));
  XB_TRY(WriteOwner(dir));
  std::string netns = core::JoinPath(dir, "netns");
  XB_TRY_CTX(CreateNetns(netns), "build step network namespace");
  XB_ASSIGN(Outbound out, Outbound::Lock(dir, netns));
  XB_TRY_CTX(out.Ensure(/*host_loopback=*/false, /*masquerade=*/false), "build step network");
  return netns;
}

void NetnsPool::Prewarm(int n) {
  if (n <= 0 || prewarm_.joinable()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    making_ = n;
  }
  prewarm_ = std::thread([this, n] {
    for (int i = 0; i < n; ++i) {
      auto made = Make();
      std::lock_guard<std::mutex> l(mu_);
      cv_.notify_all();
      if (made.ok()) {
        free_.push_back(*made);
        --making_;
        continue;
      }
      // After a failure the rest is not tried, and Acquire reports the error.
      failed_ = made.error();
      making_ = 0;
      break;
    }
  });
}

Result<std::string> NetnsPool::Acquire() {
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !free_.empty() || making_ == 0; });
    if (!free_.empty()) {
      std::string path = free_.back();
      free_.pop_back();
      return path;
    }
    if (failed_) return *failed_;
  }
  auto made = Make();
  if (!made.ok()) {
    std::lock_guard<std::mutex> l(mu_);
    failed_ = made.error();
  }
  return made;
}

void NetnsPool::Release(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  free_.push_back(path);
  cv_.notify_all();
}

Status CleanupStaleNetns(const std::string& root) {
  for (const std::string& name : core::DirNames(PoolDir(root))) {
    std::string dir = core::JoinPath(PoolDir(root), name);
    // A directory without its owner file yet is being made (sandbox.h: as bundles are).
    if (!core::Exists(core::JoinPath(dir, "owner.json")) || OwnerAlive(dir)) continue;
    RemoveOne(dir, Outbound::StopWait::kExit);
  }
  return core::Ok();
}

}  // namespace xbuild::exec
