/* primes [LIMIT] | primes --check
 * Prints how many primes lie below LIMIT (default 100), then who and where it runs as, so the
 * image's USER and WORKDIR show in its output. --check is the HEALTHCHECK: exit 0 when the
 * sieve gives the known answer for 100. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sieve.h"

#ifndef VERSION
#define VERSION "dev"
#endif

int main(int argc, char **argv) {
  struct prime_stats st;
  if (argc > 1 && strcmp(argv[1], "--check") == 0) {
    return sieve_stats(100, &st) == 0 && st.count == 25 ? 0 : 1;
  }
  char *end = NULL;
  unsigned long limit = argc > 1 ? strtoul(argv[1], &end, 10) : 100;
  if (argc > 1 && (*argv[1] == '\0' || *end != '\0')) {
    fprintf(stderr, "primes: not a number: %s\n", argv[1]);
    return 2;
  }
  if (sieve_stats(limit, &st) != 0) {
    perror("primes");
    return 1;
  }
  char line[128];
  format_stats(line, sizeof line, limit, &st);
  char cwd[256];
  if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "?");
  printf("%s\nprimes " VERSION " running as uid %u in %s\n", line, (unsigned)getuid(), cwd);
  return 0;
}
