#include "cli/build_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <set>

#include "cache/archive.h"
#include "core/fs.h"
#include "image/layer.h"
#include "solver/ops/export.h"

namespace xbuild::cli {

using core::Code;
using core::Error;

namespace {

// BuildKit reads -o values as one CSV record: fields split at commas, a field (or part of it)
// in double quotes may hold commas, "" is a literal quote.
std::vector<std::string> SplitCsv(const std::string& s) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') {
      if (quoted && i + 1 < s.size() && s[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else {
        quoted = !quoted;
      }
    } else if (c == ',' && !quoted) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> BuildOutput::Names() const {
  std::vector<std::string> out;
  for (auto& n : SplitCsv(Attr("name"))) {
    if (!n.empty()) out.push_back(n);
  }
  return out;
}

core::Result<image::Compression> ParseCompression(const std::string& name) {
  if (name == "gzip") return image::Compression::kGzip;
  if (name == "zstd") return image::Compression::kZstd;
  if (name == "none" || name == "uncompressed") return image::Compression::kNone;
  return Error(Code::kInvalidArgument, "invalid compression \"" + name + "\": want gzip, zstd or none");
}

core::Result<BuildOutput> ParseOutput(const std::string& spec) {
  BuildOutput o;
  std::string what = "invalid output \"" + spec + "\"";
  if (spec.empty()) return Error(Code::kInvalidArgument, what + ": empty");
  if (spec.find('=') == std::string::npos) {  // a bare destination, as docker build -o takes
    o.type = spec == "-" ? "tar" : "local";
    o.attrs["dest"] = spec;
    return o;
  }
  for (const auto& field : SplitCsv(spec)) {
    size_t eq = field.find('=');
    if (eq == std::string::npos || eq == 0) return Error(Code::kInvalidArgument, what + ": \"" + field + "\" is not key=value");
    std::string k = field.substr(0, eq), v = field.substr(eq + 1);
    if (k == "type") {
      o.type = v;
    } else {
      o.attrs[k] = v;
    }
  }
  static const std::set<std::string> kTypes = {"image", "registry", "docker", "oci", "tar", "local"};
  if (o.type.empty()) return Error(Code::kInvalidArgument, what + ": type= is missing");
  if (!kTypes.count(o.type)) {
    return Error(Code::kInvalidArgument, what + ": unknown type \"" + o.type + "\" (want image, registry, docker, oci, tar or local)");
  }
  static const std::set<std::string> kKeys = {"dest", "name", "push", "compression", "oci-mediatypes", "force-compression"};
  for (auto& [k, v] : o.attrs) {
    if (!kKeys.count(k)) return Error(Code::kInvalidArgument, what + ": unknown attribute \"" + k + "\"");
  }
  if ((o.type == "docker" || o.type == "oci" || o.type == "tar" || o.type == "local") && o.Attr("dest").empty()) {
    if (o.type == "local") return Error(Code::kInvalidArgument, what + ": type=local needs dest=DIR");
    return Error(Code::kInvalidArgument, what + ": type=" + o.type + " needs dest=FILE (or dest=- for stdout)");
  }
  if (o.type == "local" && o.Attr("dest") == "-") {
    return Error(Code::kInvalidArgument, what + ": type=local writes a directory; use type=tar,dest=- for stdout");
  }
  if (o.attrs.count("compression")) {
    auto c = ParseCompression(o.Attr("compression"));
    if (!c.ok()) return std::move(c).error().Context(what);
  }
  for (const char* b : {"push", "oci-mediatypes"}) {
    if (o.attrs.count(b) && o.Attr(b) != "true" && o.Attr(b) != "false") {
      return Error(Code::kInvalidArgument, what + ": " + b + " must be true or false");
    }
  }
  return o;
}

namespace {

using Clock = std::chrono::steady_clock;

std::string Took(Clock::time_point t0) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", std::chrono::duration<double>(Clock::now() - t0).count());
  return buf;
}

// Writes through fn to `dest` ("-" = stdout, refused on a terminal); a file is written beside
// dest and renamed into place.
core::Status WriteDest(const std::string& dest, const std::function<core::Status(int fd)>& fn) {
  if (dest == "-") {
    if (::isatty(1)) return Error(Code::kInvalidArgument, "refusing to write an archive to a terminal: use dest=FILE or redirect stdout");
    return fn(1);
  }
  std::string tmp = dest + ".xbuild-tmp";
  XB_ASSIGN(core::UniqueFd fd, core::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  core::Status s = fn(fd.get());
  if (s.ok() && ::fsync(fd.get()) != 0) s = core::SysError("fsync " + tmp);
  fd.Reset();
  if (s.ok() && ::rename(tmp.c_str(), dest.c_str()) != 0) s = core::SysError("rename " + tmp + " to " + dest);
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

// The result's whole filesystem as one tar: a throwaway snapshot over the result, mounted.
core::Status RootfsTar(exec::Snapshotter& snaps, cache::ImageStore& store, const solver::Ref& result, int fd,
                       std::optional<int64_t> source_date_epoch) {
  image::LayerOptions lo;
  lo.compression = image::Compression::kNone;
  lo.source_date_epoch = source_date_epoch;
  if (result.id.empty()) {  // FROM scratch and nothing on it: an empty tar
    XB_ASSIGN(std::string empty, store.TempDir("empty-"));
    auto r = image::CreateLayer(empty, image::DirKind::kPlain, fd, lo);
    (void)core::RemoveAll(empty);
    return r.ok() ? core::Ok() : core::Status(std::move(r).error());
  }
  XB_ASSIGN(std::string view, snaps.Prepare(result.id));
  auto mounted = snaps.Mount(view);
  core::Status s = mounted.ok() ? core::Status(core::Ok()) : core::Status(std::move(mounted).error());
  if (s.ok()) {
    auto r = image::CreateLayer(*mounted, image::DirKind::kPlain, fd, lo);
    if (!r.ok()) s = std::move(r).error();
  }
  core::Status u = snaps.Unmount(view);
  (void)snaps.Remove(view);
  return s.ok() ? u : s;
}

core::Status CopyToDir(exec::Snapshotter& snaps, cache::ImageStore& store, const solver::Ref& result,
                       const std::string& dest, std::optional<int64_t> source_date_epoch) {
  XB_ASSIGN(std::string tmp, store.TempDir("local-"));
  core::ScopeGuard cleanup([&] { (void)core::RemoveAll(tmp); });
  std::string path = core::JoinPath(tmp, "rootfs.tar");
  XB_ASSIGN(core::UniqueFd fd, core::Open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  XB_TRY(RootfsTar(snaps, store, result, fd.get(), source_date_epoch));
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) return core::SysError("seek " + path);
  XB_TRY(core::MkdirAll(dest, 0755));
  image::ApplyOptions ao;
  ao.preserve_owner = ::geteuid() == 0;
  // ApplyLayer never writes outside dest and never follows a symlink already in it.
  auto r = image::ApplyLayer(fd.get(), dest, ao);
  return r.ok() ? core::Ok() : core::Status(std::move(r).error());
}

core::Json Descriptor(const cache::ResolvedImage& img) {
  return {{"mediaType", img.record.media_type}, {"digest", img.record.digest.String()}, {"size", img.record.size}};
}

}  // namespace

core::Result<ExportResult> ExportBuild(cache::ImageStore& store, exec::Snapshotter& snaps, registry::Client* registry,
                                       const solver::Ref& result, image::ImageConfig config,
                                       const ExportRequest& req, const ExportStatusFn& status) {
  ExportResult out;
  out.metadata = core::Json::object();
  auto check = [&]() -> core::Status {
    if (req.cancel && req.cancel->Cancelled()) return Error(Code::kAborted, "export cancelled");
    return core::Ok();
  };
  // The image: for tags, pushes, archives, --iidfile, or when nothing else was asked for.
  bool needs_image = req.outputs.empty() || !req.tags.empty() || req.push || !req.iidfile.empty();
  for (const auto& o : req.outputs) needs_image = needs_image || o.NeedsImage();
  if (req.push && req.tags.empty()) {
    return Error(Code::kInvalidArgument, "--push: name the image to push with -t NAME:TAG");
  }
  std::optional<cache::ResolvedImage> img;
  std::vector<std::string> names;  // every name the image gets in the store
  if (needs_image) {
    XB_TRY(check());
    auto t0 = Clock::now();
    solver::ops::ExportOptions eo;
    eo.oci_mediatypes = req.oci_mediatypes;
    eo.source_date_epoch = req.source_date_epoch;
    eo.lease = snaps.lease();  // the build's: the image stays until it is tagged
    eo.amend_config = req.amend_config;
    eo.annotations = req.annotations;
    XB_ASSIGN_CTX(cache::ImageRecord rec, solver::ops::ExportImage(store, snaps, result, std::move(config), eo),
                  "export image");
    status("exporting layers " + Took(t0) + " done");
    XB_ASSIGN(cache::ResolvedImage loaded, store.Load(rec));
    img = std::move(loaded);
    status("writing image " + rec.config.String() + " done");
    std::vector<image::Reference> refs = req.tags;
    for (const auto& o : req.outputs) {
      for (const auto& n : o.Names()) {
        auto r = image::ParseReference(n);
        if (!r.ok()) return std::move(r).error().Context("output name " + n);
        refs.push_back(*r);
      }
    }
    for (const auto& t : refs) {
      XB_TRY(store.Tag(t, rec.digest));
      if (std::find(names.begin(), names.end(), t.String()) == names.end()) {
        names.push_back(t.String());
        status("naming to " + t.String() + " done");
      }
    }
    out.image_id = rec.config;
    out.metadata["containerimage.config.digest"] = rec.config.String();
    out.metadata["containerimage.digest"] = rec.digest.String();
    out.metadata["containerimage.descriptor"] = Descriptor(*img);
    if (!names.empty()) {
      std::string joined;
      for (auto& n : names) joined += (joined.empty() ? "" : ",") + n;
      out.metadata["image.name"] = joined;
    }
  }
  auto dist_for = [&](const BuildOutput* o) -> core::Result<cache::DistributionOptions> {
    cache::DistributionOptions d;
    d.compression = req.compression;
    if (o && o->attrs.count("compression")) {
      XB_ASSIGN(d.compression, ParseCompression(o->Attr("compression")));
    }
    d.oci_mediatypes = o && o->attrs.count("oci-mediatypes") ? o->Attr("oci-mediatypes") == "true" : req.oci_mediatypes;
    return d;
  };

  // Pushes: --push sends every -t tag; an image output with push=true its names (or the tags).
  std::vector<std::pair<image::Reference, cache::DistributionOptions>> pushes;
  if (req.push) {
    XB_ASSIGN(cache::DistributionOptions d, dist_for(nullptr));
    for (const auto& t : req.tags) pushes.emplace_back(t, d);
  }
  for (const auto& o : req.outputs) {
    if (!o.Push()) continue;
    XB_ASSIGN(cache::DistributionOptions d, dist_for(&o));
    std::vector<std::string> ns = o.Names();
    if (ns.empty()) {
      for (const auto& t : req.tags) ns.push_back(t.String());
    }
    if (ns.empty()) return Error(Code::kInvalidArgument, "output type=" + o.type + ": push needs a name (name=REF or -t)");
    for (const auto& n : ns) {
      XB_ASSIGN(image::Reference r, image::ParseReference(n));
      pushes.emplace_back(r, d);
    }
  }
  if (!pushes.empty() && !registry) return Error(Code::kFailedPrecondition, "push: no registry client");
  for (const auto& [ref, d] : pushes) {
    XB_TRY(check());
    auto t0 = Clock::now();
    XB_ASSIGN_CTX(cache::ResolvedImage sent, cache::ForDistribution(store, *img, d), "push " + ref.String());
    XB_ASSIGN(registry::PushResult pushed, registry->PushImage(store, sent, ref, nullptr));
    status("pushing layers " + Took(t0) + " done");
    status("pushing manifest for " + ref.String() + "@" + pushed.digest.String() + " done");
    out.metadata["containerimage.digest"] = pushed.digest.String();
    out.metadata["containerimage.descriptor"] = Descriptor(sent);
  }

  for (const auto& o : req.outputs) {
    XB_TRY(check());
    auto t0 = Clock::now();
    std::string dest = o.Attr("dest");
    if (o.type == "docker" || o.type == "oci") {
      std::vector<std::string> save = o.Names().empty() ? names : o.Names();
      if (save.empty()) save.push_back(img->record.digest.String());
      cache::SaveOptions so;
      if (o.type == "oci") {
        XB_ASSIGN(so.distribution, dist_for(&o));
      }
      auto fmt = o.type == "oci" ? cache::ArchiveFormat::kOci : cache::ArchiveFormat::kDocker;
      XB_TRY_CTX(WriteDest(dest, [&](int fd) { return cache::SaveImages(store, save, fmt, fd, so); }),
                 "output type=" + o.type + ",dest=" + dest);
      status("sending tarball " + Took(t0) + " done");
    } else if (o.type == "tar") {
      XB_TRY_CTX(WriteDest(dest, [&](int fd) { return RootfsTar(snaps, store, result, fd, req.source_date_epoch); }),
                 "output type=tar,dest=" + dest);
      status("sending tarball " + Took(t0) + " done");
    } else if (o.type == "local") {
      XB_TRY_CTX(CopyToDir(snaps, store, result, dest, req.source_date_epoch), "output type=local,dest=" + dest);
      status("copying files " + Took(t0) + " done");
    }
  }
  return out;
}

}  // namespace xbuild::cli
