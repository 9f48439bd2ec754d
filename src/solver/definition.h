// The build DAG: a Definition is plain data, a set of vertices, each an op plus the outputs
// of other vertices it reads. The frontend produces it; the solver schedules it.
//
// A vertex is named by the sha256 of its canonical bytes (CanonicalJson of the op and the
// digests of its inputs), so the same step with the same inputs has the same digest on every
// run and machine. Descriptions, progress names and other metadata are kept beside the
// vertex (VertexMeta) and never enter the digest. Content-derived keys (what COPY reads from
// a context) are not part of the vertex digest either; the solver adds them to cache keys.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/digest.h"
#include "core/json.h"
#include "core/result.h"

namespace xbuild::solver {

// A source of a filesystem: an image, the build context, a git repository, an HTTP file.
//   "docker-image://docker.io/library/busybox:latest"   attrs: "image.platform"
//   "local://context"                                   attrs: "local.includepatterns",
//                                                        "local.excludepatterns", "local.followpaths"
//   "git://host/repo.git#ref"  "https://host/file"
struct SourceOp {
  std::string identifier;
  std::map<std::string, std::string> attrs;
};

enum class MountType { kBind, kCache, kTmpfs, kSecret, kSsh };
enum class CacheSharing { kShared, kPrivate, kLocked };

const char* MountTypeName(MountType t);  // "bind", "cache", ...

struct Mount {
  int input = -1;         // index into the vertex inputs; -1: scratch / not from an input
  std::string selector;   // path inside the input to mount
  std::string dest;       // path inside the container ("/" is the rootfs)
  int output = -1;        // output index this mount produces; -1: discarded
  bool readonly = false;
  MountType type = MountType::kBind;
  std::string cache_id;   // kCache
  CacheSharing sharing = CacheSharing::kShared;
  std::string secret_id;  // kSecret / kSsh
  std::string env;        // kSecret: also (or only, with no dest) as this environment variable
  bool optional = false;
  int64_t tmpfs_size = 0;
  uint32_t uid = 0, gid = 0, mode = 0;
};

enum class NetworkMode { kDefault, kNone, kHost };
enum class SecurityMode { kSandbox, kInsecure };

struct ExecOp {
  std::vector<std::string> args;
  std::vector<std::string> env;  // "K=V"
  std::string cwd = "/";
  std::string user;
  std::vector<Mount> mounts;     // mounts[0] is the rootfs ("/")
  NetworkMode network = NetworkMode::kDefault;
  SecurityMode security = SecurityMode::kSandbox;
  std::vector<std::string> extra_hosts;
  std::vector<std::string> devices;  // CDI names (RUN --device)
  std::string hostname;              // BUILDKIT_SANDBOX_HOSTNAME; empty: the sandbox's default
  // The platform the step runs for, when it is not the build platform ("linux/arm64"); empty:
  // the machine's own. A runner refuses one its machine cannot execute.
  std::string platform;
  // HTTP_PROXY=... and the other proxy build args, in both spellings. Not in the digest: as in
  // BuildKit, a proxy changes how a step reaches the network, not what it makes.
  std::vector<std::string> proxy_env;
};

struct ChownOpt {
  std::string user;   // a name or number, resolved in the target ("" = keep)
  std::string group;
};

// File actions, applied in order; each reads `input` (a vertex input index, or -1 for the
// result of the previous action, which for the first action means scratch).
struct CopyAction {
  int src_input = -1;
  std::string src;             // path or wildcard pattern in the source
  std::string dest;            // absolute path in the target
  bool follow_symlinks = true; // a symlink named as the source is followed (inside its root)
  bool dir_contents_only = true;
  bool allow_wildcard = true;
  bool allow_empty_wildcard = false;
  bool create_dest_path = true;
  bool attempt_unpack = false; // ADD of a local tar
  std::optional<ChownOpt> chown;
  std::string chmod;           // octal or symbolic, "" = keep
  std::vector<std::string> exclude_patterns;
  std::optional<int64_t> timestamp;  // SOURCE_DATE_EPOCH clamp
  // COPY --parents: each match keeps its path (below a "/./" pivot in src, if any) under dest;
  // src may use `**`.
  bool parents = false;
};
struct MkdirAction {
  std::string path;
  uint32_t mode = 0755;
  bool make_parents = true;
  std::optional<ChownOpt> chown;
};
struct MkfileAction {
  std::string path;
  uint32_t mode = 0644;
  std::string data;
  std::optional<ChownOpt> chown;
};
struct RmAction {
  std::string path;
  bool allow_not_found = true;
  bool allow_wildcard = false;
};
struct SymlinkAction {
  std::string oldpath;
  std::string newpath;
};
using FileAction = std::variant<CopyAction, MkdirAction, MkfileAction, RmAction, SymlinkAction>;
struct FileActionStep {
  int input = -1;  // the tree this action writes into: a vertex input index, or -1 (previous/scratch)
  FileAction action;
};
struct FileOp {
  std::vector<FileActionStep> actions;
};

// Overlays its inputs in order (COPY --link lowers to this).
struct MergeOp {};

using Op = std::variant<SourceOp, ExecOp, FileOp, MergeOp>;

std::string_view OpKind(const Op& op);  // "source", "exec", "file", "merge"

// Not part of the digest.
struct VertexMeta {
  std::string description;   // e.g. "[build 3/5] RUN make"
  std::string progress_group;
  int source_line = 0;       // Dockerfile line, for errors
  bool ignore_cache = false;
};

struct Vertex;

// One output of a vertex; a null vertex is scratch (the empty filesystem).
struct Output {
  std::shared_ptr<const Vertex> vertex;
  int index = 0;
  bool scratch() const { return vertex == nullptr; }
};

struct Vertex {
  Op op;
  std::vector<Output> inputs;
  VertexMeta meta;
  core::Digest digest;  // sha256 of CanonicalBytes()
  std::string CanonicalBytes() const;
};

// Creates a vertex and computes its digest.
Output MakeVertex(Op op, std::vector<Output> inputs, VertexMeta meta = {});

// A flattened, deduplicated DAG: vertices in topological order (inputs first).
struct Definition {
  std::vector<std::shared_ptr<const Vertex>> vertices;
  Output root;
  // Digest of the whole definition: the root's vertex digest and output index (a scratch
  // root digests as the empty string).
  core::Digest Digest() const;
  // Canonical JSON of all vertices, for `debug` output and tests.
  core::OrderedJson ToJson() const;
};

Definition Flatten(const Output& root);

core::Json OpToJson(const Op& op);

}  // namespace xbuild::solver
