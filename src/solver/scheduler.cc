#include "solver/scheduler.h"

#include <tbb/parallel_for.h>

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
  std::optional<VertexResult> result;  // set once, before dependents are scheduled (may be lazy)
  std::string key;
  std::string content;   // the runner's content key (phase 1)
  bool needed = false;   // phase 2: the root needs it
  bool prehit = false;   // phase 2: found in the cache; its inputs are not needed
  std::unique_ptr<std::mutex> realize_mu = std::make_unique<std::mutex>();  // guards realizing result
};

// The vertices of one solve, by position, and where each input comes from.
struct Graph {
  std::vector<Node> nodes;
  std::map<core::Digest, size_t> index;  // by digest (see BuildGraph)
  size_t InputNode(const Output& o) const {
    if (o.scratch()) return kNone;
    auto it = index.find(o.vertex->digest);
    return it == index.end() ? kNone : it->second;
  }
};

// Nodes with their dependents and waiting counts. By digest, not by pointer: Flatten keeps one
// of several equal vertices (two stages FROM the same image), and the inputs of the others
// still point at the copies it dropped.
Result<Graph> BuildGraph(const Definition& def) {
  Graph g;
  g.nodes.resize(def.vertices.size());
  for (size_t i = 0; i < def.vertices.size(); ++i) {
    g.nodes[i].vertex = def.vertices[i].get();
    g.nodes[i].kind = std::string(OpKind(def.vertices[i]->op));
    g.index[def.vertices[i]->digest] = i;
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (const auto& in : g.nodes[i].vertex->inputs) {
      if (in.scratch()) continue;
      size_t j = g.InputNode(in);
      if (j == kNone) return Error(Code::kInternal, "definition: an input is not among its vertices");
      g.nodes[j].dependents.push_back(i);
      ++g.nodes[i].waiting;
    }
  }
  return g;
}

// The nodes in topological order; a cycle is an error.
Result<std::vector<size_t>> TopoOrder(const std::vector<Node>& nodes) {
  std::vector<size_t> topo;
  {
    std::vector<int> waiting(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) waiting[i] = nodes[i].waiting;
    std::deque<size_t> q;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (waiting[i] == 0) q.push_back(i);
    }
    while (!q.empty()) {
      size_t i = q.front();
      q.pop_front();
      topo.push_back(i);
      for (size_t d : nodes[i].dependents) {
        if (--waiting[d] == 0) q.push_back(d);
      }
    }
    if (topo.size() != nodes.size()) return Error(Code::kInternal, "definition: the graph has a cycle");
  }
  return topo;
}

// Phase 1: every vertex's cache key before anything runs (keys depend on definitions, input
// keys and content keys, never on results): sources' content keys (context checksums, image
// digests) in parallel, then the rest in topological order.
Status ComputeKeys(Graph& g, const std::vector<size_t>& topo, OpRunner& runner_) {
  std::vector<Node>& nodes = g.nodes;
  auto input_node = [&](const Output& o) { return g.InputNode(o); };
  {
    std::vector<size_t> sources;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (std::holds_alternative<SourceOp>(nodes[i].vertex->op)) sources.push_back(i);
    }
    std::vector<std::optional<Error>> errors(sources.size());
    tbb::task_arena keys_arena(std::max<int>(1, std::min<int>(static_cast<int>(sources.size()), 4)));
    keys_arena.execute([&] {
      tbb::parallel_for(size_t{0}, sources.size(), [&](size_t k) {
        auto c = runner_.ContentKey(*nodes[sources[k]].vertex, {});
        if (c.ok()) {
          nodes[sources[k]].content = *c;
        } else {
          errors[k] = std::move(c).error();
        }
      });
    });
    for (size_t k = 0; k < sources.size(); ++k) {
      if (errors[k]) {
        std::string what = nodes[sources[k]].vertex->meta.description;
        return what.empty() ? *errors[k] : errors[k]->Context(what);
      }
    }
  }
  for (size_t i : topo) {
    Node& n = nodes[i];
    if (!std::holds_alternative<SourceOp>(n.vertex->op)) {
      XB_ASSIGN(n.content, runner_.ContentKey(*n.vertex, {}));
    }
    std::vector<std::string> input_keys;
    for (const auto& in : n.vertex->inputs) {
      input_keys.push_back(in.scratch() ? "scratch" : nodes[input_node(in)].key + "#" + std::to_string(in.index));
    }
    n.key = CacheKey(*n.vertex, input_keys, n.content);
  }
  return core::Ok();
}

// Phase 2: what the root needs. A needed vertex found in the cache needs none of its inputs,
// so a cached step that only feeds other cached steps is never run, loaded or downloaded.
// Afterwards only needed vertices wait for (and are dependents of) their inputs.
Status MarkNeeded(Graph& g, size_t root, const std::vector<size_t>& topo, ResultCache& cache_,
                  const SolveOptions& opts_) {
  std::vector<Node>& nodes = g.nodes;
  auto input_node = [&](const Output& o) { return g.InputNode(o); };
  auto emit_for = [&](const Node& n, VertexState st) {
    if (opts_.on_event) opts_.on_event(SolveEvent{n.vertex, st, {}, n.key, ""});
  };
  std::vector<size_t> stack = {root};
  nodes[root].needed = true;
  while (!stack.empty()) {
    size_t i = stack.back();
    stack.pop_back();
    Node& n = nodes[i];
    if (!opts_.no_cache && !n.vertex->meta.ignore_cache) {
      XB_ASSIGN(auto hit, cache_.Lookup(n.key));
      if (hit) {
        n.result = std::move(*hit);
        n.prehit = true;
        continue;
      }
    }
    for (const auto& in : n.vertex->inputs) {
      if (in.scratch()) continue;
      size_t j = input_node(in);
      if (!nodes[j].needed) {
        nodes[j].needed = true;
        stack.push_back(j);
      }
    }
  }
  // What is not needed but cached is still reported CACHED (as BuildKit shows a warm build);
  // what is neither is not shown.
  if (!opts_.no_cache) {
    for (size_t i : topo) {
      Node& n = nodes[i];
      if (n.needed || n.vertex->meta.ignore_cache) continue;
      XB_ASSIGN(auto hit, cache_.Lookup(n.key));
      if (hit) emit_for(n, VertexState::kCached);
    }
  }
  // Only needed vertices are scheduled: a hit waits for nothing; others wait for their inputs.
  for (auto& n : nodes) {
    n.waiting = 0;
    n.dependents.clear();
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!nodes[i].needed || nodes[i].prehit) continue;
    for (const auto& in : nodes[i].vertex->inputs) {
      if (in.scratch()) continue;
      size_t j = input_node(in);
      nodes[j].dependents.push_back(i);
      ++nodes[i].waiting;
    }
  }
  return core::Ok();
}

// Per-kind concurrency: the option, else kDefaultConcurrency; at least 1.
int KindLimit(const SolveOptions& opts, const std::string& kind) {
  auto it = opts.concurrency.find(kind);
  return std::max(1, it == opts.concurrency.end() ? kDefaultConcurrency : it->second);
}

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
  int total_slots = 0;
  auto limit = [&](const std::string& kind) { return KindLimit(opts_, kind); };
  for (const char* k : {"source", "exec", "file", "merge"}) total_slots += limit(k);
  // One thread per slot (and the caller's), for the keys' arena as for the steps': set first,
  // so that no arena asks for more workers than TBB allows (TBB warns on stderr then).
  tbb::global_control threads(tbb::global_control::max_allowed_parallelism,
                              static_cast<size_t>(total_slots + 1));
  XB_ASSIGN(Graph g, BuildGraph(def));
  std::vector<Node>& nodes = g.nodes;
  auto input_node = [&](const Output& o) { return g.InputNode(o); };
  size_t root = input_node(def.root);
  if (root == kNone) return Error(Code::kInternal, "definition: the root is not among its vertices");

  auto emit_for = [&](const Node& n, VertexState s, std::chrono::steady_clock::duration d = {}, std::string err = "") {
    if (opts_.on_event) opts_.on_event(SolveEvent{n.vertex, s, d, n.key, std::move(err)});
  };
  XB_ASSIGN(std::vector<size_t> topo, TopoOrder(nodes));
  XB_TRY(ComputeKeys(g, topo, runner_));
  XB_TRY(MarkNeeded(g, root, topo, cache_, opts_));

  // The Refs and keys of a vertex's inputs (all finished).
  auto gather = [&](const Vertex& v, std::vector<Ref>& refs, std::vector<std::string>& input_keys) -> Status {
    refs.clear();
    input_keys.clear();
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
    return core::Ok();
  };
  // Runs the op of node i on its (realized) inputs and stores the result.
  std::function<Status(size_t)> realize;
  auto run_op = [&](size_t i) -> Status {
    Node& n = nodes[i];
    const Vertex& v = *n.vertex;
    for (const auto& in : v.inputs) {
      if (!in.scratch()) XB_TRY(realize(input_node(in)));
    }
    std::vector<Ref> refs;
    std::vector<std::string> input_keys;
    XB_TRY(gather(v, refs, input_keys));
    if (cancel.Cancelled()) return Error(Code::kCancelled, "cancelled");
    emit_for(n, VertexState::kStarted);
    auto t0 = std::chrono::steady_clock::now();
    auto r = runner_.Run(v, refs, n.key, cancel);
    auto elapsed = std::chrono::steady_clock::now() - t0;
    if (!r.ok()) {
      emit_for(n, cancel.Cancelled() ? VertexState::kCancelled : VertexState::kFailed, elapsed, r.error().ToString());
      return std::move(r).error();
    }
    XB_TRY(cache_.Store(n.key, *r));
    n.result = std::move(*r);
    emit_for(n, VertexState::kDone, elapsed);
    return core::Ok();
  };
  // Makes node i's (finished) result real: a lazy cache hit is realized, or, when that fails,
  // the step runs after all.
  realize = [&](size_t i) -> Status {
    Node& n = nodes[i];
    std::lock_guard<std::mutex> l(*n.realize_mu);
    if (!n.result) {
      // Not needed at first (a dependent was a cache hit), needed now (that hit was unusable):
      // from the cache if it is there, else run.
      if (!opts_.no_cache && !n.vertex->meta.ignore_cache) {
        XB_ASSIGN(auto hit, cache_.Lookup(n.key));
        if (hit) n.result = std::move(*hit);
      }
      if (!n.result) {
        XB_ASSIGN(auto lock, cache_.Lock(n.key));
        return run_op(i);
      }
    }
    VertexResult real = *n.result;
    std::optional<Error> failed;
    for (auto& o : real.outputs) {
      if (!cache_.IsLazy(o)) continue;
      auto r = cache_.Realize(n.key, o);
      if (!r.ok()) {
        failed = std::move(r).error();
        break;
      }
      o = *r;
    }
    if (!failed) {
      n.result = std::move(real);
      return core::Ok();
    }
    if (opts_.on_warning) {
      opts_.on_warning(n.vertex->meta.description + ": the imported cache result is unusable (" + failed->ToString() +
                       "); running the step");
    }
    XB_ASSIGN(auto lock, cache_.Lock(n.key));
    return run_op(i);
  };

  // Runs one needed vertex: a phase-2 hit is reported; otherwise cache lookup, then (under the
  // key's lock) the op.
  auto process = [&](size_t i) -> Status {
    Node& n = nodes[i];
    const Vertex& v = *n.vertex;
    auto emit = [&](VertexState s, std::chrono::steady_clock::duration d = {}, std::string err = "") {
      emit_for(n, s, d, std::move(err));
    };
    if (n.prehit) {
      emit(VertexState::kCached);
      return core::Ok();
    }
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
    return run_op(i);
  };

  std::mutex mu;
  std::map<std::string, int> running;                 // guarded by mu
  std::map<std::string, std::deque<size_t>> pending;  // guarded by mu
  std::optional<Error> first_error;                   // guarded by mu
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
        if (nodes[i].needed && nodes[i].waiting == 0) ready(i, to_start);
      }
    }
    for (size_t j : to_start) start(j);
    tg.wait();
  });
  if (first_error) return std::move(*first_error);
  if (cancel.Cancelled()) return Error(Code::kCancelled, "build cancelled");
  XB_TRY(realize(root));
  const Node& r = nodes[root];
  if (!r.result || def.root.index < 0 || static_cast<size_t>(def.root.index) >= r.result->outputs.size()) {
    return Error(Code::kInternal, "solve: the root produced no output " + std::to_string(def.root.index));
  }
  return r.result->outputs[static_cast<size_t>(def.root.index)];
}

}  // namespace xbuild::solver
