// COPY/ADD --chmod: octal ("755", "0644", "4755") or symbolic like chmod(1) ("u+x,g-w", "a=rX",
// "go=", "+x").
//
// Symbolic clauses are comma-separated: `[ugoa]*` then one or more `[+-=][rwxXst]*`. An empty
// who means `a`, and the umask plays no part (a build must not depend on the builder's
// umask). `X` is execute for a directory, or for a file that already has some execute bit
// (as the mode stands when the clause applies); `s` is set-uid for `u`, set-gid for `g`; `t`
// is the sticky bit, which only `o` (or `a`) sets. `=` clears the named classes' rwx bits and
// their special bit before setting.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace xbuild::solver::ops {

class ChmodSpec {
 public:
  // kInvalidArgument naming the string when it is neither form.
  static core::Result<ChmodSpec> Parse(std::string_view spec);

  // The new permission bits (07777) for an entry whose current mode is `mode`.
  mode_t Apply(mode_t mode, bool is_dir) const;

 private:
  struct Clause {
    mode_t who = 0;  // 0 = all classes
    char op = '+';   // '+', '-', '='
    std::string perms;
  };

  bool AddClause(std::string_view clause);  // false when malformed

  bool octal_ = false;
  mode_t octal_mode_ = 0;
  std::vector<Clause> clauses_;
};

}  // namespace xbuild::solver::ops
