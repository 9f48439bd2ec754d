#include "cache/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <set>

#include "core/fs.h"
#include "core/path.h"
#include "image/compression.h"
#include "image/layer.h"
#include "image/media_types.h"

namespace xbuild::cache {

using core::Code;
using core::Digest;
using core::Error;
using core::Json;
using core::OrderedJson;
using core::Result;
using core::Status;

namespace {

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;

Error ArchiveError(struct archive* a, std::string_view what) {
  const char* msg = archive_error_string(a);
  return Error(Code::kIo, std::string(what) + ": " + (msg ? msg : "unknown libarchive error"));
}

// ---- writing ----

class TarWriter {
 public:
  explicit TarWriter(int fd) : a_(archive_write_new(), archive_write_free) {
    archive_write_set_format_pax_restricted(a_.get());
    archive_write_add_filter_none(a_.get());
    archive_write_set_bytes_in_last_block(a_.get(), 1);
    ok_ = archive_write_open_fd(a_.get(), fd) == ARCHIVE_OK;
  }
  bool ok() const { return ok_; }

  Status AddDir(const std::string& name) {
    if (!dirs_.insert(name).second) return core::Ok();
    return Header(name, AE_IFDIR, 0755, 0);
  }
  Status AddBytes(const std::string& name, std::string_view data) {
    XB_TRY(Header(name, AE_IFREG, 0644, static_cast<int64_t>(data.size())));
    return Data(name, data.data(), data.size());
  }
  Status AddFd(const std::string& name, int fd, int64_t size) {
    XB_TRY(Header(name, AE_IFREG, 0644, size));
    char buf[1 << 16];
    int64_t left = size;
    while (left > 0) {
      ssize_t n = ::read(fd, buf, static_cast<size_t>(std::min<int64_t>(left, sizeof buf)));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return core::SysError("read " + name);
      if (n == 0) return Error(Code::kDataLoss, "write " + name + ": blob shorter than its size");
      XB_TRY(Data(name, buf, static_cast<size_t>(n)));
      left -= n;
    }
    return core::Ok();
  }
  Status Close() {
    if (archive_write_close(a_.get()) != ARCHIVE_OK) return ArchiveError(a_.get(), "write archive");
    return core::Ok();
  }

 private:
  Status Header(const std::string& name, unsigned type, int mode, int64_t size) {
    std::unique_ptr<struct archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), type);
    archive_entry_set_perm(e.get(), static_cast<mode_t>(mode));
    archive_entry_set_size(e.get(), size);
    archive_entry_set_mtime(e.get(), 0, 0);
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    if (archive_write_header(a_.get(), e.get()) != ARCHIVE_OK) return ArchiveError(a_.get(), "write " + name);
    return core::Ok();
  }
  Status Data(const std::string& name, const void* p, size_t n) {
    if (archive_write_data(a_.get(), p, n) != static_cast<la_ssize_t>(n)) return ArchiveError(a_.get(), "write " + name);
    return core::Ok();
  }

  ArchivePtr a_;
  bool ok_ = false;
  std::set<std::string> dirs_;
};

std::string BlobName(const Digest& d) { return "blobs/sha256/" + d.Hex(); }

struct SaveItem {
  ResolvedImage image;
  std::vector<std::string> tags;  // full references to record for this image
};

Result<std::vector<SaveItem>> ResolveForSave(ImageStore& store, const std::vector<std::string>& names) {
  std::vector<SaveItem> items;
  for (auto& n : names) {
    XB_ASSIGN(ResolvedImage img, store.Resolve(n));
    std::vector<std::string> tags;
    auto ref = image::ParseReference(n);
    bool named_by_tag = false;
    if (ref.ok() && !ref->digest) {
      for (auto& t : img.tags) named_by_tag = named_by_tag || t == ref->String();
    }
    if (named_by_tag) tags.push_back(ref->String());
    else if (ref.ok() && !ref->digest && !ref->tag.empty() && ref->tag == "latest" && n.find(':') == std::string::npos) {
      // "docker save app" saves every tag of app; here the name resolved to app:latest.
      tags.push_back(ref->String());
    }
    // Merge into an existing item for the same image.
    bool merged = false;
    for (auto& it : items) {
      if (it.image.record.digest == img.record.digest) {
        for (auto& t : tags)
          if (std::find(it.tags.begin(), it.tags.end(), t) == it.tags.end()) it.tags.push_back(t);
        merged = true;
      }
    }
    if (!merged) items.push_back({std::move(img), std::move(tags)});
  }
  return items;
}

Status AddBlob(TarWriter& w, ImageStore& store, const Digest& d, std::set<Digest>& written) {
  if (!written.insert(d).second) return core::Ok();
  XB_ASSIGN(core::UniqueFd fd, store.content().OpenBlob(d));
  XB_ASSIGN(int64_t size, store.content().Size(d));
  return w.AddFd(BlobName(d), fd.get(), size);
}

std::string OciLayerType(std::string_view mt) {
  if (mt == image::media::kDockerLayerGzip || mt == image::media::kDockerForeignLayerGzip) return std::string(image::media::kOciLayerGzip);
  if (mt == image::media::kDockerLayer) return std::string(image::media::kOciLayer);
  if (mt == image::media::kDockerLayerZstd) return std::string(image::media::kOciLayerZstd);
  return std::string(mt);
}

Status SaveOci(ImageStore& store, const std::vector<SaveItem>& items, TarWriter& w) {
  XB_TRY(w.AddBytes("oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  XB_TRY(w.AddDir("blobs/"));
  XB_TRY(w.AddDir("blobs/sha256/"));
  std::set<Digest> written;
  image::Index index;
  index.media_type = std::string(image::media::kOciIndex);
  for (auto& it : items) {
    const image::Manifest& m = it.image.manifest;
    XB_TRY(AddBlob(w, store, m.config.digest, written));
    for (auto& l : m.layers) XB_TRY(AddBlob(w, store, l.digest, written));
    image::Descriptor desc;
    if (m.media_type == image::media::kOciManifest) {
      if (written.insert(it.image.record.digest).second) {
        XB_TRY(w.AddBytes(BlobName(it.image.record.digest), it.image.manifest_bytes));
      }
      desc.media_type = m.media_type;
      desc.digest = it.image.record.digest;
      desc.size = it.image.record.size;
    } else {
      image::Manifest oci = m;
      oci.media_type = std::string(image::media::kOciManifest);
      oci.config.media_type = std::string(image::media::kOciConfig);
      for (auto& l : oci.layers) l.media_type = OciLayerType(l.media_type);
      std::string bytes = oci.Serialize();
      desc.media_type = oci.media_type;
      desc.digest = Digest::Of(bytes);
      desc.size = static_cast<int64_t>(bytes.size());
      if (written.insert(desc.digest).second) XB_TRY(w.AddBytes(BlobName(desc.digest), bytes));
    }
    desc.platform = image::Platform{it.image.config.architecture, it.image.config.os,
                                    it.image.config.variant, "", {}};
    if (it.tags.empty()) {
      index.manifests.push_back(desc);
    }
    for (auto& t : it.tags) {
      image::Descriptor d = desc;
      auto ref = image::ParseReference(t);
      d.annotations["io.containerd.image.name"] = t;
      if (ref.ok()) d.annotations["org.opencontainers.image.ref.name"] = ref->tag;
      index.manifests.push_back(d);
    }
  }
  return w.AddBytes("index.json", index.Serialize());
}

Status SaveDocker(ImageStore& store, const std::vector<SaveItem>& items, TarWriter& w) {
  XB_TRY(w.AddDir("blobs/"));
  XB_TRY(w.AddDir("blobs/sha256/"));
  std::set<Digest> written;
  OrderedJson manifest = OrderedJson::array();
  OrderedJson repos = OrderedJson::object();
  XB_ASSIGN(std::string tmp, store.TempDir("save-"));
  core::ScopeGuard cleanup([&] { (void)core::RemoveAll(tmp); });
  for (auto& it : items) {
    const image::Manifest& m = it.image.manifest;
    XB_TRY(AddBlob(w, store, m.config.digest, written));
    OrderedJson layers = OrderedJson::array();
    for (size_t i = 0; i < m.layers.size(); ++i) {
      const Digest& diff_id = it.image.config.diff_ids[i];
      layers.push_back(BlobName(diff_id));
      if (written.count(diff_id)) continue;
      if (m.layers[i].digest == diff_id) {  // stored uncompressed (a built layer): as it is
        XB_TRY(AddBlob(w, store, diff_id, written));
        continue;
      }
      // Layers go uncompressed, so each one's digest is its diff_id.
      XB_ASSIGN(core::UniqueFd in, store.content().OpenBlob(m.layers[i].digest));
      std::string path = core::JoinPath(tmp, diff_id.Hex());
      XB_ASSIGN(core::UniqueFd out, core::Open(path, O_RDWR | O_CREAT | O_TRUNC, 0600));
      XB_ASSIGN(image::DecompressResult dr, image::Decompress(in.get(), out.get()));
      if (dr.digest != diff_id) {
        return Error(Code::kDataLoss, "layer " + m.layers[i].digest.String() + ": uncompressed digest " +
                                          dr.digest.String() + " does not match diff_id " + diff_id.String());
      }
      if (::lseek(out.get(), 0, SEEK_SET) != 0) return core::SysError("seek " + path);
      written.insert(diff_id);
      XB_TRY(w.AddFd(BlobName(diff_id), out.get(), static_cast<int64_t>(dr.bytes)));
      out.Reset();
      ::unlink(path.c_str());
    }
    OrderedJson entry;
    entry["Config"] = BlobName(m.config.digest);
    OrderedJson tags = OrderedJson::array();
    for (auto& t : it.tags) {
      auto ref = image::ParseReference(t);
      if (!ref.ok()) continue;
      tags.push_back(ref->Familiar());
      std::string top = it.image.config.diff_ids.empty() ? "" : it.image.config.diff_ids.back().Hex();
      repos[ref->FamiliarRepository()][ref->tag] = top;
    }
    entry["RepoTags"] = tags.empty() ? OrderedJson(nullptr) : tags;
    entry["Layers"] = layers;
    manifest.push_back(entry);
  }
  XB_TRY(w.AddBytes("manifest.json", manifest.dump()));
  if (!repos.empty()) XB_TRY(w.AddBytes("repositories", repos.dump()));
  return core::Ok();
}

}  // namespace

Status SaveImages(ImageStore& store, const std::vector<std::string>& names, ArchiveFormat format, int out_fd,
                  const SaveOptions& opts) {
  if (names.empty()) return Error(Code::kInvalidArgument, "save: no images named");
  XB_ASSIGN(auto items, ResolveForSave(store, names));
  if (format == ArchiveFormat::kOci && opts.distribution) {
    for (auto& it : items) {
      XB_ASSIGN(it.image, ForDistribution(store, it.image, *opts.distribution));
    }
  }
  TarWriter w(out_fd);
  if (!w.ok()) return Error(Code::kIo, "save: cannot open output");
  XB_TRY(format == ArchiveFormat::kOci ? SaveOci(store, items, w) : SaveDocker(store, items, w));
  return w.Close();
}

// ---- reading ----

namespace {

struct Entry {
  Digest digest;
  int64_t size = 0;
};

constexpr size_t kMaxMetaFile = 8 * 1024 * 1024;

Result<std::string> MetaBytes(ImageStore& store, const std::map<std::string, Entry>& files, const std::string& name) {
  auto it = files.find(name);
  if (it == files.end()) return Error(Code::kNotFound, "archive has no " + name);
  return store.content().ReadBlob(it->second.digest, kMaxMetaFile);
}

Result<Entry> FindFile(const std::map<std::string, Entry>& files, const std::string& raw) {
  std::string name = core::CleanPath(raw);
  auto it = files.find(name);
  if (it == files.end()) return Error(Code::kNotFound, "archive has no file " + raw);
  return it->second;
}

std::string_view DockerLayerType(image::Compression c) {
  switch (c) {
    case image::Compression::kGzip: return image::media::kDockerLayerGzip;
    case image::Compression::kZstd: return image::media::kDockerLayerZstd;
    case image::Compression::kNone: break;
  }
  return image::media::kDockerLayer;
}

Result<std::vector<LoadedImage>> LoadOci(ImageStore& store, const std::map<std::string, Entry>& files) {
  XB_ASSIGN(std::string index_bytes, MetaBytes(store, files, "index.json"));
  XB_ASSIGN_CTX(image::Index index, image::ParseIndex(index_bytes), "index.json");
  std::vector<LoadedImage> out;
  for (auto& top : index.manifests) {
    image::Descriptor desc = top;
    if (image::IsIndexType(desc.media_type)) {
      XB_ASSIGN(std::string sub, store.content().ReadBlob(desc.digest, image::kMaxManifestSize));
      XB_ASSIGN(image::Index sub_index, image::ParseIndex(sub, desc.digest));
      XB_ASSIGN(desc, image::SelectPlatform(sub_index, image::HostPlatform()));
    } else if (!image::IsManifestType(desc.media_type)) {
      continue;  // attestations and other artifacts
    }
    XB_ASSIGN_CTX(ImageRecord rec, store.AddImage(desc.digest), "load " + desc.digest.String());
    LoadedImage li{rec.digest, rec.config, {}};
    std::string name;
    if (auto it = top.annotations.find("io.containerd.image.name"); it != top.annotations.end()) {
      name = it->second;
    } else if (auto rit = top.annotations.find("org.opencontainers.image.ref.name"); rit != top.annotations.end()) {
      // A bare tag ("latest") names no repository; a full reference does.
      if (rit->second.find(':') != std::string::npos || rit->second.find('/') != std::string::npos) name = rit->second;
    }
    if (!name.empty()) {
      XB_ASSIGN_CTX(image::Reference ref, image::ParseReference(name), "index.json annotation");
      if (!ref.tag.empty()) {
        XB_TRY(store.Tag(ref, rec.digest));
        li.tags.push_back(ref.String());
      }
    }
    out.push_back(std::move(li));
  }
  return out;
}

Result<std::vector<LoadedImage>> LoadDocker(ImageStore& store, const std::map<std::string, Entry>& files) {
  XB_ASSIGN(std::string mbytes, MetaBytes(store, files, "manifest.json"));
  XB_ASSIGN(Json mj, core::ParseJson(mbytes, "manifest.json", kMaxMetaFile));
  if (!mj.is_array()) return Error(Code::kInvalidArgument, "manifest.json: not an array");
  std::vector<LoadedImage> out;
  for (auto& e : mj) {
    XB_ASSIGN_CTX(std::string cfg_path, core::GetString(e, "Config"), "manifest.json");
    XB_ASSIGN(Entry cfg, FindFile(files, cfg_path));
    XB_ASSIGN(std::string cfg_bytes, store.content().ReadBlob(cfg.digest, image::kMaxConfigSize));
    XB_ASSIGN_CTX(image::ImageConfig config, image::ParseImageConfig(cfg_bytes), cfg_path);
    std::vector<std::string> layer_paths = core::GetStringList(e, "Layers");
    if (layer_paths.size() != config.diff_ids.size()) {
      return Error(Code::kInvalidArgument, "manifest.json: " + std::to_string(layer_paths.size()) +
                                               " layers but the config lists " +
                                               std::to_string(config.diff_ids.size()) + " diff_ids");
    }
    image::Manifest m;
    m.media_type = std::string(image::media::kDockerManifest);
    m.config = {std::string(image::media::kDockerConfig), cfg.digest, cfg.size, {}, {}, {}, ""};
    for (size_t i = 0; i < layer_paths.size(); ++i) {
      XB_ASSIGN(Entry layer, FindFile(files, layer_paths[i]));
      XB_ASSIGN(core::UniqueFd fd, store.content().OpenBlob(layer.digest));
      XB_ASSIGN(image::Compression compression, image::DetectCompression(fd.get()));
      std::string mt(DockerLayerType(compression));
      Digest diff_id = layer.digest;  // an uncompressed layer's digest is its diff_id
      if (compression != image::Compression::kNone) {
        XB_ASSIGN_CTX(diff_id, image::ComputeDiffId(fd.get()), layer_paths[i]);
      }
      if (diff_id != config.diff_ids[i]) {
        return Error(Code::kDataLoss, "layer " + layer_paths[i] + ": diff_id " + diff_id.String() +
                                          " does not match the config's " + config.diff_ids[i].String());
      }
      m.layers.push_back({mt, layer.digest, layer.size, {}, {}, {}, ""});
    }
    XB_ASSIGN(ImageRecord rec, store.CommitImage(m));
    LoadedImage li{rec.digest, rec.config, {}};
    for (auto& t : core::GetStringList(e, "RepoTags")) {
      XB_ASSIGN_CTX(image::Reference ref, image::ParseReference(t), "manifest.json RepoTags");
      XB_TRY(store.Tag(ref, rec.digest));
      li.tags.push_back(ref.String());
    }
    out.push_back(std::move(li));
  }
  return out;
}

}  // namespace

namespace {

Result<std::vector<LoadedImage>> LoadLeased(ImageStore& store, int in_fd, const Lease& lease) {
  ArchivePtr a(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (archive_read_open_fd(a.get(), in_fd, 1 << 16) != ARCHIVE_OK) return ArchiveError(a.get(), "not a tar archive");
  std::map<std::string, Entry> files;
  std::map<std::string, std::string> links;  // symlink or hardlink -> target (archive paths)
  int count = 0;
  for (;;) {
    struct archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return ArchiveError(a.get(), count == 0 ? "not a tar archive" : "read archive");
    }
    ++count;
    const char* raw = archive_entry_pathname(e);
    std::string name = core::CleanPath(raw ? raw : "");
    if (name.starts_with("/") || core::EscapesRoot(name)) {
      return Error(Code::kInvalidArgument, "archive entry \"" + std::string(raw ? raw : "") + "\" leaves the archive");
    }
    if (const char* hl = archive_entry_hardlink(e)) {
      links[name] = core::CleanPath(hl);
      continue;
    }
    if (archive_entry_filetype(e) == AE_IFLNK) {
      const char* target = archive_entry_symlink(e);
      std::string t = target ? target : "";
      links[name] = core::CleanPath(t.starts_with("/") ? t : core::Dirname(name) + "/" + t);
      continue;
    }
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    XB_ASSIGN(auto writer, store.content().NewWriter("load-" + lease.id + "-" + name));
    char buf[1 << 16];
    for (;;) {
      la_ssize_t n = archive_read_data(a.get(), buf, sizeof buf);
      if (n < 0) return ArchiveError(a.get(), "read " + name);
      if (n == 0) break;
      XB_TRY_CTX(writer->Write(buf, static_cast<size_t>(n)), "store " + name);
    }
    int64_t size = writer->Offset();
    XB_ASSIGN_CTX(Digest d, writer->Commit(), "store " + name);
    XB_TRY(store.db().AddLeaseResource(lease.id, "content", d.String()));
    if (name.starts_with("blobs/sha256/")) {
      auto want = Digest::FromHex(name.substr(13));
      if (want.ok() && *want != d) {
        return Error(Code::kDataLoss, name + ": content digest is " + d.String());
      }
    }
    files[name] = {d, size};
  }
  // Links may point at links: resolve until nothing changes (at most one pass per link).
  for (size_t pass = 0; pass <= links.size(); ++pass) {
    size_t before = files.size();
    for (auto& [name, target] : links) {
      if (auto it = files.find(target); it != files.end()) files.emplace(name, it->second);
    }
    if (files.size() == before) break;
  }
  if (count == 0) return Error(Code::kInvalidArgument, "empty archive");
  std::vector<LoadedImage> out;
  if (files.count("index.json")) {
    XB_ASSIGN(out, LoadOci(store, files));
  } else if (files.count("manifest.json")) {
    XB_ASSIGN(out, LoadDocker(store, files));
  } else {
    return Error(Code::kInvalidArgument, "not a docker or OCI image archive (no manifest.json or index.json)");
  }
  return out;
}

}  // namespace

Result<std::vector<LoadedImage>> LoadImages(ImageStore& store, int in_fd) {
  // The archive's own metadata files (manifest.json, ...) are referenced by nothing once the
  // lease is gone, so they are collected with anything a failed load wrote.
  return store.WithLease<std::vector<LoadedImage>>(
      [&](const Lease& lease) { return LoadLeased(store, in_fd, lease); });
}

}  // namespace xbuild::cache
