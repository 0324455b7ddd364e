#include "mpi/fail.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "mpi/mpicheck.h"

_Noreturn void rd_mpi_fatal(const char *msg, int exit_code) {
  int init = 0, fin = 0, rank = 0, size = 1;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
  }
  if (exit_code == 0) exit_code = 1;
  if (size > 1) fprintf(stderr, "rediff: rank %d: %s\n", rank, msg ? msg : "fatal error");
  else fprintf(stderr, "rediff: %s\n", msg ? msg : "fatal error");
  fflush(stderr);
  fflush(stdout);
  /* Other ranks may be blocked in a collective waiting for this one: only
   * MPI_Abort reaches them. A singleton has no one to wait for it. */
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
  exit(exit_code);
}

/* The failing rank's code and message, sent as one fixed-size block. */
typedef struct {
  int code;
  char msg[2048];
} rd_agree_report;

int rd_mpi_agree(const rd_grid *g, int status, int *failed_rank) {
  if (failed_rank) *failed_rank = -1;
  if (status > 0) status = RD_ESTATE; /* statuses are 0 or negative */
  /* Lowest failing rank in one all-reduce: ranks that passed offer INT_MAX. */
  int mine = status < 0 ? g->rank : INT_MAX, first = mine;
  if (g->size > 1) RD_MPI(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, g->world.mpi));
  if (first == INT_MAX) return RD_OK;
  rd_agree_report rep;
  memset(&rep, 0, sizeof rep);
  if (g->rank == first) {
    rep.code = status;
    snprintf(rep.msg, sizeof rep.msg, "%s", rd_err_msg());
  }
  if (g->size > 1) RD_MPI(MPI_Bcast(&rep, (int)sizeof rep, MPI_BYTE, first, g->world.mpi));
  rep.msg[sizeof rep.msg - 1] = '\0';
  if (failed_rank) *failed_rank = first;
  /* One process: the message is already its own, with no rank to name. */
  if (g->size == 1) return status;
  return rd_err(rep.code, "rank %d failed: %s", first, rep.msg);
}
