/* `rediff base`: the mask-prediction model (LLaDA's objective, Eq. 1), the
 * "before" model that the ReDiff stages improve. */
#include <stdio.h>

#include "io/core/err.h"
#include "io/core/rng.h"
#include "stages/commands.h"
#include "stages/run/rundir.h"
#include "stages/train/train.h"

/* Eq. 1: mask each response position with probability p, loss 1/(p L) on the
 * masked ones. Image and prompt are never masked (they are not in x). */
int rd_build_mask(const rd_trainer *t, const rd_batch_ctx *c, const rd_shard_batch *data, int64_t i, int eval,
                      int32_t *x, int32_t *y, float *w) {
  (void)t;
  rd_batch_mask(c, eval ? RD_RNG_EVALMASK : RD_RNG_MASK, data->sample_id[i], data->captions + i * c->L, x, y, w);
  return RD_OK;
}

int rd_cmd_base(const rd_cli *cli) {
  static const char *const known[] = {"stop-at", NULL};
  RD_TRY(rd_cli_check_opts(cli, known));
  if (cli->n_args) return rd_err(RD_EUSAGE, "'base' takes no arguments");
  long stop_at;
  RD_TRY(rd_cli_opt_int(cli, "stop-at", 0, &stop_at));
  rd_stage_env env;
  int s = rd_stage_begin(&env, cli);
  if (s == RD_OK && rd_done_exists(env.cfg.run_dir, "base", 0)) {
    if (env.is_root) printf("base: done already (%s/done/base)\n", env.cfg.run_dir);
  } else {
    if (s == RD_OK) s = rd_stage_agree(&env, rd_stage_vocab(&env));
    rd_train_spec spec = {.stage = "base", .steps = env.cfg.base.steps, .build = rd_build_mask, .stop_at = stop_at,
                          .perception = env.cfg.base.perception};
    if (s == RD_OK) s = rd_train_run(&env, &spec);
  }
  rd_stage_end(&env);
  return s;
}
