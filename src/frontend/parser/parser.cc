// Drives the generated ANTLR lexer/parser and turns the parse tree into Nodes. ANTLR may throw;
// every exception is caught here and becomes an Error.
#include "frontend/parser/parser.h"

#include <algorithm>
#include <exception>

#include "DockerfileLexer.h"
#include "DockerfileParser.h"
#include "antlr4-runtime.h"
#include "frontend/parser/lex_state.h"
#include "frontend/parser/line_parsers.h"

namespace xbuild::frontend {
namespace {

using Lexer = xbuild_dockerfile_antlr::DockerfileLexer;
using Parser = xbuild_dockerfile_antlr::DockerfileParser;

// Feeds the lexer one code point per byte, so that token indexes are byte offsets and any byte
// sequence (invalid UTF-8 included) lexes.
class ByteStream : public antlr4::ANTLRInputStream {
 public:
  explicit ByteStream(std::string_view bytes) {
    _data.reserve(bytes.size());
    for (char c : bytes) _data.push_back(static_cast<char32_t>(static_cast<unsigned char>(c)));
    p = 0;
  }
};

// Records the first syntax error instead of printing it.
class ErrorRecorder : public antlr4::BaseErrorListener {
 public:
  void syntaxError(antlr4::Recognizer*, antlr4::Token*, size_t at_line, size_t, const std::string& msg,
                   std::exception_ptr) override {
    if (!failed) {
      failed = true;
      line = static_cast<int>(at_line);
      message = msg;
    }
  }
  bool failed = false;
  int line = 0;
  std::string message;
};

core::Error At(std::string_view filename, int line, std::string_view msg) {
  return core::Error(core::Code::kInvalidArgument,
                     std::string(filename) + ":" + std::to_string(line) + ": " + std::string(msg));
}

std::string TrimLeadingTabs(std::string_view body) {
  std::string out;
  bool line_start = true;
  for (char c : body) {
    if (line_start && c == '\t') continue;
    line_start = c == '\n';
    out.push_back(c);
  }
  return out;
}

void AppendUtf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// The value of a lexed JSON string token (quotes included, escapes valid per the lexer).
std::string DecodeJsonString(std::string_view tok) {
  std::string out;
  auto hex4 = [&](size_t at) {
    char32_t v = 0;
    for (size_t k = at; k < at + 4; ++k) {
      char h = tok[k];
      v = v * 16 + static_cast<char32_t>(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
    }
    return v;
  };
  for (size_t i = 1; i + 1 < tok.size(); ++i) {
    char c = tok[i];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    char e = tok[++i];
    switch (e) {
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'u': {
        char32_t v = hex4(i + 1);
        i += 4;
        if (v >= 0xD800 && v < 0xDC00 && i + 6 < tok.size() && tok[i + 1] == '\\' && tok[i + 2] == 'u') {
          char32_t lo = hex4(i + 3);
          if (lo >= 0xDC00 && lo < 0xE000) {
            v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
          }
        }
        if (v >= 0xD800 && v < 0xE000) v = 0xFFFD;
        AppendUtf8(out, v);
        break;
      }
      default: out.push_back(e);  // " \ /
    }
  }
  return out;
}

// Bracket depth outside strings; deep nesting would recurse deeply in the generated parser.
bool TooDeep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > 256) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

struct Walker {
  std::string_view src;
  std::string_view filename;
  antlr4::CommonTokenStream& tokens;
  char escape;
  ParseResult& out;

  core::Status Instruction(Parser::InstructionContext* ctx) {
    std::string line;
    std::vector<std::string> bodies(1);
    size_t ends = 0;
    bool empty_continuation = false;
    size_t first = ctx->getStart()->getTokenIndex();
    size_t last = ctx->getStop()->getTokenIndex();
    int start_line = static_cast<int>(ctx->getStart()->getLine());
    int end_line = static_cast<int>(ctx->getStop()->getLine());
    for (size_t i = first; i <= last; ++i) {
      antlr4::Token* t = tokens.get(i);
      // Zero-width tokens synthesized at end of input have stop == start - 1.
      std::string_view text = src.substr(t->getStartIndex(), t->getStopIndex() + 1 - t->getStartIndex());
      switch (t->getType()) {
        case Lexer::KEYWORD:
        case Lexer::TEXT: line.append(text); break;
        case Lexer::CONT_EMPTY: empty_continuation = true; break;
        case Lexer::HEREDOC_LINE: bodies.back().append(text); break;
        case Lexer::HEREDOC_END:
          if (text.empty()) break;  // synthesized at end of input: unterminated
          ++ends;
          bodies.emplace_back();
          break;
        default: break;  // CONT, CONT_COMMENT, EOL
      }
    }
    auto node = parser_internal::NodeFromLine(line, escape);
    if (!node.ok()) return At(filename, start_line, node.error().message());
    if (parser_internal::CanContainHeredoc(*node)) {
      auto docs = parser_internal::HeredocsFromLine(line);
      if (!docs.ok()) return At(filename, start_line, docs.error().message());
      for (size_t k = 0; k < docs->size(); ++k) {
        Heredoc& doc = (*docs)[k];
        if (k >= ends) return At(filename, start_line, "unterminated heredoc \"" + doc.name + "\"");
        doc.content = doc.chomp ? TrimLeadingTabs(bodies[k]) : std::move(bodies[k]);
      }
      node->heredocs = std::move(*docs);
    }
    if (empty_continuation) {
      out.warnings.push_back({end_line, "Empty continuation line found in: " + line, "NoEmptyContinuation"});
    }
    node->start_line = start_line;
    node->end_line = end_line;
    for (Node* n = node->next.get(); n != nullptr; n = n->next.get()) {
      n->start_line = start_line;
      n->end_line = end_line;
    }
    if (out.children.empty()) out.start_line = start_line;
    out.end_line = end_line;
    out.children.push_back(std::move(*node));
    return core::Ok();
  }
};

core::Result<ParseResult> ParseImpl(std::string_view text, std::string_view filename) {
  parser_internal::LexState state(text);
  ByteStream input(text);
  Lexer lexer(&input);
  lexer.state = &state;
  ErrorRecorder errors;
  lexer.removeErrorListeners();
  lexer.addErrorListener(&errors);
  antlr4::CommonTokenStream tokens(&lexer);
  Parser parser(&tokens);
  parser.removeErrorListeners();
  parser.addErrorListener(&errors);
  Parser::DockerfileContext* tree = parser.dockerfile();
  if (state.error) return At(filename, state.error->first, state.error->second);
  if (errors.failed) return At(filename, errors.line, "syntax error: " + errors.message);

  ParseResult out;
  out.escape = static_cast<char>(state.escape);
  out.directives = state.directives;
  Walker walker{text, filename, tokens, out.escape, out};
  for (auto* item : tree->item()) {
    if (auto* ins = item->instruction()) XB_TRY(walker.Instruction(ins));
  }
  if (out.children.empty()) {
    int lines = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    if (!text.empty() && text.back() != '\n') ++lines;
    return At(filename, std::max(lines, 1), "file with no instructions");
  }
  return out;
}

}  // namespace

namespace parser_internal {

JsonStatus ParseJsonArray(std::string_view text, std::vector<std::string>& out) {
  if (TooDeep(text)) return JsonStatus::kNotJson;
  try {
    ByteStream input(text);
    Lexer lexer(&input);
    lexer.setMode(Lexer::JSON);
    lexer.removeErrorListeners();
    antlr4::CommonTokenStream tokens(&lexer);
    Parser parser(&tokens);
    parser.removeErrorListeners();
    parser.setErrorHandler(std::make_shared<antlr4::BailErrorStrategy>());
    Parser::JsonArrayContext* arr = parser.jsonArray();
    std::vector<std::string> elems;
    for (auto* v : arr->jsonValue()) {
      antlr4::tree::TerminalNode* s = v->J_STRING();
      if (s == nullptr) return JsonStatus::kNotStrings;
      antlr4::Token* t = s->getSymbol();
      elems.push_back(DecodeJsonString(text.substr(t->getStartIndex(), t->getStopIndex() + 1 - t->getStartIndex())));
    }
    out = std::move(elems);
    return JsonStatus::kOk;
  } catch (...) {  // ParseCancellationException: not JSON
    return JsonStatus::kNotJson;
  }
}

}  // namespace parser_internal

core::Result<ParseResult> Parse(std::string_view text, std::string_view filename) {
  try {
    return ParseImpl(text, filename);
  } catch (const std::exception& e) {
    return core::Error(core::Code::kInternal, std::string(filename) + ": parser failure: " + e.what());
  } catch (...) {
    return core::Error(core::Code::kInternal, std::string(filename) + ": parser failure");
  }
}

}  // namespace xbuild::frontend
