#include "io/core/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void rd_rng_philox(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
    uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = (uint32_t)p0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* splitmix64: spreads (seed, kind, high bits) over the key so that nearby
 * seeds give unrelated streams. */
static uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void rd_rng_init(rd_rng *r, uint64_t seed, uint32_t kind, uint64_t a, uint64_t b) {
  /* Counter words: [draw index, a low, b low, b high]; the key takes seed,
   * kind and a's high word, so every named stream has 2^32 blocks of its own. */
  uint64_t k = mix64(seed ^ mix64(((uint64_t)kind << 32) ^ (a >> 32)));
  r->key[0] = (uint32_t)k;
  r->key[1] = (uint32_t)(k >> 32);
  r->ctr[0] = 0;
  r->ctr[1] = (uint32_t)a;
  r->ctr[2] = (uint32_t)b;
  r->ctr[3] = (uint32_t)(b >> 32);
  r->used = 4;
}

uint32_t rd_rng_u32(rd_rng *r) {
  if (r->used >= 4) {
    rd_rng_philox(r->key, r->ctr, r->buf);
    r->ctr[0]++;
    r->used = 0;
  }
  return r->buf[r->used++];
}

uint64_t rd_rng_u64(rd_rng *r) {
  uint64_t hi = rd_rng_u32(r);
  return (hi << 32) | rd_rng_u32(r);
}

double rd_rng_uniform(rd_rng *r) { return (double)(rd_rng_u64(r) >> 11) * 0x1.0p-53; }

uint32_t rd_rng_below(rd_rng *r, uint32_t n) {
  /* Lemire's multiply-shift with rejection of the biased low band. */
  uint64_t m = (uint64_t)rd_rng_u32(r) * n;
  uint32_t lo = (uint32_t)m;
  if (lo < n) {
    uint32_t floor = (uint32_t)(-n) % n;
    while (lo < floor) {
      m = (uint64_t)rd_rng_u32(r) * n;
      lo = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

double rd_rng_normal(rd_rng *r) {
  double u1 = rd_rng_uniform(r), u2 = rd_rng_uniform(r);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void rd_rng_shuffle(rd_rng *r, int64_t *idx, int64_t n) {
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(rd_rng_uniform(r) * (double)(i + 1));
    if (j > i) j = i;
    int64_t t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
}
