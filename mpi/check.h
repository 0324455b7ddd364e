/* Start-up checks of a stage: things every rank must agree on before the
 * first step, reported on every rank with a message the user can act on.
 * (That parallel.tp divides the model's sizes is checked where the sizes
 * are known: io/config_check.c for a config, model/vlm.c for any caller.) */
#ifndef RD_MPI_CHECK_H
#define RD_MPI_CHECK_H

#include <stdint.h>

#include "mpi/grid.h"

/* Collective over the world: RD_EINVAL on EVERY rank unless all ranks hold the
 * same value (a hash of the config, of the tokenizer, ...). The message names
 * the ranks that differ from rank 0 and both values:
 * "config differs between ranks: rank 3 has hash 00000000001a2b3c, rank 0
 * has 9f8e...". what names the thing hashed ("config"). */
int rd_grid_check_same(const rd_grid *g, uint64_t hash, const char *what);

#endif
