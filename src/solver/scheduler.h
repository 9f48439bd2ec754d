// The scheduler: runs a Definition's vertices as their inputs become ready, in parallel, each op
// kind under its own concurrency limit, looking every vertex up by cache key first.
//
// Cache key of a vertex = sha256 over its vertex digest, its inputs' cache keys (with output
// index), and a content key the runner computes once the inputs are ready (checksums of what a
// COPY reads, the digest an image reference resolved to). So a changed context file changes the
// keys of the steps that read it and of everything after them, and nothing else.
//
// Work on one key is serialised across processes through ResultCache::Lock: a second build
// that reaches the same step waits, then finds the first one's result. The first failure
// cancels the rest (the CancelToken is shared with running ops, which must stop promptly);
// Solve returns once nothing is running any more.
//
// Threads: ready vertices run as TBB tasks in an arena sized to the sum of the limits (ops block
// on subprocesses, so the arena may be larger than the core count).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "solver/definition.h"

namespace xbuild::solver {

using core::Result;
using core::Status;

// A finished output as the runner knows it (e.g. a snapshot id); "" is the empty filesystem.
struct Ref {
  std::string id;
  bool operator==(const Ref&) const = default;
};

struct VertexResult {
  std::vector<Ref> outputs;
};

class CancelToken {
 public:
  void Cancel() { cancelled_.store(true); }
  bool Cancelled() const { return cancelled_.load(); }
  // For code that watches the flag itself (the sandbox kills its process when it turns true).
  const std::atomic<bool>* flag() const { return &cancelled_; }

 private:
  std::atomic<bool> cancelled_{false};
};

// Runs ops; implemented by the worker glue (src/solver/ops/) and by fakes in tests.
class OpRunner {
 public:
  virtual ~OpRunner() = default;
  // Key material from content the op reads; "" when the op's definition and inputs say it all.
  // Called for every vertex before anything runs (the Refs are empty): it may not depend on
  // what the inputs produced.
  virtual Result<std::string> ContentKey(const Vertex& v, const std::vector<Ref>& inputs) = 0;
  virtual Result<VertexResult> Run(const Vertex& v, const std::vector<Ref>& inputs, const std::string& cache_key,
                                   const CancelToken& cancel) = 0;
};

// Results by cache key. Implemented over the metadata DB; in memory in tests.
class ResultCache {
 public:
  class KeyLock {
   public:
    virtual ~KeyLock() = default;
  };
  virtual ~ResultCache() = default;
  virtual Result<std::optional<VertexResult>> Lookup(const std::string& key) = 0;
  virtual Status Store(const std::string& key, const VertexResult& result) = 0;
  // Held while the key's work runs; blocks while another holder (thread or process) has it.
  virtual Result<std::unique_ptr<KeyLock>> Lock(const std::string& key) = 0;
  // A hit from an imported cache (--cache-from) may name a result that is not on disk yet: a
  // lazy Ref. The solver realizes one only when something needs its content (a step that runs
  // on it, or the build's result), so a cached step that only feeds other cached steps is never
  // downloaded. When realizing fails, the solver runs the step instead.
  virtual bool IsLazy(const Ref&) const { return false; }
  virtual Result<Ref> Realize(const std::string& key, const Ref& r) { (void)key; return r; }
};

// An in-memory ResultCache (tests, and builds that keep nothing).
class MemoryResultCache : public ResultCache {
 public:
  Result<std::optional<VertexResult>> Lookup(const std::string& key) override;
  Status Store(const std::string& key, const VertexResult& result) override;
  Result<std::unique_ptr<KeyLock>> Lock(const std::string& key) override;

 private:
  std::mutex mu_;
  std::map<std::string, VertexResult> results_;  // guarded by mu_
  std::map<std::string, std::shared_ptr<std::mutex>> locks_;  // guarded by mu_
};

enum class VertexState { kStarted, kCached, kDone, kFailed, kCancelled };

struct SolveEvent {
  const Vertex* vertex = nullptr;
  VertexState state = VertexState::kStarted;
  std::chrono::steady_clock::duration elapsed{};  // for kDone / kFailed
  std::string cache_key;
  std::string error;  // kFailed
};

struct SolveOptions {
  // Per op kind ("source", "exec", "file", "merge"); kinds not listed get 4.
  std::map<std::string, int> concurrency = {{"source", 4}, {"exec", 4}, {"file", 4}, {"merge", 4}};
  bool no_cache = false;  // run every vertex (results are still stored)
  std::function<void(const SolveEvent&)> on_event;  // called from worker threads
  std::function<void(const std::string&)> on_warning;  // e.g. an imported result was unusable
};

// Computes a vertex's cache key from its digest, its inputs' keys and its content key.
std::string CacheKey(const Vertex& v, const std::vector<std::string>& input_keys, const std::string& content_key);

class Solver {
 public:
  Solver(OpRunner& runner, ResultCache& cache, SolveOptions opts)
      : runner_(runner), cache_(cache), opts_(std::move(opts)) {}
  // Runs what the root needs and returns the root output's Ref.
  Result<Ref> Solve(const Definition& def, CancelToken& cancel);

 private:
  OpRunner& runner_;
  ResultCache& cache_;
  SolveOptions opts_;
};

}  // namespace xbuild::solver
