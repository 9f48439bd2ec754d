// BuildKit's per-instruction word splitting (its parser/line_parsers.go and split_command.go),
// applied to one logical line. Internal to the parser.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "frontend/parser/parser.h"

namespace xbuild::frontend::parser_internal {

// Go's unicode.IsSpace for a code point.
bool IsSpaceRune(char32_t c);
std::string_view TrimSpace(std::string_view s);

// strconv.Quote.
std::string GoQuote(std::string_view s);

// The elements of a JSON array of strings. kNotJson: not a (valid) JSON array, the caller falls back
// to the shell form; kNotStrings: valid JSON with a non-string element, an error.
enum class JsonStatus { kOk, kNotJson, kNotStrings };
JsonStatus ParseJsonArray(std::string_view text, std::vector<std::string>& out);  // parser.cc

// Builds the node for a logical line (keyword, flags, args, json; ONBUILD's nested node).
core::Result<Node> NodeFromLine(std::string_view line, char escape);

// Whether the node (or ONBUILD's nested node) is a shell-form RUN/COPY/ADD.
bool CanContainHeredoc(const Node& node);
// The heredocs a logical line opens, in order (contents empty).
core::Result<std::vector<Heredoc>> HeredocsFromLine(std::string_view line);

}  // namespace xbuild::frontend::parser_internal
