/* `rediff stage2 --round R`: online self-correction (the paper's Sec. 3.3,
 * Eq. 4). The model learns to turn its own drafts into the expert's
 * revisions: input the draft, targets the refined tokens, loss only on the
 * positions the expert corrected, 1/N_mistake per sample and no 1/t. A
 * stage2.stage1_mix share of every batch is Stage I data, to keep the
 * foundational revision ability. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/core/rng.h"
#include "io/drafts.h"
#include "io/vocab.h"
#include "stages/commands.h"
#include "stages/run/rundir.h"
#include "stages/train/train.h"

typedef struct {
  rd_revisions rev;
  int64_t *use;        /* [n_use] revision rows with at least one mistake */
  int64_t n_use;
  rd_loader rows;      /* order of the used rows, (B - n_mix) per step */
  int n_mix;           /* Stage I slots per global batch: the first n_mix */
  rd_stage1_opts s1;
} rd_stage2_ctx;

static int pick(rd_trainer *t, int64_t step, int first, int n, int64_t *idx, int64_t *rows) {
  rd_stage2_ctx *c = t->spec.pick_ctx;
  for (int j = 0; j < n; j++) {
    int g = first + j;
    if (g < c->n_mix) {
      RD_TRY(rd_loader_slots(&t->loader, step, g, 1, &idx[j]));
      rows[j] = -1;
    } else {
      int64_t u;
      RD_TRY(rd_loader_slots(&c->rows, step, g - c->n_mix, 1, &u));
      int64_t r = c->use[u];
      rows[j] = r;
      idx[j] = c->rev.sample_id[r]; /* training ids are training-set indices */
      if (idx[j] < 0 || idx[j] >= t->train.n_total)
        return rd_err(RD_EINVAL, "revision row %" PRId64 " names sample %" PRId64 ", outside the training set", r,
                      idx[j]);
    }
  }
  return RD_OK;
}

static int build(const rd_trainer *t, const rd_batch_ctx *bc, const rd_shard_batch *data, int64_t i, int eval,
                 int32_t *x, int32_t *y, float *w) {
  const rd_stage2_ctx *c = t->spec.build_ctx;
  int64_t r = t->rows[i];
  const int L = bc->L;
  if (r < 0) return rd_build_stage1(t, &c->s1, bc, data, i, eval, x, y, w);
  const uint8_t *mistake = c->rev.mistake + r * L;
  int n_mistake = 0;
  for (int k = 0; k < L; k++) n_mistake += mistake[k] != 0;
  memcpy(x, c->rev.draft + r * L, (size_t)L * sizeof *x);
  memcpy(y, c->rev.refined + r * L, (size_t)L * sizeof *y);
  for (int k = 0; k < L; k++) w[k] = mistake[k] ? (float)(1.0 / ((double)n_mistake * bc->batch_size)) : 0.0f;
  return RD_OK;
}

static int prepare(rd_stage_env *env, int round, rd_stage2_ctx *c) {
  const rd_config *cfg = &env->cfg;
  char rel[64], path[RD_PATH_MAX];
  snprintf(rel, sizeof rel, "revisions/r%d.h5", round);
  RD_TRY(rd_run_path(path, sizeof path, cfg->run_dir, rel));
  if (!rd_done_exists(cfg->run_dir, "expert", round))
    return rd_err(RD_EINVAL, "%s/done/expert.r%d is missing: run `rediff expert --round %d` first", cfg->run_dir, round,
                  round);
  RD_TRY(rd_revisions_read(path, rd_vocab_hash(&env->vocab), &c->rev));
  if (c->rev.gen_len != cfg->model.gen_len)
    return rd_err(RD_EINVAL, "%s has gen_len %d, the config says %d", path, c->rev.gen_len, cfg->model.gen_len);
  c->use = rd_malloc((size_t)(c->rev.n ? c->rev.n : 1) * sizeof *c->use, "revision rows");
  if (!c->use) return RD_ENOMEM;
  for (int64_t r = 0; r < c->rev.n; r++) {
    int any = 0;
    for (int k = 0; k < c->rev.gen_len && !any; k++) any = c->rev.mistake[r * c->rev.gen_len + k] != 0;
    if (any) c->use[c->n_use++] = r;
  }
  int B = cfg->train.batch_size;
  c->s1 = rd_stage1_opts_of(env);
  c->n_mix = (int)lround(B * cfg->stage2.stage1_mix);
  if (c->n_use == 0) {
    /* Every draft was right or dropped: nothing to learn from. The round
     * keeps the model it started from, so the chain goes on and the eval
     * shows the round changed nothing. */
    if (env->is_root)
      fprintf(stderr, "stage2 r%d: warning: %s has no revised drafts (every draft was right or dropped); the round "
              "keeps its starting model\n", round, path);
    c->n_mix = B;
    return RD_OK;
  }
  if (c->n_mix < B)
    RD_TRY(rd_loader_init(&c->rows, c->n_use, B - c->n_mix, cfg->train.seed + 1000003ull * (uint64_t)round));
  if (env->is_root)
    fprintf(stderr, "stage2 r%d: %" PRId64 " revised drafts of %" PRId64 " in %s; %d of %d batch slots Stage I data\n",
            round, c->n_use, c->rev.n, path, c->n_mix, B);
  return RD_OK;
}

int rd_cmd_stage2(const rd_cli *cli) {
  static const char *const known[] = {"round", "stop-at", NULL};
  RD_TRY(rd_cli_check_opts(cli, known));
  long round, stop_at;
  RD_TRY(rd_cli_opt_int(cli, "round", 0, &round));
  RD_TRY(rd_cli_opt_int(cli, "stop-at", 0, &stop_at));
  if (round < 1 || cli->n_args) return rd_err(RD_EUSAGE, "usage: rediff stage2 --round R (R >= 1)");
  rd_stage_env env;
  int s = rd_stage_begin(&env, cli);
  if (s == RD_OK && round > env.cfg.stage2.rounds)
    s = rd_err(RD_EUSAGE, "--round %ld is past stage2.rounds = %d", round, env.cfg.stage2.rounds);
  rd_stage2_ctx c;
  memset(&c, 0, sizeof c);
  if (s == RD_OK && rd_done_exists(env.cfg.run_dir, "stage2", (int)round)) {
    if (env.is_root) printf("stage2 r%ld: done already\n", round);
  } else if (s == RD_OK) {
    s = rd_stage_agree(&env, rd_stage_vocab(&env));
    if (s == RD_OK) s = rd_stage_agree(&env, prepare(&env, (int)round, &c));
    char init[64];
    if (s == RD_OK) s = rd_round_model((int)round, init, sizeof init);
    rd_train_spec spec = {.stage = "stage2", .round = (int)round, .steps = c.n_use ? env.cfg.stage2.steps : 0,
                          .init_from = init,
                          .build = build, .build_ctx = &c, .stop_at = stop_at, .pick = pick, .pick_ctx = &c};
    if (s == RD_OK) s = rd_train_run(&env, &spec);
  }
  rd_loader_free(&c.rows);
  free(c.use);
  rd_revisions_free(&c.rev);
  rd_stage_end(&env);
  return s;
}
