/* What every stage process sets up the same way: MPI and the dp x tp grid,
 * the config (identical on every rank, checked by hash), threads, the
 * vocabulary and the run directory. */
#ifndef RD_STAGES_RUN_STAGE_H
#define RD_STAGES_RUN_STAGE_H

#include "io/config.h"
#include "io/shard.h"
#include "io/vocab.h"
#include "mpi/grid.h"
#include "stages/cli.h"

typedef struct {
  rd_config cfg;
  rd_grid grid;
  int is_root;           /* world rank 0: prints, writes shared files */
  rd_vocab vocab;
  int has_vocab;
  char data_dir[1024];   /* RUN_DIR/data */
} rd_stage_env;

/* MPI_Init (when not yet done), config from the command line, grid from
 * parallel.tp, the config hash compared across ranks, threads. */
int rd_stage_begin(rd_stage_env *env, const rd_cli *cli);
/* Loads RUN_DIR/data/vocab.txt (needs `rediff data synth` first). */
int rd_stage_vocab(rd_stage_env *env);
/* The prompt's token ids (prompt has room for 64). */
int rd_stage_prompt(const rd_stage_env *env, int32_t *prompt, int *n);
/* Frees what rd_stage_begin made; MPI itself is ended by stages/main.c. */
void rd_stage_end(rd_stage_env *env);
/* Opens RUN_DIR/data/<split>-*.h5 for this stage (collective): the shards
 * must carry the vocabulary's hash, the config's model.gen_len and, for
 * image shards, model.image_size; every token id and sample_id is checked
 * (rd_shardset_check, the reading split over the ranks). The first failing
 * rank's error on all; on error set is closed. */
int rd_stage_open_data(const rd_stage_env *env, const char *split, rd_shardset *set);
/* Every rank's status agreed: the first failing rank's error on all. */
int rd_stage_agree(const rd_stage_env *env, int status);

#endif
