#include "sieve.h"

#include <stdlib.h>

int sieve_stats(unsigned long limit, struct prime_stats *out) {
  out->count = 0;
  out->sum = 0;
  out->largest = 0;
  if (limit < 3) return 0;
  unsigned char *composite = calloc(limit, 1);
  if (!composite) return -1;
  for (unsigned long i = 2; i < limit; i++) {
    if (composite[i]) continue;
    out->count++;
    out->sum += i;
    out->largest = i;
    for (unsigned long j = i * i; j < limit; j += i) composite[j] = 1;
  }
  free(composite);
  return 0;
}
