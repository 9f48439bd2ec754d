// The typed AST of a Dockerfile: stages and typed instructions, each with its source range.
// Built from the parser's raw nodes (parser/parser.h); no ANTLR type appears here. Flags are
// checked here, so errors name the place: "Dockerfile:12: COPY: unknown flag --foo".
#pragma once

#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/result.h"
#include "frontend/parser/parser.h"

namespace xbuild::frontend {

struct SourceRange {
  int start_line = 0;
  int end_line = 0;
};

struct KeyValue {
  std::string key;
  std::string value;
  bool legacy = false;  // the old "KEY value" form
};

struct ArgDef {
  std::string name;
  std::optional<std::string> default_value;
};

// A command line in shell form (one string, run by SHELL) or exec form (argv).
struct Command {
  std::vector<std::string> args;
  bool exec_form = false;
};

struct FromCmd {
  std::string image;     // unexpanded
  std::string name;      // AS name, as written
  std::string platform;  // --platform, unexpanded
};
struct RunCmd {
  Command cmd;
  std::vector<Heredoc> heredocs;
  std::vector<std::string> mounts;  // --mount values, unparsed
  std::string network;              // --network
  std::string security;             // --security
  std::vector<std::string> devices; // --device
};
struct CmdCmd { Command cmd; };
struct EntrypointCmd { Command cmd; };
struct ShellCmd { std::vector<std::string> shell; };
struct CopyCmd {
  bool is_add = false;
  std::vector<std::string> sources;  // unexpanded
  std::string dest;
  std::vector<Heredoc> heredocs;
  std::string from, chown, chmod, checksum;
  bool link = false, parents = false, keep_git_dir = false;
  std::optional<bool> unpack;
  std::vector<std::string> excludes;
};
struct EnvCmd { std::vector<KeyValue> vars; };
struct LabelCmd { std::vector<KeyValue> labels; };
struct MaintainerCmd { std::string name; };
struct ExposeCmd { std::vector<std::string> ports; };
struct VolumeCmd { std::vector<std::string> paths; };
struct UserCmd { std::string user; };
struct WorkdirCmd { std::string path; };
struct ArgCmd { std::vector<ArgDef> args; };
struct OnbuildCmd { std::string expression; };  // the nested instruction's source text
struct StopsignalCmd { std::string signal; };
struct HealthcheckCmd {
  std::vector<std::string> test;  // ["NONE"] or ["CMD", ...] or ["CMD-SHELL", "..."]
  std::string interval, timeout, start_period, start_interval, retries;  // unparsed flag values
};

using InstructionData = std::variant<FromCmd, RunCmd, CmdCmd, EntrypointCmd, ShellCmd, CopyCmd, EnvCmd,
                                     LabelCmd, MaintainerCmd, ExposeCmd, VolumeCmd, UserCmd, WorkdirCmd,
                                     ArgCmd, OnbuildCmd, StopsignalCmd, HealthcheckCmd>;

struct Instruction {
  std::string keyword;           // uppercase: "RUN"
  std::string keyword_original;  // as written
  std::string original;          // source text
  SourceRange range;
  InstructionData data;
};

struct Stage {
  int index = 0;
  std::string name;           // as written; empty when unnamed
  std::string base;           // FROM image or stage name, unexpanded
  std::string platform;       // FROM --platform, unexpanded
  SourceRange range;          // of its FROM
  std::string from_original;  // the FROM line as written (lints)
  std::vector<Instruction> commands;
};

struct Dockerfile {
  std::string filename = "Dockerfile";
  std::vector<Instruction> meta_args;  // ARGs before the first FROM
  std::vector<Stage> stages;
  std::map<std::string, std::string> directives;
  std::vector<ParseWarning> parse_warnings;
  char escape = '\\';
};

// Typed view of one node (used for ONBUILD triggers too).
core::Result<Instruction> ToInstruction(const Node& node, std::string_view filename);
core::Result<Dockerfile> BuildAst(const ParseResult& parsed, std::string_view filename);
// Parse + BuildAst.
core::Result<Dockerfile> ParseDockerfile(std::string_view text, std::string_view filename = "Dockerfile");

// "Dockerfile:12: " prefix for errors.
std::string Where(std::string_view filename, int line);

}  // namespace xbuild::frontend
