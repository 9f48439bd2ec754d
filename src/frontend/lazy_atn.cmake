# Run on each generated recognizer (-DFILE=... -DCLASS=...): ANTLR's C++ target deserializes the
# grammar's ATN from a static initializer, so every xbuild process paid for it at start, `run`
# and `ps` included. This moves that work into the recognizer's constructor (a function-local
# static: once, thread-safe), so only a process that parses a Dockerfile pays.
file(READ ${FILE} text)
set(global "${CLASS}::Initializer ${CLASS}::_init;")
string(FIND "${text}" "${global}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${FILE}: no '${global}' to make lazy (has the ANTLR tool changed?)")
endif()
string(REPLACE "${global}" "" text "${text}")
string(REGEX MATCH "${CLASS}::${CLASS}\\([A-Za-z]+ \\*input\\) : [A-Za-z]+\\(input\\) {" ctor "${text}")
if(ctor STREQUAL "")
  message(FATAL_ERROR "${FILE}: no ${CLASS} constructor found to initialize from")
endif()
string(REPLACE "${ctor}" "${ctor}\n  static Initializer once;\n  (void)once;" text "${text}")
file(WRITE ${FILE} "${text}")
