// The solver with equal vertices made separately: the frontend makes a new source vertex for
// every FROM of one image and every COPY from the context, so a definition holds several
// Vertex objects with one digest. Flatten keeps one of them; every input naming any of them
// must resolve to it, and the op runs once.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "solver/scheduler.h"

namespace xbuild::solver {
namespace {

// Records what ran; a vertex's output names it and its inputs.
class RecordingRunner : public OpRunner {
 public:
  Result<std::string> ContentKey(const Vertex&, const std::vector<Ref>&) override { return std::string(); }
  Result<VertexResult> Run(const Vertex& v, const std::vector<Ref>& inputs, const std::string&, const CancelToken&) override {
    std::string id = v.meta.description;
    for (const auto& in : inputs) id += "(" + in.id + ")";
    std::lock_guard<std::mutex> l(mu_);
    ran_.push_back(v.meta.description);
    return VertexResult{{Ref{id}}};
  }
  std::vector<std::string> ran() {
    std::lock_guard<std::mutex> l(mu_);
    return ran_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> ran_;  // guarded by mu_
};

Output Source(const std::string& identifier, const std::string& name) {
  SourceOp op;
  op.identifier = identifier;
  VertexMeta meta;
  meta.description = name;
  return MakeVertex(op, {}, meta);
}

Output Exec(const std::string& arg, std::vector<Output> inputs) {
  ExecOp op;
  op.args = {arg};
  VertexMeta meta;
  meta.description = arg;
  return MakeVertex(op, std::move(inputs), meta);
}

TEST(SchedulerEqualVertices, InputsNamingEqualVerticesShareOneRun) {
  // Two stages FROM one image, each source made on its own (the description differs too: it is
  // not part of the digest).
  Output base1 = Source("docker-image://docker.io/library/busybox:local", "base");
  Output base2 = Source("docker-image://docker.io/library/busybox:local", "base again");
  ASSERT_NE(base1.vertex.get(), base2.vertex.get());
  ASSERT_EQ(base1.vertex->digest, base2.vertex->digest);
  Output a = Exec("a", {base1});
  Output b = Exec("b", {base2});
  VertexMeta meta;
  meta.description = "merge";
  Definition def = Flatten(MakeVertex(MergeOp{}, {a, b}, meta));
  ASSERT_EQ(def.vertices.size(), 4u) << "one source, two execs, the merge";

  RecordingRunner r;
  MemoryResultCache cache;
  Solver s(r, cache, SolveOptions{});
  CancelToken cancel;
  auto out = s.Solve(def, cancel);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->id, "merge(a(base))(b(base))") << "both execs read the one source's output";
  std::vector<std::string> ran = r.ran();
  EXPECT_EQ(std::count(ran.begin(), ran.end(), "base") + std::count(ran.begin(), ran.end(), "base again"), 1);
  EXPECT_EQ(ran.size(), 4u);
}

}  // namespace
}  // namespace xbuild::solver
