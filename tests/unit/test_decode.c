/* Decoding: the step schedule, the selection rules of refine and remask,
 * blocks, starting captions, the excluded ids, and determinism of a sample
 * in any batch, on stub logits and on a small randomly initialised model. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/rng.h"
#include "model/decode.h"
#include "rd_test.h"
#include "tests/unit/model_fixture.h"

enum { MASK = 0, EOS = 1 };

static rd_decode_opts opts(int steps, rd_decode_mode mode) {
  rd_decode_opts o;
  rd_decode_opts_default(&o);
  o.steps = steps;
  o.mode = mode;
  return o;
}

/* Fresh random x0 (ids 4..19) and confidences for a step. */
static void stub_predict(rd_rng *r, int L, int32_t *x0, float *conf) {
  for (int i = 0; i < L; i++) {
    x0[i] = 4 + (int32_t)rd_rng_below(r, 16);
    conf[i] = (float)rd_rng_uniform(r);
  }
}

static int n_masked(const int32_t *x, int lo, int hi) {
  int n = 0;
  for (int i = lo; i < hi; i++) n += x[i] == MASK;
  return n;
}

/* Runs a whole decode on stub predictions; counts[step] = tokens unmasked. */
static void stub_decode(const rd_decode_opts *o, int L, int32_t *x, int *counts, rd_decode_traj *traj,
                        uint64_t seed) {
  rd_rng r;
  rd_rng_init(&r, seed, RD_RNG_TEST, 0, 0);
  int32_t x0[256];
  float conf[256];
  int work[512];
  for (int s = 0; s < o->steps; s++) {
    rd_decode_stepinfo si;
    CHECK_OK(rd_decode_plan(o, L, s, &si));
    stub_predict(&r, L, x0, conf);
    int nu = -1, nc = -1;
    CHECK_OK(rd_decode_select(o, &si, s, L, x0, conf, x, work, traj, &nu, &nc));
    counts[s] = nu;
  }
}

static void test_counts(void) {
  /* L and S that do not divide: the remainder goes to the first steps. */
  static const int cases[][2] = {{10, 4}, {64, 7}, {64, 64}, {64, 1}, {13, 5}, {64, 9}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int L = cases[c][0], S = cases[c][1];
    rd_decode_opts o = opts(S, RD_DECODE_REMASK);
    int32_t x[64];
    int counts[64];
    for (int i = 0; i < L; i++) x[i] = MASK;
    stub_decode(&o, L, x, counts, NULL, 1);
    for (int s = 0; s < S; s++) CHECK_MSG(counts[s] == L / S + (s < L % S), "L %d S %d step %d: %d", L, S, s, counts[s]);
    CHECK(n_masked(x, 0, L) == 0);
  }
  CHECK(rd_decode_count(10, 4) == 3 && rd_decode_count(7, 3) == 3 && rd_decode_count(4, 2) == 2);
  CHECK(rd_decode_count(0, 3) == 0 && rd_decode_count(5, 1) == 5);
}

/* Remask: a token once unmasked never changes; refine: earlier tokens follow
 * x0 (the stub's x0 changes every step, so they change). */
static void test_remask_frozen_refine_revises(void) {
  const int L = 24, S = 6;
  for (int mode = 0; mode < 2; mode++) {
    rd_decode_opts o = opts(S, mode ? RD_DECODE_REMASK : RD_DECODE_REFINE);
    int32_t x[24], prev[24];
    for (int i = 0; i < L; i++) x[i] = MASK;
    rd_rng r;
    rd_rng_init(&r, 5, RD_RNG_TEST, 1, 0);
    int32_t x0[24];
    float conf[24];
    int work[48], changed_total = 0;
    for (int s = 0; s < S; s++) {
      memcpy(prev, x, sizeof x);
      rd_decode_stepinfo si;
      CHECK_OK(rd_decode_plan(&o, L, s, &si));
      stub_predict(&r, L, x0, conf);
      int nu, nc;
      CHECK_OK(rd_decode_select(&o, &si, s, L, x0, conf, x, work, NULL, &nu, &nc));
      CHECK(nu == 4);
      int diff_earlier = 0;
      for (int i = 0; i < L; i++) {
        if (prev[i] == MASK) continue;
        if (mode) CHECK(x[i] == prev[i]);
        else CHECK(x[i] == x0[i]);
        diff_earlier += x[i] != prev[i];
      }
      CHECK(diff_earlier == nc);
      changed_total += nc;
      /* the newly unmasked are the most confident masked positions */
      float min_new = 2, max_left = -1;
      for (int i = 0; i < L; i++) {
        if (prev[i] == MASK && x[i] != MASK) min_new = fminf(min_new, conf[i]);
        if (x[i] == MASK) max_left = fmaxf(max_left, conf[i]);
      }
      CHECK(min_new >= max_left);
    }
    if (mode) CHECK(changed_total == 0);
    else CHECK(changed_total > 10);
  }
}

static void test_refine_tau_and_fraction(void) {
  const int L = 8;
  rd_decode_opts o = opts(2, RD_DECODE_REFINE);
  rd_decode_stepinfo si;
  int32_t x[8] = {10, 11, 12, 13, MASK, MASK, MASK, MASK};
  int32_t x0[8] = {20, 21, 22, 23, 24, 25, 26, 27};
  float conf[8] = {0.9f, 0.2f, 0.6f, 0.4f, 0.5f, 0.1f, 0.3f, 0.7f};
  int work[16], nu, nc;
  /* tau 0.5: of the earlier tokens only positions 0 (.9) and 2 (.6) */
  o.tau = 0.5;
  int32_t a[8];
  memcpy(a, x, sizeof a);
  CHECK_OK(rd_decode_plan(&o, L, 0, &si));
  CHECK_OK(rd_decode_select(&o, &si, 0, L, x0, conf, a, work, NULL, &nu, &nc));
  int32_t want_a[8] = {20, 11, 22, 13, 24, MASK, MASK, 27};
  CHECK(nu == 2 && nc == 2 && memcmp(a, want_a, sizeof a) == 0);
  /* top fraction 0.5 of all four earlier: the two most confident, 0 and 2 */
  o.tau = 0;
  o.top_frac = 0.5;
  memcpy(a, x, sizeof a);
  CHECK_OK(rd_decode_select(&o, &si, 0, L, x0, conf, a, work, NULL, &nu, &nc));
  CHECK(nc == 2 && memcmp(a, want_a, sizeof a) == 0);
  /* 0.3 of four rounds up to 2; 0.2 to 1 (only position 0) */
  o.top_frac = 0.2;
  memcpy(a, x, sizeof a);
  CHECK_OK(rd_decode_select(&o, &si, 0, L, x0, conf, a, work, NULL, &nu, &nc));
  CHECK(nc == 1 && a[0] == 20 && a[1] == 11 && a[2] == 12);
  /* tau and fraction together: tau 0.3 leaves 0, 2, 3; half of 3 -> 2 */
  o.tau = 0.3;
  o.top_frac = 0.5;
  memcpy(a, x, sizeof a);
  CHECK_OK(rd_decode_select(&o, &si, 0, L, x0, conf, a, work, NULL, &nu, &nc));
  CHECK(nc == 2 && a[0] == 20 && a[2] == 22 && a[3] == 13);
  /* an earlier token equal to x0 is not a change */
  o.tau = 0;
  o.top_frac = 1;
  int32_t same[8] = {20, 11, 22, 13, MASK, MASK, MASK, MASK};
  rd_decode_traj t = {0};
  CHECK_OK(rd_decode_select(&o, &si, 3, L, x0, conf, same, work, &t, &nu, &nc));
  CHECK(nc == 2);
  /* trajectory: unmasked first (by position), then the changes */
  CHECK(t.n == 4);
  if (t.n == 4) {
    CHECK(t.ev[0].step == 3 && t.ev[0].pos == 4 && t.ev[0].old_tok == MASK && t.ev[0].new_tok == 24);
    CHECK(t.ev[1].pos == 7 && t.ev[1].old_tok == MASK && t.ev[1].new_tok == 27);
    CHECK(t.ev[2].pos == 1 && t.ev[2].old_tok == 11 && t.ev[2].new_tok == 21);
    CHECK(t.ev[3].pos == 3 && t.ev[3].old_tok == 13 && t.ev[3].new_tok == 23);
  }
  rd_decode_traj_free(&t);
  /* equal confidences: the lower position first */
  float flat[8] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
  memcpy(a, x, sizeof a);
  CHECK_OK(rd_decode_select(&o, &si, 0, L, x0, flat, a, work, NULL, &nu, &nc));
  CHECK(a[4] == 24 && a[5] == 25 && a[6] == MASK && a[7] == MASK);
}

/* Blocks: later blocks stay masked until their steps; steps are spread over
 * blocks like tokens over steps. */
static void test_blocks(void) {
  const int L = 10;
  rd_decode_opts o = opts(5, RD_DECODE_REFINE);
  o.block = 4; /* blocks [0,4) [4,8) [8,10) with 2, 2, 1 steps */
  static const int want_block[5] = {0, 0, 1, 1, 2}, want_lo[3] = {0, 4, 8}, want_hi[3] = {4, 8, 10};
  for (int s = 0; s < 5; s++) {
    rd_decode_stepinfo si;
    CHECK_OK(rd_decode_plan(&o, L, s, &si));
    CHECK(si.block == want_block[s] && si.lo == want_lo[si.block] && si.hi == want_hi[si.block]);
  }
  int32_t x[10];
  for (int i = 0; i < L; i++) x[i] = MASK;
  rd_rng r;
  rd_rng_init(&r, 9, RD_RNG_TEST, 2, 0);
  int32_t x0[10];
  float conf[10];
  int work[20];
  for (int s = 0; s < 5; s++) {
    rd_decode_stepinfo si;
    CHECK_OK(rd_decode_plan(&o, L, s, &si));
    stub_predict(&r, L, x0, conf);
    CHECK_OK(rd_decode_select(&o, &si, s, L, x0, conf, x, work, NULL, NULL, NULL));
    CHECK(n_masked(x, 0, si.lo) == 0);
    CHECK(n_masked(x, si.hi, L) == L - si.hi);
    CHECK(n_masked(x, si.lo, si.hi) == (si.k == 0 && si.steps == 2 ? 2 : 0));
  }
  CHECK_ERR(rd_decode_check(&(rd_decode_opts){.steps = 2, .block = 4, .top_frac = 1, .eos_id = 1}, 10),
            "between 3 (one per block) and 10");
}

/* A starting caption: its tokens are kept by remask and revisable by refine;
 * the steps only unmask the positions left masked. */
static void test_start_caption(void) {
  const int L = 12;
  int32_t given[12] = {30, 31, MASK, MASK, 32, MASK, MASK, MASK, MASK, 33, MASK, MASK};
  for (int mode = 0; mode < 2; mode++) {
    rd_decode_opts o = opts(4, mode ? RD_DECODE_REMASK : RD_DECODE_REFINE);
    int32_t x[12];
    memcpy(x, given, sizeof x);
    int counts[4];
    stub_decode(&o, L, x, counts, NULL, 3);
    CHECK(counts[0] == 2 && counts[1] == 2 && counts[2] == 2 && counts[3] == 2);
    CHECK(n_masked(x, 0, L) == 0);
    int kept = x[0] == 30 && x[1] == 31 && x[4] == 32 && x[9] == 33;
    CHECK(mode ? kept : !kept); /* the stub's x0 is never 30..33 */
  }
}

static void test_predict_excludes(void) {
  const int L = 3, V = 8, Vp = 16;
  float logits[3 * 16];
  for (int i = 0; i < L * Vp; i++) logits[i] = (i % Vp) < V ? 0.f : -INFINITY;
  logits[0 * Vp + MASK] = 9;  /* the mask wins the raw argmax: never taken */
  logits[0 * Vp + 5] = 2;
  logits[1 * Vp + 2] = 9;     /* [BOS] */
  logits[1 * Vp + 3] = 9;     /* [UNK] */
  logits[1 * Vp + EOS] = 1;   /* [EOS] is allowed */
  logits[2 * Vp + 6] = 1;
  logits[2 * Vp + 7] = 1;     /* a tie: the lower id */
  rd_decode_opts o = opts(1, RD_DECODE_REFINE);
  int32_t x0[3];
  float conf[3];
  rd_decode_predict(&o, logits, L, V, Vp, 0, 0, x0, conf, NULL);
  CHECK(x0[0] == 5 && x0[1] == EOS && x0[2] == 6);
  /* confidence: softmax over the 5 allowed ids (EOS, 4..7) */
  double e2 = exp(2.0);
  CHECK_NEAR(conf[0], e2 / (e2 + 4), 1e-6);
  CHECK_NEAR(conf[1], exp(1.0) / (exp(1.0) + 4), 1e-6);
  CHECK_NEAR(conf[2], exp(1.0) / (2 * exp(1.0) + 3), 1e-6);
}

/* The decision margin: argmax gaps, the confidence edge of the unmasked
 * positions in logit units, refine's revisited tokens, saturated ties. */
static void test_margin(void) {
  const int V = 8, Vp = 8;
  float logits[2 * 8];
  for (int i = 0; i < 2 * Vp; i++) logits[i] = 0.f;
  logits[0 * Vp + 5] = 2.0f, logits[0 * Vp + 6] = 0.5f; /* wins by 1.5 */
  logits[1 * Vp + 4] = 1.0f, logits[1 * Vp + 7] = 1.0f; /* a tie */
  rd_decode_opts o = opts(2, RD_DECODE_REMASK);
  int32_t x0[4];
  float conf[4], gap[4];
  rd_decode_predict(&o, logits, 2, V, Vp, 0, 0, x0, conf, gap);
  CHECK(x0[0] == 5 && x0[1] == 4);
  CHECK_NEAR(gap[0], 1.5, 1e-6);
  CHECK(gap[1] == 0.0f);

  const int L = 4;
  int work[8];
  rd_decode_stepinfo si = {0, 0, L, 0, 2};
  float c4[4] = {0.9f, 0.5f, 0.4f, 0.8f}, g4[4] = {1.0f, 0.5f, 0.02f, 0.25f};
  int32_t x[4] = {MASK, MASK, MASK, MASK};
  /* 2 of 4 unmasked (positions 0 and 3): the edge 0.8 | 0.5 is
   * log(0.8 / 0.5) / (2 (0.2 + 0.5)) = 0.3357 logits away; the tokens taken
   * win by 1.0 and 0.25 */
  CHECK_NEAR(rd_decode_margin(&o, &si, L, x, c4, g4, work), 0.25, 1e-6);
  g4[3] = 1.0f;
  CHECK_NEAR(rd_decode_margin(&o, &si, L, x, c4, g4, work), log(0.8 / 0.5) / 1.4, 1e-6);
  /* earlier tokens at 0 and 3: 1 of the 2 masked unmasked, edge 0.5 | 0.4 */
  int32_t y[4] = {5, MASK, MASK, 6};
  g4[3] = 0.05f;
  double edge = log(0.5 / 0.4) / (2 * (0.5 + 0.6));
  CHECK_NEAR(rd_decode_margin(&o, &si, L, y, c4, g4, work), edge, 1e-6);
  o.mode = RD_DECODE_REFINE; /* now the revisited token at 3 counts */
  CHECK_NEAR(rd_decode_margin(&o, &si, L, y, c4, g4, work), 0.05, 1e-6);
  /* two confidences saturated at 1 cannot swap; equal ones below 1 can */
  float sat[4] = {1.0f, 1.0f, 0.5f, 0.5f}, big[4] = {3.0f, 3.0f, 3.0f, 3.0f};
  rd_decode_stepinfo s2 = {0, 0, 2, 0, 2};
  CHECK_NEAR(rd_decode_margin(&o, &s2, L, x, sat, big, work), 3.0, 1e-6);
  rd_decode_stepinfo s3 = {0, 2, 4, 0, 2};
  CHECK(rd_decode_margin(&o, &s3, L, x, sat, big, work) == 0.0);
  /* nothing decided: no margin */
  int32_t done[4] = {5, 6, 7, 5};
  o.mode = RD_DECODE_REMASK;
  CHECK(isinf(rd_decode_margin(&o, &si, L, done, c4, g4, work)));
}

/* Gumbel noise depends on (seed, step, sample id) only. */
static void test_gumbel_stream(void) {
  enum { L = 32, V = 12, Vp = 16 };
  static float logits[L * Vp];
  rd_rng r;
  rd_rng_init(&r, 2, RD_RNG_TEST, 4, 0);
  for (int i = 0; i < L * Vp; i++) logits[i] = (i % Vp) < V ? 0.5f * (float)rd_rng_uniform(&r) : -INFINITY;
  rd_decode_opts o = opts(1, RD_DECODE_REFINE);
  o.temperature = 1.0;
  o.seed = 77;
  int32_t a[L], b[L], c[L], argmax[L];
  float ca[L], cb[L];
  rd_decode_predict(&o, logits, L, V, Vp, 3, 1000, a, ca, NULL);
  rd_decode_predict(&o, logits, L, V, Vp, 3, 1000, b, cb, NULL);
  CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(ca, cb, sizeof ca) == 0);
  int differ_step = 0, differ_id = 0, differ_seed = 0, differ_argmax = 0;
  rd_decode_predict(&o, logits, L, V, Vp, 4, 1000, c, cb, NULL);
  for (int i = 0; i < L; i++) differ_step += a[i] != c[i];
  rd_decode_predict(&o, logits, L, V, Vp, 3, 1001, c, cb, NULL);
  for (int i = 0; i < L; i++) differ_id += a[i] != c[i];
  o.seed = 78;
  rd_decode_predict(&o, logits, L, V, Vp, 3, 1000, c, cb, NULL);
  for (int i = 0; i < L; i++) differ_seed += a[i] != c[i];
  o.temperature = 0;
  rd_decode_predict(&o, logits, L, V, Vp, 3, 1000, argmax, cb, NULL);
  for (int i = 0; i < L; i++) differ_argmax += a[i] != argmax[i];
  CHECK(differ_step > 4 && differ_id > 4 && differ_seed > 4 && differ_argmax > 4);
  for (int i = 0; i < L; i++) CHECK(a[i] == EOS || (a[i] >= 4 && a[i] < V));
  /* a tiny temperature is the argmax */
  o.seed = 77;
  o.temperature = 1e-6;
  rd_decode_predict(&o, logits, L, V, Vp, 3, 1000, c, cb, NULL);
  CHECK(memcmp(c, argmax, sizeof c) == 0);
}

static rd_model_cfg small_cfg(void) {
  rd_model_cfg c = rd_test_model_cfg();
  c.d_model = 32;
  c.d_ff = 48;
  c.vision_d = 16;
  c.vision_d_ff = 24;
  c.gen_len = 20;
  c.init_std = 0.5; /* larger than a training init: distinct, image-dependent predictions */
  return c;
}

/* The same sample decodes to the same tokens alone or in a batch of 8, with
 * argmax and with Gumbel noise; one forward pass per step. */
static void test_model_batch_determinism(void) {
  rd_model_cfg c = small_cfg();
  const int V = 30, B = 8, L = c.gen_len, img = 16 * 16 * 3;
  int32_t prompt[3] = {5, 6, 7};
  rd_vlm m;
  CHECK_OK(rd_vlm_init(&m, &c, V, prompt, 3, B, 0, 11));
  uint8_t images[8 * 768];
  rd_rng r;
  rd_rng_init(&r, 1, RD_RNG_TEST, 3, 0);
  for (int i = 0; i < B * img; i++) images[i] = (uint8_t)rd_rng_below(&r, 256);
  int64_t ids[8];
  for (int j = 0; j < B; j++) ids[j] = 4294967296LL + j;
  for (int variant = 0; variant < 4; variant++) {
    rd_decode_opts o = opts(variant < 2 ? 5 : 20, variant % 2 ? RD_DECODE_REMASK : RD_DECODE_REFINE);
    o.temperature = variant >= 2 ? 0.7 : 0;
    o.seed = 3;
    int32_t all[8 * 20], one[20];
    rd_decode_traj traj[8] = {{0}};
    rd_decode_output out = {all, traj, 0, NULL};
    rd_decode_input in = {B, images, NULL, ids, NULL};
    CHECK_OK(rd_decode(&m, &o, &in, &out));
    CHECK(out.forward_passes == o.steps);
    for (int j = 0; j < B; j++) {
      rd_decode_output o1 = {one, NULL, 0, NULL};
      rd_decode_input i1 = {1, images + (size_t)j * img, NULL, &ids[j], NULL};
      CHECK_OK(rd_decode(&m, &o, &i1, &o1));
      CHECK_MSG(memcmp(one, all + j * L, sizeof one) == 0, "variant %d sample %d", variant, j);
      CHECK(n_masked(all + j * L, 0, L) == 0);
      /* every position is unmasked exactly once in the trajectory */
      int unmasked = 0;
      for (int e = 0; e < traj[j].n; e++) unmasked += traj[j].ev[e].old_tok == MASK;
      CHECK(unmasked == L);
      rd_decode_traj_free(&traj[j]);
    }
    /* the decoded captions differ between images (the model sees them) */
    int distinct = 0;
    for (int j = 1; j < B; j++) distinct += memcmp(all, all + j * L, (size_t)L * sizeof(int32_t)) != 0;
    CHECK(distinct > 0);
  }
  rd_vlm_free(&m);
}

static void test_errors(void) {
  rd_decode_opts o = opts(0, RD_DECODE_REFINE);
  CHECK_ERR(rd_decode_check(&o, 64), "steps = 0");
  o.steps = 65;
  CHECK_ERR(rd_decode_check(&o, 64), "and 64 (the response length)");
  o.steps = 8;
  o.top_frac = 0;
  CHECK_ERR(rd_decode_check(&o, 64), "top fraction");
  o.top_frac = 1;
  o.temperature = -1;
  CHECK_ERR(rd_decode_check(&o, 64), "temperature");
  rd_decode_mode mode;
  CHECK_ERR(rd_decode_mode_parse("greedy", &mode), "'greedy' is neither refine nor remask");
  CHECK_OK(rd_decode_mode_parse("remask", &mode));
  CHECK(mode == RD_DECODE_REMASK && strcmp(rd_decode_mode_name(mode), "remask") == 0);
  int32_t t[5] = {4, 5, EOS, 6, EOS};
  CHECK(rd_decode_caption_len(t, 5, EOS) == 2 && rd_decode_caption_len(t, 2, EOS) == 2);
}

RD_TEST_MAIN("decode", RD_CASE(test_counts), RD_CASE(test_remask_frozen_refine_revises),
             RD_CASE(test_refine_tau_and_fraction), RD_CASE(test_blocks), RD_CASE(test_start_caption),
             RD_CASE(test_predict_excludes), RD_CASE(test_margin), RD_CASE(test_gumbel_stream), RD_CASE(test_model_batch_determinism),
             RD_CASE(test_errors))
