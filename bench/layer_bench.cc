// xbuild-layer-bench: drives the layer API from the command line, for bench/layer_bench.sh.
//   xbuild-layer-bench create DIR OUT [gzip|zstd|none]   tar DIR into OUT, print the digests
//   xbuild-layer-bench apply DIR LAYER                   apply LAYER onto DIR (created if missing)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "core/fd.h"
#include "image/layer.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: xbuild-layer-bench create DIR OUT [gzip|zstd|none]\n"
               "       xbuild-layer-bench apply DIR LAYER\n");
  return 2;
}

int Create(const std::string& dir, const std::string& out, std::string_view comp) {
  using xbuild::image::Compression;
  xbuild::image::LayerOptions o;
  if (comp == "gzip") {
    o.compression = Compression::kGzip;
  } else if (comp == "zstd") {
    o.compression = Compression::kZstd;
  } else if (comp == "none") {
    o.compression = Compression::kNone;
  } else {
    return Usage();
  }
  xbuild::core::UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    std::fprintf(stderr, "open %s: %s\n", out.c_str(), std::strerror(errno));
    return 1;
  }
  auto r = xbuild::image::CreateLayer(dir, xbuild::image::DirKind::kPlain, fd.get(), o);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.error().ToString().c_str());
    return 1;
  }
  std::printf("diff_id %s\ndigest  %s\nsize    %lld\n", r->diff_id.String().c_str(),
              r->digest.String().c_str(), static_cast<long long>(r->size));
  return 0;
}

int Apply(const std::string& dir, const std::string& layer) {
  ::mkdir(dir.c_str(), 0755);
  xbuild::core::UniqueFd fd(::open(layer.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    std::fprintf(stderr, "open %s: %s\n", layer.c_str(), std::strerror(errno));
    return 1;
  }
  auto r = xbuild::image::ApplyLayer(fd.get(), dir, {});
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.error().ToString().c_str());
    return 1;
  }
  std::printf("diff_id %s\nentries %llu\nbytes   %llu\n", r->diff_id.String().c_str(),
              static_cast<unsigned long long>(r->entries), static_cast<unsigned long long>(r->bytes));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return Usage();
  std::string_view cmd = argv[1];
  if (cmd == "create" || cmd == "CREATE") return Create(argv[2], argv[3], argc > 4 ? argv[4] : "gzip");
  if (cmd == "apply" || cmd == "APPLY") return Apply(argv[2], argv[3]);
  return Usage();
}
