#include "stages/train/train.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/clock.h"
#include "io/core/err.h"
#include "data/scene.h"
#include "io/core/fs.h"
#include "model/ops.h"
#include "mpi/check.h"
#include "mpi/coll.h"
#include "stages/run/infer.h"
#include "stages/run/rundir.h"
#include "stages/run/signals.h"

/* Gradient all-reduce bucket: large enough to amortise a message, small
 * enough that the first buckets travel while backward still computes the
 * rest; a few in flight at once (mpi/coll.c says why not all). */
#define RD_GRAD_BUCKET (1u << 20)
#define RD_GRAD_INFLIGHT 4

static int grads_ready(void *ctx, size_t from) { return rd_coll_buckets_ready(ctx, from); }

static int ckpt_table(rd_trainer *t, int with_moments) {
  if (!t->ct) {
    rd_vlm_tensors(&t->model, &t->n_ct);
    t->ct = rd_calloc((size_t)t->n_ct, sizeof *t->ct, "the checkpoint table");
    if (!t->ct) return RD_ENOMEM;
  }
  rd_infer_ckpt_table(&t->model, with_moments, t->ct);
  return RD_OK;
}

static void fill_meta(const rd_trainer *t, rd_ckpt_meta *meta, const char *yaml, double loss) {
  memset(meta, 0, sizeof *meta);
  snprintf(meta->stage, sizeof meta->stage, "%s", t->spec.stage);
  meta->round = t->spec.round;
  meta->step = t->step;
  meta->epoch = rd_loader_epoch(&t->loader, t->step);
  meta->cursor = (t->step * t->loader.batch) % t->loader.n;
  meta->seed = t->env->cfg.train.seed;
  meta->bad_steps = t->bad_steps;
  meta->loss = loss;
  meta->vocab_hash = rd_vocab_hash(&t->env->vocab);
  meta->config_hash = rd_config_hash(&t->env->cfg);
  meta->config_yaml = yaml;
}

static int save(rd_trainer *t, double loss) {
  char *yaml = NULL;
  RD_TRY(rd_config_to_yaml(&t->env->cfg, &yaml));
  rd_ckpt_meta meta;
  fill_meta(t, &meta, yaml, loss);
  char path[RD_PATH_MAX];
  double t0 = rd_clock_now();
  /* Replicas (dp copies, and the tensors every tp rank holds whole) must
   * be bitwise equal; a checkpoint would otherwise keep one rank's copy
   * and hide the drift. */
  uint64_t h = 0;
  int s = rd_vlm_params_hash(&t->model, &h);
  if (s == RD_OK) s = rd_grid_check_same(&t->env->grid, h, "the model (its replicas drifted apart)");
  if (s == RD_OK) s = ckpt_table(t, 1);
  if (s == RD_OK)
    s = rd_ckpt_save(t->ckpt_dir, t->ct, t->n_ct, &meta, t->env->cfg.train.keep, t->env->grid.world.mpi, path,
                     sizeof path);
  free(yaml);
  if (s == RD_OK && t->env->is_root)
    fprintf(stderr, "%s: step %" PRId64 ": checkpoint %s (%.2f s)\n", t->spec.stage, t->step, path,
            rd_clock_now() - t0);
  return s;
}

static int open_data(rd_trainer *t) {
  RD_TRY(rd_stage_open_data(t->env, "train", &t->train));
  return rd_stage_open_data(t->env, "eval", &t->eval);
}

/* The perception loss needs a head of ShapesCap's classes, scenes in the
 * shards and a patch grid that divides into the scene's cells. */
static int perception_setup(rd_trainer *t) {
  const rd_config *cfg = &t->env->cfg;
  const int g = cfg->model.image_size / cfg->model.patch;
  if (cfg->model.cell_classes != RD_CELL_CLASSES)
    return rd_err(RD_EINVAL,
                  "%s.perception is %g but model.cell_classes is %d: the perception loss classifies ShapesCap's "
                  "cells into %d classes (set model.cell_classes: %d, or %s.perception: 0)",
                  t->spec.stage, t->spec.perception, cfg->model.cell_classes, RD_CELL_CLASSES, RD_CELL_CLASSES,
                  t->spec.stage);
  if (t->train.info.scene_k <= 1 || t->train.info.scene_f != RD_SCENE_FIELDS)
    return rd_err(RD_EINVAL,
                  "%s.perception is %g but the training shards have no ShapesCap /scenes to take the classes from "
                  "(set %s.perception: 0 for data without scenes)",
                  t->spec.stage, t->spec.perception, t->spec.stage);
  if (g % RD_GRID)
    return rd_err(RD_EINVAL,
                  "%s.perception needs a patch grid that divides into ShapesCap's %d x %d cells; model.image_size "
                  "%d / model.patch %d gives %d x %d",
                  t->spec.stage, RD_GRID, RD_GRID, cfg->model.image_size, cfg->model.patch, g, g);
  RD_ALLOC(t->cells, (size_t)t->micro * t->model.Np, "perception classes");
  return RD_OK;
}

static int setup(rd_trainer *t) {
  rd_stage_env *env = t->env;
  const rd_config *cfg = &env->cfg;
  RD_TRY(open_data(t));
  int dp = env->grid.dp_size;
  t->accum = cfg->train.grad_accum;
  t->micro = cfg->train.batch_size / (dp * t->accum);
  if (t->micro < 1 || t->micro * dp * t->accum != cfg->train.batch_size)
    return rd_err(RD_EINVAL, "train.batch_size %d is not a multiple of dp (%d) x train.grad_accum (%d)",
                  cfg->train.batch_size, dp, t->accum);
  RD_TRY(rd_loader_init(&t->loader, t->train.n_total, cfg->train.batch_size, cfg->train.seed));
  int32_t prompt[64];
  int n_prompt;
  RD_TRY(rd_stage_prompt(env, prompt, &n_prompt));
  RD_TRY(rd_vlm_init_tp(&t->model, &cfg->model, rd_vocab_size(&env->vocab), prompt, n_prompt, t->micro, 0,
                        cfg->train.seed, &env->grid.tp));
  RD_TRY(rd_shard_batch_init(&t->data, &t->train.info, t->micro));
  /* The probe reads the samples of the held-out loss, held in memory with
   * their image-swapped copies (stages/eval/evalset.h). */
  int64_t n_probe = (int64_t)cfg->train.eval_batches * cfg->train.batch_size;
  if (n_probe > t->eval.n_total) n_probe = t->eval.n_total;
  if (cfg->train.eval_every > 0 && n_probe >= 2) {
    int64_t b, cnt;
    RD_TRY(rd_shardset_slice(n_probe, env->grid.dp_rank, env->grid.dp_size, &b, &cnt));
    RD_TRY(rd_evalset_load(&t->probe, &t->eval, n_probe, b, cnt));
  }
  const int L = cfg->model.gen_len;
  RD_ALLOC(t->x, (size_t)t->micro * L, "batch inputs");
  RD_ALLOC(t->y, (size_t)t->micro * L, "batch targets");
  RD_ALLOC(t->w, (size_t)t->micro * L, "batch weights");
  RD_ALLOC(t->idx, (size_t)t->micro, "batch indices");
  RD_ALLOC(t->types, (size_t)t->micro * L, "token types");
  RD_ALLOC(t->rows, (size_t)t->micro, "batch rows");
  if (t->spec.perception > 0) RD_TRY(perception_setup(t));
  RD_TRY(rd_ckpt_dir_path(t->ckpt_dir, sizeof t->ckpt_dir, cfg->run_dir, t->spec.stage, t->spec.round));
  if (env->is_root) {
    size_t bp, bg, bo, ba;
    rd_vlm_memory(&t->model, &bp, &bg, &bo, &ba);
    char split[96] = "";
    if (env->grid.tp_size > 1)
      snprintf(split, sizeof split, " (%zu on each of %d tensor-parallel ranks)", t->model.n_local,
               env->grid.tp_size);
    fprintf(stderr,
            "%s: %zu parameters%s; memory per rank: params %.2f MiB, grads %.2f MiB, optimizer %.2f MiB, "
            "activations %.2f MiB (micro-batch %d)\n",
            t->spec.stage, t->model.n_params, split, bp / 1048576.0, bg / 1048576.0, bo / 1048576.0,
            ba / 1048576.0, t->micro);
  }
  return RD_OK;
}

/* Resume from this stage's own checkpoint, else start from init_from's
 * final parameters (fresh optimizer), else from the seeded init. */
static int restore(rd_trainer *t, int *resumed) {
  rd_ckpt_meta meta;
  memset(&meta, 0, sizeof meta);
  meta.vocab_hash = rd_vocab_hash(&t->env->vocab);
  char path[RD_PATH_MAX];
  RD_TRY(ckpt_table(t, 1));
  double t0 = rd_clock_now();
  int s = rd_ckpt_load_latest(t->ckpt_dir, t->ct, t->n_ct, &meta, t->env->grid.world.mpi, path, sizeof path);
  RD_TRY(s);
  *resumed = s == 0;
  if (s == 0) {
    t->step = meta.step;
    t->bad_steps = meta.bad_steps;
    rd_ckpt_meta_free(&meta);
    if (t->env->is_root)
      fprintf(stderr, "%s: resuming from %s at step %" PRId64 " (%.2f s)\n", t->spec.stage, path, t->step,
              rd_clock_now() - t0);
    return RD_OK;
  }
  if (!t->spec.init_from) return RD_OK;
  char dir[RD_PATH_MAX];
  long long from_step = 0;
  RD_TRY(rd_run_path(dir, sizeof dir, t->env->cfg.run_dir, t->spec.init_from));
  s = rd_fs_isdir(dir) ? rd_infer_load(&t->model, t->env, dir, path, sizeof path, &from_step) : 1;
  RD_TRY(s);
  if (s == 1) return rd_err(RD_EINVAL, "%s has no checkpoint to start %s from: run that stage first", dir, t->spec.stage);
  if (t->env->is_root) fprintf(stderr, "%s: starting from %s (step %lld)\n", t->spec.stage, path, from_step);
  return RD_OK;
}

static rd_batch_ctx batch_ctx(const rd_trainer *t, int64_t step) {
  rd_batch_ctx c;
  c.seed = t->env->cfg.train.seed;
  c.step = step;
  c.L = t->env->cfg.model.gen_len;
  c.mask_id = RD_TOK_MASK;
  c.batch_size = t->env->cfg.train.batch_size;
  return c;
}

/* The perception classes of the n samples of the data batch, from their
 * scenes (checked in setup: the shards have /scenes). */
static int cell_classes(rd_trainer *t, int n) {
  const rd_shard_info *in = &t->train.info;
  const int g = t->env->cfg.model.image_size / t->env->cfg.model.patch, Np = t->model.Np;
  for (int j = 0; j < n; j++) {
    rd_scene s;
    int st = rd_scene_unpack(t->data.scenes + (size_t)j * in->scene_k * in->scene_f, in->scene_k - 1, &s);
    if (st != RD_OK)
      return rd_err_wrap(st, "training sample %" PRId64 " (sample id %" PRId64 "), its scene", t->idx[j],
                         t->data.sample_id[j]);
    RD_TRY(rd_scene_cell_classes(&s, g, t->cells + (size_t)j * Np));
  }
  return RD_OK;
}

/* Reads samples idx[0..n) of set into the data batch and builds x, y, w
 * with build. */
static int fill(rd_trainer *t, rd_shardset *set, const rd_batch_ctx *c, int n, int eval, rd_build_fn build) {
  const int L = c->L;
  for (int j = 0; j < n; j++) RD_TRY(rd_shardset_read(set, t->idx[j], &t->data, j));
  for (int j = 0; j < n; j++)
    RD_TRY(build(t, c, &t->data, j, eval, t->x + (size_t)j * L, t->y + (size_t)j * L, t->w + (size_t)j * L));
  if (!eval && t->cells) RD_TRY(cell_classes(t, n));
  return RD_OK;
}

/* Adds one micro-batch's losses: loss[0] the stage's objective, loss[1] the
 * perception loss (training steps with spec.perception > 0 only). */
static int forward_backward(rd_trainer *t, int n, int backward, double loss[2]) {
  const int with_cells = backward && t->cells;
  const float cell_w =
      with_cells ? (float)(t->spec.perception / ((double)t->model.Np * t->env->cfg.train.batch_size)) : 0.0f;
  rd_batch b = {n, t->data.images, NULL, t->x, t->y, t->w, with_cells ? t->cells : NULL, cell_w};
  float l;
  RD_TRY(rd_vlm_forward(&t->model, &b, &l));
  loss[0] += l;
  loss[1] += t->model.cell_loss;
  return backward ? rd_vlm_backward(&t->model) : RD_OK;
}

int rd_train_eval_loss(rd_trainer *t, double *loss) {
  const rd_config *cfg = &t->env->cfg;
  int64_t total = (int64_t)cfg->train.eval_batches * cfg->train.batch_size;
  if (total > t->eval.n_total) total = t->eval.n_total;
  int G = t->micro * t->env->grid.dp_size;
  rd_batch_ctx c = batch_ctx(t, 0);
  /* The mean Eq. 1 loss over the held-out samples, whatever the stage's own
   * objective, so the curves of all stages are comparable; the noise of
   * chunk k is keyed by k, so every evaluation sees the same masks. */
  c.batch_size = (int)total;
  double sum[2] = {0, 0};
  for (int64_t first = 0, k = 0; first < total; first += G, k++) {
    int64_t len = total - first < G ? total - first : G, b, cnt;
    RD_TRY(rd_shardset_slice(len, t->env->grid.dp_rank, t->env->grid.dp_size, &b, &cnt));
    if (cnt == 0) continue;
    for (int64_t j = 0; j < cnt; j++) t->idx[j] = first + b + j;
    c.step = k;
    RD_TRY(fill(t, &t->eval, &c, (int)cnt, 1, rd_build_mask));
    RD_TRY(forward_backward(t, (int)cnt, 0, sum));
  }
  RD_TRY(rd_coll_allreduce_sum_f64(&t->env->grid.dp, sum, 1));
  *loss = sum[0];
  return RD_OK;
}

/* RD_TEST_NAN_STEPS="5,6,7" poisons the loss of those steps, so the tests
 * can exercise the non-finite path without a diverging model. */
static int poisoned(int64_t step) {
  const char *list = getenv("RD_TEST_NAN_STEPS");
  for (const char *p = list; p && *p;) {
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p) break;
    if (v == step) return 1;
    p = *end ? end + 1 : end;
  }
  return 0;
}

/* One optimizer step; *applied = 0 when it was skipped as non-finite. */
static int train_step(rd_trainer *t, double *loss, double *perception, double *gnorm, float *lr, int *applied) {
  const rd_config *cfg = &t->env->cfg;
  rd_batch_ctx c = batch_ctx(t, t->step);
  const int per_accum = cfg->train.batch_size / t->accum;
  rd_vlm_zero_grad(&t->model);
  double sum[2] = {0, 0};
  /* Weights carry the 1/B of the global batch, so summing over dp ranks
   * gives the global mean loss and gradient. The sum of each bucket starts
   * during the last micro-batch's backward, as soon as its gradients are
   * final. */
  rd_coll_buckets grad_sum;
  RD_TRY(rd_coll_buckets_begin(&grad_sum, &t->env->grid.dp, t->model.grads, t->model.n_floats, RD_GRAD_BUCKET,
                               RD_GRAD_INFLIGHT));
  for (int a = 0; a < t->accum; a++) {
    int first = a * per_accum + t->env->grid.dp_rank * t->micro;
    if (t->spec.pick) RD_TRY(t->spec.pick(t, t->step, first, t->micro, t->idx, t->rows));
    else RD_TRY(rd_loader_slots(&t->loader, t->step, first, t->micro, t->idx));
    RD_TRY(fill(t, &t->train, &c, t->micro, 0, t->spec.build));
    if (a == t->accum - 1 && grad_sum.active) {
      t->model.grads_ready = grads_ready;
      t->model.grads_ready_ctx = &grad_sum;
    }
    int s = forward_backward(t, t->micro, 1, sum);
    t->model.grads_ready = NULL;
    RD_TRY(s);
  }
  RD_TRY(rd_coll_buckets_end(&grad_sum));
  if (t->env->grid.dp_size > 1) RD_TRY(rd_coll_allreduce_sum_f64(&t->env->grid.dp, sum, 2));
  if (poisoned(t->step + 1)) sum[0] = NAN;
  *loss = sum[0];
  *perception = sum[1];
  RD_TRY(rd_vlm_grad_norm(&t->model, gnorm));
  *lr = rd_lr_schedule((int)t->step + 1, (float)cfg->train.lr, cfg->train.warmup, t->spec.steps,
                       (float)cfg->train.min_lr_frac);
  /* The norm is non-finite when any gradient on any rank is. */
  *applied = isfinite(sum[0]) && isfinite(sum[1]) && isfinite(*gnorm);
  if (!*applied) return RD_OK;
  rd_adamw_cfg ac = {(float)cfg->train.beta1, (float)cfg->train.beta2, (float)cfg->train.adam_eps,
                     (float)cfg->train.weight_decay};
  return rd_vlm_adamw_step(&t->model, &ac, (int)t->step + 1, *lr, rd_clip_scale(*gnorm, cfg->train.grad_clip));
}

/* A stop request reaches the ranks at slightly different times; they agree
 * on it at each step so all checkpoint the same step. */
/* Whether any rank was asked to stop: 0, a signal number (the largest any
 * rank caught), or -1 for --stop-at. */
static int stop_agreed(const rd_trainer *t) {
  int64_t v[2] = {rd_signals_stop_requested(), t->spec.stop_at > 0 && t->step >= t->spec.stop_at};
  if (t->env->grid.size > 1) {
    /* the largest signal number, by summing one-hot counts of the three */
    int64_t c[4] = {v[0] == SIGINT, v[0] == SIGUSR1, v[0] == SIGTERM, v[1]};
    rd_coll_allreduce_sum_i64(&t->env->grid.world, c, 4);
    v[0] = c[2] ? SIGTERM : c[1] ? SIGUSR1 : c[0] ? SIGINT : 0;
    v[1] = c[3];
  }
  return v[0] ? (int)v[0] : v[1] ? -1 : 0;
}

int rd_train_eval_probe(rd_trainer *t, rd_probe_counts *image, rd_probe_counts *blind) {
  memset(image, 0, sizeof *image);
  memset(blind, 0, sizeof *blind);
  const rd_vocab *v = &t->env->vocab;
  int s = t->probe.n_set ? rd_evalset_probe(&t->probe, v, 0, t->micro, rd_infer_predict, &t->model, image) : RD_OK;
  if (s == RD_OK && t->probe.n_set) s = rd_evalset_probe(&t->probe, v, 1, t->micro, rd_infer_predict, &t->model, blind);
  RD_TRY(s);
  RD_TRY(rd_coll_allreduce_sum_i64(&t->env->grid.dp, (int64_t *)image, RD_PROBE_NCOUNTS));
  return rd_coll_allreduce_sum_i64(&t->env->grid.dp, (int64_t *)blind, RD_PROBE_NCOUNTS);
}

/* The held-out loss and probe: "probe_colour" with the images,
 * "probe_colour_blind" with others' (kinds the samples never ask are left
 * out). */
static int log_eval(rd_trainer *t) {
  double el;
  rd_probe_counts img, bl;
  RD_TRY(rd_train_eval_loss(t, &el));
  RD_TRY(rd_train_eval_probe(t, &img, &bl));
  if (!t->env->is_root) return RD_OK;
  rd_kv kv[1 + 2 * RD_PROBE_KINDS];
  char keys[2 * RD_PROBE_KINDS][32];
  int n = 0;
  kv[n++] = rd_kv_num("loss", el);
  for (int k = 0; k < RD_PROBE_KINDS; k++) {
    if (img.total[k] == 0) continue;
    snprintf(keys[2 * k], sizeof keys[0], "probe_%s", rd_probe_kind_name(k));
    snprintf(keys[2 * k + 1], sizeof keys[0], "probe_%s_blind", rd_probe_kind_name(k));
    kv[n++] = rd_kv_num(keys[2 * k], rd_probe_accuracy(&img, k));
    kv[n++] = rd_kv_num(keys[2 * k + 1], rd_probe_accuracy(&bl, k));
  }
  return rd_metrics_write(&t->log, t->step, "eval", kv, n);
}

static int loop(rd_trainer *t) {
  const rd_config *cfg = &t->env->cfg;
  const int64_t steps = t->spec.steps;
  const double tokens_per_step = (double)cfg->train.batch_size * t->model.T;
  rd_progress prog;
  rd_progress_init(&prog, t->spec.stage, steps, rd_isatty(stderr));
  prog.start = t->step;
  if (cfg->train.log_every > 0) prog.log_every = cfg->train.log_every;
  double t_start = rd_clock_now(), loss = NAN;
  if (t->step == 0 && cfg->train.eval_every > 0) RD_TRY(log_eval(t));
  /* A stage of 0 steps still leaves its model: the one it started from. */
  if (steps == 0) return save(t, loss);
  while (t->step < steps) {
    double t0 = rd_clock_now(), gnorm, perception;
    float lr;
    int applied;
    /* This step's communication alone: the counters are per rank and local. */
    rd_comm_stats cdp, ctp;
    rd_comm_stats_reset(&t->env->grid.dp);
    rd_comm_stats_reset(&t->env->grid.tp);
    RD_TRY(train_step(t, &loss, &perception, &gnorm, &lr, &applied));
    t->step++;
    double dt = rd_clock_now() - t0;
    rd_comm_stats_get(&t->env->grid.dp, &cdp);
    rd_comm_stats_get(&t->env->grid.tp, &ctp);
    if (!applied) {
      t->bad_steps++;
      t->skipped++;
      if (t->env->is_root) {
        fprintf(stderr, "%s: step %" PRId64 ": non-finite loss or gradient, update skipped (%" PRId64 " in a row)\n",
                t->spec.stage, t->step, t->bad_steps);
        RD_TRY(RD_METRICS(&t->log, t->step, "skip", rd_kv_num("loss", loss), rd_kv_num("grad_norm", gnorm),
                          rd_kv_int("in_a_row", t->bad_steps)));
      }
      if (t->bad_steps >= cfg->train.max_bad_steps)
        return rd_err(RD_ENUM,
                      "%s: %" PRId64 " non-finite steps in a row (train.max_bad_steps); stopped, the last checkpoint "
                      "in %s is intact",
                      t->spec.stage, t->bad_steps, t->ckpt_dir);
    } else {
      t->bad_steps = 0;
    }
    if (t->env->is_root && applied) {
      rd_kv kv[] = {rd_kv_num("loss", loss), rd_kv_num("lr", lr), rd_kv_num("grad_norm", gnorm),
                    rd_kv_num("tokens_per_s", tokens_per_step / dt), rd_kv_num("step_s", dt),
                    rd_kv_num("elapsed_s", rd_clock_now() - t_start), rd_kv_num("comm_dp_s", cdp.seconds),
                    rd_kv_int("comm_dp_bytes", cdp.bytes), rd_kv_num("comm_tp_s", ctp.seconds),
                    rd_kv_int("comm_tp_bytes", ctp.bytes), rd_kv_num("perception", perception)};
      RD_TRY(rd_metrics_write(&t->log, t->step, "train", kv, (int)(sizeof kv / sizeof kv[0]) - !t->cells));
    }
    if (t->env->is_root) {
      char extra[64];
      snprintf(extra, sizeof extra, "loss %.4f", loss);
      rd_progress_update(&prog, t->step, extra);
    }
    int last = t->step == steps, stop = stop_agreed(t);
    if (cfg->train.eval_every > 0 && (t->step % cfg->train.eval_every == 0 || last)) RD_TRY(log_eval(t));
    if (last || stop || (cfg->train.ckpt_every > 0 && t->step % cfg->train.ckpt_every == 0)) RD_TRY(save(t, loss));
    if (stop && !last) {
      if (t->env->is_root) rd_progress_end(&prog, t->step, "stopped");
      if (stop < 0)
        return rd_err(RD_ESTOP, "%s: stopped at step %" PRId64 " (--stop-at) after a checkpoint; run it again to resume",
                      t->spec.stage, t->step);
      return rd_err(RD_ESTOP, "%s: stopped by %s at step %" PRId64 " after a checkpoint; run it again to resume",
                    t->spec.stage, rd_signals_name(stop), t->step);
    }
  }
  if (t->env->is_root) {
    char extra[64];
    snprintf(extra, sizeof extra, "loss %.4f", loss);
    rd_progress_end(&prog, t->step, extra);
  }
  /* A stage whose last steps were all skipped ends on a model its own loss
   * could not score: marked done, the next stages would build on it. The
   * count comes from the checkpoint too, so a resume at the end says the
   * same. */
  if (t->bad_steps > 0)
    return rd_err(RD_ENUM,
                  "%s: the last %" PRId64 " steps (to step %" PRId64 ") were non-finite and skipped; the stage is not "
                  "marked done: lower train.lr (or fix the data) and resume from a checkpoint in %s older than these "
                  "steps",
                  t->spec.stage, t->bad_steps, t->step, t->ckpt_dir);
  const float *p = t->model.params;
  for (size_t i = 0; i < t->model.n_floats; i++)
    if (!isfinite(p[i]))
      return rd_err(RD_ENUM, "%s: parameter %zu of the final model is not finite; the stage is not marked done",
                    t->spec.stage, i);
  return RD_OK;
}

static void trainer_free(rd_trainer *t) {
  rd_metrics_close(&t->log);
  free(t->ct);
  free(t->idx);
  free(t->types);
  free(t->rows);
  free(t->cells);
  free(t->x);
  free(t->y);
  free(t->w);
  rd_shard_batch_free(&t->data);
  rd_evalset_free(&t->probe);
  rd_vlm_free(&t->model);
  rd_loader_free(&t->loader);
  rd_shardset_close(&t->train);
  rd_shardset_close(&t->eval);
}

int rd_train_run(rd_stage_env *env, const rd_train_spec *spec) {
  rd_trainer t;
  memset(&t, 0, sizeof t);
  t.env = env;
  t.spec = *spec;
  int resumed = 0;
  int s = rd_signals_install();
  if (s == RD_OK) s = rd_stage_agree(env, setup(&t));
  if (s == RD_OK) s = rd_stage_agree(env, restore(&t, &resumed));
  char log_path[RD_PATH_MAX], rel[256];
  if (spec->round > 0) snprintf(rel, sizeof rel, "logs/%s_r%d.jsonl", spec->stage, spec->round);
  else snprintf(rel, sizeof rel, "logs/%s.jsonl", spec->stage);
  if (s == RD_OK) s = rd_run_path(log_path, sizeof log_path, env->cfg.run_dir, rel);
  if (s == RD_OK && env->is_root) {
    s = resumed ? rd_metrics_truncate(log_path, t.step) : RD_OK;
    if (s == RD_OK) s = rd_metrics_open(&t.log, log_path, spec->stage, resumed);
  }
  if (s == RD_OK) s = rd_stage_agree(env, s);
  if (s == RD_OK) s = loop(&t);
  if (s == RD_OK && env->is_root) s = rd_done_write(env->cfg.run_dir, spec->stage, spec->round, rd_config_hash(&env->cfg));
  trainer_free(&t);
  return s;
}
