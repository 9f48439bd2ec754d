#include "frontend/source_url.h"

#include <cctype>

#include "core/path.h"

namespace xbuild::frontend {

using core::Code;
using core::Error;

namespace {

std::string_view WithoutFragment(std::string_view s) { return s.substr(0, s.find('#')); }

// The path of "scheme://host[:port]/path?query#fragment" ("" when it has none).
std::string_view UrlPath(std::string_view url) {
  url = WithoutFragment(url);
  url = url.substr(0, url.find('?'));
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  size_t slash = url.find('/', scheme + 3);
  return slash == std::string_view::npos ? std::string_view() : url.substr(slash);
}

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// git's implicit ssh transport, "user@host:path" (sshutil.IsImplicitSSHTransport).
bool IsScpLike(std::string_view s) {
  size_t at = s.find('@');
  if (at == 0 || at == std::string_view::npos) return false;
  for (char c : s.substr(0, at)) {
    if (!IsAlnum(c) && c != '-' && c != '_') return false;
  }
  size_t colon = s.find(':', at);
  if (colon == std::string_view::npos || colon == at + 1) return false;
  for (char c : s.substr(at + 1, colon - at - 1)) {
    if (!IsAlnum(c) && c != '-' && c != '.') return false;
  }
  return true;
}

// A branch, tag or full ref name, or a (prefix of a) commit id. Only these characters, so the
// name cannot be read by git as a revision expression ("main~1", "@{-1}", "a..b").
bool ValidRef(std::string_view ref) {
  if (ref.starts_with('-') || ref.starts_with('/') || ref.ends_with('/') || ref.ends_with('.') ||
      ref.find("..") != std::string_view::npos || ref.find("//") != std::string_view::npos) {
    return false;
  }
  for (char c : ref) {
    if (!IsAlnum(c) && c != '.' && c != '_' && c != '/' && c != '-' && c != '+') return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

bool IsHttpUrl(std::string_view s) { return s.starts_with("http://") || s.starts_with("https://"); }

bool IsGitUrl(std::string_view s) {
  std::string_view remote = WithoutFragment(s);
  if (remote.starts_with("git://") || remote.starts_with("ssh://") ||
      remote.starts_with("file://")) {
    return true;
  }
  if (IsHttpUrl(remote)) return UrlPath(remote).ends_with(".git");
  return remote.find("://") == std::string_view::npos && IsScpLike(remote);
}

core::Result<GitRef> ParseGitRef(std::string_view url) {
  if (!IsGitUrl(url)) return Error(Code::kInvalidArgument, std::string(url) + ": not a git URL");
  GitRef g;
  g.remote = std::string(WithoutFragment(url));
  g.local = g.remote.starts_with("file://");
  size_t hash = url.find('#');
  if (hash == std::string_view::npos) return g;
  std::string_view fragment = url.substr(hash + 1);
  size_t colon = fragment.find(':');
  g.ref = std::string(fragment.substr(0, colon));
  if (!g.ref.empty() && !ValidRef(g.ref)) {
    return Error(Code::kInvalidArgument, std::string(url) + ": invalid git ref \"" + g.ref + "\"");
  }
  if (colon != std::string_view::npos) {
    std::string sub = core::CleanPath(fragment.substr(colon + 1));
    while (sub.starts_with('/')) sub.erase(0, 1);
    // Refused here, before any clone: the subdir is also resolved inside the checkout, so a
    // symlink in the repository cannot lead out of it either.
    if (core::EscapesRoot(sub)) {
      return Error(Code::kInvalidArgument, std::string(url) + ": subdir \"" +
                                               std::string(fragment.substr(colon + 1)) +
                                               "\" climbs out of the repository");
    }
    g.subdir = sub == "." ? "" : sub;
  }
  return g;
}

std::string UrlFilename(std::string_view url) {
  std::string path = PercentDecode(UrlPath(url));
  std::string base = path.substr(path.rfind('/') + 1);
  if (base.empty() || base == "." || base == "..") return "__unnamed__";
  return base;
}

}  // namespace xbuild::frontend
