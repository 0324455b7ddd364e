#include "mpi/mpicheck.h"

#include <string.h>

int rd_mpi_err_at(int mpi_code, const char *file, int line, const char *call) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(mpi_code, text, &len) != MPI_SUCCESS) len = 0;
  text[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING - 1] = '\0';
  /* Keep the call short: the name and arguments are enough to find it. */
  char shown[160];
  size_t n = strlen(call);
  if (n >= sizeof shown) {
    memcpy(shown, call, sizeof shown - 4);
    memcpy(shown + sizeof shown - 4, "...", 4);
  } else {
    memcpy(shown, call, n + 1);
  }
  return rd_err_at(RD_EMPI, file, line, "MPI call failed: %s: %s (code %d)", shown,
                   len > 0 ? text : "unknown MPI error", mpi_code);
}
