#include "stages/stage.h"

#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "io/err.h"
#include "io/fs.h"
#include "model/ops.h"
#include "mpi/check.h"
#include "mpi/fail.h"
#include "stages/rundir.h"

int rd_stage_begin(rd_stage_env *env, const rd_cli *cli) {
  memset(env, 0, sizeof *env);
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return rd_err(RD_EMPI, "MPI_Init failed");
  }
  /* Every rank parses the same config; a rank whose file or override is bad
   * must not leave the others waiting in a collective. */
  int s = rd_cli_config(cli, &env->cfg);
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world > 1) {
    int bad = s < 0, any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any && s == RD_OK) s = rd_err(RD_EINVAL, "another rank could not load the config");
  }
  RD_TRY(s);
  RD_TRY(rd_grid_init(&env->grid, MPI_COMM_WORLD, env->cfg.parallel.tp));
  env->is_root = env->grid.rank == 0;
  RD_TRY(rd_grid_check_same(&env->grid, rd_config_hash(&env->cfg), "config"));
  RD_TRY(rd_grid_check_divides(&env->grid, "model.n_heads", env->cfg.model.n_heads));
  RD_TRY(rd_grid_check_divides(&env->grid, "model.d_ff", env->cfg.model.d_ff));
  rd_ops_set_threads(env->cfg.train.threads);
  return rd_run_path(env->data_dir, sizeof env->data_dir, env->cfg.run_dir, "data");
}

int rd_stage_vocab(rd_stage_env *env) {
  char path[RD_PATH_MAX];
  RD_TRY(rd_fs_join(path, sizeof path, env->data_dir, "vocab.txt"));
  if (!rd_fs_exists(path))
    return rd_err(RD_EINVAL, "%s is missing: run `rediff data synth` for this run directory first", path);
  RD_TRY(rd_vocab_load(&env->vocab, path));
  env->has_vocab = 1;
  return RD_OK;
}

int rd_stage_prompt(const rd_stage_env *env, int32_t *prompt, int *n) {
  int len = 0;
  rd_vocab_stats st = {0};
  RD_TRY(rd_vocab_encode_text(&env->vocab, env->cfg.data.prompt, prompt, 64, &len, &st));
  if (st.n_unk || st.n_truncated)
    return rd_err(RD_EINVAL, "data.prompt \"%s\" has words outside the vocabulary or more than 64 words",
                  env->cfg.data.prompt);
  *n = len;
  return RD_OK;
}

int rd_stage_agree(const rd_stage_env *env, int status) {
  return rd_mpi_agree(&env->grid, status, NULL);
}

void rd_stage_end(rd_stage_env *env) {
  if (env->has_vocab) rd_vocab_free(&env->vocab);
  rd_grid_free(&env->grid);
  /* MPI is finalized (or the job aborted) by stages/main.c once the
   * command's status is known: finalizing here could wait forever for a
   * rank that is stuck in a collective after another rank's error. */
}
