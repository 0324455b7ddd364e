/* Start-up checks of a stage: things every rank must agree on before the
 * first step, reported on every rank with a message the user can act on. */
#ifndef RD_MPI_CHECK_H
#define RD_MPI_CHECK_H

#include <stdint.h>

#include "mpi/grid.h"

/* RD_EINVAL unless the tensor-parallel size divides value, e.g.
 * rd_grid_check_divides(g, "model.n_heads", cfg->model.n_heads) ->
 * "parallel.tp = 4 does not divide model.n_heads = 6". Local: every rank
 * holds the same grid and value, so every rank reaches the same verdict. */
int rd_grid_check_divides(const rd_grid *g, const char *what, int value);
/* The same for the data-parallel size (e.g. a global batch split over the
 * dp ranks): "dp = 3 (ranks / parallel.tp) does not divide train.batch = 8". */
int rd_grid_check_divides_dp(const rd_grid *g, const char *what, int value);

/* Collective over the world: RD_EINVAL on EVERY rank unless all ranks hold the
 * same value (a hash of the config, of the tokenizer, ...). The message names
 * the ranks that differ from rank 0 and both values:
 * "config differs between ranks: rank 3 has hash 00000000001a2b3c, rank 0
 * has 9f8e...". what names the thing hashed ("config"). */
int rd_grid_check_same(const rd_grid *g, uint64_t hash, const char *what);

#endif
