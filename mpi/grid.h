/* The dp x tp process grid.
 *
 * Ranks are laid out tensor-parallel innermost:
 *
 *     rank = dp_rank * tp + tp_rank
 *
 * so the tp ranks of one model replica are neighbours (on one node when ranks
 * are placed by node), where the frequent, latency-bound tensor-parallel
 * all-reduces run; the dp all-reduce of gradients crosses nodes once a step.
 *
 *   world: every rank of the job (a duplicate of the parent communicator, so
 *          our messages never mix with the caller's);
 *   dp:    the ranks with the same tp_rank (one per replica): gradients, loss;
 *   tp:    the ranks with the same dp_rank (one replica): activations.
 *
 * With 8 ranks and tp = 2: tp groups {0,1} {2,3} {4,5} {6,7}, dp groups
 * {0,2,4,6} {1,3,5,7}. */
#ifndef RD_MPI_GRID_H
#define RD_MPI_GRID_H

#include <mpi.h>

#include "mpi/coll.h"

typedef struct {
  rd_comm world; /* all ranks; .rank/.size are the world rank and size */
  rd_comm dp;    /* same tp_rank; .rank = dp_rank, .size = dp */
  rd_comm tp;    /* same dp_rank; .rank = tp_rank, .size = tp */
  int rank, size;       /* world rank and size */
  int dp_rank, dp_size; /* dp_size = size / tp */
  int tp_rank, tp_size;
} rd_grid;

/* Builds the grid over parent (normally MPI_COMM_WORLD) with tensor-parallel
 * size tp; collective over parent. Fails with RD_EINVAL on every rank alike
 * (before any communication) when tp < 1 or tp does not divide the number of
 * ranks. Works on a singleton (one process started without mpirun).
 * MPI_ERRORS_RETURN is set on the three communicators the grid makes; the
 * parent's error handler is left as the caller set it. */
int rd_grid_init(rd_grid *g, MPI_Comm parent, int tp);
/* Frees the grid's communicators (collective); safe on a zeroed or failed
 * grid. */
void rd_grid_free(rd_grid *g);

#endif
