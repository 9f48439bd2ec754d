// Dockerfile lexer. The input is fed byte by byte (see ByteStream in src/frontend/parser/parser.cc),
// so token start/stop indexes are byte offsets into the source.
//
// BuildKit's Dockerfile is line oriented: an instruction is one logical line made of physical lines
// joined at the escape character (`\` or `` ` `` per the `# escape=` directive), with comment and
// empty lines inside a continuation dropped. RUN/COPY/ADD lines may open heredocs whose bodies are
// the following raw lines. Modes:
//   DEFAULT_MODE  between instructions: directives, comments, blank lines, an instruction's start
//   ARGS          the rest of a physical line of an instruction
//   CONT_START    the start of a physical line after a continuation
//   HEREDOC       raw heredoc body lines up to their delimiters
//   JSON          a JSON array (an exec-form argument), entered by the parser for the `jsonArray` rule
// The escape character and the heredoc decision are held by LexState (lex_state.h), which the
// actions and predicates below consult.
lexer grammar DockerfileLexer;

@lexer::header {
#include "frontend/parser/lex_state.h"
}

@lexer::members {
 public:
  xbuild::frontend::parser_internal::LexState* state = nullptr;

 private:
  // True when the escape character at LA(1) is a line continuation: it is the active escape, the
  // previous character is not the escape too (BuildKit's `([^E])E[ \t]*$|^E[ \t]*$`).
  bool ContinuationStart() {
    auto c = _input->LA(1);
    return c == static_cast<size_t>(state->escape) && _input->LA(-1) != c;
  }
  bool AtLineEnd() {
    auto c = _input->LA(1);
    return c == '\n' || c == antlr4::Token::EOF;
  }
  bool AtEof() { return _input->LA(1) == antlr4::Token::EOF; }
  size_t Start() const { return tokenStartCharIndex; }
  size_t Stop() { return getCharIndex(); }

 public:
  // At the end of input an open instruction still gets its EOL, and an open heredoc a zero-width
  // HEREDOC_END (the walker reports it as unterminated), so that the parser needs no lookahead to
  // tell where an instruction ends.
  std::unique_ptr<antlr4::Token> nextToken() override {
    std::unique_ptr<antlr4::Token> t = antlr4::Lexer::nextToken();
    if (t->getType() != antlr4::Token::EOF || state == nullptr) return t;
    size_t kind = 0;
    if (mode == ARGS || mode == CONT_START) {
      popMode();
      if (state->EndInstruction()) pushMode(HEREDOC);
      kind = EOL;
    } else if (mode == HEREDOC) {
      popMode();
      kind = HEREDOC_END;
    } else {
      return t;
    }
    size_t at = t->getStartIndex();
    return getTokenFactory()->create({this, _input}, kind, "", antlr4::Token::DEFAULT_CHANNEL, at, at - 1,
                                     t->getLine(), t->getCharPositionInLine());
  }
}

// ---------------------------------------------------------------- between instructions
BOM         : {state->AtStart(Start())}? '\u00EF' '\u00BB' '\u00BF' -> skip ;
LEAD_WS     : HWS+ -> skip ;
BLANK       : '\n' { state->EndDirectives(); } ;
// A `#` line: a parser directive while directives are still allowed, else a comment.
COMMENT     : '#' ~[\n]* '\n'? { if (state->OnHashLine(Start(), Stop())) setType(DIRECTIVE); } ;
FIRST_CONT  : {ContinuationStart()}? [\\`] [ \t]* '\r'* {AtLineEnd()}? '\n'?
              { state->BeginInstruction(); } -> type(CONT), pushMode(CONT_START) ;
KEYWORD     : [a-zA-Z]+ { state->BeginInstruction(); state->Append(Start(), Stop()); } -> pushMode(ARGS) ;
FIRST_TEXT  : ~[ \t\r\f\u000B\n#] { state->BeginInstruction(); state->Append(Start(), Stop()); }
              -> type(TEXT), pushMode(ARGS) ;

fragment HWS : [ \t\r\f\u000B] ;

// ---------------------------------------------------------------- rest of an instruction line
mode ARGS;
CONT        : {ContinuationStart()}? [\\`] [ \t]* '\r'* {AtLineEnd()}? '\n'? -> mode(CONT_START) ;
TEXT        : ~[\\`\r\n]+ { state->Append(Start(), Stop()); } ;
ESC_CHAR    : [\\`] { state->Append(Start(), Stop()); } -> type(TEXT) ;
CR          : '\r' { state->Append(Start(), Stop()); } -> type(TEXT) ;
// The end of the logical line: back to DEFAULT_MODE, or into HEREDOC when the line opens heredocs.
EOL         : '\r'* '\n' { popMode(); if (state->EndInstruction()) pushMode(HEREDOC); } ;
EOF_CR      : '\r'+ {AtEof()}? -> skip ;

// ---------------------------------------------------------------- after a continuation
mode CONT_START;
CONT_COMMENT : HWS* '#' ~[\n]* '\n'? ;
CONT_EMPTY   : HWS* '\n' { state->SawEmptyContinuation(); }
             | HWS+ {AtEof()}? { state->SawEmptyContinuation(); } ;
CS_CONT      : {ContinuationStart()}? [\\`] [ \t]* '\r'* {AtLineEnd()}? '\n'? -> type(CONT) ;
CS_WS        : HWS+ { state->Append(Start(), Stop()); } -> type(TEXT), mode(ARGS) ;
CS_TEXT      : ~[ \t\r\f\u000B\n#] { state->Append(Start(), Stop()); } -> type(TEXT), mode(ARGS) ;

// ---------------------------------------------------------------- heredoc bodies
mode HEREDOC;
// One raw line; LexState turns it into HEREDOC_END when it is the pending delimiter.
HEREDOC_LINE : (~[\n]* '\n' | ~[\n]+)
               { if (state->OnHeredocLine(Start(), Stop())) { setType(HEREDOC_END); if (!state->HeredocPending()) popMode(); } } ;

// ---------------------------------------------------------------- JSON arrays (exec form)
mode JSON;
J_LBRACK : '[' ;
J_RBRACK : ']' ;
J_LBRACE : '{' ;
J_RBRACE : '}' ;
J_COMMA  : ',' ;
J_COLON  : ':' ;
J_STRING : '"' (J_ESCAPE | ~["\\\u0000-\u001F])* '"' ;
J_NUMBER : '-'? ('0' | [1-9] [0-9]*) ('.' [0-9]+)? ([eE] [+-]? [0-9]+)? ;
J_TRUE   : 'true' ;
J_FALSE  : 'false' ;
J_NULL   : 'null' ;
J_WS     : [ \t\r\n]+ -> skip ;
J_OTHER  : . ;
fragment J_ESCAPE : '\\' (["\\/bfnrt] | 'u' J_HEX J_HEX J_HEX J_HEX) ;
fragment J_HEX    : [0-9a-fA-F] ;

// Token types set from actions only.
mode DECLARED;
DIRECTIVE    : '\u0000' '\u0001' ;
HEREDOC_END  : '\u0000' '\u0002' ;
