// What a remote source's ContentKey fetched (a download, a checkout), kept by vertex digest
// until its Run takes it: a step that is not cached fetches once, and what a cached step never
// takes is dropped (its files removed by their owners) with the runner.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "core/digest.h"

namespace xbuild::solver::ops {

template <class T>
class Fetched {
 public:
  void Put(const core::Digest& vertex, T value) {
    std::lock_guard<std::mutex> l(mu_);
    items_.insert_or_assign(vertex, std::move(value));
  }
  std::optional<T> Take(const core::Digest& vertex) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = items_.find(vertex);
    if (it == items_.end()) return std::nullopt;
    std::optional<T> v(std::move(it->second));
    items_.erase(it);
    return v;
  }

 private:
  std::mutex mu_;
  std::map<core::Digest, T> items_;  // guarded by mu_
};

}  // namespace xbuild::solver::ops
