/* Every op's backward against central finite differences of its forward,
 * plus AdamW by hand, the lr schedule, grad norm and clipping.
 *
 * The test loss is L = sum(out * R) for fixed random R (accumulated in
 * double), so dL/dout = R is what each backward is fed. Inputs are
 * perturbed in fp32 by eps = 1e-2 (values are O(1)).
 *
 * Tolerance: rel = max_i |fd_i - an_i| / max_i |fd_i| over the checked
 * coordinates. The central difference has truncation error eps^2/6 |f'''|
 * ~ 2e-5, and fp32 rounding of the outputs adds about
 * sqrt(n_out) * 6e-8 * |out| / (2 eps) ~ 1e-4 for our sizes; so correct
 * gradients land near 1e-4 and we accept 1e-2. A gradient that is wrong by
 * 5% (scaled by 1.05) gives rel ~ 0.05 and must fail the same comparison:
 * every check below also verifies that, so no check can pass by being
 * insensitive. */
#include <omp.h>
#include <string.h>

#include "io/core/rng.h"
#include "model/ops.h"
#include "rd_test.h"

#define TOL 1e-2
#define EPS 1e-2f

static rd_rng rng;
static int rng_ready;
static void fill(float *x, size_t n, float lo, float hi) {
  if (!rng_ready) rd_rng_init(&rng, 1234, RD_RNG_TEST, 0, 0), rng_ready = 1;
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)rd_rng_uniform(&rng);
}

/* An op under test: forward(ctx) fills out [n_out]; backward(ctx) reads
 * dout (= R) and accumulates into the zeroed gradient arrays. */
typedef struct {
  void (*forward)(void *ctx);
  void (*backward)(void *ctx);
  void *ctx;
  float *out, *dout, *R;
  size_t n_out;
} op_case;

static double test_loss(op_case *oc) {
  oc->forward(oc->ctx);
  double s = 0.0;
  for (size_t i = 0; i < oc->n_out; i++) s += (double)oc->out[i] * oc->R[i];
  return s;
}

/* Checks the analytic gradient g of input x [n] (already computed) against
 * finite differences. Returns the relative error. */
static double fd_check(const char *what, op_case *oc, float *x, const float *g, size_t n) {
  double max_err = 0.0, max_fd = 0.0, max_bug = 0.0;
  for (size_t i = 0; i < n; i++) {
    float keep = x[i];
    x[i] = keep + EPS;
    double lp = test_loss(oc);
    x[i] = keep - EPS;
    double lm = test_loss(oc);
    x[i] = keep;
    double fd = (lp - lm) / (2.0 * EPS);
    double err = fabs(fd - g[i]), bug = fabs(fd - 1.05 * g[i]);
    max_err = err > max_err ? err : max_err;
    max_bug = bug > max_bug ? bug : max_bug;
    max_fd = fabs(fd) > max_fd ? fabs(fd) : max_fd;
  }
  double den = max_fd > 1e-12 ? max_fd : 1e-12;
  double rel = max_err / den, rel_bug = max_bug / den;
  printf("  %-26s rel err %.2e (a 5%% gradient bug would read %.2e)\n", what, rel, rel_bug);
  CHECK_MSG(rel < TOL, "%s: relative error %.3e over %g", what, rel, TOL);
  CHECK_MSG(rel_bug > TOL, "%s: a 5%% wrong gradient would pass (%.3e)", what, rel_bug);
  CHECK_MSG(max_fd > 1e-6, "%s: gradient is all zero, nothing was checked", what);
  return rel;
}

static void backward_with_R(op_case *oc) {
  oc->forward(oc->ctx);
  memcpy(oc->dout, oc->R, oc->n_out * sizeof(float));
  oc->backward(oc->ctx);
}

/* ---- matmul ------------------------------------------------------------ */
enum { MN = 5, MC = 7, MO = 6 };
typedef struct {
  float inp[MN * MC], w[MO * MC], b[MO], out[MN * MO], dout[MN * MO];
  float dinp[MN * MC], dw[MO * MC], db[MO];
} mm_ctx;
static void mm_f(void *p) {
  mm_ctx *c = p;
  rd_matmul_forward(c->out, c->inp, c->w, c->b, MN, MC, MO);
}
static void mm_b(void *p) {
  mm_ctx *c = p;
  rd_matmul_backward(c->dinp, c->dw, c->db, c->dout, c->inp, c->w, MN, MC, MO);
}
static void grad_matmul(void) {
  static mm_ctx c;
  float R[MN * MO];
  fill(c.inp, MN * MC, -1, 1);
  fill(c.w, MO * MC, -1, 1);
  fill(c.b, MO, -1, 1);
  fill(R, MN * MO, -1, 1);
  op_case oc = {mm_f, mm_b, &c, c.out, c.dout, R, MN * MO};
  backward_with_R(&oc);
  fd_check("matmul dinp", &oc, c.inp, c.dinp, MN * MC);
  fd_check("matmul dweight", &oc, c.w, c.dw, MO * MC);
  fd_check("matmul dbias", &oc, c.b, c.db, MO);
  /* backward accumulates: a second call doubles every gradient exactly */
  float keep = c.dw[3], keepb = c.db[2], keepi = c.dinp[4];
  mm_b(&c);
  CHECK(c.dw[3] == 2 * keep && c.db[2] == 2 * keepb && c.dinp[4] == 2 * keepi);
}

/* ---- rmsnorm ----------------------------------------------------------- */
enum { RN = 4, RC = 8 };
typedef struct {
  float inp[RN * RC], w[RC], out[RN * RC], rstd[RN], dout[RN * RC], dinp[RN * RC], dw[RC];
} rn_ctx;
static void rn_f(void *p) {
  rn_ctx *c = p;
  rd_rmsnorm_forward(c->out, c->rstd, c->inp, c->w, RN, RC, 1e-5f);
}
static void rn_b(void *p) {
  rn_ctx *c = p;
  rd_rmsnorm_backward(c->dinp, c->dw, c->dout, c->inp, c->w, c->rstd, RN, RC);
}
static void grad_rmsnorm(void) {
  static rn_ctx c;
  float R[RN * RC];
  fill(c.inp, RN * RC, -2, 2);
  fill(c.w, RC, 0.5f, 1.5f);
  fill(R, RN * RC, -1, 1);
  op_case oc = {rn_f, rn_b, &c, c.out, c.dout, R, RN * RC};
  backward_with_R(&oc);
  fd_check("rmsnorm dinp", &oc, c.inp, c.dinp, RN * RC);
  fd_check("rmsnorm dweight", &oc, c.w, c.dw, RC);
  /* forward value: row [3, 4] -> rstd = 1/sqrt(12.5 + eps) */
  float x[2] = {3, 4}, w[2] = {1, 2}, o[2], r;
  rd_rmsnorm_forward(o, &r, x, w, 1, 2, 0.0f);
  CHECK_NEAR(o[0], 3 / sqrt(12.5), 1e-6);
  CHECK_NEAR(o[1], 8 / sqrt(12.5), 1e-6);
}

/* ---- rope + attention -------------------------------------------------- */
enum { AB = 2, AT = 5, AH = 2, AD = 4, AQ = AB * AT * AH * 3 * AD, AO = AB * AT * AH * AD };
typedef struct {
  float qkv[AQ], tmp[AQ], out[AQ], dout[AQ], dqkv[AQ];
  float cos_t[AT * AD / 2], sin_t[AT * AD / 2];
  float att[AB * AH * AT * AT], work[AB * AH * AT * AT], aout[AO], adout[AO];
  int img_heads, img_keys; /* heads [0, img_heads) see keys [0, img_keys) only */
} at_ctx;
static void rope_f(void *p) {
  at_ctx *c = p;
  memcpy(c->out, c->qkv, sizeof c->qkv);
  rd_rope_forward(c->out, c->cos_t, c->sin_t, AB, AT, AH, AD, 0);
}
static void rope_b(void *p) {
  at_ctx *c = p;
  memcpy(c->tmp, c->dout, sizeof c->tmp);
  rd_rope_backward(c->tmp, c->cos_t, c->sin_t, AB, AT, AH, AD, 0);
  for (int i = 0; i < AQ; i++) c->dqkv[i] += c->tmp[i];
}
static void att_f(void *p) {
  at_ctx *c = p;
  rd_attention_forward(c->aout, c->att, c->qkv, AB, AT, AH, AD, c->img_heads, c->img_keys);
}
static void att_b(void *p) {
  at_ctx *c = p;
  rd_attention_backward(c->dqkv, c->work, c->adout, c->qkv, c->att, AB, AT, AH, AD);
}
static void grad_rope_attention(void) {
  static at_ctx c;
  float R[AQ];
  rd_rope_tables(c.cos_t, c.sin_t, AT, AD, 10.0); /* small theta: large angles */
  fill(c.qkv, AQ, -1, 1);
  fill(R, AQ, -1, 1);
  op_case oc = {rope_f, rope_b, &c, c.out, c.dout, R, AQ};
  memset(c.dqkv, 0, sizeof c.dqkv);
  backward_with_R(&oc);
  fd_check("rope dqkv", &oc, c.qkv, c.dqkv, AQ);
  /* position 0 is not rotated, v is never rotated */
  CHECK(c.out[0] == c.qkv[0] && c.out[2 * AD + 1] == c.qkv[2 * AD + 1]);

  fill(c.qkv, AQ, -2, 2);
  op_case oa = {att_f, att_b, &c, c.aout, c.adout, R, AO};
  memset(c.dqkv, 0, sizeof c.dqkv);
  backward_with_R(&oa);
  fd_check("attention dqkv", &oa, c.qkv, c.dqkv, AQ);
  /* no mask: the first query attends to the last key with p > 0, and every
   * row of probabilities sums to 1 */
  CHECK(c.att[AT - 1] > 0.0f);
  double s = 0;
  for (int j = 0; j < AT; j++) s += c.att[2 * AT + j];
  CHECK_NEAR(s, 1.0, 1e-6);

  /* head 0 restricted to keys [0, 2) (image heads): exact gradient, its
   * other probabilities 0, its rows summing to 1, head 1 unrestricted */
  c.img_heads = 1;
  c.img_keys = 2;
  memset(c.dqkv, 0, sizeof c.dqkv);
  backward_with_R(&oa);
  fd_check("attention dqkv, image heads", &oa, c.qkv, c.dqkv, AQ);
  for (int b = 0; b < AB; b++)
    for (int i = 0; i < AT; i++) {
      const float *r0 = c.att + ((size_t)(b * AH + 0) * AT + i) * AT;
      const float *r1 = c.att + ((size_t)(b * AH + 1) * AT + i) * AT;
      CHECK_NEAR(r0[0] + r0[1], 1.0, 1e-6);
      for (int j = 2; j < AT; j++) CHECK(r0[j] == 0.0f);
      CHECK(r1[AT - 1] > 0.0f);
    }
  c.img_heads = c.img_keys = 0;
}

/* ---- elementwise ------------------------------------------------------- */
enum { EN = 24 };
typedef struct {
  float a[EN], b[EN], out[EN], dout[EN], da[EN], db[EN];
} ew_ctx;
static void swiglu_f(void *p) {
  ew_ctx *c = p;
  rd_swiglu_forward(c->out, c->a, c->b, EN);
}
static void swiglu_b(void *p) {
  ew_ctx *c = p;
  rd_swiglu_backward(c->da, c->db, c->dout, c->a, c->b, EN);
}
static void gelu_f(void *p) {
  ew_ctx *c = p;
  rd_gelu_forward(c->out, c->a, EN);
}
static void gelu_b(void *p) {
  ew_ctx *c = p;
  rd_gelu_backward(c->da, c->dout, c->a, EN);
}
static void res_f(void *p) {
  ew_ctx *c = p;
  rd_residual_forward(c->out, c->a, c->b, EN);
}
static void res_b(void *p) {
  ew_ctx *c = p;
  rd_residual_backward(c->da, c->db, c->dout, EN);
}
static void grad_elementwise(void) {
  static ew_ctx c;
  float R[EN];
  fill(R, EN, -1, 1);
  fill(c.a, EN, -3, 3);
  fill(c.b, EN, -2, 2);
  op_case os = {swiglu_f, swiglu_b, &c, c.out, c.dout, R, EN};
  memset(c.da, 0, sizeof c.da);
  memset(c.db, 0, sizeof c.db);
  backward_with_R(&os);
  fd_check("swiglu dgate", &os, c.a, c.da, EN);
  fd_check("swiglu dup", &os, c.b, c.db, EN);

  op_case og = {gelu_f, gelu_b, &c, c.out, c.dout, R, EN};
  memset(c.da, 0, sizeof c.da);
  backward_with_R(&og);
  fd_check("gelu dinp", &og, c.a, c.da, EN);
  /* tanh approximation values (PyTorch approximate='tanh') */
  float x[3] = {-1.0f, 0.5f, 2.0f}, y[3];
  rd_gelu_forward(y, x, 3);
  CHECK_NEAR(y[0], -0.158808, 1e-5);
  CHECK_NEAR(y[1], 0.345714, 1e-5);
  CHECK_NEAR(y[2], 1.954598, 1e-5);

  op_case orr = {res_f, res_b, &c, c.out, c.dout, R, EN};
  memset(c.da, 0, sizeof c.da);
  memset(c.db, 0, sizeof c.db);
  backward_with_R(&orr);
  fd_check("residual da", &orr, c.a, c.da, EN);
  fd_check("residual db", &orr, c.b, c.db, EN);
}

/* ---- embeddings -------------------------------------------------------- */
enum { EV = 5, EC = 3, ENN = 7, PB = 3, PT = 4 };
typedef struct {
  float table[EV * EC], out[ENN * EC], dout[ENN * EC], dtable[EV * EC];
  int32_t ids[ENN];
  float x[PB * PT * EC], pos[PT * EC], px[PB * PT * EC], dpos[PT * EC];
} em_ctx;
static void emb_f(void *p) {
  em_ctx *c = p;
  memset(c->out, 0, sizeof c->out);
  rd_embedding_forward(c->out, c->ids, c->table, ENN, EC);
}
static void emb_b(void *p) {
  em_ctx *c = p;
  rd_embedding_backward(c->dtable, c->dout, c->ids, ENN, EC);
}
static void pos_f(void *p) {
  em_ctx *c = p;
  memcpy(c->px, c->x, sizeof c->x);
  rd_posemb_forward(c->px, c->pos, PB, PT, EC);
}
static void pos_b(void *p) {
  em_ctx *c = p;
  rd_posemb_backward(c->dpos, c->dout, PB, PT, EC);
}
static void grad_embeddings(void) {
  static em_ctx c;
  static const int32_t ids[ENN] = {2, -1, 0, 2, 4, -1, 2}; /* repeats and image slots */
  memcpy(c.ids, ids, sizeof ids);
  float R[PB * PT * EC];
  fill(R, PB * PT * EC, -1, 1);
  fill(c.table, EV * EC, -1, 1);
  op_case oe = {emb_f, emb_b, &c, c.out, c.dout, R, ENN * EC};
  backward_with_R(&oe);
  fd_check("embedding dtable", &oe, c.table, c.dtable, EV * EC);
  CHECK(c.dtable[1 * EC] == 0.0f && c.dtable[3 * EC + 2] == 0.0f); /* unused rows */
  CHECK(c.out[1 * EC] == 0.0f); /* id -1 leaves the row alone */

  fill(c.x, PB * PT * EC, -1, 1);
  fill(c.pos, PT * EC, -1, 1);
  op_case op = {pos_f, pos_b, &c, c.px, c.dout, R, PB * PT * EC};
  backward_with_R(&op);
  fd_check("posemb dpos", &op, c.pos, c.dpos, PT * EC);

  /* patches: 4x4 image, P = 2: patch 1 is the top-right 2x2 block */
  uint8_t img[4 * 4 * 3];
  for (int i = 0; i < 48; i++) img[i] = (uint8_t)(i * 5);
  float pt[4 * 12];
  rd_patchify(pt, img, 1, 4, 4, 2);
  /* patch 1, row 1, column 0, channel 2 = pixel (y 1, x 2) channel 2,
   * centred: x / 255 - 0.5 */
  CHECK_NEAR(pt[12 + 6 + 2], ((1 * 4 + 2) * 3 + 2) * 5 / 255.0 - 0.5, 1e-6);
  CHECK_NEAR(pt[3 * 12 + 11], 47 * 5 / 255.0 - 0.5, 1e-6);
  CHECK_NEAR(pt[0], -0.5, 0); /* black */
}

/* ---- cross-entropy ----------------------------------------------------- */
enum { XN = 6, XV = 6, XVP = 8 };
typedef struct {
  float logits[XN * XVP], lse[XN], w[XN], dlogits[XN * XVP], loss[1], dout[1];
  int32_t y[XN];
} xe_ctx;
static void xe_f(void *p) {
  xe_ctx *c = p;
  c->loss[0] = (float)rd_xent_forward(c->lse, c->logits, c->y, c->w, XN, XV, XVP);
}
static void xe_b(void *p) {
  xe_ctx *c = p;
  rd_xent_backward(c->dlogits, c->logits, c->lse, c->y, c->w, XN, XV, XVP);
}
static void grad_xent(void) {
  static xe_ctx c;
  static const int32_t y[XN] = {0, 5, 3, 3, -7 /* w = 0: never read */, 1};
  static const float w[XN] = {0.5f, 1.0f, 0.25f, 2.0f, 0.0f, 0.125f};
  memcpy(c.y, y, sizeof y);
  memcpy(c.w, w, sizeof w);
  fill(c.logits, XN * XVP, -3, 3);
  float R[1] = {1.0f};
  op_case ox = {xe_f, xe_b, &c, c.loss, c.dout, R, 1};
  backward_with_R(&ox);
  fd_check("xent dlogits", &ox, c.logits, c.dlogits, XN * XVP);
  for (int n = 0; n < XN; n++)
    for (int v = XV; v < XVP; v++) CHECK(c.dlogits[n * XVP + v] == 0.0f);
  /* value by hand: uniform logits over V=6 give CE = log 6 per row */
  float z[XVP] = {0}, lse;
  int32_t yy = 2;
  float ww = 3.0f;
  CHECK_NEAR(rd_xent_forward(&lse, z, &yy, &ww, 1, XV, XVP), 3.0 * log(6.0), 1e-6);
}

/* ---- optimizer, schedule, norm ------------------------------------------ */
static void adamw_by_hand(void) {
  float p[3] = {0.5f, -1.0f, 2.0f}, m[3] = {0}, v[3] = {0};
  const float g[3][3] = {{0.1f, -0.2f, 0.3f}, {0.05f, 0.1f, -0.4f}, {-0.2f, 0.0f, 0.1f}};
  const double lr = 0.01, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1, gs = 0.5;
  double P[3] = {0.5, -1.0, 2.0}, M[3] = {0}, V[3] = {0};
  for (int t = 1; t <= 3; t++) {
    rd_adamw_update(p, g[t - 1], m, v, 3, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd, t,
                    (float)gs);
    for (int i = 0; i < 3; i++) {
      double gi = g[t - 1][i] * gs;
      M[i] = b1 * M[i] + (1 - b1) * gi;
      V[i] = b2 * V[i] + (1 - b2) * gi * gi;
      double mh = M[i] / (1 - pow(b1, t)), vh = V[i] / (1 - pow(b2, t));
      P[i] = P[i] - lr * wd * P[i] - lr * mh / (sqrt(vh) + eps);
    }
    if (t == 1) /* step 1 moves each weight by lr * sign(g) after decay */
      CHECK_NEAR(p[0], 0.5 * (1 - lr * wd) - lr, 1e-6);
    for (int i = 0; i < 3; i++) CHECK_NEAR(p[i], P[i], 2e-6);
  }
}

static void lr_schedule_points(void) {
  CHECK_NEAR(rd_lr_schedule(1, 1.0f, 10, 110, 0.1f), 0.1, 1e-7);
  CHECK_NEAR(rd_lr_schedule(5, 1.0f, 10, 110, 0.1f), 0.5, 1e-7);
  CHECK_NEAR(rd_lr_schedule(10, 1.0f, 10, 110, 0.1f), 1.0, 1e-7);
  CHECK_NEAR(rd_lr_schedule(60, 1.0f, 10, 110, 0.1f), 0.55, 1e-6); /* half-way: mean */
  CHECK_NEAR(rd_lr_schedule(35, 1.0f, 10, 110, 0.1f), 0.1 + 0.9 * 0.5 * (1 + cos(0.78539816339744831)), 1e-6);
  CHECK_NEAR(rd_lr_schedule(110, 1.0f, 10, 110, 0.1f), 0.1, 1e-7);
  CHECK_NEAR(rd_lr_schedule(500, 1.0f, 10, 110, 0.1f), 0.1, 1e-7);
  /* no warmup: cosine from the first step on */
  CHECK_NEAR(rd_lr_schedule(1, 3e-4f, 0, 100, 0.0f), 3e-4 * 0.5 * (1 + cos(0.031415926535897934)), 1e-10);
}

static void norm_and_clip(void) {
  float x[2] = {3, 4};
  CHECK_NEAR(sqrt(rd_sumsq(x, 2)), 5.0, 1e-12);
  CHECK_NEAR(rd_clip_scale(10.0, 1.0), 0.1, 1e-7);
  CHECK_NEAR(rd_clip_scale(0.5, 1.0), 1.0, 0);
  CHECK_NEAR(rd_clip_scale(10.0, 0.0), 1.0, 0); /* clip off */
  size_t n = 100003;
  float *big = malloc(n * sizeof(float));
  fill(big, n, -1, 1);
  rd_ops_set_threads(1);
  double s1 = rd_sumsq(big, n);
  rd_ops_set_threads(2);
  double s2 = rd_sumsq(big, n);
  rd_ops_set_threads(1);
  CHECK(s1 == s2);
  double ref = 0;
  for (size_t i = 0; i < n; i++) ref += (double)big[i] * big[i];
  CHECK_NEAR(s1, ref, 1e-9 * ref);
  CHECK(isfinite(s1));
  big[777] = NAN;
  CHECK(!isfinite(rd_sumsq(big, n)));
  big[777] = INFINITY;
  CHECK(!isfinite(rd_sumsq(big, n)));
  free(big);
}

/* Attention, RMSNorm and bias gradients: same bits on 1 and 2 threads. */
static void thread_count_independent(void) {
  enum { B = 4, T = 33, H = 4, D = 8, C = H * D, N = B * T };
  float *qkv = malloc(sizeof(float) * N * 3 * C), *att = malloc(sizeof(float) * B * H * T * T),
        *work = malloc(sizeof(float) * B * H * T * T), *out = malloc(sizeof(float) * N * C),
        *dqkv[2], *dw[2], *db[2], w[C * C];
  fill(qkv, (size_t)N * 3 * C, -1, 1);
  fill(w, C * C, -1, 1);
  for (int r = 0; r < 2; r++) {
    rd_ops_set_threads(r + 1);
    dqkv[r] = calloc((size_t)N * 3 * C, sizeof(float));
    dw[r] = calloc(C * C, sizeof(float));
    db[r] = calloc(C, sizeof(float));
    rd_attention_forward(out, att, qkv, B, T, H, D, 1, 9);
    rd_attention_backward(dqkv[r], work, out, qkv, att, B, T, H, D);
    float rstd[N];
    rd_rmsnorm_forward(out, rstd, qkv, w, N, C, 1e-5f);
    rd_rmsnorm_backward(dqkv[r], dw[r], out, qkv, w, rstd, N, C);
    rd_matmul_backward(NULL, dw[r], db[r], out, qkv, w, N, C, C);
  }
  rd_ops_set_threads(1);
  CHECK(!memcmp(dqkv[0], dqkv[1], sizeof(float) * N * 3 * C));
  CHECK(!memcmp(dw[0], dw[1], sizeof(float) * C * C));
  CHECK(!memcmp(db[0], db[1], sizeof(float) * C));
  for (int r = 0; r < 2; r++) free(dqkv[r]), free(dw[r]), free(db[r]);
  free(qkv), free(att), free(work), free(out);
}

RD_TEST_MAIN("ops_grad", RD_CASE(grad_matmul), RD_CASE(grad_rmsnorm),
             RD_CASE(grad_rope_attention), RD_CASE(grad_elementwise), RD_CASE(grad_embeddings),
             RD_CASE(grad_xent), RD_CASE(adamw_by_hand), RD_CASE(lr_schedule_points),
             RD_CASE(norm_and_clip), RD_CASE(thread_count_independent))
