// The scheduler on a Definition where equal vertices were made twice (two stages FROM the same
// image: two Vertex objects, one digest). Flatten keeps one; the solve must still find every
// input, and run the shared vertex once.
#include <gtest/gtest.h>

#include <atomic>

#include "solver/scheduler.h"

namespace xbuild::solver {
namespace {

class CountingRunner : public OpRunner {
 public:
  std::atomic<int> source_runs{0};
  Result<std::string> ContentKey(const Vertex&, const std::vector<Ref>&) override { return std::string(); }
  Result<VertexResult> Run(const Vertex& v, const std::vector<Ref>& inputs, const std::string&, const CancelToken&) override {
    if (std::holds_alternative<SourceOp>(v.op)) ++source_runs;
    std::string id = v.meta.description;
    for (const auto& in : inputs) id += "(" + in.id + ")";
    return VertexResult{{Ref{id}}};
  }
};

TEST(SchedulerDedup, EqualVerticesMadeTwiceRunOnceAndFeedBothUsers) {
  SourceOp image;
  image.identifier = "docker-image://docker.io/library/busybox:latest";
  // Same op, different descriptions: one digest, two objects.
  Output base_a = MakeVertex(image, {}, {"[build 1/2] FROM busybox", "", 1, false});
  Output base_b = MakeVertex(image, {}, {"[stage-1 1/2] FROM busybox", "", 3, false});
  ASSERT_EQ(base_a.vertex->digest, base_b.vertex->digest);
  ASSERT_NE(base_a.vertex.get(), base_b.vertex.get());
  ExecOp a;
  a.args = {"a"};
  Output step_a = MakeVertex(a, {base_a}, {"[build 2/2] RUN a", "", 2, false});
  FileOp copy;
  copy.actions.push_back({0, CopyAction{}});
  Output step_b = MakeVertex(copy, {base_b, step_a}, {"[stage-1 2/2] COPY --from=build", "", 4, false});
  Definition def = Flatten(step_b);
  ASSERT_EQ(def.vertices.size(), 3u);

  CountingRunner runner;
  MemoryResultCache cache;
  Solver solver(runner, cache, SolveOptions{});
  CancelToken cancel;
  auto out = solver.Solve(def, cancel);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(runner.source_runs.load(), 1);
  // The kept object's name, whichever Flatten kept, feeds both steps.
  const std::string& kept = def.vertices[0]->meta.description;
  EXPECT_EQ(out->id, "[stage-1 2/2] COPY --from=build(" + kept + ")([build 2/2] RUN a(" + kept + "))");
}

}  // namespace
}  // namespace xbuild::solver
