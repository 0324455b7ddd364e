/* The check macro for MPI calls.
 *
 * RD_MPI(call) runs an MPI call and, when it does not return MPI_SUCCESS,
 * leaves a message with the call, MPI's own text for the code
 * (MPI_Error_string), and our file and line, then returns RD_EMPI from the
 * enclosing function. MPI only returns codes on communicators whose error
 * handler is MPI_ERRORS_RETURN; rd_grid_init and rd_comm_init_mpi set it on
 * every communicator they make, so failures come back here instead of
 * aborting the job without a word about where. */
#ifndef RD_MPI_MPICHECK_H
#define RD_MPI_MPICHECK_H

#include <mpi.h>

#include "io/core/err.h"

/* Formats the message for a failed MPI call and returns RD_EMPI. */
int rd_mpi_err_at(int mpi_code, const char *file, int line, const char *call);

#define RD_MPI(call)                                                           \
  do {                                                                         \
    int rd_mpi_rc_ = (call);                                                   \
    if (rd_mpi_rc_ != MPI_SUCCESS)                                             \
      return rd_mpi_err_at(rd_mpi_rc_, __FILE__, __LINE__, #call);             \
  } while (0)

#endif
