// Column-aligned tables like Docker's: tabwriter with minwidth 10 and padding 3, so a cell is
// max(len + 3, 10) wide, len counted in characters (UTF-8), so "…" takes one column.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace xbuild::cli {

class Table {
 public:
  void Header(std::vector<std::string> h) { rows_.insert(rows_.begin(), std::move(h)); }
  void Row(std::vector<std::string> r) { rows_.push_back(std::move(r)); }
  void Print(std::FILE* out) const {
    std::vector<size_t> w;
    for (auto& r : rows_)
      for (size_t i = 0; i < r.size(); ++i) {
        if (w.size() <= i) w.push_back(0);
        w[i] = std::max(w[i], Width(r[i]));
      }
    for (auto& r : rows_) {
      std::string line;
      for (size_t i = 0; i < r.size(); ++i) {
        line += r[i];
        if (i + 1 < r.size()) line += std::string(std::max<size_t>(w[i] + 3, 10) - Width(r[i]), ' ');
      }
      std::fprintf(out, "%s\n", line.c_str());
    }
  }

 private:
  static size_t Width(const std::string& s) {
    return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
  }

  std::vector<std::vector<std::string>> rows_;
};

}  // namespace xbuild::cli
