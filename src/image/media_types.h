// Media types of the OCI image spec and Docker's schema2, and the limits on documents we read.
#pragma once

#include <string_view>

#include "core/result.h"

namespace xbuild::image {

using core::Result;
using core::Status;

namespace media {
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kOciLayoutVersion = "1.0.0";

inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerLayerZstd = "application/vnd.docker.image.rootfs.diff.tar.zstd";
inline constexpr std::string_view kDockerForeignLayerGzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}  // namespace media

// Manifests, indexes and configs larger than this are refused before parsing.
inline constexpr size_t kMaxManifestSize = 4 * 1024 * 1024;
inline constexpr size_t kMaxConfigSize = 8 * 1024 * 1024;

bool IsManifestType(std::string_view mt);  // OCI or Docker manifest
bool IsIndexType(std::string_view mt);     // OCI index or Docker manifest list
bool IsLayerType(std::string_view mt);     // any layer type, compressed or not
bool IsDockerType(std::string_view mt);

}  // namespace xbuild::image
