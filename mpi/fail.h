/* Failing together: a job of many ranks must end on every rank, never hang
 * with some ranks waiting in a collective for one that has given up.
 *
 * Two ways, by how much the ranks still agree:
 * - rd_mpi_agree: at a point every rank reaches (end of loading, end of a
 *   stage), each rank brings its status and all ranks leave with the same
 *   verdict and the failing rank's message, so the stage returns its error
 *   cleanly everywhere (files closed, nothing half-written).
 * - rd_mpi_fatal: when one rank cannot go on and the others may be anywhere
 *   (inside a collective), it prints its message and takes the whole job
 *   down with MPI_Abort. */
#ifndef RD_MPI_FAIL_H
#define RD_MPI_FAIL_H

#include "mpi/grid.h"

/* Prints "rediff: rank R: <msg>" on stderr, then ends every rank of the job:
 * MPI_Abort(MPI_COMM_WORLD, exit_code) when the world has more than one rank,
 * exit(exit_code) otherwise (also before MPI_Init or after MPI_Finalize).
 * An exit_code of 0 becomes 1: a fatal error never reports success. */
_Noreturn void rd_mpi_fatal(const char *msg, int exit_code);

/* Collective over the world. Each rank passes its status (0 or a negative
 * RD_E* code, its message in the error facility). Returns 0 on every rank when
 * all passed 0; otherwise on EVERY rank the status of the lowest failing rank
 * R with the message "rank R failed: <R's message>" (sent from R; a job of
 * one rank keeps its own status and message, with no rank to name), and
 * *failed_rank = R when failed_rank is not NULL (-1 when all passed). The
 * lowest failing rank's code is returned rather than the numerically lowest
 * code so that the code and the message always belong together. Returns
 * RD_EMPI if the agreement itself fails. */
int rd_mpi_agree(const rd_grid *g, int status, int *failed_rank);

#endif
