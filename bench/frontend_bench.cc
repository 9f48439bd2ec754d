// Parse and lower a generated 2,000-line Dockerfile: wall time per run and peak memory.
//   xbuild-frontend-bench [LINES] [RUNS]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "frontend/ast.h"
#include "frontend/lower.h"

namespace {

// A realistic mix: several stages, ARG/ENV with expansion, RUN with continuations and a
// heredoc, COPY --from, labels, config instructions.
std::string Generate(int lines) {
  std::string df = "# syntax=docker/dockerfile:1\nARG BASE=busybox:1.36\nARG VERSION=1.0\n";
  int n = 3, stage = 0;
  while (n < lines) {
    df += "FROM ${BASE} AS stage" + std::to_string(stage) + "\n";
    df += "ARG VERSION\nENV APP_HOME=/opt/app" + std::to_string(stage) + " PATH=/opt/bin:$PATH\n";
    df += "WORKDIR $APP_HOME\n";
    n += 4;
    for (int i = 0; i < 40 && n < lines; ++i) {
      switch (i % 8) {
        case 0: df += "RUN echo step " + std::to_string(i) + " $VERSION && \\\n    mkdir -p /opt/x" + std::to_string(i) + " && \\\n    touch /opt/x" + std::to_string(i) + "/f\n"; n += 3; break;
        case 1: df += "COPY src/" + std::to_string(i) + " ./dst/\n"; n += 1; break;
        case 2: df += "LABEL org.example.step" + std::to_string(i) + "=\"value ${VERSION}\"\n"; n += 1; break;
        case 3: df += "ENV VAR" + std::to_string(i) + "=${APP_HOME}/v" + std::to_string(i) + "\n"; n += 1; break;
        case 4: df += "RUN <<EOF\nset -e\necho heredoc " + std::to_string(i) + "\nEOF\n"; n += 4; break;
        case 5: df += stage > 0 ? "COPY --from=stage" + std::to_string(stage - 1) + " /opt /opt/prev\n" : "EXPOSE 80" + std::to_string(i % 10) + "\n"; n += 1; break;
        case 6: df += "RUN [\"/bin/sh\", \"-c\", \"echo exec form " + std::to_string(i) + "\"]\n"; n += 1; break;
        default: df += "USER root\n"; n += 1; break;
      }
    }
    df += "CMD [\"/bin/sh\"]\n";
    ++n;
    ++stage;
  }
  return df;
}

}  // namespace

int main(int argc, char** argv) {
  int lines = argc > 1 ? std::atoi(argv[1]) : 2000;
  int runs = argc > 2 ? std::atoi(argv[2]) : 20;
  std::string text = Generate(lines);
  int actual = 0;
  for (char c : text) actual += c == '\n';
  double best = 1e9, total = 0;
  size_t vertices = 0;
  for (int r = 0; r < runs; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    auto df = xbuild::frontend::ParseDockerfile(text);
    if (!df.ok()) {
      std::fprintf(stderr, "parse: %s\n", df.error().ToString().c_str());
      return 1;
    }
    auto low = xbuild::frontend::Lower(*df, {}, nullptr);
    if (!low.ok()) {
      std::fprintf(stderr, "lower: %s\n", low.error().ToString().c_str());
      return 1;
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, ms);
    total += ms;
    vertices = low->definition.vertices.size();
  }
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  std::printf("lines=%d vertices=%zu runs=%d best_ms=%.2f mean_ms=%.2f peak_rss_mib=%.1f\n",
              actual, vertices, runs, best, total / runs, static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}
