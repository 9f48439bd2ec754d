// RUN: its command (shell, exec form, heredocs), environment, mounts, network and security.
#include <algorithm>

#include "core/fs.h"
#include "core/json.h"
#include "core/path.h"
#include "core/strings.h"
#include "core/units.h"
#include "frontend/lowerer.h"

namespace xbuild::frontend::lowering {

namespace {

Result<solver::Mount> ParseRunMount(const std::string& spec, const std::string& where) {
  solver::Mount m;
  m.type = solver::MountType::kBind;
  m.readonly = true;
  std::string type = "bind";
  std::vector<std::pair<std::string, std::string>> kvs;
  for (auto& field : core::Split(spec, ',')) {
    if (field.empty()) continue;
    auto eq = field.find('=');
    std::string k = core::ToLower(eq == std::string::npos ? field : field.substr(0, eq));
    std::string v = eq == std::string::npos ? "" : field.substr(eq + 1);
    if (k == "type") type = v;
    else kvs.emplace_back(k, v);
  }
  if (type == "cache") m.type = solver::MountType::kCache, m.readonly = false;
  else if (type == "tmpfs") m.type = solver::MountType::kTmpfs, m.readonly = false;
  else if (type == "secret") m.type = solver::MountType::kSecret;
  else if (type == "ssh") m.type = solver::MountType::kSsh;
  else if (type != "bind") return Error(Code::kInvalidArgument, where + "unsupported mount type \"" + type + "\"");
  // Secrets and ssh sockets are optional unless required=true (BuildKit's default).
  if (m.type == solver::MountType::kSecret || m.type == solver::MountType::kSsh) m.optional = true;
  for (auto& [k, v] : kvs) {
    if (k == "target" || k == "dst" || k == "destination") m.dest = v;
    else if (k == "source" || k == "src") m.selector = v;
    else if (k == "id") (m.type == solver::MountType::kCache ? m.cache_id : m.secret_id) = v;
    else if (k == "ro" || k == "readonly") m.readonly = v.empty() || v == "true";
    else if (k == "rw" || k == "readwrite") m.readonly = !(v.empty() || v == "true");
    else if (k == "sharing") {
      if (v == "shared") m.sharing = solver::CacheSharing::kShared;
      else if (v == "private") m.sharing = solver::CacheSharing::kPrivate;
      else if (v == "locked") m.sharing = solver::CacheSharing::kLocked;
      else return Error(Code::kInvalidArgument, where + "invalid cache sharing \"" + v + "\"");
    } else if (k == "required") m.optional = !(v.empty() || v == "true");
    else if (k == "size") {  // go-units RAMInBytes, as BuildKit: "128m" = 128 MiB
      auto size = core::ParseByteSize(v);
      if (!size.ok()) return Error(Code::kInvalidArgument, where + "--mount size: " + size.error().message());
      m.tmpfs_size = *size;
    }
    else if (k == "uid") m.uid = static_cast<uint32_t>(std::atoi(v.c_str()));
    else if (k == "gid") m.gid = static_cast<uint32_t>(std::atoi(v.c_str()));
    else if (k == "mode") m.mode = static_cast<uint32_t>(std::strtoul(v.c_str(), nullptr, 8));
    else if (k == "env") m.env = v;
    else if (k == "from") continue;  // resolved by the caller
    else return Error(Code::kInvalidArgument, where + "unexpected key \"" + k + "\" in --mount " + spec);
  }
  if (!m.env.empty() && m.type != solver::MountType::kSecret) {
    return Error(Code::kInvalidArgument, where + "env= applies to secret mounts only");
  }
  if (m.type == solver::MountType::kSecret && m.secret_id.empty() && !m.dest.empty()) m.secret_id = core::Basename(m.dest);
  if (m.type == solver::MountType::kSecret && m.secret_id.empty()) {
    return Error(Code::kInvalidArgument, where + "a secret mount needs id= or target=");
  }
  if (m.type == solver::MountType::kSsh && m.secret_id.empty()) m.secret_id = "default";
  // A secret named only as an environment variable gets no file (BuildKit's rule).
  if (m.type == solver::MountType::kSecret && m.dest.empty() && !m.secret_id.empty() && m.env.empty()) m.dest = "/run/secrets/" + m.secret_id;
  if (m.type == solver::MountType::kSsh && m.dest.empty()) m.dest = "/run/buildkit/ssh_agent.0";
  // An empty target is relative like any other: it mounts on the working directory.
  return m;
}

}  // namespace

// The `from=` of a --mount spec ("" when absent).
std::string MountFrom(const std::string& spec) {
  for (auto& field : core::Split(spec, ',')) {
    if (field.starts_with("from=")) return field.substr(5);
  }
  return "";
}

Status Lowerer::Apply(StageState& st, Step& step, const RunCmd& c) {
  image::ContainerConfig& cc = st.config.config;
  solver::ExecOp op;
  std::vector<std::string> shell = cc.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : cc.shell;
  std::optional<Output> script_file;  // a `#!` heredoc's script
  if (c.cmd.exec_form) {
    op.args = c.cmd.args;
  } else {
    std::string script = c.cmd.args.empty() ? "" : c.cmd.args[0];
    std::string trimmed = script;
    trimmed.erase(0, trimmed.find_first_not_of(" \t"));
    bool only_heredoc = !c.heredocs.empty() && trimmed.starts_with("<<") && trimmed.find(' ') == std::string::npos;
    if (only_heredoc && c.heredocs[0].content.starts_with("#!")) {
      // A script with its own interpreter (`#!/bin/awk -f`), as dockerfile2llb runs it: the
      // body as an executable file on a read-only mount at /dev/pipes/, run by the shell.
      solver::FileOp fop;
      solver::MkfileAction mk;
      mk.path = "/" + c.heredocs[0].name;
      mk.mode = 0755;
      mk.data = c.heredocs[0].content;
      fop.actions.push_back({-1, mk});
      solver::VertexMeta file_meta;
      file_meta.description = "[internal] heredoc script " + c.heredocs[0].name;
      script_file = solver::MakeVertex(fop, {}, file_meta);
      script = "/dev/pipes/" + c.heredocs[0].name;
    } else if (only_heredoc) {
      script = c.heredocs[0].content;
    } else {
      for (auto& h : c.heredocs) script += "\n" + h.content + h.name;
    }
    op.args = shell;
    op.args.push_back(script);
  }
  // The step's environment: image ENV, then the stage's ARGs (build args are visible to
  // RUN but are not kept in the image).
  std::map<std::string, std::string> vars;
  for (auto& [k, v] : st.args) vars[k] = v;
  // The proxy args need no ARG and reach the step in both spellings, outside its config,
  // history and digest (op.proxy_env); one the stage declares is an ordinary ARG too.
  const auto& proxy_names = ProxyArgs();  // pairs: "HTTP_PROXY", "http_proxy", ...
  for (size_t i = 0; i + 1 < proxy_names.size(); i += 2) {
    auto upper = opts_.build_args.find(proxy_names[i]);
    auto lower = opts_.build_args.find(proxy_names[i + 1]);
    bool has_upper = upper != opts_.build_args.end(), has_lower = lower != opts_.build_args.end();
    if (!has_upper && !has_lower) continue;  // (never reported unused: Run leaves proxies out)
    // Each spelling keeps its own value; the one not given takes the other's.
    op.proxy_env.push_back(proxy_names[i] + "=" + (has_upper ? upper : lower)->second);
    op.proxy_env.push_back(proxy_names[i + 1] + "=" + (has_lower ? lower : upper)->second);
  }
  if (auto it = opts_.build_args.find("BUILDKIT_SANDBOX_HOSTNAME"); it != opts_.build_args.end()) {
    used_build_args_.insert(it->first);
    op.hostname = it->second;
  }
  for (auto& e : cc.env) {
    auto eq = e.find('=');
    if (eq != std::string::npos) vars[e.substr(0, eq)] = e.substr(eq + 1);
  }
  for (auto& [k, v] : vars) op.env.push_back(k + "=" + v);
  const image::Platform& platform = stage_platforms_[static_cast<size_t>(st.index)];
  if (platform.os != opts_.build_platform.os || platform.architecture != opts_.build_platform.architecture ||
      platform.variant != opts_.build_platform.variant) {
    op.platform = platform.String();
  }
  op.extra_hosts = opts_.extra_hosts;  // --add-host
  op.cwd = cc.working_dir.empty() ? "/" : cc.working_dir;
  op.user = cc.user;
  solver::Mount root;
  root.input = 0;
  root.dest = "/";
  root.output = 0;
  op.mounts.push_back(root);
  std::vector<Output> inputs{st.fs};
  if (script_file) {
    solver::Mount sm;
    sm.input = static_cast<int>(inputs.size());
    sm.selector = "/";
    sm.dest = "/dev/pipes";
    sm.readonly = true;
    op.mounts.push_back(sm);
    inputs.push_back(*script_file);
  }
  for (auto& spec : c.mounts) {
    XB_ASSIGN(std::string expanded, Expand(spec, step.env, step.line, step.kw));
    XB_ASSIGN(solver::Mount m, ParseRunMount(expanded, step.where));
    bool env_only = m.type == solver::MountType::kSecret && m.dest.empty();
    if (!env_only && (m.dest.empty() || m.dest[0] != '/')) m.dest = core::CleanPath(op.cwd + "/" + m.dest);
    // The source of a bind/cache mount: a stage, an image, or the context.
    std::string from = MountFrom(expanded);
    if (m.type == solver::MountType::kBind || (m.type == solver::MountType::kCache && !from.empty())) {
      Output src;
      XB_ASSIGN(std::optional<Output> named, NamedContext(from, {}, opts_.target_platform, step.where));
      if (named) {
        src = *named;
      } else if (from.empty()) {
        XB_ASSIGN(src, ContextSource({}));
      } else if (IsNumber(from)) {
        src = states_[static_cast<size_t>(std::atoi(from.c_str()))].fs;
      } else {
        XB_ASSIGN(int idx, FindStage(from, st.index, step.line, "RUN --mount"));
        if (idx >= 0) {
          src = states_[static_cast<size_t>(idx)].fs;
        } else {
          auto ref = image::ParseReference(from);
          if (!ref.ok()) return Error(Code::kInvalidArgument, step.where + ref.error().message());
          src = ImageSource(*ref, opts_.target_platform, "FROM " + ref->String());
        }
      }
      m.input = static_cast<int>(inputs.size());
      inputs.push_back(src);
    }
    if (m.type == solver::MountType::kCache && m.cache_id.empty()) m.cache_id = m.dest;
    op.mounts.push_back(m);
  }
  if (!c.network.empty()) {
    if (c.network == "none") op.network = solver::NetworkMode::kNone;
    else if (c.network == "host") op.network = solver::NetworkMode::kHost;
    else if (c.network != "default") return Error(Code::kInvalidArgument, step.where + "unsupported --network=" + c.network + " (want default, none or host)");
  }
  if (!c.security.empty()) {
    if (c.security == "insecure") op.security = solver::SecurityMode::kInsecure;
    else if (c.security != "sandbox") return Error(Code::kInvalidArgument, step.where + "unsupported --security=" + c.security);
  }
  op.devices = c.devices;
  st.fs = solver::MakeVertex(op, inputs, step.meta);
  // History as BuildKit writes it (runCommandString): the stage's ARGs once each, in the order
  // first declared, with their last value (the environment's when an ENV overrides one), then
  // the command; exec form as its words joined: "|2 A=b C= /bin/sh -c make".
  std::string prefix;
  if (!st.arg_order.empty()) {
    prefix = "|" + std::to_string(st.arg_order.size());
    for (auto& k : st.arg_order) {
      auto v = step.env.Get(k);
      prefix += " " + k + "=" + v.value_or("");
    }
    prefix += " ";
  }
  std::string body = JoinArgs(op.args);
  AddHistory(st, HistoryFor(step.inst, prefix + body), false);
  return core::Ok();
}

}  // namespace xbuild::frontend::lowering
