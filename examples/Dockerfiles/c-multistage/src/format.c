#include <stdio.h>

#include "sieve.h"

int format_stats(char *buf, size_t len, unsigned long limit, const struct prime_stats *st) {
  return snprintf(buf, len, "primes below %lu: %zu (sum %lu, largest %lu)", limit, st->count,
                  st->sum, st->largest);
}
