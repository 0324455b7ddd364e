/* Training-step benchmark of the CPU model, and the machine's sgemm rate.
 *
 *   train_step -c CONFIG [--threads N] [--steps N] [--warmup N] [--batch B] [--vocab V]
 *   train_step --sgemm N [--threads N] [--reps R]
 *   train_step -c CONFIG --memory [--batch B] [--vocab V]
 *
 * A step is what the trainer does (stages/train/train.c): zero the gradients,
 * forward, backward, gradient norm, clip, finiteness check, AdamW. The batch
 * is random (images, tokens, targets; every response position weighted), so
 * no data files are needed. Each mode prints one line of key=value pairs that
 * bench/report.py turns into the table.
 *
 * FLOPs per step are counted analytically (flops_per_step below): 2 per
 * multiply-add of every matrix product the step computes, forward and
 * backward, nothing else. For a linear layer of P = in x out weights applied
 * to n rows that is 2nP forward, 2nP for the input gradient and 2nP for the
 * weight gradient: 6nP (4nP for the patch embedding, whose input is data and
 * gets no gradient). With N = B*T sequence rows, Nv = B*Np image rows and
 * Nr = B*L response rows:
 *   LM blocks        n_layers * (6 N (4 d^2 + 3 d d_ff) + 12 B T^2 d)
 *   vision blocks    vision_layers * (6 Nv (4 Cv^2 + 3 Cv Fv) + 12 B Np^2 Cv)
 *   patch embedding  4 Nv (P*P*3) Cv
 *   projector        6 Nv (Cv d + d^2)
 *   LM head          6 Nr d Vp      (the padded vocabulary: those columns are computed)
 * Attention's 12 B T^2 d per layer: q k^T and P v forward (2 B T^2 d each), and
 * four products of the same size backward. Norms, RoPE, softmax, SwiGLU, the
 * loss and AdamW are elementwise and not counted (they are a few percent of
 * the arithmetic and none of it is matmul). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "io/core/clock.h"
#include "io/core/err.h"
#include "io/core/rng.h"
#include "model/ops.h"
#include "model/vlm.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double tower_flops(double B, double T, double C, double F, double layers) {
  double N = B * T;
  return layers * (6.0 * N * (4.0 * C * C + 3.0 * C * F) + 12.0 * B * T * T * C);
}

static double flops_per_step(const rd_vlm *m, int B) {
  const rd_model_cfg *c = &m->cfg;
  double Nv = (double)B * m->Np, Nr = (double)B * m->L, d = c->d_model;
  double f = tower_flops(B, m->T, d, c->d_ff, c->n_layers);
  f += 6.0 * Nr * d * m->Vp;
  f += 6.0 * Nv * (m->Din * d + d * d);
  if (m->feature_dim == 0) {
    f += tower_flops(B, m->Np, c->vision_d, c->vision_d_ff, c->vision_layers);
    f += 4.0 * Nv * m->patch_dim * c->vision_d;
  }
  return f;
}

/* The prompt is the config's instruction, one token per word (its ids are
 * irrelevant to the timing; only its length shapes the sequence). */
static int prompt_len(const char *s) {
  int n = 0, in = 0;
  for (; *s; s++) {
    int sp = *s == ' ' || *s == '\t';
    if (!sp && !in) n++;
    in = !sp;
  }
  return n;
}

static int bench_sgemm(int n, int threads, int reps) {
  openblas_set_num_threads(threads);
  size_t nn = (size_t)n * n;
  float *a = malloc(nn * sizeof(float)), *b = malloc(nn * sizeof(float)),
        *c = malloc(nn * sizeof(float));
  if (!a || !b || !c) {
    fprintf(stderr, "train_step: out of memory for %dx%d matrices\n", n, n);
    return 1;
  }
  rd_rng r;
  rd_rng_init(&r, 1, RD_RNG_INIT, 0, 0);
  for (size_t i = 0; i < nn; i++) {
    a[i] = (float)rd_rng_uniform(&r) - 0.5f;
    b[i] = (float)rd_rng_uniform(&r) - 0.5f;
  }
  double best = 1e30;
  for (int i = 0; i <= reps; i++) { /* the first call is warm-up */
    double t0 = rd_clock_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double dt = rd_clock_now() - t0;
    if (i > 0 && dt < best) best = dt;
  }
  printf("impl=sgemm n=%d threads=%d ms=%.3f gflops=%.2f\n", n, threads, best * 1e3,
         2.0 * n * nn / best * 1e-9);
  free(a);
  free(b);
  free(c);
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: train_step -c CONFIG [--threads N] [--steps N] [--warmup N] [--batch B]\n"
          "                  [--vocab V] [--memory]\n"
          "       train_step --sgemm N [--threads N] [--reps R]\n");
}

int main(int argc, char **argv) {
  const char *cfg_path = NULL;
  int threads = 1, steps = 3, warmup = 1, batch = 0, vocab = 60, sgemm_n = 0, reps = 5,
      memory = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--memory")) {
      memory = 1;
      continue;
    }
    if (!v) {
      usage();
      return 2;
    }
    i++;
    if (!strcmp(a, "-c")) cfg_path = v;
    else if (!strcmp(a, "--threads")) threads = atoi(v);
    else if (!strcmp(a, "--steps")) steps = atoi(v);
    else if (!strcmp(a, "--warmup")) warmup = atoi(v);
    else if (!strcmp(a, "--batch")) batch = atoi(v);
    else if (!strcmp(a, "--vocab")) vocab = atoi(v);
    else if (!strcmp(a, "--sgemm")) sgemm_n = atoi(v);
    else if (!strcmp(a, "--reps")) reps = atoi(v);
    else {
      usage();
      return 2;
    }
  }
  if (threads < 1 || steps < 1 || warmup < 0 || vocab < 5 || reps < 1) {
    usage();
    return 2;
  }
  if (sgemm_n > 0) return bench_sgemm(sgemm_n, threads, reps);
  if (!cfg_path) {
    usage();
    return 2;
  }

  rd_config cfg;
  if (rd_config_load(&cfg, cfg_path, NULL, 0) || rd_config_validate(&cfg)) {
    fprintf(stderr, "train_step: %s\n", rd_err_msg());
    return 1;
  }
  const int B = batch > 0 ? batch : cfg.train.batch_size, Tp = prompt_len(cfg.data.prompt);
  int32_t prompt[RD_CFG_STR];
  for (int i = 0; i < Tp; i++) prompt[i] = 4 + i % (vocab - 4); /* past the special ids */
  rd_ops_set_threads(threads);
  rd_vlm m;
  if (rd_vlm_init(&m, &cfg.model, vocab, prompt, Tp, B, 0, cfg.train.seed)) {
    fprintf(stderr, "train_step: %s\n", rd_err_msg());
    return 1;
  }
  if (memory) {
    size_t bp, bg, bo, ba;
    rd_vlm_memory(&m, &bp, &bg, &bo, &ba);
    printf("impl=memory config=%s B=%d params=%zu bytes_params=%zu bytes_grads=%zu "
           "bytes_opt=%zu bytes_acts=%zu\n",
           cfg_path, B, m.n_params, bp, bg, bo, ba);
    rd_vlm_free(&m);
    return 0;
  }

  const int S = cfg.model.image_size, L = m.L;
  size_t npix = (size_t)B * S * S * 3, nl = (size_t)B * L;
  uint8_t *images = malloc(npix);
  int32_t *x = malloc(nl * sizeof(int32_t)), *y = malloc(nl * sizeof(int32_t));
  float *w = malloc(nl * sizeof(float));
  double *dt = malloc((size_t)steps * sizeof(double)), *dc = malloc((size_t)steps * sizeof(double));
  if (!images || !x || !y || !w || !dt || !dc) {
    fprintf(stderr, "train_step: out of memory for the batch\n");
    return 1;
  }
  rd_rng r;
  rd_rng_init(&r, cfg.train.seed, RD_RNG_MASK, 0, 0);
  for (size_t i = 0; i < npix; i++) images[i] = (uint8_t)rd_rng_below(&r, 256);
  for (size_t i = 0; i < nl; i++) {
    x[i] = (int32_t)rd_rng_below(&r, (uint32_t)vocab);
    y[i] = (int32_t)rd_rng_below(&r, (uint32_t)vocab);
    w[i] = 1.0f / (float)nl;
  }
  rd_batch b = {.B = B, .images = images, .x = x, .y = y, .w = w};
  rd_adamw_cfg ac = {(float)cfg.train.beta1, (float)cfg.train.beta2, (float)cfg.train.adam_eps,
                     (float)cfg.train.weight_decay};
  float loss = 0.0f;
  for (int s = 1; s <= warmup + steps; s++) {
    double t0 = rd_clock_now(), c0 = rd_clock_cpu();
    rd_vlm_zero_grad(&m);
    if (rd_vlm_forward(&m, &b, &loss) || rd_vlm_backward(&m)) {
      fprintf(stderr, "train_step: %s\n", rd_err_msg());
      return 1;
    }
    double gn = 0;
    rd_vlm_grad_norm(&m, &gn); /* one process: no communication to fail */
    float scale = rd_clip_scale(gn, cfg.train.grad_clip);
    if (isfinite(gn))
      rd_vlm_adamw_step(&m, &ac, s,
                        rd_lr_schedule(s, (float)cfg.train.lr, cfg.train.warmup,
                                       cfg.base.steps, (float)cfg.train.min_lr_frac),
                        scale);
    if (s > warmup) {
      dt[s - warmup - 1] = rd_clock_now() - t0;
      dc[s - warmup - 1] = rd_clock_cpu() - c0;
    }
  }
  qsort(dt, (size_t)steps, sizeof(double), cmp_double);
  qsort(dc, (size_t)steps, sizeof(double), cmp_double);
  double flops = flops_per_step(&m, B);
  printf("impl=rediff config=%s threads=%d B=%d T=%d tokens=%d params=%zu flops=%.6e "
         "ms=%.3f ms_median=%.3f cpu_ms=%.3f steps=%d loss=%.5f\n",
         cfg_path, threads, B, m.T, B * m.T, m.n_params, flops, dt[0] * 1e3,
         dt[steps / 2] * 1e3, dc[0] * 1e3, steps, loss);
  free(images);
  free(x);
  free(y);
  free(w);
  free(dt);
  free(dc);
  rd_vlm_free(&m);
  return 0;
}
