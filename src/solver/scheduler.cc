#include "solver/scheduler.h"

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <deque>

namespace xbuild::solver {

using core::Code;
using core::Error;

namespace {

constexpr int kDefaultConcurrency = 4;
constexpr size_t kNone = static_cast<size_t>(-1);

class MemoryKeyLock : public ResultCache::KeyLock {
 public:
  explicit MemoryKeyLock(std::shared_ptr<std::mutex> mu) : mu_(std::move(mu)) { mu_->lock(); }
  ~MemoryKeyLock() override { mu_->unlock(); }

 private:
  std::shared_ptr<std::mutex> mu_;
};

struct Node {
  const Vertex* vertex = nullptr;
  std::string kind;
  std::vector<size_t> dependents;
  int waiting = 0;                     // inputs not finished yet
  std::optional<VertexResult> result;  // set once, before dependents are scheduled
  std::string key;
};

}  // namespace

Result<std::optional<VertexResult>> MemoryResultCache::Lookup(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = results_.find(key);
  if (it == results_.end()) return std::optional<VertexResult>();
  return std::optional<VertexResult>(it->second);
}

Status MemoryResultCache::Store(const std::string& key, const VertexResult& result) {
  std::lock_guard<std::mutex> l(mu_);
  results_[key] = result;
  return core::Ok();
}

Result<std::unique_ptr<ResultCache::KeyLock>> MemoryResultCache::Lock(const std::string& key) {
  std::shared_ptr<std::mutex> mu;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto& slot = locks_[key];
    if (!slot) slot = std::make_shared<std::mutex>();
    mu = slot;
  }
  return std::unique_ptr<KeyLock>(new MemoryKeyLock(std::move(mu)));
}

std::string CacheKey(const Vertex& v, const std::vector<std::string>& input_keys, const std::string& content_key) {
  std::string material = "xbuild-cache-v1\n" + v.digest.String() + "\n";
  for (const auto& k : input_keys) material += "input " + k + "\n";
  material += "content " + content_key + "\n";
  return core::Digest::Of(material).String();
}

Result<Ref> Solver::Solve(const Definition& def, CancelToken& cancel) {
  if (def.root.scratch()) return Ref{};
  std::vector<Node> nodes(def.vertices.size());
  // By digest, not by pointer: Flatten keeps one of several equal vertices (two stages FROM the
  // same image), and the inputs of the others still point at the copies it dropped.
  std::map<core::Digest, size_t> index;
  for (size_t i = 0; i < def.vertices.size(); ++i) {
    nodes[i].vertex = def.vertices[i].get();
    nodes[i].kind = std::string(OpKind(def.vertices[i]->op));
    index[def.vertices[i]->digest] = i;
  }
  auto input_node = [&](const Output& o) -> size_t {
    if (o.scratch()) return kNone;
    auto it = index.find(o.vertex->digest);
    return it == index.end() ? kNone : it->second;
  };
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const auto& in : nodes[i].vertex->inputs) {
      size_t j = input_node(in);
      if (in.scratch()) continue;
      if (j == kNone) return Error(Code::kInternal, "definition: an input is not among its vertices");
      nodes[j].dependents.push_back(i);
      ++nodes[i].waiting;
    }
  }
  size_t root = input_node(def.root);
  if (root == kNone) return Error(Code::kInternal, "definition: the root is not among its vertices");

  // Runs one vertex: cache lookup, then (under the key's lock) the op.
  auto process = [&](size_t i) -> Status {
    Node& n = nodes[i];
    const Vertex& v = *n.vertex;
    std::vector<Ref> refs;
    std::vector<std::string> input_keys;
    for (const auto& in : v.inputs) {
      if (in.scratch()) {
        refs.push_back(Ref{});
        input_keys.push_back("scratch");
        continue;
      }
      const Node& src = nodes[input_node(in)];
      if (in.index < 0 || static_cast<size_t>(in.index) >= src.result->outputs.size()) {
        return Error(Code::kInternal, v.meta.description + ": input output " + std::to_string(in.index) + " missing");
      }
      refs.push_back(src.result->outputs[static_cast<size_t>(in.index)]);
      input_keys.push_back(src.key + "#" + std::to_string(in.index));
    }
    XB_ASSIGN(std::string content, runner_.ContentKey(v, refs));
    n.key = CacheKey(v, input_keys, content);
    auto emit = [&](VertexState s, std::chrono::steady_clock::duration d = {}, std::string err = "") {
      if (opts_.on_event) opts_.on_event(SolveEvent{&v, s, d, n.key, std::move(err)});
    };
    bool use_cache = !opts_.no_cache && !v.meta.ignore_cache;
    if (use_cache) {
      XB_ASSIGN(auto hit, cache_.Lookup(n.key));
      if (hit) {
        n.result = std::move(*hit);
        emit(VertexState::kCached);
        return core::Ok();
      }
    }
    XB_ASSIGN(auto lock, cache_.Lock(n.key));
    if (use_cache) {  // another build may have finished it while we waited for the lock
      XB_ASSIGN(auto hit, cache_.Lookup(n.key));
      if (hit) {
        n.result = std::move(*hit);
        emit(VertexState::kCached);
        return core::Ok();
      }
    }
    if (cancel.Cancelled()) return Error(Code::kCancelled, "cancelled");
    emit(VertexState::kStarted);
    auto t0 = std::chrono::steady_clock::now();
    auto r = runner_.Run(v, refs, n.key, cancel);
    auto elapsed = std::chrono::steady_clock::now() - t0;
    if (!r.ok()) {
      emit(cancel.Cancelled() ? VertexState::kCancelled : VertexState::kFailed, elapsed, r.error().ToString());
      return std::move(r).error();
    }
    XB_TRY(cache_.Store(n.key, *r));
    n.result = std::move(*r);
    emit(VertexState::kDone, elapsed);
    return core::Ok();
  };

  int total_slots = 0;
  auto limit = [&](const std::string& kind) {
    auto it = opts_.concurrency.find(kind);
    return std::max(1, it == opts_.concurrency.end() ? kDefaultConcurrency : it->second);
  };
  for (const char* k : {"source", "exec", "file", "merge"}) total_slots += limit(k);

  std::mutex mu;
  std::map<std::string, int> running;                 // guarded by mu
  std::map<std::string, std::deque<size_t>> pending;  // guarded by mu
  std::optional<Error> first_error;                   // guarded by mu
  tbb::global_control threads(tbb::global_control::max_allowed_parallelism,
                              static_cast<size_t>(total_slots + 1));
  tbb::task_arena arena(total_slots + 1);
  tbb::task_group tg;

  std::function<void(size_t)> start;
  // Under mu: start i now if its kind has a free slot, else queue it.
  auto ready = [&](size_t i, std::vector<size_t>& to_start) {
    const std::string& kind = nodes[i].kind;
    if (running[kind] < limit(kind)) {
      ++running[kind];
      to_start.push_back(i);
    } else {
      pending[kind].push_back(i);
    }
  };
  start = [&](size_t i) {
    tg.run([&, i] {
      Status s = cancel.Cancelled() ? Status(Error(Code::kCancelled, "cancelled")) : process(i);
      std::vector<size_t> to_start;
      {
        std::lock_guard<std::mutex> l(mu);
        const std::string& kind = nodes[i].kind;
        --running[kind];
        if (!s.ok()) {
          if (!first_error || (first_error->code() == Code::kCancelled && s.error().code() != Code::kCancelled)) {
            std::string what = nodes[i].vertex->meta.description;
            first_error = what.empty() ? s.error() : Error(s.error()).Context(what);
          }
          cancel.Cancel();
        } else if (!cancel.Cancelled()) {
          for (size_t d : nodes[i].dependents) {
            if (--nodes[d].waiting == 0) ready(d, to_start);
          }
        }
        if (!cancel.Cancelled()) {
          auto& q = pending[kind];
          while (!q.empty() && running[kind] < limit(kind)) {
            ++running[kind];
            to_start.push_back(q.front());
            q.pop_front();
          }
        }
      }
      for (size_t j : to_start) start(j);
    });
  };
  arena.execute([&] {
    std::vector<size_t> to_start;
    {
      std::lock_guard<std::mutex> l(mu);
      for (size_t i = 0; i < nodes.size(); ++i) {
        if (nodes[i].waiting == 0) ready(i, to_start);
      }
    }
    for (size_t j : to_start) start(j);
    tg.wait();
  });
  if (first_error) return std::move(*first_error);
  if (cancel.Cancelled()) return Error(Code::kCancelled, "build cancelled");
  const Node& r = nodes[root];
  if (!r.result || def.root.index < 0 || static_cast<size_t>(def.root.index) >= r.result->outputs.size()) {
    return Error(Code::kInternal, "solve: the root produced no output " + std::to_string(def.root.index));
  }
  return r.result->outputs[static_cast<size_t>(def.root.index)];
}

}  // namespace xbuild::solver
