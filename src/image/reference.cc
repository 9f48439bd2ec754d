#include "image/reference.h"

#include <algorithm>
#include <cctype>

namespace xbuild::image {

using core::Code;
using core::Error;

namespace {

bool IsAlnumLower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool ValidComponent(std::string_view c) {
  if (c.empty() || !IsAlnumLower(c.front()) || !IsAlnumLower(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (IsAlnumLower(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    if (c[i] == '.') {
      j = i + 1;
    } else if (c[i] == '_') {
      j = i + 1;
      if (j < c.size() && c[j] == '_') ++j;
    } else if (c[i] == '-') {
      while (j < c.size() && c[j] == '-') ++j;
    } else {
      return false;
    }
    if (j >= c.size() || !IsAlnumLower(c[j])) return false;
    i = j;
  }
  return true;
}

bool ValidDomain(std::string_view d) {
  if (d.empty()) return false;
  std::string_view host = d;
  if (auto colon = d.rfind(':'); colon != std::string_view::npos && d.front() != '[') {
    std::string_view port = d.substr(colon + 1);
    if (port.empty()) return false;
    for (char c : port)
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    host = d.substr(0, colon);
  }
  if (host.empty()) return false;
  for (char c : host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '[' && c != ']' && c != ':') {
      return false;
    }
  }
  return true;
}

bool ValidTag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(t.front())) return false;
  for (char c : t)
    if (!word(c) && c != '.' && c != '-') return false;
  return true;
}

core::Result<Reference> Parse(std::string_view text, bool default_tag) {
  auto bad = [&](std::string why) {
    return Error(Code::kInvalidArgument, "invalid reference \"" + std::string(text) + "\": " + why);
  };
  if (text.empty()) return bad("empty");
  std::string_view rest = text;
  Reference ref;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    auto d = core::Digest::Parse(rest.substr(at + 1));
    if (!d.ok()) return bad(d.error().message());
    ref.digest = *d;
    rest = rest.substr(0, at);
  }
  // A tag is after the last ':' that comes after the last '/'.
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string_view tag = rest.substr(colon + 1);
    if (!ValidTag(tag)) return bad("invalid tag \"" + std::string(tag) + "\"");
    ref.tag = std::string(tag);
    rest = rest.substr(0, colon);
  }
  std::string_view name = rest;
  size_t first_slash = name.find('/');
  std::string_view first = name.substr(0, first_slash);
  bool has_domain = first_slash != std::string_view::npos &&
                    (first.find('.') != std::string_view::npos ||
                     first.find(':') != std::string_view::npos || first == "localhost" ||
                     std::any_of(first.begin(), first.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); }));
  if (has_domain) {
    if (!ValidDomain(first)) return bad("invalid registry host \"" + std::string(first) + "\"");
    ref.domain = std::string(first);
    name = name.substr(first_slash + 1);
  } else {
    ref.domain = "docker.io";
  }
  if (ref.domain == "index.docker.io" || ref.domain == "registry-1.docker.io") ref.domain = "docker.io";
  if (name.empty()) return bad("missing repository name");
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string_view::npos) j = name.size();
    std::string_view comp = name.substr(i, j - i);
    if (!ValidComponent(comp)) {
      bool upper = std::any_of(comp.begin(), comp.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); });
      return bad(upper ? "repository name must be lowercase"
                       : "invalid repository name component \"" + std::string(comp) + "\"");
    }
    i = j + 1;
  }
  ref.path = std::string(name);
  if (ref.domain == "docker.io" && ref.path.find('/') == std::string::npos) ref.path = "library/" + ref.path;
  if (ref.Repository().size() > 255) return bad("repository name longer than 255 characters");
  if (default_tag && ref.tag.empty() && !ref.digest) ref.tag = "latest";
  return ref;
}

}  // namespace

std::string Reference::String() const {
  std::string s = Repository();
  if (!tag.empty()) s += ":" + tag;
  if (digest) s += "@" + digest->String();
  return s;
}

std::string Reference::FamiliarRepository() const {
  if (domain != "docker.io") return Repository();
  if (path.starts_with("library/") && path.find('/', 8) == std::string::npos) return path.substr(8);
  return path;
}

std::string Reference::Familiar() const {
  std::string s = FamiliarRepository();
  if (!tag.empty()) s += ":" + tag;
  if (digest) s += "@" + digest->String();
  return s;
}

core::Result<Reference> ParseReference(std::string_view text) { return Parse(text, true); }
core::Result<Reference> ParseReferenceNoDefault(std::string_view text) { return Parse(text, false); }

}  // namespace xbuild::image
