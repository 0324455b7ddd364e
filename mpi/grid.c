#include "mpi/grid.h"

#include <string.h>

#include "io/core/err.h"
#include "mpi/mpicheck.h"

static void comm_release(rd_comm *c) {
  rd_comm_free(c);
  /* A zeroed rd_grid holds 0, which is not MPI_COMM_NULL in Open MPI. */
  if (c->mpi != MPI_COMM_NULL && c->mpi != (MPI_Comm)0) MPI_Comm_free(&c->mpi);
  c->mpi = MPI_COMM_NULL;
}

void rd_grid_free(rd_grid *g) {
  comm_release(&g->tp);
  comm_release(&g->dp);
  comm_release(&g->world);
}

/* Wraps a communicator the grid owns; on failure the caller frees it. */
static int split(const rd_grid *g, int color, int key, rd_comm *out) {
  MPI_Comm comm = MPI_COMM_NULL;
  RD_MPI(MPI_Comm_split(g->world.mpi, color, key, &comm));
  int rc = rd_comm_init_mpi(out, comm);
  out->mpi = comm; /* owned by the grid even when init failed, so it is freed */
  return rc;
}

static int grid_build(rd_grid *g, MPI_Comm parent, int tp) {
  MPI_Comm world = MPI_COMM_NULL;
  RD_MPI(MPI_Comm_dup(parent, &world));
  int rc = rd_comm_init_mpi(&g->world, world);
  g->world.mpi = world;
  RD_TRY(rc);
  g->rank = g->world.rank;
  g->size = g->world.size;
  g->tp_size = tp;
  g->dp_size = g->size / tp;
  g->dp_rank = g->rank / tp;
  g->tp_rank = g->rank % tp;
  RD_TRY(split(g, g->tp_rank, g->dp_rank, &g->dp));
  RD_TRY(split(g, g->dp_rank, g->tp_rank, &g->tp));
  /* The split orders by key, so these hold by construction; a mismatch
   * would mean a broken MPI, and every later collective would be wrong. */
  if (g->dp.rank != g->dp_rank || g->dp.size != g->dp_size || g->tp.rank != g->tp_rank ||
      g->tp.size != g->tp_size)
    return rd_err(RD_EMPI, "process grid: MPI_Comm_split gave rank %d dp %d/%d tp %d/%d, "
                  "expected dp %d/%d tp %d/%d", g->rank, g->dp.rank, g->dp.size, g->tp.rank,
                  g->tp.size, g->dp_rank, g->dp_size, g->tp_rank, g->tp_size);
  return RD_OK;
}

int rd_grid_init(rd_grid *g, MPI_Comm parent, int tp) {
  memset(g, 0, sizeof *g);
  g->world.mpi = g->dp.mpi = g->tp.mpi = MPI_COMM_NULL;
  int size = 0;
  RD_MPI(MPI_Comm_size(parent, &size));
  /* Checked from the size every rank knows, so all ranks fail alike before
   * any collective call. */
  if (tp < 1)
    return rd_err(RD_EINVAL, "parallel.tp = %d: the tensor-parallel size must be at least 1", tp);
  if (size % tp != 0)
    return rd_err(RD_EINVAL, "parallel.tp = %d does not divide the %d MPI ranks of the job "
                  "(the grid is dp x tp with dp = ranks / tp; run a multiple of %d ranks "
                  "or change parallel.tp)", tp, size, tp);
  int rc = grid_build(g, parent, tp);
  if (rc < 0) {
    rd_err_wrap(rc, "building the %d x %d process grid", size / tp, tp);
    rd_grid_free(g);
  }
  return rc;
}
