/* The caption scores of `rediff eval` (stages/eval/score.c): a reference caption
 * is perfect, a hallucinated one loses exactly its changed fact, shuffled
 * words lose syntax, a repeated sentence shows as repetition, and the counts
 * of a split corpus add up to the counts of the whole; the bootstrap
 * interval over images is what the binomial arithmetic says. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "data/shapes.h"
#include "io/core/rng.h"
#include "io/vocab.h"
#include "rd_test.h"
#include "stages/eval/score.h"

enum { N = 24, L = 64 };

typedef struct {
  rd_shapes_params p;
  rd_vocab v;
  rd_scene scene[N];
  rd_words cap[N];
  rd_facts stated[N];
  int32_t ids[N][L];
} world;

static world W;

static void setup(void) {
  static int done;
  if (done) return;
  done = 1;
  rd_shapes_params_default(&W.p);
  rd_vocab_builder b;
  rd_vocab_builder_init(&b);
  for (int i = 0; i < N; i++) {
    CHECK_OK(rd_scene_sample(&W.scene[i], &W.p, 1, i));
    CHECK_OK(rd_caption_write(&W.scene[i], &W.p, 1, i, &W.cap[i], &W.stated[i]));
    CHECK_OK(rd_vocab_builder_add(&b, W.cap[i].w, W.cap[i].n));
  }
  CHECK_OK(rd_vocab_builder_finish(&b, NULL, 0, &W.v));
  rd_vocab_builder_free(&b);
  for (int i = 0; i < N; i++) CHECK_OK(rd_vocab_encode(&W.v, W.cap[i].w, W.cap[i].n, W.ids[i], L, NULL, NULL));
}

/* Distinct facts of a caption. */
static int distinct(const rd_facts *f) {
  int k = 0;
  for (int i = 0; i < f->n; i++) {
    int dup = 0;
    for (int j = 0; j < i; j++) dup |= rd_fact_equal(&f->f[i], &f->f[j]);
    k += !dup;
  }
  return k;
}

static void test_reference_is_perfect(void) {
  setup();
  rd_score_counts c = {0};
  for (int i = 0; i < N; i++) CHECK_OK(rd_score_caption(&W.v, W.ids[i], L, &W.scene[i], &c));
  rd_score s;
  rd_score_rates(&c, &s);
  CHECK(c.n_captions == N && c.n_empty == 0 && c.n_claimed > N);
  CHECK_NEAR(s.f1, 1, 0);
  CHECK_NEAR(s.factuality, 1, 0);
  CHECK_NEAR(s.coverage, 1, 0);
  CHECK_NEAR(s.syntax, 1, 0);
  CHECK_OK(rd_score_text(&W.ids[0][0], &W.ids[0][0], N, L, RD_TOK_EOS, &s));
  CHECK_NEAR(s.bleu4, 1, 1e-12);
  CHECK(s.cider > 5);
}

static void test_hallucination_loses_one_fact(void) {
  setup();
  int tested = 0;
  for (int i = 0; i < N; i++) {
    rd_words h;
    int start, len;
    if (rd_halluc_make(&W.scene[i], &W.cap[i], &W.stated[i], 1, i, &h, &start, &len) != RD_OK) continue;
    int32_t ids[L];
    CHECK_OK(rd_vocab_encode(&W.v, h.w, h.n, ids, L, NULL, NULL));
    rd_score_counts c = {0};
    CHECK_OK(rd_score_caption(&W.v, ids, L, &W.scene[i], &c));
    int k = distinct(&W.stated[i]);
    rd_score s;
    rd_score_rates(&c, &s);
    CHECK_MSG(c.n_claimed == k && c.n_true == k - 1, "sample %d: %lld of %lld true, want %d of %d", i,
              (long long)c.n_true, (long long)c.n_claimed, k - 1, k);
    CHECK_NEAR(s.factuality, (double)(k - 1) / k, 1e-12);
    CHECK_NEAR(s.syntax, 1, 0);
    tested++;
  }
  CHECK(tested >= N / 2);
}

static void test_shuffle_loses_syntax(void) {
  setup();
  rd_rng r;
  rd_rng_init(&r, 4, RD_RNG_TEST, 0, 0);
  rd_score_counts ref = {0}, shuf = {0};
  for (int i = 0; i < N; i++) {
    int n = W.cap[i].n;
    int64_t perm[L];
    for (int j = 0; j < n; j++) perm[j] = j;
    rd_rng_shuffle(&r, perm, n);
    int32_t ids[L];
    for (int j = 0; j < L; j++) ids[j] = j < n ? W.ids[i][perm[j]] : RD_TOK_EOS;
    CHECK_OK(rd_score_caption(&W.v, W.ids[i], L, &W.scene[i], &ref));
    CHECK_OK(rd_score_caption(&W.v, ids, L, &W.scene[i], &shuf));
  }
  rd_score a, b;
  rd_score_rates(&ref, &a);
  rd_score_rates(&shuf, &b);
  CHECK(a.syntax == 1 && b.syntax < 0.2);
  CHECK(b.f1 < 0.3);
}

static void test_repetition(void) {
  setup();
  /* caption 0 with its first sentence said again at the end */
  const rd_words *w = &W.cap[0];
  int first = 0;
  while (first < w->n && strcmp(w->w[first], ".") != 0) first++;
  first++;
  int32_t rep[L];
  memcpy(rep, W.ids[0], sizeof rep);
  CHECK(w->n + first <= L);
  memcpy(rep + w->n, W.ids[0], (size_t)first * sizeof(int32_t));
  rd_score plain, twice;
  CHECK_OK(rd_score_text(W.ids[0], W.ids[0], 1, L, RD_TOK_EOS, &plain));
  CHECK_OK(rd_score_text(rep, W.ids[0], 1, L, RD_TOK_EOS, &twice));
  CHECK(twice.repetition > 0 && twice.repetition > plain.repetition + 0.05);
  /* the repeated fact is claimed once: precision is unchanged */
  rd_score_counts c = {0};
  CHECK_OK(rd_score_caption(&W.v, rep, L, &W.scene[0], &c));
  rd_score s;
  rd_score_rates(&c, &s);
  CHECK_NEAR(s.factuality, 1, 0);
}

/* Empty and garbage captions; counts of two halves sum to the whole. */
static void test_empty_and_split(void) {
  setup();
  int32_t empty[L], garbage[L];
  for (int j = 0; j < L; j++) empty[j] = RD_TOK_EOS, garbage[j] = W.ids[1][0];
  rd_score_counts c = {0};
  CHECK_OK(rd_score_caption(&W.v, empty, L, &W.scene[1], &c));
  CHECK(c.n_empty == 1 && c.n_sentences == 0 && c.n_claimed == 0 && c.n_reference > 0);
  CHECK_OK(rd_score_caption(&W.v, garbage, L, &W.scene[1], &c));
  rd_score s;
  rd_score_rates(&c, &s);
  CHECK(s.f1 == 0 && s.factuality == 0 && s.coverage == 0 && s.syntax == 0);
  rd_score_counts all = {0}, h1 = {0}, h2 = {0};
  for (int i = 0; i < N; i++) {
    CHECK_OK(rd_score_caption(&W.v, W.ids[(i + 3) % N], L, &W.scene[i], &all));
    CHECK_OK(rd_score_caption(&W.v, W.ids[(i + 3) % N], L, &W.scene[i], i < 10 ? &h1 : &h2));
  }
  const int64_t *a = &all.n_captions, *x = &h1.n_captions, *y = &h2.n_captions;
  for (int k = 0; k < RD_SCORE_NCOUNTS; k++) CHECK(a[k] == x[k] + y[k]);
  rd_score_rates(&all, &s);
  CHECK(s.factuality > 0 && s.factuality < 0.9); /* other scenes' captions */
}

/* Images each claiming one fact and covering one of one reference fact:
 * good ones true and covered, bad ones neither; one sentence each, parsed
 * on the good ones. */
static void binary_images(rd_score_counts *c, int n, int good) {
  memset(c, 0, (size_t)n * sizeof *c);
  for (int i = 0; i < n; i++) {
    int g = i < good;
    c[i] = (rd_score_counts){.n_captions = 1, .n_claimed = 1, .n_true = g, .n_reference = 1, .n_covered = g,
                             .n_sentences = 1, .n_parsed = g, .n_words = 5};
  }
}

static void test_bootstrap(void) {
  enum { NI = 400, B = 4000 };
  static rd_score_counts c[NI];
  rd_score_ci ci;
  /* Every image alike: every resample gives the same F1, the interval is
   * that point. */
  binary_images(c, NI, NI);
  CHECK_OK(rd_score_bootstrap(c, NI, B, 0.95, 1, &ci));
  CHECK(ci.f1_lo == 1.0 && ci.f1_hi == 1.0 && ci.syntax_lo == 1.0 && ci.syntax_hi == 1.0);
  /* Half the images right: a resample's factuality = coverage = its share
   * p of good images, so F1 = syntax = p ~ Binomial(400, 1/2) / 400, whose
   * 95% interval is 0.5 -+ 1.96 sqrt(0.25 / 400) = [0.451, 0.549] (by hand;
   * the bootstrap's quantiles of 4000 draws land within about 0.003). */
  binary_images(c, NI, NI / 2);
  CHECK_OK(rd_score_bootstrap(c, NI, B, 0.95, 1, &ci));
  double half = 1.96 * sqrt(0.25 / NI);
  CHECK_NEAR(ci.f1_lo, 0.5 - half, 0.006);
  CHECK_NEAR(ci.f1_hi, 0.5 + half, 0.006);
  CHECK_NEAR(ci.syntax_lo, 0.5 - half, 0.006);
  CHECK_NEAR(ci.syntax_hi, 0.5 + half, 0.006);
  /* The same seed gives the same interval; a quarter right is lower. */
  rd_score_ci again;
  CHECK_OK(rd_score_bootstrap(c, NI, B, 0.95, 1, &again));
  CHECK(memcmp(&ci, &again, sizeof ci) == 0);
  binary_images(c, NI, NI / 4);
  CHECK_OK(rd_score_bootstrap(c, NI, B, 0.95, 1, &ci));
  half = 1.96 * sqrt(0.25 * 0.75 / NI);
  CHECK_NEAR(ci.f1_lo, 0.25 - half, 0.006);
  CHECK_NEAR(ci.f1_hi, 0.25 + half, 0.006);
  CHECK_ERR(rd_score_bootstrap(c, 0, B, 0.95, 1, &ci), "bootstrap of 0 images");
}

RD_TEST_MAIN("eval_metrics", RD_CASE(test_reference_is_perfect), RD_CASE(test_hallucination_loses_one_fact),
             RD_CASE(test_shuffle_loses_syntax), RD_CASE(test_repetition), RD_CASE(test_empty_and_split),
             RD_CASE(test_bootstrap))
