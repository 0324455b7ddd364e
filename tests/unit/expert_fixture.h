/* Drafts for testing the expert: real ShapesCap captions corrupted the ways
 * a parallel decoder corrupts them. Shared by tests/unit/test_expert.c and
 * tests/mpi/expert_drafts.c (which writes draft files for the e2e test). */
#ifndef RD_TESTS_EXPERT_FIXTURE_H
#define RD_TESTS_EXPERT_FIXTURE_H

#include <string.h>

#include "data/shapes.h"
#include "io/core/err.h"
#include "io/core/rng.h"
#include "io/vocab.h"

enum {
  FX_NONE,      /* the caption itself */
  FX_REPLACE,   /* 1-3 words replaced by random words */
  FX_REPEAT,    /* a run of 2-8 words repeated right after itself */
  FX_HALLUC,    /* one fact changed (rd_halluc_make) */
  FX_TRUNCATE,  /* cut at a random word */
  FX_SHUFFLE,   /* a window of 3-6 words shuffled */
  FX_GARBAGE,   /* 1-5 random words after the last "." */
  FX_MIXED,     /* a hallucination and a replaced word */
  FX_KINDS
};

/* The vocabulary of n captions plus every ShapesCap word (as data synth
 * builds it, but complete however small n is). */
static inline int fx_vocab(rd_vocab *v, const rd_shapes_params *p, uint64_t seed, int n) {
  rd_vocab_builder b;
  rd_vocab_builder_init(&b);
  int s = RD_OK;
  for (int i = 0; i < n && s == RD_OK; i++) {
    rd_scene sc;
    rd_words w;
    s = rd_scene_sample(&sc, p, seed, i);
    if (s == RD_OK) s = rd_caption_write(&sc, p, seed, i, &w, NULL);
    if (s == RD_OK) s = rd_vocab_builder_add(&b, w.w, w.n);
  }
  const char *lex[128];
  int nl = rd_shapes_lexicon(lex, 128);
  if (s == RD_OK) s = rd_vocab_builder_finish(&b, lex, nl, v);
  rd_vocab_builder_free(&b);
  return s;
}

/* caption[n] (ids) corrupted by `how` into out[L] ([EOS]-padded). */
static inline int fx_corrupt(const rd_vocab *v, const rd_scene *sc, const int32_t *caption, int n, uint64_t seed,
                             int64_t id, int how, int32_t *out, int L) {
  rd_rng r;
  rd_rng_init(&r, seed, RD_RNG_TEST, (uint64_t)id, (uint64_t)how);
  int32_t w[512];
  int m = n;
  memcpy(w, caption, sizeof(int32_t) * (size_t)n);
  const uint32_t V = (uint32_t)(rd_vocab_size(v) - RD_TOK_NSPECIAL);
  if (how == FX_HALLUC || how == FX_MIXED) {
    const char *words[RD_WORDS_MAX];
    rd_words cw, hw;
    cw.n = n;
    for (int i = 0; i < n; i++) cw.w[i] = words[i] = rd_vocab_token(v, caption[i]);
    int a, l;
    RD_TRY(rd_halluc_make(sc, &cw, NULL, seed, id, &hw, &a, &l));
    for (int i = 0; i < n; i++) { /* a word a small training set never used is [UNK] */
      int t = rd_vocab_id(v, hw.w[i]);
      w[i] = t < 0 ? RD_TOK_UNK : t;
    }
    (void)words;
  }
  if (how == FX_REPLACE || how == FX_MIXED) {
    int k = how == FX_MIXED ? 1 : 1 + (int)rd_rng_below(&r, 3);
    for (int i = 0; i < k; i++) w[rd_rng_below(&r, (uint32_t)m)] = RD_TOK_NSPECIAL + (int32_t)rd_rng_below(&r, V);
  }
  if (how == FX_REPEAT) {
    int k = 2 + (int)rd_rng_below(&r, 7);
    if (k > m) k = m;
    int a = (int)rd_rng_below(&r, (uint32_t)(m - k + 1));
    memmove(w + a + 2 * k, w + a + k, sizeof(int32_t) * (size_t)(m - a - k));
    memcpy(w + a + k, w + a, sizeof(int32_t) * (size_t)k);
    m += k;
  }
  if (how == FX_TRUNCATE) m = 1 + (int)rd_rng_below(&r, (uint32_t)(m - 1));
  if (how == FX_SHUFFLE) {
    int k = 3 + (int)rd_rng_below(&r, 4);
    if (k > m) k = m;
    int a = (int)rd_rng_below(&r, (uint32_t)(m - k + 1));
    for (int i = k - 1; i > 0; i--) {
      int j = (int)rd_rng_below(&r, (uint32_t)(i + 1));
      int32_t t = w[a + i];
      w[a + i] = w[a + j];
      w[a + j] = t;
    }
  }
  if (how == FX_GARBAGE) {
    int k = 1 + (int)rd_rng_below(&r, 5);
    for (int i = 0; i < k; i++) {
      int32_t t = RD_TOK_NSPECIAL + (int32_t)rd_rng_below(&r, V);
      w[m++] = strcmp(rd_vocab_token(v, t), ".") == 0 ? rd_vocab_id(v, "red") : t;
    }
  }
  if (m > L - 1) m = L - 1;
  for (int i = 0; i < L; i++) out[i] = i < m ? w[i] : RD_TOK_EOS;
  return RD_OK;
}

#endif
