#include "stages/run/stage.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/fs.h"
#include "model/ops.h"
#include "mpi/check.h"
#include "mpi/coll.h"
#include "mpi/fail.h"
#include "stages/run/rundir.h"

/* The first line where text a and b differ (no trailing newline), or 0. */
static int first_diff(const char *a, const char *b, const char **la, size_t *na, const char **lb, size_t *nb) {
  while (*a || *b) {
    *na = strcspn(a, "\n");
    *nb = strcspn(b, "\n");
    *la = a;
    *lb = b;
    if (*na != *nb || memcmp(a, b, *na)) return 1;
    a += *na + (a[*na] != 0);
    b += *nb + (b[*nb] != 0);
  }
  return 0;
}

/* After the config hashes differed: names the first key whose value
 * differs between rank 0 and the first rank that differs, by gathering
 * every rank's config as "key: value" lines to rank 0 (collective over the
 * world; every rank is here, having failed the check together). Rank 0's
 * message (the one printed) gets "; first difference: KEY is V on rank R,
 * W on rank 0"; the others keep theirs. */
static int name_config_difference(const rd_stage_env *env) {
  char first[1024];
  snprintf(first, sizeof first, "%s", rd_err_msg());
  char *lines = NULL;
  if (rd_config_to_lines(&env->cfg, &lines) < 0) return rd_err(RD_EINVAL, "%s", first);
  rd_coll_records recs = {0};
  int s = rd_coll_gather_records(&env->grid.world, lines, strlen(lines) + 1, 0, &recs);
  free(lines);
  const char *la = NULL, *lb = NULL;
  size_t na = 0, nb = 0;
  int rank = -1;
  for (int r = 1; s == RD_OK && r < recs.n && rank < 0; r++)
    if (first_diff((const char *)recs.data + recs.off[0], (const char *)recs.data + recs.off[r], &la, &na, &lb, &nb))
      rank = r;
  if (rank > 0) {
    /* Both lines start with the same "key: " (one line per key, in order). */
    size_t key = strcspn(la, ":"), skip = key + 2 <= na && key + 2 <= nb ? key + 2 : 0;
    s = rd_err(RD_EINVAL, "%s; first difference: %.*s is %.*s on rank %d, %.*s on rank 0", first, (int)key, la,
               (int)(nb - skip), lb + skip, rank, (int)(na - skip), la + skip);
  } else {
    s = rd_err(RD_EINVAL, "%s", first);
  }
  rd_coll_records_free(&recs);
  return s;
}

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
  if (rd_grid_check_same(&env->grid, rd_config_hash(&env->cfg), "config") < 0)
    return name_config_difference(env);
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

static int open_data(const rd_stage_env *env, const char *split, rd_shardset *set) {
  const rd_model_cfg *m = &env->cfg.model;
  RD_TRY(rd_shardset_open(set, env->data_dir, split, env->vocab.hash));
  const rd_shard_info *in = &set->info;
  /* A shard of another image size would be misread (the patches index
   * image_size^2 x 3 bytes per sample), so it is refused before any read. */
  if (in->gen_len != m->gen_len)
    return rd_err(RD_EINVAL, "%s/%s-*.h5: captions of gen_len %d, the config's model.gen_len is %d", env->data_dir,
                  split, in->gen_len, m->gen_len);
  if (in->n_patches == 0 && in->image_size != m->image_size)
    return rd_err(RD_EINVAL, "%s/%s-*.h5: %d x %d images, the config's model.image_size is %d", env->data_dir, split,
                  in->image_size, in->image_size, m->image_size);
  return rd_shardset_check(set, env->vocab.n, env->grid.rank, env->grid.size);
}

int rd_stage_open_data(const rd_stage_env *env, const char *split, rd_shardset *set) {
  memset(set, 0, sizeof *set);
  int s = rd_stage_agree(env, open_data(env, split, set));
  if (s < 0) rd_shardset_close(set);
  return s;
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
