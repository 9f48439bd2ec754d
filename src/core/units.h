// Sizes and durations as Docker's flags and daemon.json spell them.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/result.h"

namespace xbuild::core {

// go-units RAMInBytes: a number (fractions allowed) and an optional binary unit, case-insensitive,
// with an optional space before it: "512", "512b", "10GB", "1.5g", "64 MiB", "2kb" (k = 1024).
// kInvalidArgument names the value when it is not one.
Result<int64_t> ParseByteSize(std::string_view text);

// Go's time.ParseDuration: a sequence of decimal numbers, each with a unit (ns, us, µs, ms, s, m,
// h), optionally signed: "90s", "1h30m", "1.5h", "10m". "0" alone is zero. Nanoseconds.
Result<int64_t> ParseGoDuration(std::string_view text);

}  // namespace xbuild::core
