// What `system prune` shares with `container prune`, `image prune` and `builder prune`: each
// part removes what it may and returns Docker's lines for it and the bytes it freed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace xbuild::cli {

struct Pruned {
  std::vector<std::string> lines;  // container ids; "untagged: ..."/"deleted: ..."; cache ids
  int64_t reclaimed = 0;
};

// Docker's prune filters: `until=` (a Go duration before now, a unix time or an RFC 3339 time),
// plus `unused-for=` (a duration) where `unused_for` is allowed (builder prune). Returns the
// cut-off in unix seconds (0: none); an unknown key or a bad value is named in the error.
core::Result<int64_t> ParsePruneFilters(const std::vector<std::string>& filters, bool unused_for);

// Stopped containers (created before `until_unix`, when not 0).
core::Result<Pruned> PruneContainers(Cli& cli, int64_t until_unix);
// User networks no container uses, running or stopped (a stopped one starts on its network
// again), made before `until_unix` when not 0; never the default bridge. Lines: their names.
core::Result<Pruned> PruneNetworks(Cli& cli, int64_t until_unix);
// Dangling images, or with `all` every image no container was made from (created before
// `until_unix`, when not 0). An image a running operation holds is skipped. The blobs nothing
// references any more are collected; `reclaimed` is what the content store shrank by.
core::Result<Pruned> PruneImages(Cli& cli, bool all, int64_t until_unix);

// Docker's report: "<heading>\n<line>...\n\n" when there are lines.
void PrintPruned(const char* heading, const std::vector<std::string>& lines);

}  // namespace xbuild::cli
