// The names in a directory, for the state root's flat registries (containers, volumes,
// networks, runc state).
#pragma once

#include <string>
#include <vector>

namespace xbuild::core {

// The entries of `dir`, sorted, without "." and ".."; empty when it cannot be read (missing).
std::vector<std::string> DirNames(const std::string& dir);

}  // namespace xbuild::core
