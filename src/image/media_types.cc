#include "image/media_types.h"

namespace xbuild::image {

bool IsManifestType(std::string_view mt) {
  return mt == media::kOciManifest || mt == media::kDockerManifest;
}
bool IsIndexType(std::string_view mt) { return mt == media::kOciIndex || mt == media::kDockerManifestList; }
bool IsLayerType(std::string_view mt) {
  return mt == media::kOciLayer || mt == media::kOciLayerGzip || mt == media::kOciLayerZstd ||
         mt == media::kDockerLayer || mt == media::kDockerLayerGzip ||
         mt == media::kDockerLayerZstd || mt == media::kDockerForeignLayerGzip ||
         mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
}
bool IsDockerType(std::string_view mt) { return mt.starts_with("application/vnd.docker."); }

}  // namespace xbuild::image
