// The solver's scheduler with fake ops: parallelism of independent vertices (proved by a barrier,
// not by timing), per-kind concurrency limits, cache hits and content keys, cancellation on the
// first failure, and one run per vertex when two solves share a cache.
#include <gtest/gtest.h>

#include <condition_variable>
#include <set>
#include <thread>

#include "solver/scheduler.h"

namespace xbuild::solver {
namespace {

using core::Code;
using core::Error;

// Exec vertices whose first arg names a behaviour: "wait:N" blocks until N vertices are running
// at once (or cancelled), "fail" fails, "spin" runs until cancelled; anything else succeeds.
class FakeRunner : public OpRunner {
 public:
  std::map<std::string, std::string> content;  // vertex description -> content key
  std::atomic<int> runs{0};
  int max_running = 0;
  std::set<std::string> ran;  // guarded by mu_

  Result<std::string> ContentKey(const Vertex& v, const std::vector<Ref>&) override {
    auto it = content.find(v.meta.description);
    return it == content.end() ? std::string() : it->second;
  }

  Result<VertexResult> Run(const Vertex& v, const std::vector<Ref>& inputs, const std::string&,
                           const CancelToken& cancel) override {
    ++runs;
    std::string what = std::holds_alternative<ExecOp>(v.op) ? std::get<ExecOp>(v.op).args.at(0) : "";
    {
      std::unique_lock<std::mutex> l(mu_);
      ran.insert(v.meta.description);
      ++running_;
      max_running = std::max(max_running, running_);
      cv_.notify_all();
      if (what.starts_with("wait:")) {
        int n = std::stoi(what.substr(5));
        // Generous bound so a broken scheduler fails the test instead of hanging it.
        cv_.wait_for(l, std::chrono::seconds(20), [&] { return max_running >= n || cancel.Cancelled(); });
      }
    }
    if (what == "spin") {
      while (!cancel.Cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      --running_;
    }
    if (what == "fail") return Error(Code::kInvalidArgument, "exit code 1");
    if (cancel.Cancelled()) return Error(Code::kCancelled, "cancelled");
    std::string id = v.meta.description;
    for (const auto& in : inputs) id += "+" + in.id;
    return VertexResult{{Ref{id}}};
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;  // guarded by mu_
};

Output Exec(const std::string& behaviour, const std::string& name, std::vector<Output> inputs) {
  ExecOp op;
  op.args = {behaviour, name};
  VertexMeta meta;
  meta.description = name;
  return MakeVertex(op, std::move(inputs), meta);
}

Output Merge(std::vector<Output> inputs, const std::string& name) {
  VertexMeta meta;
  meta.description = name;
  return MakeVertex(MergeOp{}, std::move(inputs), meta);
}

// Four independent stages merged: all four run at once.
Definition FourStages(const std::string& behaviour) {
  std::vector<Output> stages;
  for (int i = 0; i < 4; ++i) stages.push_back(Exec(behaviour, "stage" + std::to_string(i), {}));
  return Flatten(Merge(stages, "merge"));
}

TEST(Scheduler, RunsIndependentVerticesAtOnce) {
  FakeRunner r;
  MemoryResultCache cache;
  Solver s(r, cache, SolveOptions{});
  CancelToken cancel;
  auto out = s.Solve(FourStages("wait:4"), cancel);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(r.max_running, 4);
  EXPECT_EQ(out->id, "merge+stage0+stage1+stage2+stage3");
}

TEST(Scheduler, HonoursPerKindLimits) {
  FakeRunner r;
  MemoryResultCache cache;
  SolveOptions o;
  o.concurrency["exec"] = 2;
  Solver s(r, cache, o);
  CancelToken cancel;
  ASSERT_TRUE(s.Solve(FourStages("wait:2"), cancel).ok());
  EXPECT_EQ(r.max_running, 2);
}

TEST(Scheduler, CachesByKeyAndReRunsWhatContentChanged) {
  FakeRunner r;
  MemoryResultCache cache;
  std::vector<SolveEvent> events;
  std::mutex mu;
  SolveOptions o;
  o.on_event = [&](const SolveEvent& e) {
    std::lock_guard<std::mutex> l(mu);
    events.push_back(e);
  };
  Solver s(r, cache, o);
  Output a = Exec("ok", "a", {Output{}});
  Output b = Exec("ok", "b", {a});
  Output c = Exec("ok", "c", {Output{}});
  Definition def = Flatten(Merge({b, c}, "m"));
  CancelToken t1;
  ASSERT_TRUE(s.Solve(def, t1).ok());
  EXPECT_EQ(r.runs, 4);

  CancelToken t2;
  ASSERT_TRUE(s.Solve(def, t2).ok());
  EXPECT_EQ(r.runs, 4) << "a warm solve runs nothing";
  int cached = 0;
  for (const auto& e : events) cached += e.state == VertexState::kCached;
  EXPECT_EQ(cached, 4);

  // What "a" reads changed: a, b (after a) and the merge run again; c stays cached.
  r.content["a"] = "checksum-2";
  CancelToken t3;
  ASSERT_TRUE(s.Solve(def, t3).ok());
  EXPECT_EQ(r.runs, 7);

  // --no-cache runs everything.
  SolveOptions nc;
  nc.no_cache = true;
  Solver s2(r, cache, nc);
  CancelToken t4;
  ASSERT_TRUE(s2.Solve(def, t4).ok());
  EXPECT_EQ(r.runs, 11);
}

TEST(Scheduler, FirstFailureCancelsTheRest) {
  FakeRunner r;
  MemoryResultCache cache;
  Solver s(r, cache, SolveOptions{});
  Output bad = Exec("fail", "[stage-1 2/2] RUN false", {Output{}});
  Output after = Exec("ok", "after", {bad});
  Output spin = Exec("spin", "spinner", {Output{}});
  CancelToken cancel;
  auto out = s.Solve(Flatten(Merge({after, spin}, "m")), cancel);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code(), Code::kInvalidArgument) << out.error().ToString();
  EXPECT_NE(out.error().ToString().find("[stage-1 2/2] RUN false"), std::string::npos) << out.error().ToString();
  EXPECT_EQ(r.ran.count("after"), 0u) << "the failed step's dependents never start";
  EXPECT_TRUE(cancel.Cancelled());
}

TEST(Scheduler, TwoSolvesSharingACacheRunEachVertexOnce) {
  FakeRunner r;
  MemoryResultCache cache;
  Definition def = FourStages("ok");
  Result<Ref> out1 = Ref{}, out2 = Ref{};
  std::thread t1([&] {
    Solver s(r, cache, SolveOptions{});
    CancelToken c;
    out1 = s.Solve(def, c);
  });
  std::thread t2([&] {
    Solver s(r, cache, SolveOptions{});
    CancelToken c;
    out2 = s.Solve(def, c);
  });
  t1.join();
  t2.join();
  ASSERT_TRUE(out1.ok() && out2.ok());
  EXPECT_EQ(*out1, *out2);
  EXPECT_EQ(r.runs, 5);
}

TEST(Scheduler, CacheKeysDependOnInputsAndContent) {
  Output a = Exec("ok", "a", {Output{}});
  const Vertex& v = *a.vertex;
  EXPECT_EQ(CacheKey(v, {"k1#0"}, ""), CacheKey(v, {"k1#0"}, ""));
  EXPECT_NE(CacheKey(v, {"k1#0"}, ""), CacheKey(v, {"k2#0"}, ""));
  EXPECT_NE(CacheKey(v, {"k1#0"}, ""), CacheKey(v, {"k1#0"}, "sum"));
}

}  // namespace
}  // namespace xbuild::solver
