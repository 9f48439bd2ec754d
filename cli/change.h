// `--change` instructions for import (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER,
// VOLUME, WORKDIR, STOPSIGNAL), applied to an image config as `docker import --change` does.
#pragma once

#include <string>

#include "core/result.h"
#include "image/config.h"

namespace xbuild::cli {

core::Status ApplyChange(image::ImageConfig& cfg, const std::string& change);

}  // namespace xbuild::cli
