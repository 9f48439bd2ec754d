// Dockerfile parser: groups the lexer's tokens into instructions (one logical line each, with its
// continuations and heredoc bodies), and parses exec-form JSON arrays (entry rule `jsonArray`, fed
// by a lexer started in its JSON mode). The words of an instruction are split afterwards by
// BuildKit's rules in src/frontend/parser/line_parsers.cc.
parser grammar DockerfileParser;

options { tokenVocab = DockerfileLexer; }

dockerfile   : item* EOF ;
item         : DIRECTIVE | COMMENT | BLANK | instruction ;
instruction  : head body* EOL heredoc* ;  // the lexer emits EOL at end of input too
head         : KEYWORD | TEXT | continuation ;
body         : TEXT | continuation ;
continuation : CONT (CONT_COMMENT | CONT_EMPTY)* ;
heredoc      : HEREDOC_LINE* HEREDOC_END ;  // a zero-width END: unterminated, reported by the walker

jsonArray    : J_LBRACK (jsonValue (J_COMMA jsonValue)*)? J_RBRACK EOF ;
jsonValue    : J_STRING | J_NUMBER | J_TRUE | J_FALSE | J_NULL | jsonList | jsonObject ;
jsonList     : J_LBRACK (jsonValue (J_COMMA jsonValue)*)? J_RBRACK ;
jsonObject   : J_LBRACE (J_STRING J_COLON jsonValue (J_COMMA J_STRING J_COLON jsonValue)*)? J_RBRACE ;
