#include "solver/ops/chmod.h"

#include <sys/stat.h>

namespace xbuild::solver::ops {

using core::Code;
using core::Error;
using core::Result;

namespace {

constexpr mode_t kUser = S_ISUID | S_IRWXU;
constexpr mode_t kGroup = S_ISGID | S_IRWXG;
constexpr mode_t kOther = S_ISVTX | S_IRWXO;

Error Invalid(std::string_view spec) {
  return Error(Code::kInvalidArgument, "invalid chmod \"" + std::string(spec) +
                                           "\" (want octal like 755 or symbolic like u+x,g-w)");
}

}  // namespace

Result<ChmodSpec> ChmodSpec::Parse(std::string_view spec) {
  ChmodSpec out;
  if (spec.empty()) return Invalid(spec);
  if (spec.find_first_not_of("01234567") == std::string_view::npos) {
    if (spec.size() > 4) return Invalid(spec);
    out.octal_ = true;
    for (char c : spec) out.octal_mode_ = out.octal_mode_ * 8 + static_cast<mode_t>(c - '0');
    return out;
  }
  size_t start = 0;
  for (;;) {
    size_t comma = spec.find(',', start);
    std::string_view clause =
        spec.substr(start, comma == std::string_view::npos ? comma : comma - start);
    if (!out.AddClause(clause)) return Invalid(spec);
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

bool ChmodSpec::AddClause(std::string_view clause) {
  constexpr std::string_view kWho = "ugoa", kOps = "+-=", kPerms = "rwxXst";
  mode_t who = 0;
  size_t k = 0;
  for (; k < clause.size() && kWho.find(clause[k]) != std::string_view::npos; ++k) {
    switch (clause[k]) {
      case 'u':
        who |= kUser;
        break;
      case 'g':
        who |= kGroup;
        break;
      case 'o':
        who |= kOther;
        break;
      default:
        who |= kUser | kGroup | kOther;
        break;
    }
  }
  if (k == clause.size()) return false;  // no operator: "u", or "" between two commas
  // One or more operator + permissions pairs: "u-w+x".
  while (k < clause.size()) {
    Clause c;
    c.who = who;
    c.op = clause[k++];
    if (kOps.find(c.op) == std::string_view::npos) return false;
    for (; k < clause.size() && kOps.find(clause[k]) == std::string_view::npos; ++k) {
      if (kPerms.find(clause[k]) == std::string_view::npos) return false;
      c.perms += clause[k];
    }
    clauses_.push_back(std::move(c));
  }
  return true;
}

mode_t ChmodSpec::Apply(mode_t mode, bool is_dir) const {
  if (octal_) return octal_mode_ & 07777;
  mode_t m = mode & 07777;
  for (const Clause& c : clauses_) {
    mode_t who = c.who ? c.who : kUser | kGroup | kOther;
    mode_t bits = 0;
    for (char p : c.perms) {
      switch (p) {
        case 'r':
          bits |= S_IRUSR | S_IRGRP | S_IROTH;
          break;
        case 'w':
          bits |= S_IWUSR | S_IWGRP | S_IWOTH;
          break;
        case 'x':
          bits |= S_IXUSR | S_IXGRP | S_IXOTH;
          break;
        case 'X':
          if (is_dir || (m & (S_IXUSR | S_IXGRP | S_IXOTH))) bits |= S_IXUSR | S_IXGRP | S_IXOTH;
          break;
        case 's':
          bits |= S_ISUID | S_ISGID;
          break;
        case 't':
          bits |= S_ISVTX;
          break;
        default:
          break;
      }
    }
    bits &= who;
    if (c.op == '=') m &= ~who;
    if (c.op == '-') {
      m &= ~bits;
    } else {
      m |= bits;
    }
  }
  return m;
}

}  // namespace xbuild::solver::ops
