/* The prime sieve and the figures the program reports about it. */
#ifndef SIEVE_H
#define SIEVE_H

#include <stddef.h>

struct prime_stats {
  size_t count;         /* primes below the limit */
  unsigned long sum;    /* their sum */
  unsigned long largest; /* 0 when there is none */
};

/* Sieve of Eratosthenes over [2, limit). Returns 0, or -1 when memory runs out. */
int sieve_stats(unsigned long limit, struct prime_stats *out);

/* Writes "primes below N: COUNT (sum S, largest L)" into buf; returns what snprintf returns. */
int format_stats(char *buf, size_t len, unsigned long limit, const struct prime_stats *st);

#endif
