#include "mpi/check.h"

#include <stdio.h>
#include <stdlib.h>

#include "io/core/err.h"
#include "mpi/mpicheck.h"

/* Names up to this many differing ranks in full; the rest are counted. */
#define RD_CHECK_SHOWN 4

static int report_differences(const rd_grid *g, const uint64_t *all, const char *what) {
  char msg[1024];
  int len = snprintf(msg, sizeof msg, "%s differs between ranks:", what);
  int ndiff = 0;
  for (int r = 1; r < g->size; r++) {
    if (all[r] == all[0]) continue;
    if (++ndiff <= RD_CHECK_SHOWN && len > 0 && (size_t)len < sizeof msg)
      len += snprintf(msg + len, sizeof msg - (size_t)len, "%s rank %d has hash %016llx",
                      ndiff > 1 ? "," : "", r, (unsigned long long)all[r]);
  }
  if (ndiff == 0) return RD_OK;
  if (ndiff > RD_CHECK_SHOWN && len > 0 && (size_t)len < sizeof msg)
    len += snprintf(msg + len, sizeof msg - (size_t)len, " (and %d more ranks)",
                    ndiff - RD_CHECK_SHOWN);
  return rd_err(RD_EINVAL, "%s, rank 0 has %016llx (all ranks must run with the same %s)", msg,
                (unsigned long long)all[0], what);
}

int rd_grid_check_same(const rd_grid *g, uint64_t hash, const char *what) {
  uint64_t *all = rd_calloc((size_t)g->size, sizeof *all, "per-rank hashes");
  if (!all) return RD_ENOMEM;
  int rc = RD_OK;
  if (g->size == 1) {
    all[0] = hash;
  } else {
    int e = MPI_Allgather(&hash, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, g->world.mpi);
    if (e != MPI_SUCCESS) rc = rd_mpi_err_at(e, __FILE__, __LINE__, "MPI_Allgather(hash)");
  }
  if (rc == RD_OK) rc = report_differences(g, all, what);
  free(all);
  return rc;
}
