/* Counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 *
 * A stream is named by what it is for, never by who draws it: (seed, stream
 * kind, a, b), e.g. (train.seed, RD_RNG_MASK, step, sample_id). Any rank or
 * thread that names the same stream gets the same numbers, which is what makes
 * dp x tp runs equal a single process and resumed runs equal uninterrupted
 * ones. The state is four words and can be stored in a checkpoint as is. */
#ifndef RD_IO_CORE_RNG_H
#define RD_IO_CORE_RNG_H

#include <stdint.h>

/* Stream kinds: one per use, so no two uses ever share numbers. */
enum {
  RD_RNG_SCENE = 1,    /* ShapesCap scene sampling, a = sample id */
  RD_RNG_CAPTION = 2,  /* phrasing choices, a = sample id */
  RD_RNG_HALLUC = 3,   /* hallucination choice, a = sample id */
  RD_RNG_INIT = 4,     /* parameter init, a = tensor index */
  RD_RNG_SHUFFLE = 5,  /* data order, a = epoch */
  RD_RNG_MASK = 6,     /* masking noise t and positions, a = step, b = sample */
  RD_RNG_NOISE = 7,    /* stage1 syntax / hallucination noise, a = step, b = sample */
  RD_RNG_DECODE = 8,   /* Gumbel noise in decoding, a = step, b = sample */
  RD_RNG_EVALMASK = 9, /* held-out loss masking, fixed across evaluations */
  RD_RNG_DRAFT = 10,   /* draft subset selection, a = round */
  RD_RNG_MIX = 11,     /* stage2 mixing of stage1 samples, a = step */
  RD_RNG_EVALNOISE = 12, /* held-out stage1 noise, fixed across evaluations */
  RD_RNG_BOOTSTRAP = 13, /* eval's bootstrap resamples of images, a = resample */
  RD_RNG_TEST = 99,    /* tests */
};

typedef struct {
  uint32_t key[2];
  uint32_t ctr[4];
  uint32_t buf[4];
  uint32_t used; /* words of buf already handed out, 4 = empty */
} rd_rng;

void rd_rng_init(rd_rng *r, uint64_t seed, uint32_t kind, uint64_t a, uint64_t b);
uint32_t rd_rng_u32(rd_rng *r);
uint64_t rd_rng_u64(rd_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double rd_rng_uniform(rd_rng *r);
/* Uniform integer in [0, n), unbiased (rejection). n > 0. */
uint32_t rd_rng_below(rd_rng *r, uint32_t n);
/* Standard normal (Box-Muller on two uniforms). */
double rd_rng_normal(rd_rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void rd_rng_shuffle(rd_rng *r, int64_t *idx, int64_t n);

/* The bare block function, for tests against the published vectors. */
void rd_rng_philox(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]);

#endif
