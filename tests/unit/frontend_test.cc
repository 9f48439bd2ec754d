// frontend: typed AST, lowering to the Definition, expansion rules, lints.
#include <gtest/gtest.h>

#include "frontend/ast.h"
#include "frontend/lint.h"
#include "frontend/lower.h"

namespace xbuild::frontend {
namespace {

using core::Code;

Dockerfile MustParse(const std::string& text) {
  auto df = ParseDockerfile(text);
  EXPECT_TRUE(df.ok()) << df.error().ToString();
  return df.ok() ? std::move(df).value() : Dockerfile{};
}

LowerResult MustLower(const std::string& text, LowerOptions o = {}, ImageResolver* r = nullptr) {
  Dockerfile df = MustParse(text);
  auto res = Lower(df, o, r);
  EXPECT_TRUE(res.ok()) << res.error().ToString();
  return res.ok() ? std::move(res).value() : LowerResult{};
}

std::string LowerError(const std::string& text, LowerOptions o = {}) {
  auto df = ParseDockerfile(text);
  if (!df.ok()) return df.error().ToString();
  auto res = Lower(*df, o, nullptr);
  return res.ok() ? "" : res.error().ToString();
}

std::vector<const solver::ExecOp*> Execs(const solver::Definition& d) {
  std::vector<const solver::ExecOp*> out;
  for (auto& v : d.vertices)
    if (auto* e = std::get_if<solver::ExecOp>(&v->op)) out.push_back(e);
  return out;
}

std::string EnvOf(const solver::ExecOp& e, const std::string& key) {
  for (auto& kv : e.env)
    if (kv.starts_with(key + "=")) return kv.substr(key.size() + 1);
  return "<unset>";
}

class FakeResolver : public ImageResolver {
 public:
  core::Result<image::ImageConfig> ResolveImageConfig(const image::Reference& ref, const image::Platform&) override {
    asked.push_back(ref.String());
    auto it = configs.find(ref.String());
    if (it == configs.end()) return image::ImageConfig{};
    return it->second;
  }
  std::map<std::string, image::ImageConfig> configs;
  std::vector<std::string> asked;
};

const char* kMultiStage = R"(# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS build
ARG VERSION=1
RUN echo building $VERSION > /out
FROM busybox AS unused
RUN echo never
FROM scratch AS final
COPY --from=build /out /out
CMD ["/out"]
)";

TEST(Lower, SameInputsSameDigestsByteForByte) {
  LowerResult a = MustLower(kMultiStage);
  LowerResult b = MustLower(kMultiStage);
  ASSERT_FALSE(a.definition.vertices.empty());
  EXPECT_EQ(a.definition.Digest(), b.definition.Digest());
  EXPECT_EQ(a.definition.ToJson().dump(), b.definition.ToJson().dump());
  // Comments and blank lines move line numbers and descriptions, never digests.
  std::string shifted = std::string("# a comment\n\n") + kMultiStage;
  EXPECT_EQ(MustLower(shifted).definition.Digest(), a.definition.Digest());
  // A build arg changes the RUN step and so the digest.
  LowerOptions o;
  o.build_args["VERSION"] = "2";
  EXPECT_NE(MustLower(kMultiStage, o).definition.Digest(), a.definition.Digest());
}

TEST(Lower, TargetLowersOnlyTheStagesItNeeds) {
  LowerResult r = MustLower(kMultiStage);
  EXPECT_EQ(r.stages, (std::vector<int>{0, 2}));
  for (auto* e : Execs(r.definition)) EXPECT_EQ(e->args.back().find("never"), std::string::npos);
  LowerOptions o;
  o.target = "UNUSED";  // stage names match without regard to case
  LowerResult u = MustLower(kMultiStage, o);
  EXPECT_EQ(u.stages, (std::vector<int>{1}));
  o.target = "nope";
  EXPECT_NE(LowerError(kMultiStage, o).find("target stage \"nope\" could not be found"), std::string::npos);
}

TEST(Lower, GlobalArgInFromAndStageScoping) {
  FakeResolver r;
  LowerOptions o;
  o.build_args["BASE"] = "alpine:3";
  MustLower(kMultiStage, o, &r);
  ASSERT_FALSE(r.asked.empty());
  EXPECT_EQ(r.asked[0], "docker.io/library/alpine:3");
  // A global ARG is not visible in a stage until re-declared.
  LowerResult a = MustLower("ARG G=global\nFROM scratch\nRUN echo $G\nARG G\nRUN echo $G\n");
  auto ex = Execs(a.definition);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(EnvOf(*ex[0], "G"), "<unset>");
  EXPECT_EQ(EnvOf(*ex[1], "G"), "global");
}

TEST(Lower, EnvSeesStateBeforeItAndOverridesArg) {
  LowerResult r = MustLower("FROM scratch\nENV A=1\nENV A=2 B=$A\nARG C=arg\nENV C=env\nRUN true\n");
  EXPECT_EQ(r.config.GetEnv("A"), "2");
  EXPECT_EQ(r.config.GetEnv("B"), "1");
  auto ex = Execs(r.definition);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(EnvOf(*ex[0], "C"), "env");
  EXPECT_EQ(EnvOf(*ex[0], "PATH"), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
}

TEST(Lower, PlatformArgsNeedDeclaration) {
  LowerOptions o;
  o.target_platform = *image::ParsePlatform("linux/arm64");
  LowerResult r = MustLower("FROM scratch\nARG TARGETARCH\nARG TARGETPLATFORM\nRUN echo $TARGETARCH\n", o);
  auto ex = Execs(r.definition);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(EnvOf(*ex[0], "TARGETARCH"), "arm64");
  EXPECT_EQ(EnvOf(*ex[0], "TARGETPLATFORM"), "linux/arm64");
}

TEST(Lower, ShellAndExecForms) {
  LowerResult r = MustLower("FROM scratch\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN make\nRUN [\"echo\", \"x\"]\n");
  auto ex = Execs(r.definition);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0]->args, (std::vector<std::string>{"/bin/bash", "-o", "pipefail", "-c", "make"}));
  EXPECT_EQ(ex[1]->args, (std::vector<std::string>{"echo", "x"}));
}

TEST(Lower, ImageConfigChangesAndHistory) {
  const char* df = R"(FROM scratch
ENV A=b
LABEL x="y z"
EXPOSE 80 53/udp
VOLUME ["/data"]
USER app:app
WORKDIR /srv
WORKDIR sub
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --retries=3 CMD ["true"]
SHELL ["/bin/ash", "-c"]
ONBUILD RUN echo child
ENTRYPOINT ["/entry"]
CMD ["arg"]
MAINTAINER someone
)";
  LowerResult r = MustLower(df);
  const auto& c = r.config.config;
  EXPECT_EQ(r.config.GetEnv("A"), "b");
  EXPECT_EQ(c.labels.at("x"), "y z");
  EXPECT_EQ(c.exposed_ports, (std::set<std::string>{"80/tcp", "53/udp"}));
  EXPECT_EQ(c.volumes, (std::set<std::string>{"/data"}));
  EXPECT_EQ(c.user, "app:app");
  EXPECT_EQ(c.working_dir, "/srv/sub");
  EXPECT_EQ(c.stop_signal, "SIGINT");
  ASSERT_TRUE(c.healthcheck.has_value());
  EXPECT_EQ(c.healthcheck->interval_ns, 30'000'000'000);
  EXPECT_EQ(c.healthcheck->retries, 3);
  EXPECT_EQ(c.shell, (std::vector<std::string>{"/bin/ash", "-c"}));
  EXPECT_EQ(c.on_build, std::vector<std::string>{"RUN echo child"});
  EXPECT_EQ(c.entrypoint, std::vector<std::string>{"/entry"});
  EXPECT_EQ(c.cmd, std::vector<std::string>{"arg"});
  EXPECT_EQ(r.config.author, "someone");
  ASSERT_EQ(r.config.history.size(), 14u);
  EXPECT_EQ(r.config.history[0].created_by, "ENV A=b");
  EXPECT_TRUE(r.config.history[0].empty_layer);
}

TEST(Lower, OnbuildTriggersRunInTheChildOnly) {
  FakeResolver r;
  image::ImageConfig parent;
  parent.config.on_build = {"RUN echo from-trigger", "ENV TRIGGERED=1"};
  parent.config.cmd = std::vector<std::string>{"parent-cmd"};
  r.configs["docker.io/library/parent:1"] = parent;
  LowerResult res = MustLower("FROM parent:1\nRUN echo own\n", {}, &r);
  auto ex = Execs(res.definition);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_NE(ex[0]->args.back().find("from-trigger"), std::string::npos);
  EXPECT_EQ(res.config.GetEnv("TRIGGERED"), "1");
  EXPECT_TRUE(res.config.config.on_build.empty());
  // An inherited CMD does not survive a new ENTRYPOINT.
  LowerResult e = MustLower("FROM parent:1\nENTRYPOINT [\"/e\"]\n", {}, &r);
  EXPECT_FALSE(e.config.config.cmd.has_value());
}

TEST(Lower, CopyFromStageIsCaseInsensitiveAndRefusesLaterStages) {
  MustLower("FROM scratch AS Build\nFROM scratch\nCOPY --from=BUILD /a /b\n");
  std::string later = LowerError("FROM scratch\nCOPY --from=later /a /b\nFROM scratch AS later\n");
  EXPECT_NE(later.find("Dockerfile:2: "), std::string::npos) << later;
  EXPECT_NE(later.find("needs to be defined before current stage"), std::string::npos) << later;
  std::string self = LowerError("FROM scratch AS me\nCOPY --from=me /a /b\n");
  EXPECT_NE(self.find("circular dependency detected on stage: me"), std::string::npos) << self;
  std::string from_self = LowerError("FROM me AS me\n");
  EXPECT_NE(from_self.find("circular dependency"), std::string::npos) << from_self;
  std::string index = LowerError("FROM scratch\nCOPY --from=1 /a /b\nFROM scratch\n");
  EXPECT_NE(index.find("needs to be defined before current stage"), std::string::npos) << index;
}

TEST(Lower, CopyFromImageAndContext) {
  LowerResult r = MustLower("FROM scratch\nCOPY --from=busybox:1 /bin/busybox /bin/\nCOPY a b /dst/\n");
  std::vector<std::string> sources;
  for (auto& v : r.definition.vertices)
    if (auto* s = std::get_if<solver::SourceOp>(&v->op)) sources.push_back(s->identifier);
  EXPECT_NE(std::find(sources.begin(), sources.end(), "docker-image://docker.io/library/busybox:1"), sources.end());
  EXPECT_NE(std::find(sources.begin(), sources.end(), "local://context"), sources.end());
  std::string multi = LowerError("FROM scratch\nCOPY a b /dst\n");
  EXPECT_NE(multi.find("must be a directory and end with a /"), std::string::npos) << multi;
}

TEST(Lower, RelativeDestAndWorkdir) {
  LowerResult r = MustLower("FROM scratch\nWORKDIR /app\nCOPY f ./sub/\n");
  bool found = false;
  for (auto& v : r.definition.vertices) {
    if (auto* f = std::get_if<solver::FileOp>(&v->op)) {
      for (auto& a : f->actions)
        if (auto* c = std::get_if<solver::CopyAction>(&a.action)) {
          EXPECT_EQ(c->dest, "/app/sub/");
          found = true;
        }
    }
  }
  EXPECT_TRUE(found);
}

TEST(Ast, ErrorsNameThePlace) {
  auto bad_flag = ParseDockerfile("FROM scratch\nCOPY --foo=1 a b\n");
  ASSERT_FALSE(bad_flag.ok());
  EXPECT_EQ(bad_flag.error().message(), "Dockerfile:2: COPY: unknown flag --foo");
  auto before_from = ParseDockerfile("ENV A=1\nFROM scratch\n");
  ASSERT_FALSE(before_from.ok());
  EXPECT_NE(before_from.error().message().find("Dockerfile:1: ENV"), std::string::npos) << before_from.error().message();
  auto shell = ParseDockerfile("FROM scratch\nSHELL /bin/sh -c\n");
  ASSERT_FALSE(shell.ok());
  EXPECT_NE(shell.error().message().find("JSON form"), std::string::npos);
  EXPECT_FALSE(ParseDockerfile("").ok());
  auto unknown = ParseDockerfile("FROM scratch\nFROBNICATE x\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message().find("Dockerfile:2"), std::string::npos) << unknown.error().message();
  EXPECT_NE(unknown.error().message().find("unknown instruction"), std::string::npos) << unknown.error().message();
}

TEST(Ast, InvalidJsonFallsBackToShellForm) {
  Dockerfile df = MustParse("FROM scratch\nCMD [\"a\", b]\n");
  ASSERT_EQ(df.stages.size(), 1u);
  auto& cmd = std::get<CmdCmd>(df.stages[0].commands[0].data);
  EXPECT_FALSE(cmd.cmd.exec_form);
  EXPECT_EQ(cmd.cmd.args, std::vector<std::string>{"[\"a\", b]"});
}

std::set<std::string> Rules(const std::string& text) {
  Dockerfile df = MustParse(text);
  std::set<std::string> out;
  for (auto& w : LintAst(df)) out.insert(w.rule);
  std::vector<Warning> sink;
  LowerOptions o;
  o.warnings_sink = &sink;
  (void)Lower(df, o, nullptr);
  for (auto& w : sink) out.insert(w.rule);
  return out;
}

TEST(Lint, EachRule) {
  EXPECT_TRUE(Rules("FROM scratch\nCMD echo hi\n").count("JSONArgsRecommended"));
  EXPECT_TRUE(Rules("FROM scratch\nCOPY $NOPE /x\n").count("UndefinedVar"));
  EXPECT_FALSE(Rules("FROM scratch\nRUN echo $NOPE\n").count("UndefinedVar"));  // the shell expands RUN
  EXPECT_FALSE(Rules("FROM scratch\nENV X=1\nENV Y=$X:$PATH\n").count("UndefinedVar"));
  EXPECT_TRUE(Rules("FROM busybox:${TAG}\n").count("UndefinedArgInFrom"));
  EXPECT_FALSE(Rules("ARG TAG=1\nFROM busybox:${TAG}\n").count("UndefinedArgInFrom"));
  EXPECT_TRUE(Rules("FROM scratch AS Build\n").count("StageNameCasing"));
  EXPECT_TRUE(Rules("FROM scratch as build\n").count("FromAsCasing"));
  EXPECT_TRUE(Rules("FROM scratch AS a\nFROM scratch AS a\n").count("DuplicateStageName"));
  EXPECT_TRUE(Rules("FROM scratch\nrun true\nRUN true\nENV A=1\n").count("ConsistentInstructionCasing"));
  EXPECT_TRUE(Rules("FROM scratch\nMAINTAINER me\n").count("MaintainerDeprecated"));
  EXPECT_TRUE(Rules("FROM scratch\nENV A 1\n").count("LegacyKeyValueFormat"));
  EXPECT_TRUE(Rules("FROM scratch\nWORKDIR rel\n").count("WorkdirRelativePath"));
  EXPECT_TRUE(Rules("FROM scratch\nRUN echo a \\\n\n  b\n").count("NoEmptyContinuation"));
  EXPECT_TRUE(Rules("FROM scratch\nARG API_TOKEN\n").count("SecretsUsedInArgOrEnv"));
  EXPECT_FALSE(Rules("FROM scratch\nARG PUBLIC_KEY\n").count("SecretsUsedInArgOrEnv"));
  std::set<std::string> clean = Rules("FROM scratch AS build\nENV A=1\nWORKDIR /app\nCMD [\"x\"]\n");
  EXPECT_TRUE(clean.empty()) << *clean.begin();
}

TEST(Lint, CheckDirective) {
  auto c = ParseCheckDirective("skip=JSONArgsRecommended,StageNameCasing;error=true");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->error);
  EXPECT_TRUE(c->Skipped("StageNameCasing"));
  EXPECT_FALSE(c->Skipped("UndefinedVar"));
  EXPECT_TRUE(ParseCheckDirective("skip=all")->Skipped("Anything"));
  EXPECT_FALSE(ParseCheckDirective("error=maybe").ok());
  std::vector<Warning> w = {{"StageNameCasing", "m", 2}, {"UndefinedVar", "m", 1}};
  auto kept = FilterWarnings(w, *c);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].rule, "UndefinedVar");
  Warning json_args{"JSONArgsRecommended", "", 0};
  EXPECT_EQ(json_args.url(), "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/");
}

}  // namespace
}  // namespace xbuild::frontend

namespace xbuild::frontend {
namespace {

// The proxy args reach RUN in both spellings but stay out of the step's digest, its history and
// the image (BuildKit keeps proxies out of the cache key).
TEST(Lower, ProxyArgsStayOutOfDigestAndImage) {
  const char* df = "FROM scratch\nRUN true\n";
  LowerOptions plain;
  LowerOptions proxied;
  proxied.build_args = {{"HTTP_PROXY", "http://p:3128"}, {"no_proxy", "local"}};
  LowerResult a = MustLower(df, plain), b = MustLower(df, proxied);
  ASSERT_EQ(Execs(b.definition).size(), 1u);
  const solver::ExecOp& e = *Execs(b.definition)[0];
  EXPECT_EQ(e.proxy_env, (std::vector<std::string>{"HTTP_PROXY=http://p:3128", "http_proxy=http://p:3128",
                                                   "NO_PROXY=local", "no_proxy=local"}));
  EXPECT_EQ(EnvOf(e, "HTTP_PROXY"), "<unset>");
  EXPECT_EQ(a.definition.root.vertex->digest, b.definition.root.vertex->digest);
  EXPECT_TRUE(b.unused_build_args.empty());
  EXPECT_EQ(b.config.Serialize().find("p:3128"), std::string::npos);
}

// BuildKit's runCommandString: each ARG once, in declaration order, with its last value.
TEST(Lower, RunHistoryListsEachArgOnce) {
  LowerResult r = MustLower("FROM scratch\nARG foo=bar\nARG bar=123\nARG foo=bar2\nARG unset\nRUN [\"ls\", \"-l\"]\n");
  ASSERT_FALSE(r.config.history.empty());
  EXPECT_EQ(r.config.history.back().created_by, "RUN |3 foo=bar2 bar=123 unset= ls -l # buildkit");
  EXPECT_EQ(r.config.config.working_dir, "/");
}

// COPY sources may match nothing one by one (the FileOp fails when none matched); an empty
// destination is the working directory.
TEST(Lower, CopyWildcardsAndEmptyDestination) {
  LowerResult r = MustLower("FROM scratch\nWORKDIR /var/www\nCOPY --link a nomatch* $empty\n");
  const solver::FileOp* fop = nullptr;
  for (auto& v : r.definition.vertices)
    if (auto* f = std::get_if<solver::FileOp>(&v->op); f && !f->actions.empty() &&
                                                        std::holds_alternative<solver::CopyAction>(f->actions[0].action))
      fop = f;
  ASSERT_NE(fop, nullptr);
  ASSERT_EQ(fop->actions.size(), 2u);
  for (const auto& a : fop->actions) {
    const auto& c = std::get<solver::CopyAction>(a.action);
    EXPECT_TRUE(c.allow_empty_wildcard);
    EXPECT_EQ(c.dest, "/var/www/");
  }
}

TEST(Lower, MountFromWithAVariableIsRefused) {
  std::string err = LowerError("FROM scratch\nENV ttt=test\nRUN --mount=from=$ttt,type=cache,target=/tmp ls\n");
  EXPECT_NE(err.find("Dockerfile:3"), std::string::npos) << err;
  EXPECT_NE(err.find("'from' doesn't support variable expansion, define alias stage instead"), std::string::npos) << err;
}

}  // namespace
}  // namespace xbuild::frontend
