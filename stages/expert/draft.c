/* `rediff draft --round R`: the model writes captions of training images at
 * several step counts (the paper's 128/32/16 steps for 128 tokens), in refine
 * mode, for the expert to revise. Every dp rank decodes its slice of the
 * drafted samples and writes drafts/r<R>/rank<k>.h5. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/clock.h"
#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/core/rng.h"
#include "io/drafts.h"
#include "io/metrics.h"
#include "io/shard.h"
#include "model/decode.h"
#include "stages/commands.h"
#include "stages/run/infer.h"
#include "stages/run/rundir.h"

/* The training samples drafted in a round: a seeded choice of
 * draft.n_samples ids, another one each round. */
static int draft_ids(const rd_config *cfg, int64_t n_train, int round, int64_t *ids) {
  int64_t *all = rd_malloc((size_t)n_train * sizeof *all, "the draft sample order");
  if (!all) return RD_ENOMEM;
  for (int64_t i = 0; i < n_train; i++) all[i] = i;
  rd_rng r;
  rd_rng_init(&r, cfg->train.seed, RD_RNG_DRAFT, (uint64_t)round, 0);
  rd_rng_shuffle(&r, all, n_train);
  int64_t n = cfg->draft.n_samples;
  memcpy(ids, all, (size_t)n * sizeof *ids);
  free(all);
  /* Sorted, so each rank reads its shard rows in order. */
  for (int64_t i = 1; i < n; i++)
    for (int64_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
      int64_t t = ids[j];
      ids[j] = ids[j - 1];
      ids[j - 1] = t;
    }
  return RD_OK;
}

/* The model a round drafts with: Stage I's for round 1, else the previous round's. */
int rd_round_model(int round, char *rel, size_t n) {
  int len = round <= 1 ? snprintf(rel, n, "ckpt/stage1") : snprintf(rel, n, "ckpt/stage2_r%d", round - 1);
  return len > 0 && (size_t)len < n ? RD_OK : rd_err(RD_EINVAL, "round %d: path too long", round);
}

static int run(rd_stage_env *env, int round) {
  const rd_config *cfg = &env->cfg;
  const int L = cfg->model.gen_len, batch = cfg->eval.batch;
  rd_shardset train;
  memset(&train, 0, sizeof train);
  rd_vlm model;
  memset(&model, 0, sizeof model);
  rd_drafts out;
  memset(&out, 0, sizeof out);
  rd_shard_batch data;
  memset(&data, 0, sizeof data);
  int64_t *ids = NULL;
  int32_t *tokens = NULL;
  float *margin = NULL;
  char rel[256], ckpt[RD_PATH_MAX], path[RD_PATH_MAX], loaded[RD_PATH_MAX];
  int s = rd_stage_open_data(env, "train", &train);
  if (s == RD_OK && cfg->draft.n_samples > train.n_total)
    s = rd_err(RD_EINVAL, "draft.n_samples %d is more than the %" PRId64 " training samples", cfg->draft.n_samples,
               train.n_total);
  if (s == RD_OK) s = rd_round_model(round, rel, sizeof rel);
  if (s == RD_OK) s = rd_run_path(ckpt, sizeof ckpt, cfg->run_dir, rel);
  if (s == RD_OK) s = rd_infer_init(&model, env, batch, 0);
  long long step = 0;
  if (s == RD_OK) s = rd_infer_load(&model, env, ckpt, loaded, sizeof loaded, &step);
  if (s == 1) s = rd_err(RD_EINVAL, "%s has no checkpoint: round %d drafts with it, run its stage first", ckpt, round);
  /* Files of an earlier, interrupted attempt (perhaps on more ranks) go
   * first: the expert reads every file of the round's folder. */
  char dir[RD_PATH_MAX], drel[64];
  snprintf(drel, sizeof drel, "drafts/r%d", round);
  if (s == RD_OK) s = rd_run_path(dir, sizeof dir, cfg->run_dir, drel);
  if (s == RD_OK && env->is_root) s = rd_fs_rmtree(dir);
  s = rd_stage_agree(env, s);
  if (s == RD_OK) {
    ids = rd_malloc((size_t)cfg->draft.n_samples * sizeof *ids, "draft ids");
    tokens = rd_malloc((size_t)batch * L * sizeof *tokens, "draft tokens");
    margin = rd_malloc((size_t)batch * sizeof *margin, "draft margins");
    s = ids && tokens && margin ? RD_OK : RD_ENOMEM;
  }
  if (s == RD_OK) s = draft_ids(cfg, train.n_total, round, ids);
  int64_t begin = 0, count = 0;
  if (s == RD_OK) s = rd_shardset_slice(cfg->draft.n_samples, env->grid.dp_rank, env->grid.dp_size, &begin, &count);
  if (s == RD_OK) s = rd_drafts_init(&out, L, rd_vocab_hash(&env->vocab), round, env->grid.dp_rank);
  if (s == RD_OK) s = rd_shard_batch_init(&data, &train.info, batch);
  if (s == RD_OK && env->is_root)
    fprintf(stderr, "draft r%d: %d samples x %d step counts with %s (step %lld), %d ranks\n", round,
            cfg->draft.n_samples, cfg->draft.step_counts.n, loaded, step, env->grid.dp_size);
  rd_decode_mode mode = RD_DECODE_REFINE;
  if (s == RD_OK) s = rd_decode_mode_parse(cfg->draft.mode, &mode);
  rd_decode_opts o;
  rd_infer_decode_opts(cfg, mode, 1, &o);
  double t0 = rd_clock_now();
  int64_t passes = 0;
  for (int k = 0; k < cfg->draft.step_counts.n && s == RD_OK; k++) {
    o.steps = cfg->draft.step_counts.v[k];
    s = rd_decode_check(&o, L);
    for (int64_t first = 0; first < count && s == RD_OK; first += batch) {
      int n = (int)(count - first < batch ? count - first : batch);
      for (int j = 0; j < n && s == RD_OK; j++) s = rd_shardset_read(&train, ids[begin + first + j], &data, j);
      if (s != RD_OK) break;
      rd_decode_input in = {n, data.images, NULL, data.sample_id, NULL};
      rd_decode_output res = {tokens, NULL, 0, margin};
      s = rd_decode(&model, &o, &in, &res);
      passes += res.forward_passes;
      for (int j = 0; j < n && s == RD_OK; j++)
        s = rd_drafts_append(&out, data.sample_id[j], o.steps, tokens + (size_t)j * L, margin[j]);
    }
  }
  char file[64];
  snprintf(file, sizeof file, "drafts/r%d/rank%d.h5", round, env->grid.dp_rank);
  if (s == RD_OK) s = rd_run_path(path, sizeof path, cfg->run_dir, file);
  /* One file per dp rank; the tp ranks of a dp group hold the same drafts. */
  if (s == RD_OK && env->grid.tp_rank == 0) s = rd_drafts_write(&out, path);
  s = rd_stage_agree(env, s);
  if (s == RD_OK && env->is_root)
    fprintf(stderr, "draft r%d: %" PRId64 " drafts on rank 0 in %.1f s (%.1f forward passes/s)\n", round, out.n,
            rd_clock_now() - t0, (double)passes / (rd_clock_now() - t0));
  free(ids);
  free(tokens);
  free(margin);
  rd_shard_batch_free(&data);
  rd_drafts_free(&out);
  rd_vlm_free(&model);
  rd_shardset_close(&train);
  return s;
}

int rd_cmd_draft(const rd_cli *cli) {
  static const char *const known[] = {"round", NULL};
  RD_TRY(rd_cli_check_opts(cli, known));
  long round;
  RD_TRY(rd_cli_opt_int(cli, "round", 0, &round));
  if (round < 1 || cli->n_args) return rd_err(RD_EUSAGE, "usage: rediff draft --round R (R >= 1)");
  rd_stage_env env;
  int s = rd_stage_begin(&env, cli);
  if (s == RD_OK && round > env.cfg.stage2.rounds)
    s = rd_err(RD_EUSAGE, "--round %ld is past stage2.rounds = %d", round, env.cfg.stage2.rounds);
  if (s == RD_OK && rd_done_exists(env.cfg.run_dir, "draft", (int)round)) {
    if (env.is_root) printf("draft r%ld: done already\n", round);
  } else if (s == RD_OK) {
    s = rd_stage_agree(&env, rd_stage_vocab(&env));
    if (s == RD_OK) s = run(&env, (int)round);
    if (s == RD_OK && env.is_root) s = rd_done_write(env.cfg.run_dir, "draft", (int)round, rd_config_hash(&env.cfg));
  }
  rd_stage_end(&env);
  return s;
}
