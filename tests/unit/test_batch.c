/* The batch builders of docs/objectives.md on hand-built samples: masking
 * rate, token types, and weights exactly as Eq. 1 and Eq. 2/3 define them. */
#include "io/core/rng.h"
#include "io/vocab.h"
#include "rd_test.h"
#include "stages/train/batch.h"
#include "stages/train/loader.h"

#define L 24
#define B 4
#define V 40

static void caption(int32_t *r0) {
  /* 18 words then EOS padding: padding is part of the response. */
  for (int i = 0; i < L; i++) r0[i] = i < 18 ? RD_TOK_NSPECIAL + (i * 7) % (V - RD_TOK_NSPECIAL) : RD_TOK_EOS;
}

static rd_batch_ctx ctx(int64_t step) {
  rd_batch_ctx c = {5, step, L, RD_TOK_MASK, B};
  return c;
}

static void mask_weights_are_eq1(void) {
  int32_t r0[L], x[L], y[L];
  float w[L];
  caption(r0);
  for (int64_t id = 0; id < 200; id++) {
    rd_batch_ctx c = ctx(3);
    double p = rd_batch_mask(&c, RD_RNG_MASK, id, r0, x, y, w);
    CHECK(p >= RD_MASK_EPS && p <= 1.0);
    for (int i = 0; i < L; i++) {
      CHECK(y[i] == r0[i]);
      if (x[i] == RD_TOK_MASK) CHECK_NEAR(w[i], 1.0 / (p * L * B), 1e-6 / (p * L * B));
      else CHECK(x[i] == r0[i] && w[i] == 0.0f);
    }
  }
  /* The masking rate follows p: over many samples, masked share ~ mean p. */
  double masked = 0, psum = 0;
  for (int64_t id = 0; id < 4000; id++) {
    rd_batch_ctx c = ctx(1);
    psum += rd_batch_mask(&c, RD_RNG_MASK, id, r0, x, y, w);
    for (int i = 0; i < L; i++) masked += x[i] == RD_TOK_MASK;
  }
  CHECK_NEAR(masked / (4000.0 * L), psum / 4000.0, 0.01);
  CHECK_NEAR(psum / 4000.0, 0.5, 0.02);
}

static void mask_is_keyed_by_step_and_sample(void) {
  int32_t r0[L], x1[L], x2[L], y[L];
  float w[L];
  caption(r0);
  rd_batch_ctx c = ctx(7);
  rd_batch_mask(&c, RD_RNG_MASK, 42, r0, x1, y, w);
  rd_batch_mask(&c, RD_RNG_MASK, 42, r0, x2, y, w);
  CHECK(memcmp(x1, x2, sizeof x1) == 0);
  int differ = 0;
  for (int64_t id = 0; id < 20; id++) {
    rd_batch_mask(&c, RD_RNG_MASK, 100 + id, r0, x2, y, w);
    differ += memcmp(x1, x2, sizeof x1) != 0;
  }
  CHECK(differ >= 18);
}

static rd_stage1_opts opts(void) {
  rd_stage1_opts o = {0.1, 0, 1, 1, 1.0, V};
  return o;
}

/* Sum of weights per type; every present type must total 1/(p B). */
static void check_types(const int32_t *r0, const int32_t *hal, int start, int len, const int32_t *x, const int32_t *y,
                        const float *w, const int8_t *ty, double p) {
  int n[RD_NTYPES] = {0};
  double sum[RD_NTYPES] = {0};
  for (int i = 0; i < L; i++) {
    CHECK(y[i] == r0[i]);
    n[ty[i]]++;
    sum[ty[i]] += w[i];
    switch (ty[i]) {
    case RD_TYPE_MASK: CHECK(x[i] == RD_TOK_MASK); break;
    case RD_TYPE_CLEAN: CHECK(x[i] == r0[i]); break;
    case RD_TYPE_SYNTAX: CHECK(x[i] != r0[i] && x[i] >= RD_TOK_NSPECIAL && x[i] < V); break;
    case RD_TYPE_HALLUC:
      CHECK(hal && i >= start && i < start + len && x[i] == hal[i] && x[i] != r0[i]);
      break;
    default: CHECK(0);
    }
  }
  for (int k = 0; k < RD_NTYPES; k++) {
    if (n[k]) CHECK_NEAR(sum[k], 1.0 / (p * B), 1e-5 / (p * B));
    else CHECK(sum[k] == 0.0);
  }
}

static void stage1_types_and_weights(void) {
  int32_t r0[L], hal[L], x[L], y[L];
  float w[L];
  int8_t ty[L];
  caption(r0);
  memcpy(hal, r0, sizeof hal);
  hal[5] = r0[5] + 1; /* a one-word hallucination at 5 */
  rd_stage1_opts o = opts();
  int seen[RD_NTYPES] = {0};
  for (int64_t id = 0; id < 2000; id++) {
    rd_batch_ctx c = ctx(2);
    double p = rd_batch_stage1(&c, &o, RD_RNG_MASK, id, r0, hal, 5, 1, x, y, w, ty);
    check_types(r0, hal, 5, 1, x, y, w, ty, p);
    for (int i = 0; i < L; i++) seen[ty[i]]++;
  }
  for (int k = 0; k < RD_NTYPES; k++) CHECK_MSG(seen[k] > 0, "type %d never occurred", k);
  /* Syntax noise hits about q of the positions left visible. */
  CHECK_NEAR((double)seen[RD_TYPE_SYNTAX] / (seen[RD_TYPE_SYNTAX] + seen[RD_TYPE_CLEAN] + seen[RD_TYPE_HALLUC]), 0.1,
             0.01);
}

static void stage1_switches_and_absent_types(void) {
  int32_t r0[L], hal[L], x[L], y[L], xm[L], ym[L];
  float w[L], wm[L];
  int8_t ty[L];
  caption(r0);
  memcpy(hal, r0, sizeof hal);
  hal[5] = r0[5] + 1;
  rd_stage1_opts o = opts();
  o.syntax = 0;
  o.hallucination = 0;
  for (int64_t id = 0; id < 300; id++) {
    /* Both off: only mask and clean types, and the masks equal Eq. 1's. */
    rd_batch_ctx c = ctx(4);
    double p = rd_batch_stage1(&c, &o, RD_RNG_MASK, id, r0, hal, 5, 1, x, y, w, ty);
    double pm = rd_batch_mask(&c, RD_RNG_MASK, id, r0, xm, ym, wm);
    CHECK(p == pm && memcmp(x, xm, sizeof x) == 0);
    for (int i = 0; i < L; i++) CHECK(ty[i] == RD_TYPE_MASK || ty[i] == RD_TYPE_CLEAN);
    check_types(r0, hal, 5, 1, x, y, w, ty, p);
  }
  /* Syntax only: no hallucination type even with a span given. */
  o.syntax = 1;
  for (int64_t id = 0; id < 300; id++) {
    rd_batch_ctx c = ctx(4);
    double p = rd_batch_stage1(&c, &o, RD_RNG_MASK, id, r0, hal, 5, 1, x, y, w, ty);
    for (int i = 0; i < L; i++) CHECK(ty[i] != RD_TYPE_HALLUC);
    check_types(r0, hal, 5, 1, x, y, w, ty, p);
  }
  /* Hallucination only, and a sample without a hallucinated caption. */
  o.syntax = 0;
  o.hallucination = 1;
  int got_halluc = 0;
  for (int64_t id = 0; id < 300; id++) {
    rd_batch_ctx c = ctx(4);
    double p = rd_batch_stage1(&c, &o, RD_RNG_MASK, id, r0, hal, 5, 1, x, y, w, ty);
    for (int i = 0; i < L; i++) {
      got_halluc += ty[i] == RD_TYPE_HALLUC;
      CHECK(ty[i] != RD_TYPE_SYNTAX);
    }
    check_types(r0, hal, 5, 1, x, y, w, ty, p);
    p = rd_batch_stage1(&c, &o, RD_RNG_MASK, id, r0, NULL, 0, 0, x, y, w, ty);
    check_types(r0, NULL, 0, 0, x, y, w, ty, p);
  }
  CHECK(got_halluc > 100);
  /* halluc_frac 0: never. */
  o.halluc_frac = 0;
  for (int64_t id = 0; id < 100; id++) {
    rd_batch_ctx c = ctx(4);
    rd_batch_stage1(&c, &o, RD_RNG_MASK, id, r0, hal, 5, 1, x, y, w, ty);
    for (int i = 0; i < L; i++) CHECK(ty[i] != RD_TYPE_HALLUC);
  }
}

static void stage1_dynamic_rate(void) {
  int32_t r0[L], x[L], y[L];
  float w[L];
  int8_t ty[L];
  caption(r0);
  rd_stage1_opts o = opts();
  o.dynamic_rate = 1;
  o.hallucination = 0;
  /* q = min(t, replace_prob): samples with small t get almost no noise. */
  int noisy_low = 0, vis_low = 0, noisy_high = 0, vis_high = 0;
  for (int64_t id = 0; id < 6000; id++) {
    rd_batch_ctx c = ctx(9);
    double p = rd_batch_stage1(&c, &o, RD_RNG_MASK, id, r0, NULL, 0, 0, x, y, w, ty);
    for (int i = 0; i < L; i++) {
      if (ty[i] == RD_TYPE_MASK) continue;
      int s = ty[i] == RD_TYPE_SYNTAX;
      if (p < 0.02) {
        noisy_low += s;
        vis_low++;
      } else if (p > 0.2) {
        noisy_high += s;
        vis_high++;
      }
    }
  }
  CHECK(vis_low > 500 && vis_high > 500);
  CHECK((double)noisy_low / vis_low < 0.03);
  CHECK_NEAR((double)noisy_high / vis_high, 0.1, 0.015);
}

static void loader_covers_each_epoch(void) {
  rd_loader l;
  CHECK_OK(rd_loader_init(&l, 50, 8, 3));
  int seen[50] = {0};
  int64_t idx[8];
  /* Steps 0..5 cover positions 0..47 of epoch 0: no sample twice. */
  for (int64_t s = 0; s < 6; s++) {
    CHECK_OK(rd_loader_slots(&l, s, 0, 8, idx));
    for (int j = 0; j < 8; j++) seen[idx[j]]++;
  }
  int twice = 0, once = 0;
  for (int i = 0; i < 50; i++) twice += seen[i] > 1, once += seen[i] == 1;
  CHECK(twice == 0 && once == 48);
  /* A step's slots split over ranks give the same samples as the whole. */
  int64_t a[8], b[4], c[4];
  CHECK_OK(rd_loader_slots(&l, 11, 0, 8, a));
  CHECK_OK(rd_loader_slots(&l, 11, 0, 4, b));
  CHECK_OK(rd_loader_slots(&l, 11, 4, 4, c));
  CHECK(memcmp(a, b, sizeof b) == 0 && memcmp(a + 4, c, sizeof c) == 0);
  CHECK_ERR(rd_loader_slots(&l, 0, 6, 4, a), "outside the batch");
  rd_loader_free(&l);
}

RD_TEST_MAIN("batch", RD_CASE(mask_weights_are_eq1), RD_CASE(mask_is_keyed_by_step_and_sample),
             RD_CASE(stage1_types_and_weights), RD_CASE(stage1_switches_and_absent_types), RD_CASE(stage1_dynamic_rate),
             RD_CASE(loader_covers_each_epoch))
