#include "solver/definition.h"

#include <set>
#include <unordered_map>

namespace xbuild::solver {

using core::Json;

const char* MountTypeName(MountType t) {
  switch (t) {
    case MountType::kBind: return "bind";
    case MountType::kCache: return "cache";
    case MountType::kTmpfs: return "tmpfs";
    case MountType::kSecret: return "secret";
    case MountType::kSsh: return "ssh";
  }
  return "bind";
}

namespace {

const char* SharingName(CacheSharing s) {
  switch (s) {
    case CacheSharing::kShared: return "shared";
    case CacheSharing::kPrivate: return "private";
    case CacheSharing::kLocked: return "locked";
  }
  return "shared";
}

Json ChownJson(const std::optional<ChownOpt>& c) {
  if (!c) return nullptr;
  return Json{{"user", c->user}, {"group", c->group}};
}

Json ActionJson(const FileActionStep& step) {
  Json j;
  j["input"] = step.input;
  std::visit(
      [&](const auto& a) {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, CopyAction>) {
          j["copy"] = Json{{"src_input", a.src_input},
                           {"src", a.src},
                           {"dest", a.dest},
                           {"follow_symlinks", a.follow_symlinks},
                           {"dir_contents_only", a.dir_contents_only},
                           {"allow_wildcard", a.allow_wildcard},
                           {"allow_empty_wildcard", a.allow_empty_wildcard},
                           {"create_dest_path", a.create_dest_path},
                           {"attempt_unpack", a.attempt_unpack},
                           {"chown", ChownJson(a.chown)},
                           {"chmod", a.chmod},
                           {"exclude", a.exclude_patterns},
                           {"timestamp", a.timestamp ? Json(*a.timestamp) : Json(nullptr)}};
          if (a.parents) j["copy"]["parents"] = true;  // only when set: older digests stay
        } else if constexpr (std::is_same_v<T, MkdirAction>) {
          j["mkdir"] = Json{{"path", a.path}, {"mode", a.mode}, {"make_parents", a.make_parents}, {"chown", ChownJson(a.chown)}};
        } else if constexpr (std::is_same_v<T, MkfileAction>) {
          j["mkfile"] = Json{{"path", a.path}, {"mode", a.mode}, {"data", a.data}, {"chown", ChownJson(a.chown)}};
        } else if constexpr (std::is_same_v<T, RmAction>) {
          j["rm"] = Json{{"path", a.path}, {"allow_not_found", a.allow_not_found}, {"allow_wildcard", a.allow_wildcard}};
        } else {
          j["symlink"] = Json{{"oldpath", a.oldpath}, {"newpath", a.newpath}};
        }
      },
      step.action);
  return j;
}

}  // namespace

std::string_view OpKind(const Op& op) {
  switch (op.index()) {
    case 0: return "source";
    case 1: return "exec";
    case 2: return "file";
    default: return "merge";
  }
}

Json OpToJson(const Op& op) {
  Json j;
  std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, SourceOp>) {
          j["source"] = Json{{"identifier", o.identifier}, {"attrs", o.attrs}};
        } else if constexpr (std::is_same_v<T, ExecOp>) {
          Json mounts = Json::array();
          for (auto& m : o.mounts) {
            mounts.push_back(Json{{"input", m.input},     {"selector", m.selector}, {"dest", m.dest},
                                  {"output", m.output},   {"readonly", m.readonly}, {"type", MountTypeName(m.type)},
                                  {"cache_id", m.cache_id}, {"sharing", SharingName(m.sharing)},
                                  {"secret_id", m.secret_id}, {"optional", m.optional},
                                  {"tmpfs_size", m.tmpfs_size}, {"uid", m.uid}, {"gid", m.gid}, {"mode", m.mode}});
            if (!m.env.empty()) mounts.back()["env"] = m.env;  // only when set: older digests stay
          }
          j["exec"] = Json{{"args", o.args},
                           {"env", o.env},
                           {"cwd", o.cwd},
                           {"user", o.user},
                           {"mounts", mounts},
                           {"network", static_cast<int>(o.network)},
                           {"security", static_cast<int>(o.security)},
                           {"extra_hosts", o.extra_hosts},
                           {"devices", o.devices}};
          if (!o.hostname.empty()) j["exec"]["hostname"] = o.hostname;  // only when set
          if (!o.platform.empty()) j["exec"]["platform"] = o.platform;
        } else if constexpr (std::is_same_v<T, FileOp>) {
          Json actions = Json::array();
          for (auto& a : o.actions) actions.push_back(ActionJson(a));
          j["file"] = Json{{"actions", actions}};
        } else {
          j["merge"] = Json::object();
        }
      },
      op);
  return j;
}

std::string Vertex::CanonicalBytes() const {
  Json j;
  j["op"] = OpToJson(op);
  Json ins = Json::array();
  for (auto& in : inputs) {
    ins.push_back(Json{{"digest", in.scratch() ? std::string() : in.vertex->digest.String()}, {"index", in.index}});
  }
  j["inputs"] = ins;
  return core::CanonicalJson(j);
}

Output MakeVertex(Op op, std::vector<Output> inputs, VertexMeta meta) {
  auto v = std::make_shared<Vertex>();
  v->op = std::move(op);
  v->inputs = std::move(inputs);
  v->meta = std::move(meta);
  v->digest = core::Digest::Of(v->CanonicalBytes());
  return Output{v, 0};
}

core::Digest Definition::Digest() const {
  std::string s = root.scratch() ? "" : root.vertex->digest.String() + ":" + std::to_string(root.index);
  return core::Digest::Of(s);
}

core::OrderedJson Definition::ToJson() const {
  core::OrderedJson out = core::OrderedJson::array();
  for (auto& v : vertices) {
    core::OrderedJson j;
    j["digest"] = v->digest.String();
    j["op"] = core::OrderedJson::parse(OpToJson(v->op).dump());
    core::OrderedJson ins = core::OrderedJson::array();
    for (auto& in : v->inputs) ins.push_back(in.scratch() ? std::string("scratch") : in.vertex->digest.String() + ":" + std::to_string(in.index));
    j["inputs"] = ins;
    if (!v->meta.description.empty()) j["description"] = v->meta.description;
    out.push_back(j);
  }
  return out;
}

Definition Flatten(const Output& root) {
  Definition def;
  def.root = root;
  std::set<core::Digest> seen;
  // Iterative post-order DFS; identical vertices (same digest) appear once.
  struct Frame {
    std::shared_ptr<const Vertex> v;
    size_t next = 0;
  };
  std::vector<Frame> stack;
  if (!root.scratch()) stack.push_back({root.vertex, 0});
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.next < f.v->inputs.size()) {
      const Output& in = f.v->inputs[f.next++];
      if (!in.scratch() && !seen.count(in.vertex->digest)) stack.push_back({in.vertex, 0});
      continue;
    }
    if (seen.insert(f.v->digest).second) def.vertices.push_back(f.v);
    stack.pop_back();
  }
  return def;
}

}  // namespace xbuild::solver
