/* The whole VLM: loss gradient against finite differences for a sample of
 * coordinates of every tensor, determinism (repeat, 1 vs 2 threads),
 * gradient accumulation, bad inputs, and the cost of the default config. */
#include <string.h>

#include "io/core/clock.h"
#include "io/core/rng.h"
#include "model/ops.h"
#include "model/vlm.h"
#include "rd_test.h"
#include "tests/unit/model_fixture.h"

static rd_model_cfg tiny_cfg(void) { return rd_test_model_cfg(); }

/* The defaults of io/config.h, filled by hand (the loader lives elsewhere). */
static rd_model_cfg default_cfg(void) {
  rd_model_cfg c;
  memset(&c, 0, sizeof c);
  c.d_model = 128;
  c.n_layers = 4;
  c.n_heads = 4;
  c.d_ff = 384;
  c.vision_layers = 1;
  c.vision_d = 128;
  c.vision_heads = 4;
  c.vision_d_ff = 256;
  c.image_size = 48;
  c.patch = 16;
  c.gen_len = 64;
  c.rope_theta = 10000.0;
  c.norm_eps = 1e-5;
  c.init_std = 0.02;
  c.vocab_multiple = 16;
  return c;
}

/* A random batch: images, response tokens, targets, weights (some zero),
 * and perception classes when the model has a perception head. */
typedef struct {
  uint8_t *images;
  float *features;
  int32_t *x, *y, *cells;
  float *w;
  rd_batch b;
} test_batch;

static void make_batch(test_batch *tb, const rd_vlm *m, int B, uint64_t seed) {
  rd_rng r;
  rd_rng_init(&r, seed, RD_RNG_TEST, 1, 0);
  size_t ni = (size_t)B * m->cfg.image_size * m->cfg.image_size * 3, nl = (size_t)B * m->L;
  tb->images = malloc(ni);
  tb->features = malloc(sizeof(float) * B * m->Np * (m->feature_dim ? m->feature_dim : 1));
  tb->x = malloc(sizeof(int32_t) * nl);
  tb->y = malloc(sizeof(int32_t) * nl);
  tb->w = malloc(sizeof(float) * nl);
  for (size_t i = 0; i < ni; i++) tb->images[i] = (uint8_t)rd_rng_below(&r, 256);
  for (int i = 0; i < B * m->Np * m->feature_dim; i++)
    tb->features[i] = (float)rd_rng_normal(&r);
  for (size_t i = 0; i < nl; i++) {
    tb->x[i] = (int32_t)rd_rng_below(&r, (uint32_t)m->V);
    tb->y[i] = (int32_t)rd_rng_below(&r, (uint32_t)m->V);
    tb->w[i] = rd_rng_uniform(&r) < 0.3 ? 0.0f : (float)(0.5 + rd_rng_uniform(&r)) / m->L;
  }
  const int K = m->cfg.cell_classes;
  tb->cells = malloc(sizeof(int32_t) * B * m->Np);
  for (int i = 0; i < B * m->Np; i++) tb->cells[i] = K > 0 ? (int32_t)rd_rng_below(&r, (uint32_t)K) : 0;
  tb->b = (rd_batch){B, m->feature_dim ? NULL : tb->images, m->feature_dim ? tb->features : NULL,
                     tb->x, tb->y, tb->w, K > 0 ? tb->cells : NULL, K > 0 ? 0.7f / (float)(B * m->Np) : 0.0f};
}

static void free_batch(test_batch *tb) {
  free(tb->images);
  free(tb->features);
  free(tb->x);
  free(tb->y);
  free(tb->w);
  free(tb->cells);
}

static double model_loss(rd_vlm *m, const rd_batch *b) {
  float loss = 0;
  rd_vlm_forward(m, b, &loss);
  /* the double sums, finer than the float for differencing; backward's
   * gradient is of both */
  return m->loss + m->cell_loss;
}

/* For each tensor: the coordinate of its largest gradient and 4 random
 * ones; rel = max |fd - an| / max |an| over the tensor. Tolerance 3e-2:
 * eps = 1e-2 perturbations of O(0.3) weights through 3 fp32 blocks give
 * errors of about 1e-3 of the largest gradient; a 5% wrong gradient reads
 * 5e-2 (checked alongside, as in test_ops_grad.c). */
static void grad_check(rd_vlm *m, const rd_batch *b, const char *label) {
  const float eps = 1e-2f;
  rd_vlm_zero_grad(m);
  float loss;
  CHECK_OK(rd_vlm_forward(m, b, &loss));
  CHECK_OK(rd_vlm_backward(m));
  CHECK(isfinite(loss) && loss > 0);
  rd_rng r;
  rd_rng_init(&r, 5, RD_RNG_TEST, 2, 0);
  int n;
  const rd_tensor *tt = rd_vlm_tensors(m, &n);
  double worst = 0;
  const char *worst_name = "";
  for (int i = 0; i < n; i++) {
    const rd_tensor *t = &tt[i];
    float *p = m->params + t->offset;
    const float *g = m->grads + t->offset;
    size_t imax = 0;
    for (size_t j = 1; j < t->numel; j++)
      if (fabsf(g[j]) > fabsf(g[imax])) imax = j;
    double gmax = fabs(g[imax]), err = 0, bug = 0;
    CHECK_MSG(gmax > 1e-5, "%s: %s has no gradient", label, t->name);
    for (int k = 0; k < 5; k++) {
      size_t j = k == 0 ? imax : rd_rng_below(&r, (uint32_t)t->numel);
      float keep = p[j];
      p[j] = keep + eps;
      double lp = model_loss(m, b);
      p[j] = keep - eps;
      double lm = model_loss(m, b);
      p[j] = keep;
      double fd = (lp - lm) / (2.0 * eps);
      err = fmax(err, fabs(fd - g[j]));
      bug = fmax(bug, fabs(fd - 1.05 * g[j]));
    }
    double rel = err / fmax(gmax, 1e-12), rel_bug = bug / fmax(gmax, 1e-12);
    CHECK_MSG(rel < 3e-2, "%s: %s relative error %.3e", label, t->name, rel);
    CHECK_MSG(rel_bug > 3e-2, "%s: %s a 5%% wrong gradient would pass", label, t->name);
    if (rel > worst) worst = rel, worst_name = t->name;
  }
  printf("  %s: %d tensors, worst relative error %.2e (%s)\n", label, n, worst, worst_name);
}

static void whole_model_gradient(void) {
  rd_ops_set_threads(1);
  rd_model_cfg c = tiny_cfg();
  static const int32_t prompt[3] = {1, 4, 7};
  rd_vlm m;
  CHECK_OK(rd_vlm_init(&m, &c, 12, prompt, 3, 2, 0, 42));
  CHECK(m.Vp == 16 && m.Np == 4 && m.T == 15);
  test_batch tb;
  make_batch(&tb, &m, 2, 9);
  grad_check(&m, &tb.b, "images");
  /* a model sized for a larger batch gives the same loss on this batch */
  rd_vlm big;
  CHECK_OK(rd_vlm_init(&big, &c, 12, prompt, 3, 5, 0, 42));
  float l_small, l_big;
  CHECK_OK(rd_vlm_forward(&m, &tb.b, &l_small));
  CHECK_OK(rd_vlm_forward(&big, &tb.b, &l_big));
  CHECK(l_small == l_big);
  rd_vlm_free(&big);
  /* padding rows of the vocabulary get no gradient */
  const rd_tensor *h = rd_vlm_find(&m, "lm_head"), *e = rd_vlm_find(&m, "tok_emb");
  CHECK(h && e && h->shape[0] == 16 && h->split == 0 && e->split == -1);
  for (int v = 12; v < 16; v++)
    for (int k = 0; k < 16; k++) {
      CHECK(m.grads[h->offset + v * 16 + k] == 0.0f);
      CHECK(m.grads[e->offset + v * 16 + k] == 0.0f);
    }
  const float *lg = rd_vlm_logits(&m);
  CHECK(isinf(lg[12]) && lg[12] < 0 && isfinite(lg[11]));
  free_batch(&tb);
  rd_vlm_free(&m);

  /* precomputed features straight into the projector */
  CHECK_OK(rd_vlm_init(&m, &c, 12, prompt, 3, 2, 6, 42));
  CHECK(rd_vlm_find(&m, "vis.patch.w") == NULL && rd_vlm_find(&m, "proj.w1")->shape[1] == 6);
  make_batch(&tb, &m, 2, 10);
  grad_check(&m, &tb.b, "features");
  free_batch(&tb);
  rd_vlm_free(&m);

  /* one of the two LM heads attends to the image tokens only */
  c.image_heads = 1;
  CHECK_OK(rd_vlm_init(&m, &c, 12, prompt, 3, 2, 0, 42));
  CHECK(m.lm.img_heads == 1 && m.lm.img_keys == m.Np && m.vis.img_heads == 0);
  make_batch(&tb, &m, 2, 11);
  grad_check(&m, &tb.b, "image heads");
  free_batch(&tb);
  rd_vlm_free(&m);
  /* grid positions: img.pos on the image tokens, their RoPE rows at angle
   * 0, the image head unrotated */
  c.grid_pos = 1;
  CHECK_OK(rd_vlm_init(&m, &c, 12, prompt, 3, 2, 0, 42));
  const rd_tensor *gp = rd_vlm_find(&m, "img.pos");
  CHECK(gp && gp->shape[0] == m.Np && gp->shape[1] == c.d_model && gp->split == -1 && !gp->decay);
  CHECK(m.lm.rope_h0 == 1 && m.vis.rope_h0 == 0);
  const int half = m.lm.hd / 2;
  for (int i = 0; i < m.Np * half; i++) CHECK(m.lm.rope_cos[i] == 1.0f && m.lm.rope_sin[i] == 0.0f);
  /* the first prompt token is text position 0, the second position 1 */
  CHECK(m.lm.rope_cos[m.Np * half] == 1.0f && m.lm.rope_sin[(m.Np + 1) * half] != 0.0f);
  make_batch(&tb, &m, 2, 12);
  grad_check(&m, &tb.b, "grid positions");
  free_batch(&tb);
  rd_vlm_free(&m);
  /* the perception head on the normed image tokens, its loss beside the
   * caption loss; the same without grid positions (the head reads the
   * projector's output) */
  for (int gp = 1; gp >= 0; gp--) {
    c.grid_pos = gp;
    c.cell_classes = 5;
    CHECK_OK(rd_vlm_init(&m, &c, 12, prompt, 3, 2, 0, 42));
    const rd_tensor *cw = rd_vlm_find(&m, "cell.w");
    CHECK(cw && cw->shape[0] == 5 && cw->shape[1] == c.d_model && cw->split == -1 && cw->decay);
    make_batch(&tb, &m, 2, 13);
    CHECK_OK(rd_vlm_forward(&m, &tb.b, NULL));
    CHECK(m.cell_loss > 0 && isfinite(m.cell_loss));
    grad_check(&m, &tb.b, gp ? "perception head, grid positions" : "perception head");
    /* a class outside the head, and perception targets without caption targets, are refused */
    tb.cells[3] = 5;
    CHECK_ERR(rd_vlm_forward(&m, &tb.b, NULL), "cells[0][3] = 5 is outside the perception classes [0, 5)");
    free_batch(&tb);
    rd_vlm_free(&m);
  }
  c.cell_classes = 0;
  CHECK_OK(rd_vlm_init(&m, &c, 12, prompt, 3, 2, 0, 42));
  make_batch(&tb, &m, 2, 14);
  int32_t cls[8] = {0};
  tb.b.cells = cls;
  CHECK_ERR(rd_vlm_forward(&m, &tb.b, NULL), "the model has no perception head");
  free_batch(&tb);
  rd_vlm_free(&m);
  c.grid_pos = 0;
  c.image_heads = 3;
  CHECK_ERR(rd_vlm_init(&m, &c, 12, prompt, 3, 2, 0, 42), "model.image_heads (3)");
}

static void tensor_table(void) {
  rd_model_cfg c = tiny_cfg();
  static const int32_t prompt[3] = {1, 4, 7};
  rd_vlm m;
  CHECK_OK(rd_vlm_init(&m, &c, 12, prompt, 3, 2, 0, 42));
  const rd_tensor *t = rd_vlm_find(&m, "lm.1.attn.wqkv");
  CHECK(t && t->shape[0] == 48 && t->shape[1] == 16 && t->split == 0 && t->decay);
  t = rd_vlm_find(&m, "lm.1.attn.wo");
  CHECK(t && t->split == 1 && t->decay);
  t = rd_vlm_find(&m, "lm.0.mlp.wdown");
  CHECK(t && t->shape[0] == 16 && t->shape[1] == 24 && t->split == 1);
  t = rd_vlm_find(&m, "lm.0.mlp.wgate");
  CHECK(t && t->split == 0);
  t = rd_vlm_find(&m, "lm.0.attn_norm");
  CHECK(t && t->split == -1 && !t->decay && m.params[t->offset] == 1.0f);
  t = rd_vlm_find(&m, "vis.0.attn.wqkv");
  CHECK(t && t->split == 0); /* the vision tower is split like the LM */
  CHECK(rd_vlm_find(&m, "vis.pos")->split == -1 && rd_vlm_find(&m, "proj.w1")->split == -1);
  CHECK(!rd_vlm_find(&m, "tok_emb")->decay && !rd_vlm_find(&m, "vis.pos")->decay);
  CHECK(!rd_vlm_find(&m, "proj.b1")->decay && rd_vlm_find(&m, "proj.w1")->decay);
  CHECK(m.params[rd_vlm_find(&m, "proj.b1")->offset] == 0.0f);
  /* offsets: aligned, in order, inside the buffer, summing to n_params */
  int n;
  const rd_tensor *tt = rd_vlm_tensors(&m, &n);
  size_t sum = 0;
  for (int i = 0; i < n; i++) {
    CHECK(tt[i].offset % 16 == 0 && tt[i].offset + tt[i].numel <= m.n_floats);
    if (i) CHECK(tt[i].offset >= tt[i - 1].offset + tt[i - 1].numel);
    sum += tt[i].numel;
  }
  CHECK(sum == m.n_params);
  /* init: normal(0, init_std), output projections scaled by 1/sqrt(2 L) */
  t = rd_vlm_find(&m, "lm.0.mlp.wgate");
  CHECK_NEAR(sqrt(rd_sumsq(m.params + t->offset, t->numel) / t->numel), 0.3, 0.05);
  t = rd_vlm_find(&m, "lm.0.mlp.wdown");
  CHECK_NEAR(sqrt(rd_sumsq(m.params + t->offset, t->numel) / t->numel), 0.3 / 2.0, 0.025);
  /* the same seed gives the same parameters, another seed others */
  rd_vlm m2;
  CHECK_OK(rd_vlm_init(&m2, &c, 12, prompt, 3, 2, 0, 42));
  CHECK(!memcmp(m.params, m2.params, m.n_floats * sizeof(float)));
  rd_vlm_free(&m2);
  CHECK_OK(rd_vlm_init(&m2, &c, 12, prompt, 3, 2, 0, 43));
  CHECK(memcmp(m.params, m2.params, m.n_floats * sizeof(float)) != 0);
  rd_vlm_free(&m2);
  /* vision_fan_in: the vision side starts at std 1 / sqrt(fan-in), the
   * output projections included; the LM keeps init_std and the same draw */
  c.vision_fan_in = 1;
  CHECK_OK(rd_vlm_init(&m2, &c, 12, prompt, 3, 2, 0, 42));
  static const char *const vis_names[] = {"vis.patch.w", "vis.pos", "vis.0.attn.wqkv", "vis.0.mlp.wdown", "proj.w1",
                                          "proj.w2"};
  for (int i = 0; i < 6; i++) {
    t = rd_vlm_find(&m2, vis_names[i]);
    double rms = sqrt(rd_sumsq(m2.params + t->offset, t->numel) / t->numel), want = 1.0 / sqrt(t->shape[1]);
    CHECK_NEAR(rms / want, 1.0, 4.0 / sqrt(2.0 * t->numel)); /* 4 sd of the sample rms */
  }
  t = rd_vlm_find(&m2, "lm.0.mlp.wgate");
  CHECK(!memcmp(m.params + t->offset, m2.params + t->offset, t->numel * sizeof(float)));
  t = rd_vlm_find(&m2, "proj.b1");
  CHECK(m2.params[t->offset] == 0.0f);
  rd_vlm_free(&m2);
  rd_vlm_free(&m);
}

/* Runs forward+backward at nt threads; returns loss, fills grads copy. */
static float run_fb(rd_vlm *m, const rd_batch *b, int nt, float *grads) {
  rd_ops_set_threads(nt);
  float loss = 0;
  rd_vlm_zero_grad(m);
  CHECK_OK(rd_vlm_forward(m, b, &loss));
  CHECK_OK(rd_vlm_backward(m));
  memcpy(grads, m->grads, m->n_floats * sizeof(float));
  rd_ops_set_threads(1);
  return loss;
}

static void determinism(void) {
  rd_model_cfg c = default_cfg();
  static const int32_t prompt[6] = {5, 6, 7, 8, 9, 10};
  rd_vlm m;
  CHECK_OK(rd_vlm_init(&m, &c, 60, prompt, 6, 4, 0, 7));
  test_batch tb;
  make_batch(&tb, &m, 4, 3);
  float *g1 = malloc(m.n_floats * sizeof(float)), *g2 = malloc(m.n_floats * sizeof(float)),
        *g3 = malloc(m.n_floats * sizeof(float));
  float l1 = run_fb(&m, &tb.b, 1, g1), l2 = run_fb(&m, &tb.b, 1, g2), l3 = run_fb(&m, &tb.b, 2, g3);
  CHECK(l1 == l2 && !memcmp(g1, g2, m.n_floats * sizeof(float)));
  CHECK_MSG(l1 == l3 && !memcmp(g1, g3, m.n_floats * sizeof(float)),
            "1 and 2 threads differ: loss %.9g vs %.9g", l1, l3);
  /* gradient accumulation: a second backward without zeroing doubles the
   * gradients (to rounding: the embedding adds rows straight into the sum) */
  CHECK_OK(rd_vlm_forward(&m, &tb.b, NULL));
  CHECK_OK(rd_vlm_backward(&m));
  double maxdiff = 0, maxg = 0;
  for (size_t i = 0; i < m.n_floats; i++) {
    maxdiff = fmax(maxdiff, fabs(m.grads[i] - 2.0 * g1[i]));
    maxg = fmax(maxg, fabs(2.0 * g1[i]));
  }
  CHECK_MSG(maxdiff <= 1e-6 * maxg, "accumulated gradients off by %g (max %g)", maxdiff, maxg);
  double norm;
  CHECK_OK(rd_vlm_grad_norm(&m, &norm));
  CHECK(isfinite(norm) && norm > 0);
  m.grads[rd_vlm_find(&m, "lm.2.mlp.wup")->offset + 5] = NAN;
  CHECK_OK(rd_vlm_grad_norm(&m, &norm));
  CHECK(!isfinite(norm)); /* the trainer skips the step on this */
  /* logits only: no targets, and backward refuses */
  rd_batch nb = tb.b;
  nb.y = NULL;
  nb.w = NULL;
  float loss = -1;
  CHECK_OK(rd_vlm_forward(&m, &nb, &loss));
  CHECK(loss == 0.0f);
  CHECK_ERR(rd_vlm_backward(&m), "targets");
  free(g1), free(g2), free(g3);
  free_batch(&tb);
  rd_vlm_free(&m);
}

static void bad_inputs(void) {
  rd_model_cfg c = tiny_cfg();
  static const int32_t prompt[3] = {1, 4, 7};
  rd_vlm m;
  c.n_heads = 3;
  CHECK_ERR(rd_vlm_init(&m, &c, 12, prompt, 3, 2, 0, 1), "n_heads");
  c = tiny_cfg();
  c.patch = 5;
  CHECK_ERR(rd_vlm_init(&m, &c, 12, prompt, 3, 2, 0, 1), "patch");
  c = tiny_cfg();
  static const int32_t bad_prompt[2] = {1, 12};
  CHECK_ERR(rd_vlm_init(&m, &c, 12, bad_prompt, 2, 2, 0, 1), "prompt token 1");
  CHECK_OK(rd_vlm_init(&m, &c, 12, prompt, 3, 2, 0, 1));
  test_batch tb;
  make_batch(&tb, &m, 2, 1);
  rd_batch b = tb.b;
  b.B = 3;
  CHECK_ERR(rd_vlm_forward(&m, &b, NULL), "sized for 1 to 2");
  b = tb.b;
  tb.x[9] = 12;
  CHECK_ERR(rd_vlm_forward(&m, &b, NULL), "x[1][1] = 12");
  tb.x[9] = 0;
  tb.w[3] = 1.0f;
  tb.y[3] = -1;
  CHECK_ERR(rd_vlm_forward(&m, &b, NULL), "y[0][3] = -1");
  tb.w[3] = 0.0f; /* a target with zero weight is never read */
  CHECK_OK(rd_vlm_forward(&m, &b, NULL));
  b.images = NULL;
  CHECK_ERR(rd_vlm_forward(&m, &b, NULL), "images");
  CHECK_ERR(rd_vlm_backward(&m), "forward");
  rd_adamw_cfg ac = {0.9f, 0.95f, 1e-8f, 0.1f};
  CHECK_ERR(rd_vlm_adamw_step(&m, &ac, 0, 1e-3f, 1.0f), "1-based");
  free_batch(&tb);
  rd_vlm_free(&m);
}

/* The default config: parameter count by formula, memory, one step's time
 * at batch 32 on 1 thread; training a few steps on one batch lowers the loss. */
static void default_config_cost(void) {
  rd_ops_set_threads(1);
  rd_model_cfg c = default_cfg();
  static const int32_t prompt[6] = {5, 6, 7, 8, 9, 10};
  const int V = 60, B = 32;
  rd_vlm m;
  CHECK_OK(rd_vlm_init(&m, &c, V, prompt, 6, B, 0, 1));
  size_t d = 128, Cv = 128, Vp = 64, PD = 16 * 16 * 3, Np = 9;
  size_t expect = Cv * PD + Cv + Np * Cv + (2 * Cv + 4 * Cv * Cv + 3 * Cv * 256) + Cv +
                  (d * Cv + d + d * d + d) + Vp * d + 4 * (2 * d + 4 * d * d + 3 * d * 384) + d +
                  Vp * d;
  CHECK_MSG(m.n_params == expect, "%zu parameters, formula says %zu", m.n_params, expect);
  size_t bp, bg, bo, ba;
  rd_vlm_memory(&m, &bp, &bg, &bo, &ba);
  CHECK(bp >= m.n_params * 4 && bo == 2 * bp && ba > 0);
  test_batch tb;
  make_batch(&tb, &m, B, 2);
  rd_adamw_cfg ac = {0.9f, 0.95f, 1e-8f, 0.1f};
  float first = 0, loss = 0;
  double best = 1e9;
  for (int step = 1; step <= 4; step++) {
    double t0 = rd_clock_now();
    rd_vlm_zero_grad(&m);
    CHECK_OK(rd_vlm_forward(&m, &tb.b, &loss));
    CHECK_OK(rd_vlm_backward(&m));
    double gn;
    CHECK_OK(rd_vlm_grad_norm(&m, &gn));
    float scale = rd_clip_scale(gn, 1.0);
    CHECK_OK(rd_vlm_adamw_step(&m, &ac, step, 1e-3f, scale));
    double dt = rd_clock_now() - t0;
    best = dt < best ? dt : best;
    if (step == 1) first = loss;
  }
  CHECK_MSG(loss < first, "loss %g after 4 steps, %g before", loss, first);
  printf("  default config: %zu parameters, %d tokens per sample (Np %d + prompt %d + L %d)\n",
         m.n_params, m.T, m.Np, m.Tp, m.L);
  printf("  memory: params %.2f MB, grads %.2f MB, AdamW %.2f MB, activations (B=%d) %.2f MB\n",
         bp / 1e6, bg / 1e6, bo / 1e6, B, ba / 1e6);
  printf("  forward+backward+AdamW at batch %d, 1 thread: %.3f s (best of 4)\n", B, best);
  free_batch(&tb);
  rd_vlm_free(&m);
}

/* The grads-ready hook: offsets only fall, end at 0, and every region is
 * final when announced (a snapshot taken then equals the end result). */
typedef struct {
  rd_vlm *m;
  float *snap;
  size_t prev;
  int calls, rising;
} ready_log;

static int on_ready(void *ctx, size_t from) {
  ready_log *r = ctx;
  if (from > r->prev) r->rising++;
  if (from < r->prev) memcpy(r->snap + from, r->m->grads + from, (r->prev - from) * sizeof(float));
  r->prev = from < r->prev ? from : r->prev;
  r->calls++;
  return 0;
}

static void grads_ready_hook(void) {
  rd_model_cfg c = tiny_cfg();
  static const int32_t prompt[3] = {1, 4, 7};
  for (int features = 0; features <= 6; features += 6) {
    rd_vlm m;
    CHECK_OK(rd_vlm_init(&m, &c, 12, prompt, 3, 2, features, 42));
    test_batch tb;
    make_batch(&tb, &m, 2, 3);
    ready_log r = {&m, calloc(m.n_floats, sizeof(float)), m.n_floats, 0, 0};
    m.grads_ready = on_ready;
    m.grads_ready_ctx = &r;
    rd_vlm_zero_grad(&m);
    CHECK_OK(rd_vlm_forward(&m, &tb.b, NULL));
    CHECK_OK(rd_vlm_backward(&m));
    /* head, LM blocks, embedding, end; plus the vision norm and blocks */
    int want = 1 + c.n_layers + 1 + 1 + (features ? 0 : 1 + c.vision_layers);
    CHECK(r.calls == want && r.rising == 0 && r.prev == 0);
    CHECK(memcmp(r.snap, m.grads, m.n_floats * sizeof(float)) == 0);
    free(r.snap);
    free_batch(&tb);
    rd_vlm_free(&m);
  }
}

RD_TEST_MAIN("model_grad", RD_CASE(tensor_table), RD_CASE(whole_model_gradient),
             RD_CASE(determinism), RD_CASE(bad_inputs), RD_CASE(default_config_cost),
             RD_CASE(grads_ready_hook))
