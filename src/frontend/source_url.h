// Remote sources a build names: an `ADD` source or a build context that is a URL, told apart as
// BuildKit's Dockerfile frontend does (gitutil.ParseGitRef, isHTTPSource):
//
//   git   "git://…", "ssh://…", scp-like "user@host:path", "http(s)://…/x.git" (the URL's path
//         ends in .git), and "file://…" (a repository on this machine: build contexts only)
//   http  any other "http://" or "https://" URL: ADD downloads the file
//
// A git URL may end in "#ref:subdir": the branch, tag or commit to check out (default: the
// remote's HEAD) and the directory of it to use (default: its root). BuildKit's "github.com/…"
// shorthand (no scheme) is not taken: it is indistinguishable from a context path.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace xbuild::frontend {

struct GitRef {
  std::string remote;  // the URL without its fragment, as given to git
  std::string ref;     // "" = the remote's default branch
  std::string subdir;  // cleaned and relative; "" = the root
  bool local = false;  // file://: a repository on this machine
};

bool IsGitUrl(std::string_view s);
bool IsHttpUrl(std::string_view s);  // http(s), git or not

// Splits a git URL (IsGitUrl) into remote, ref and subdir. A ref that git would refuse as a
// name (or that could select something other than a branch, tag or commit: "..", "~", "^", ":",
// "@{") and a subdir that climbs out of the repository ("../x") are errors, so no later step
// ever resolves them.
core::Result<GitRef> ParseGitRef(std::string_view url);

// The file name ADD gives a downloaded URL: the last component of its (percent-decoded) path, or
// "__unnamed__" when it has none (BuildKit's rule).
std::string UrlFilename(std::string_view url);

}  // namespace xbuild::frontend
