// Network namespaces that xbuild makes: one per xbuild network (where its bridge lives) and
// one per container on such a network. A namespace is kept alive by a bind mount of its nsfs
// file onto an empty file under the state root (what `ip netns add` does under /run/netns),
// so no process has to hold it and every xbuild process can enter it by path.
#pragma once

#include <functional>
#include <string>

#include "core/result.h"

namespace xbuild::exec {

// A new network namespace with lo up, bind-mounted onto `path` (created; its directory must
// exist). Fails with kAlreadyExists when `path` exists.
core::Status CreateNetns(const std::string& path);

// Unmounts and unlinks `path`; the namespace goes once nothing else holds it. Missing is fine.
core::Status RemoveNetns(const std::string& path);

// Runs fn on a fresh thread that has joined the namespace at `path`, and waits for it. What fn
// creates there (sockets, child processes) lives in that namespace; the caller's threads never
// change namespace.
core::Status RunInNetns(const std::string& path, const std::function<core::Status()>& fn);

// Joins the calling thread to the namespace at `path`, for good (a thread that serves it).
core::Status EnterNetns(const std::string& path);

}  // namespace xbuild::exec
