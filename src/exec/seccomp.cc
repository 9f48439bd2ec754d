#include "exec/seccomp.h"

#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "core/fs.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Json;
using core::Result;

namespace {

constexpr size_t kMaxProfileSize = 4 << 20;

// libseccomp's architecture names (what profiles' `arches` use) → the spec's SCMP_ARCH_*.
constexpr std::pair<std::string_view, std::string_view> kScmpArches[] = {
    {"x86", "SCMP_ARCH_X86"},
    {"amd64", "SCMP_ARCH_X86_64"},
    {"x32", "SCMP_ARCH_X32"},
    {"arm", "SCMP_ARCH_ARM"},
    {"arm64", "SCMP_ARCH_AARCH64"},
    {"mips", "SCMP_ARCH_MIPS"},
    {"mips64", "SCMP_ARCH_MIPS64"},
    {"mips64n32", "SCMP_ARCH_MIPS64N32"},
    {"mipsel", "SCMP_ARCH_MIPSEL"},
    {"mipsel64", "SCMP_ARCH_MIPSEL64"},
    {"mipsel64n32", "SCMP_ARCH_MIPSEL64N32"},
    {"ppc", "SCMP_ARCH_PPC"},
    {"ppc64", "SCMP_ARCH_PPC64"},
    {"ppc64le", "SCMP_ARCH_PPC64LE"},
    {"s390", "SCMP_ARCH_S390"},
    {"s390x", "SCMP_ARCH_S390X"},
    {"riscv64", "SCMP_ARCH_RISCV64"},
};

std::string_view ScmpArch(std::string_view arch) {
  for (const auto& [name, scmp] : kScmpArches) {
    if (name == arch) return scmp;
  }
  return "";
}

std::string NativeArch() {
#if defined(__x86_64__) && defined(__ILP32__)
  return "x32";
#elif defined(__x86_64__)
  return "amd64";
#elif defined(__i386__)
  return "x86";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__arm__)
  return "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "";
#endif
}

bool Contains(const std::vector<std::string>& list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

// The member `key` of an object when present and not null.
const Json* Field(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

// "4.8" → {4, 8}; a malformed version reads as {0, 0}, which every kernel is at least.
std::pair<int, int> ParseKernel(const std::string& v) {
  int major = 0, minor = 0;
  if (std::sscanf(v.c_str(), "%d.%d", &major, &minor) < 1) return {0, 0};
  return {major, minor};
}

bool KernelAtLeast(const SeccompTarget& t, const std::string& min) {
  if (t.kernel_major == 0) return true;  // unknown: taken as new enough
  return std::pair(t.kernel_major, t.kernel_minor) >= ParseKernel(min);
}

// containers/common: any matching exclude drops the rule; every include must match.
bool RuleApplies(const Json& rule, const SeccompTarget& t) {
  if (const Json* ex = Field(rule, "excludes")) {
    if (Contains(core::GetStringList(*ex, "arches"), t.arch)) return false;
    for (const std::string& cap : core::GetStringList(*ex, "caps")) {
      if (Contains(t.caps, cap)) return false;
    }
    auto min = core::GetOptString(*ex, "minKernel");
    if (min && !min->empty() && KernelAtLeast(t, *min)) return false;
  }
  if (const Json* in = Field(rule, "includes")) {
    std::vector<std::string> arches = core::GetStringList(*in, "arches");
    if (!arches.empty() && !Contains(arches, t.arch)) return false;
    for (const std::string& cap : core::GetStringList(*in, "caps")) {
      if (!Contains(t.caps, cap)) return false;
    }
    auto min = core::GetOptString(*in, "minKernel");
    if (min && !min->empty() && !KernelAtLeast(t, *min)) return false;
  }
  return true;
}

Result<Json> ConvertArg(const Json& arg) {
  const Json* index = Field(arg, "index");
  const Json* value = Field(arg, "value");
  const Json* op = Field(arg, "op");
  if (!index || !index->is_number_unsigned() || !op || !op->is_string()) {
    return Error(Code::kInvalidArgument, "an argument needs an unsigned \"index\" and an \"op\"");
  }
  Json out = {{"index", *index}, {"op", *op}, {"value", 0}};
  if (value && value->is_number_unsigned()) out["value"] = *value;
  const Json* two = Field(arg, "valueTwo");
  if (two && two->is_number_unsigned() && two->get<uint64_t>() != 0) out["valueTwo"] = *two;
  return out;
}

// One spec syscall entry per rule; a rule with both `name` and `names` gives two, as
// containers/common does.
Result<Json> ConvertRule(const Json& rule) {
  XB_ASSIGN(std::string action, core::GetString(rule, "action"));
  Json base = {{"action", action}};
  if (const Json* e = Field(rule, "errnoRet"); e && e->is_number_unsigned()) base["errnoRet"] = *e;
  if (const Json* args = Field(rule, "args"); args && !args->empty()) {
    if (!args->is_array()) return Error(Code::kInvalidArgument, "\"args\" is not a list");
    Json list = Json::array();
    for (const Json& a : *args) {
      XB_ASSIGN(Json converted, ConvertArg(a));
      list.push_back(std::move(converted));
    }
    base["args"] = std::move(list);
  }
  Json out = Json::array();
  if (auto name = core::GetOptString(rule, "name"); name && !name->empty()) {
    Json call = base;
    call["names"] = Json::array({*name});
    out.push_back(std::move(call));
  }
  std::vector<std::string> names = core::GetStringList(rule, "names");
  if (!names.empty()) {
    base["names"] = names;
    out.push_back(std::move(base));
  }
  return out;
}

Result<Json> Architectures(const Json& profile, const SeccompTarget& t) {
  const Json* list = Field(profile, "architectures");
  const Json* map = Field(profile, "archMap");
  if (list && map && !list->empty() && !map->empty()) {
    return Error(Code::kInvalidArgument,
                 "both \"architectures\" and \"archMap\" are set; use one of them");
  }
  std::vector<std::string> arches;
  std::string_view native = ScmpArch(t.arch);
  if (list) {
    arches = core::GetStringList(profile, "architectures");
  } else if (map && map->is_array() && !native.empty()) {
    for (const Json& entry : *map) {
      if (core::GetOptString(entry, "architecture") != native) continue;
      arches.emplace_back(native);
      for (const std::string& sub : core::GetStringList(entry, "subArchitectures"))
        arches.push_back(sub);
      break;
    }
  }
  Json out = Json::array();
  for (const std::string& a : arches) {
    if (a != "SCMP_ARCH_X32" || t.x32) out.push_back(a);
  }
  return out;
}

}  // namespace

SeccompTarget HostSeccompTarget(std::vector<std::string> caps) {
  SeccompTarget t;
  t.arch = NativeArch();
  t.caps = std::move(caps);
  struct utsname u;
  if (::uname(&u) == 0) {
    auto [major, minor] = ParseKernel(u.release);
    t.kernel_major = major;
    t.kernel_minor = minor;
  }
#if defined(__x86_64__)
  // getpid through the x32 ABI: ENOSYS when the kernel has it off or not built in.
  constexpr long kX32SyscallBit = 0x40000000;
  t.x32 = ::syscall(kX32SyscallBit | SYS_getpid) != -1 || errno != ENOSYS;
#endif
  return t;
}

Result<Json> ConvertSeccompProfile(const Json& profile, const SeccompTarget& t) {
  XB_ASSIGN(std::string default_action, core::GetString(profile, "defaultAction"));
  Json out = {{"defaultAction", default_action}};
  if (const Json* e = Field(profile, "defaultErrnoRet"); e && e->is_number_unsigned()) {
    out["defaultErrnoRet"] = *e;
  }
  if (const Json* flags = Field(profile, "flags")) out["flags"] = *flags;
  XB_ASSIGN(Json arches, Architectures(profile, t));
  if (!arches.empty()) out["architectures"] = std::move(arches);
  const Json* rules = Field(profile, "syscalls");
  if (rules && !rules->is_array())
    return Error(Code::kInvalidArgument, "\"syscalls\" is not a list");
  Json syscalls = Json::array();
  for (size_t i = 0; rules && i < rules->size(); ++i) {
    const Json& rule = (*rules)[i];
    if (!RuleApplies(rule, t)) continue;
    XB_ASSIGN_CTX(Json calls, ConvertRule(rule), "syscalls[" + std::to_string(i) + "]");
    for (Json& c : calls) syscalls.push_back(std::move(c));
  }
  out["syscalls"] = std::move(syscalls);
  return out;
}

Result<Json> LoadSeccompProfile(const std::string& path, const SeccompTarget& t) {
  auto text = core::ReadFile(path, kMaxProfileSize);
  if (!text.ok()) {
    if (text.error().sys_errno() == ENOENT) {
      return Error(
          Code::kNotFound,
          "seccomp profile " + path +
              " is missing: install golang-github-containers-common (scripts/setup-deps.sh)");
    }
    return std::move(text).error();
  }
  XB_ASSIGN(Json profile, core::ParseJson(*text, "seccomp profile " + path, kMaxProfileSize));
  return ConvertSeccompProfile(profile, t).Context("seccomp profile " + path);
}

}  // namespace xbuild::exec
