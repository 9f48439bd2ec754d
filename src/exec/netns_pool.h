// Network namespaces for build steps (RUN), made ahead and reused, as BuildKit's CNI provider
// keeps a pool: by default a RUN step gets a namespace of its own with a way out (slirp4netns,
// outbound.h), not the host's network, so the host's loopback services are out of its reach
// (slirp4netns --disable-host-loopback), as under BuildKit inside dockerd. Making a namespace
// and its slirp4netns costs 5-10 ms (the namespace, the process start, its ready signal), so a
// pool makes them in the background as the build starts and hands a free one to each step; a
// step gives it back when it ends, for the next step to reuse. Steps do not run at the same
// time in one namespace. The step's process sits on tap0 itself: no bridge, no forwarding, no
// masquerade rule (Outbound::Ensure with masquerade off).
//
// Layout under the state root (one directory per namespace, removed with the pool):
//   build-netns/<pid>-<n>/netns        the namespace (a bind mount, netns.h)
//   build-netns/<pid>-<n>/owner.json   the xbuild process owning it (sandbox.h's owner file)
//   build-netns/<pid>-<n>/outbound.*   its slirp4netns (outbound.h)
// CleanupStaleNetns removes the directories whose owner is gone (a killed build), their
// slirp4netns stopped first.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"

namespace xbuild::exec {

class NetnsPool {
 public:
  // `root`: the state root. Nothing is made until Prewarm or Acquire.
  explicit NetnsPool(std::string root) : root_(std::move(root)) {}
  ~NetnsPool();  // waits for the prewarm thread, stops every slirp4netns, removes the namespaces
  NetnsPool(const NetnsPool&) = delete;
  NetnsPool& operator=(const NetnsPool&) = delete;

  // Makes up to `n` namespaces on a thread of its own, so that the first steps find them ready.
  void Prewarm(int n);
  // A free namespace's path (made now when none is free); Release gives it back. An error when
  // one cannot be made (no slirp4netns, no privilege): the caller decides. After one failure
  // every later Acquire that finds none free returns the same error without trying again.
  core::Result<std::string> Acquire();
  void Release(const std::string& path);

 private:
  core::Result<std::string> Make();  // a new namespace with its slirp4netns running

  std::string root_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> free_;  // guarded by mu_
  std::vector<std::string> dirs_;  // guarded by mu_: every namespace's directory
  int making_ = 0;                 // guarded by mu_: namespaces the prewarm thread still makes
  int next_ = 0;                   // guarded by mu_
  std::optional<core::Error> failed_;  // guarded by mu_: why making one failed; not tried again
  std::thread prewarm_;
};

// Removes build-netns/ directories of dead owners under `root` (see above).
core::Status CleanupStaleNetns(const std::string& root);

}  // namespace xbuild::exec
