#include "exec/user.h"

#include <fcntl.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include "core/fs.h"
#include "core/path.h"
#include "core/strings.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Result;

namespace {

constexpr int64_t kMaxId = 2147483647;  // runc's limit: ids are int32 in the kernel ABI
constexpr size_t kMaxEtcFileSize = 16 << 20;

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string home;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

// A decimal id ("1000", also "-1" and "007" as Go's Atoi reads them); nullopt when `s` is
// not a number and thus a name. A number outside 0..2^31-1 is an error.
Result<std::optional<uint32_t>> ParseId(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || end != s.data() + s.size() || ec == std::errc::invalid_argument) {
    return std::optional<uint32_t>();
  }
  if (ec == std::errc::result_out_of_range || v < 0 || v > kMaxId) {
    return Error(Code::kInvalidArgument, "uids and gids must be in range 0-2147483647");
  }
  return std::optional<uint32_t>(static_cast<uint32_t>(v));
}

// A field that must be an in-range id; nullopt for anything else (the line is skipped rather
// than read as uid 0, which is what Go's ignored Atoi error would give).
std::optional<uint32_t> IdField(std::string_view s) {
  auto r = ParseId(s);
  return r.ok() ? *r : std::nullopt;
}

std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> out;
  for (std::string& line : core::Split(text, '\n')) {
    std::string t = core::Trim(line);
    if (!t.empty() && t.front() != '#') out.push_back(std::move(t));
  }
  return out;
}

// name:password:uid:gid:gecos:home:shell
std::vector<PasswdEntry> ParsePasswd(std::string_view text) {
  std::vector<PasswdEntry> out;
  for (const std::string& line : Lines(text)) {
    std::vector<std::string> f = core::Split(line, ':');
    if (f.size() < 4) continue;
    auto uid = IdField(f[2]);
    auto gid = IdField(f[3]);
    if (!uid || !gid) continue;
    out.push_back({f[0], *uid, *gid, f.size() > 5 ? f[5] : ""});
  }
  return out;
}

// name:password:gid:member,member
std::vector<GroupEntry> ParseGroup(std::string_view text) {
  std::vector<GroupEntry> out;
  for (const std::string& line : Lines(text)) {
    std::vector<std::string> f = core::Split(line, ':');
    if (f.size() < 3) continue;
    auto gid = IdField(f[2]);
    if (!gid) continue;
    GroupEntry g{f[0], *gid, {}};
    if (f.size() > 3) {
      for (const std::string& m : core::Split(f[3], ',')) {
        std::string t = core::Trim(m);
        if (!t.empty()) g.members.push_back(std::move(t));
      }
    }
    out.push_back(std::move(g));
  }
  return out;
}

// Reads /etc/<name> of the rootfs; symlinks stay inside it. Missing reads as empty.
Result<std::string> ReadEtcFile(int rootfs_fd, std::string_view path) {
  auto fd = core::OpenInRoot(rootfs_fd, path, {.flags = O_RDONLY});
  if (!fd.ok()) {
    int err = fd.error().sys_errno();
    if (err == ENOENT || err == ENOTDIR) return std::string();
    return std::move(fd).error().Context("read " + std::string(path) + " in the rootfs");
  }
  return core::ReadFd(fd->get(), kMaxEtcFileSize).Context("read " + std::string(path));
}

// Fills uid, gid and home; returns the passwd name that matched ("" when none did).
Result<std::string> ResolveUid(int rootfs_fd, std::string_view user_arg, ExecUser& out) {
  XB_ASSIGN(std::optional<uint32_t> uid, ParseId(user_arg));
  if (user_arg.empty()) uid = 0;
  XB_ASSIGN(std::string text, ReadEtcFile(rootfs_fd, "/etc/passwd"));
  for (const PasswdEntry& e : ParsePasswd(text)) {
    if (uid ? e.uid == *uid : e.name == user_arg) {  // first match wins
      out.uid = e.uid;
      out.gid = e.gid;
      if (!e.home.empty()) out.home = e.home;
      return e.name;
    }
  }
  if (!uid) {
    return Error(Code::kNotFound, "unable to find user " + std::string(user_arg) +
                                      ": no matching entries in passwd file");
  }
  out.uid = *uid;
  return std::string();
}

Result<ExecUser> ResolveGroups(int rootfs_fd, std::string_view group_arg,
                               const std::string& user_name, ExecUser out) {
  if (group_arg.empty() && user_name.empty()) return out;
  XB_ASSIGN(std::optional<uint32_t> gid, ParseId(group_arg));
  XB_ASSIGN(std::string text, ReadEtcFile(rootfs_fd, "/etc/group"));
  std::vector<GroupEntry> groups = ParseGroup(text);
  if (group_arg.empty()) {
    // Supplementary groups only in the implicit form, as runc does.
    for (const GroupEntry& g : groups) {
      if (std::find(g.members.begin(), g.members.end(), user_name) != g.members.end()) {
        out.additional_gids.push_back(g.gid);
      }
    }
    return out;
  }
  for (const GroupEntry& g : groups) {
    if (gid ? g.gid == *gid : g.name == group_arg) {
      out.gid = g.gid;
      return out;
    }
  }
  if (!gid) {
    return Error(Code::kNotFound, "unable to find group " + std::string(group_arg) +
                                      ": no matching entries in group file");
  }
  out.gid = *gid;
  return out;
}

}  // namespace

Result<ExecUser> ResolveUser(int rootfs_fd, std::string_view user) {
  size_t colon = user.find(':');
  std::string_view user_arg = user.substr(0, colon);
  std::string_view group_arg = colon == std::string_view::npos ? "" : user.substr(colon + 1);
  ExecUser out;
  XB_ASSIGN(std::string name, ResolveUid(rootfs_fd, user_arg, out));
  XB_ASSIGN(out, ResolveGroups(rootfs_fd, group_arg, name, std::move(out)));
  // The primary group leads the process's group list, as containerd, runc and Docker set it
  // since CVE-2023-25173 (root in busybox: groups=0(root),10(wheel)).
  std::vector<uint32_t> gids{out.gid};
  for (uint32_t g : out.additional_gids)
    if (g != out.gid) gids.push_back(g);
  out.additional_gids = std::move(gids);
  return out;
}

}  // namespace xbuild::exec
