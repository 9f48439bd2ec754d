// BuildKit's Node.Dump: `(keyword ["--flag" ...] "arg" ...)`, strings quoted as Go's strconv.Quote.
#include "frontend/parser/line_parsers.h"
#include "frontend/parser/parser.h"

namespace xbuild::frontend {
namespace {

std::string DumpNode(const Node& node) {
  std::string s = node.keyword;
  if (!node.flags.empty()) {
    s += " [";
    for (size_t i = 0; i < node.flags.size(); ++i) {
      if (i > 0) s += ' ';
      s += parser_internal::GoQuote(node.flags[i]);
    }
    s += ']';
  }
  if (node.next) s += " (" + DumpNode(*node.next) + ")";
  for (const auto& a : node.args) s += " " + parser_internal::GoQuote(a);
  return s;
}

}  // namespace

std::string Dump(const ParseResult& result) {
  std::string out;
  for (const auto& child : result.children) out += "(" + DumpNode(child) + ")\n";
  return out;
}

}  // namespace xbuild::frontend
