// xbuild import [-c CHANGE]... [-m MESSAGE] [--platform P] FILE.tar|DIR|- [REPOSITORY[:TAG]]
// Like `docker import`: a root filesystem becomes a one-layer image.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "cli/change.h"
#include "cli/cli.h"
#include "core/fs.h"
#include "image/layer.h"

namespace xbuild::cli {

namespace {

struct ImportOptions {
  std::string source;
  std::vector<std::string> changes;
  std::string message;
  image::Platform platform;
};

core::Result<cache::ImageRecord> ImportLeased(cache::ImageStore& store, const ImportOptions& o,
                                              const cache::Lease& lease) {
  XB_ASSIGN(auto epoch, ParseSourceDateEpoch(std::getenv("SOURCE_DATE_EPOCH"), "SOURCE_DATE_EPOCH"));
  image::ImageConfig cfg;
  for (auto& c : o.changes) XB_TRY(ApplyChange(cfg, c));

  XB_ASSIGN(std::string tmp, store.TempDir("import-"));
  core::ScopeGuard cleanup([&] { (void)core::RemoveAll(tmp); });

  std::string rootfs = o.source;
  struct stat st;
  bool is_dir = o.source != "-" && ::stat(o.source.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  if (!is_dir) {
    // A tarball (plain or compressed) is unpacked with the confined extractor, then re-packed,
    // so the layer is normalised (sorted, fixed gzip header) whatever tool wrote the input.
    core::UniqueFd owned;
    int in = 0;
    if (o.source != "-") {
      XB_ASSIGN(owned, core::Open(o.source, O_RDONLY));
      in = owned.get();
    }
    rootfs = core::JoinPath(tmp, "rootfs");
    XB_TRY(core::MkdirAll(rootfs, 0755));
    image::ApplyOptions ao;
    XB_TRY_CTX(image::ApplyLayer(in, rootfs, ao), "unpack " + o.source);
  }
  std::string layer_path = core::JoinPath(tmp, "layer.tar.gz");
  XB_ASSIGN(core::UniqueFd layer_fd, core::Open(layer_path, O_RDWR | O_CREAT | O_TRUNC, 0600));
  image::LayerOptions lo;
  lo.compression = image::Compression::kGzip;
  lo.source_date_epoch = epoch;
  XB_ASSIGN_CTX(image::LayerResult layer, image::CreateLayer(rootfs, image::DirKind::kPlain, layer_fd.get(), lo),
                "create layer from " + o.source);
  if (::lseek(layer_fd.get(), 0, SEEK_SET) != 0) return core::SysError("seek " + layer_path);
  XB_TRY(store.db().AddLeaseResource(lease.id, "content", layer.digest.String()));
  XB_TRY(store.content().WriteBlobFromFd(layer_fd.get(), layer.digest, layer.size).Context("store layer"));

  int64_t now = epoch ? *epoch : static_cast<int64_t>(std::time(nullptr));
  cfg.created = image::FormatTime(now);
  cfg.architecture = o.platform.architecture;
  cfg.os = o.platform.os;
  cfg.variant = o.platform.variant;
  cfg.diff_ids = {layer.diff_id};
  image::HistoryEntry h;
  h.created = cfg.created;
  h.created_by = "xbuild import";
  h.comment = o.message.empty() ? "Imported from " + o.source : o.message;
  cfg.history = {h};
  std::string cfg_bytes = cfg.Serialize();
  XB_ASSIGN(core::Digest cfg_digest, store.content().WriteBlob(cfg_bytes));
  XB_TRY(store.db().AddLeaseResource(lease.id, "content", cfg_digest.String()));

  image::Manifest m;
  m.media_type = std::string(image::media::kOciManifest);
  m.config = {std::string(image::media::kOciConfig), cfg_digest, static_cast<int64_t>(cfg_bytes.size()), {}, {}, {}, ""};
  m.layers.push_back({std::string(image::media::kOciLayerGzip), layer.digest, layer.size, {}, {}, {}, ""});
  return store.CommitImage(m);
}

core::Result<cache::ImageRecord> Import(cache::ImageStore& store, const ImportOptions& o) {
  return store.WithLease<cache::ImageRecord>([&](const cache::Lease& lease) { return ImportLeased(store, o, lease); });
}

}  // namespace

int RunImport(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.List("change", 'c', "Apply Dockerfile instruction to the created image");
  f.String("message", 'm', "", "Set commit message for imported image");
  f.String("platform", 0, "", "Set platform (os/arch[/variant]) of the image");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "import", "import [OPTIONS] file|DIR|- [REPOSITORY[:TAG]]", args, pos, code, 1, 2)) return code;
  ImportOptions o;
  o.source = pos[0];
  o.changes = f.GetList("change");
  o.message = f.GetString("message");
  o.platform = image::HostPlatform();
  if (f.Changed("platform")) {
    auto p = image::ParsePlatform(f.GetString("platform"));
    if (!p.ok()) return cli.Fail(p.error());
    o.platform = *p;
  }
  std::optional<image::Reference> ref;
  if (pos.size() == 2) {
    auto r = image::ParseReference(pos[1]);
    if (!r.ok()) return cli.Fail(r.error());
    if (r->digest) return cli.Fail(core::Error(core::Code::kInvalidArgument, "import: cannot tag with a digest: " + pos[1]));
    ref = *r;
  }
  if (o.source != "-" && !core::Exists(o.source)) {
    return cli.Fail(core::Error(core::Code::kNotFound, "import: " + o.source + ": no such file or directory"));
  }
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  auto rec = Import(**store, o);
  if (!rec.ok()) return cli.Fail(std::move(rec).error().Context("import " + o.source));
  if (ref) {
    if (auto s = (*store)->Tag(*ref, rec->digest); !s.ok()) return cli.Fail(s.error());
  }
  std::printf("%s\n", rec->config.String().c_str());
  return kExitOk;
}

}  // namespace xbuild::cli
