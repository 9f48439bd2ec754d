// Docker's default seccomp profile, turned into the OCI runtime spec's `linux.seccomp`.
//
// The profile is the file Debian ships in golang-github-containers-common,
// /usr/share/containers/seccomp.json, written in the containers/common (= moby) profile
// format: `defaultAction`, `defaultErrnoRet`, `archMap` (or `architectures`) and `syscalls`,
// each rule with `names` (or `name`), `action`, `args`, `errnoRet` and the filters
// `includes`/`excludes` by `caps`, `arches` and `minKernel`. The conversion does what
// containers/common's setupSeccomp does:
//   - archMap: the native architecture and its sub-architectures; `architectures` is copied;
//   - a rule is kept when none of its `excludes` match and all of its `includes` match, with
//     caps checked against the container's bounding set, arches against the native one
//     (libseccomp's names: amd64, x86, x32, arm64, arm, ...) and minKernel against the host;
//   - kept rules become {names, action, args: [{index, value, valueTwo, op}], errnoRet}.
// Not converted: `listenerPath`/`listenerMetadata` (no seccomp agent) and per-rule
// `comment`s; `flags` are copied as they are.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/result.h"

namespace xbuild::exec {

inline constexpr std::string_view kDefaultSeccompProfile = "/usr/share/containers/seccomp.json";

// What a profile's includes/excludes are checked against.
struct SeccompTarget {
  std::string arch;               // libseccomp's name of the native arch: "amd64", "arm64", ...
  std::vector<std::string> caps;  // the container's bounding set: "CAP_CHOWN", ...
  int kernel_major = 0;           // for minKernel; 0.0 means "unknown": minKernel rules match
  int kernel_minor = 0;
  // Whether the kernel runs x32 syscalls. Without them (Debian's kernels, syscall.x32=n, and
  // most others) SCMP_ARCH_X32 is left out of the filter: such a call fails with ENOSYS in the
  // kernel anyway, and each architecture in the filter costs runc ~7 ms of every start to compile.
  bool x32 = true;
};

// This machine's arch and kernel, with the given capabilities.
SeccompTarget HostSeccompTarget(std::vector<std::string> caps);

// Converts a parsed profile; the result is the value of the spec's `linux.seccomp`.
core::Result<core::Json> ConvertSeccompProfile(const core::Json& profile, const SeccompTarget& t);

// Reads and converts the profile at `path`.
core::Result<core::Json> LoadSeccompProfile(const std::string& path, const SeccompTarget& t);

}  // namespace xbuild::exec
