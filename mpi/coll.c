/* Collectives on host buffers with MPI. An NCCL backend (for a CUDA model
 * backend, which this version lacks) would go in its own file, chosen by
 * rd_comm.backend in each call here. */
#include "mpi/coll.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "mpi/mpicheck.h"

/* MPI counts are int: longer buffers go in pieces of at most this many
 * elements. Element-wise reductions are the same in pieces or whole. */
#define RD_COLL_MAX_COUNT ((size_t)INT_MAX)

int rd_comm_init_mpi(rd_comm *c, MPI_Comm comm) {
  memset(c, 0, sizeof *c);
  c->backend = RD_COMM_MPI;
  c->mpi = comm;
  RD_MPI(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN));
  RD_MPI(MPI_Comm_rank(comm, &c->rank));
  RD_MPI(MPI_Comm_size(comm, &c->size));
  c->stats = rd_calloc(1, sizeof *c->stats, "collective counters");
  return c->stats ? RD_OK : RD_ENOMEM;
}

void rd_comm_free(rd_comm *c) {
  /* The MPI backend holds nothing beyond the communicator, which belongs to
   * whoever made it (rd_grid for the grid's three), and the counters. */
  free(c->stats);
  c->stats = NULL;
  c->impl = NULL;
}

void rd_comm_stats_get(const rd_comm *c, rd_comm_stats *out) {
  if (c->stats) *out = *c->stats;
  else memset(out, 0, sizeof *out);
}

void rd_comm_stats_reset(const rd_comm *c) {
  if (c->stats) memset(c->stats, 0, sizeof *c->stats);
}

/* Adds one call of `bytes` payload that began at MPI_Wtime() t0; passes rc
 * through, so a failed call is counted too (it waited like any other). */
static int counted(const rd_comm *c, size_t bytes, double t0, int rc) {
  if (c->stats) {
    c->stats->calls++;
    c->stats->bytes += (int64_t)bytes;
    c->stats->seconds += MPI_Wtime() - t0;
  }
  return rc;
}

static int check_backend(const rd_comm *c, const char *what) {
  if (c->backend == RD_COMM_MPI) return RD_OK;
  return rd_err(RD_ESTATE, "%s: collective backend %d is not built into this binary "
                "(only MPI on host buffers is)", what, (int)c->backend);
}

static int check_root(const rd_comm *c, int root, const char *what) {
  if (root >= 0 && root < c->size) return RD_OK;
  return rd_err(RD_EINVAL, "%s: root rank %d is outside the %d ranks of the group", what,
                root, c->size);
}

static int allreduce_pieces(const rd_comm *c, void *buf, size_t n, MPI_Datatype type,
                            size_t esize, MPI_Op op) {
  char *p = buf;
  for (size_t done = 0; done < n;) {
    size_t k = n - done < RD_COLL_MAX_COUNT ? n - done : RD_COLL_MAX_COUNT;
    RD_MPI(MPI_Allreduce(MPI_IN_PLACE, p + done * esize, (int)k, type, op, c->mpi));
    done += k;
  }
  return RD_OK;
}

static int allreduce(const rd_comm *c, void *buf, size_t n, MPI_Datatype type, size_t esize,
                     MPI_Op op, const char *what) {
  RD_TRY(check_backend(c, what));
  if (c->size == 1 || n == 0) return RD_OK;
  double t0 = MPI_Wtime();
  return counted(c, n * esize, t0, allreduce_pieces(c, buf, n, type, esize, op));
}

int rd_coll_allreduce_sum_f32(const rd_comm *c, float *buf, size_t n) {
  return allreduce(c, buf, n, MPI_FLOAT, sizeof *buf, MPI_SUM, "all-reduce (float sum)");
}

int rd_coll_allreduce_sum_f64(const rd_comm *c, double *buf, size_t n) {
  return allreduce(c, buf, n, MPI_DOUBLE, sizeof *buf, MPI_SUM, "all-reduce (double sum)");
}

int rd_coll_allreduce_sum_i64(const rd_comm *c, int64_t *buf, size_t n) {
  return allreduce(c, buf, n, MPI_INT64_T, sizeof *buf, MPI_SUM, "all-reduce (int64 sum)");
}

int rd_coll_allreduce_max_f32(const rd_comm *c, float *buf, size_t n) {
  return allreduce(c, buf, n, MPI_FLOAT, sizeof *buf, MPI_MAX, "all-reduce (float max)");
}

/* Why buckets, rather than one all-reduce of all gradients or one per tensor:
 * - one call per tensor is latency-bound for the many small tensors (norm
 *   gains, biases); a bucket fuses them into messages big enough for the
 *   bandwidth-optimal algorithms (ring, recursive halving);
 * - one call for everything holds the library's temporary buffers at the
 *   size of the whole model and can only start when the last gradient is
 *   done; bounded buckets keep those buffers bounded and let the caller post
 *   each bucket as soon as its gradients are final, overlapping
 *   communication with the rest of the backward pass (as PyTorch DDP and
 *   Megatron do, with buckets of tens of MB);
 * - a few buckets in flight pipeline: one is on the wire while another is
 *   being summed. Many at once do not: with all 27 buckets of a 112 MB
 *   buffer posted together, Open MPI on 2 ranks of one node took 0.8-1.0 s,
 *   against 0.09-0.15 s with at most 1 to 8 in flight (measured with
 *   bench/scaling.sh's model), so the number in flight is bounded.
 * Buckets are cut from the END of the buffer, where backward finishes
 * first (the model's table runs from the image to the LM head). Open MPI
 * advances nonblocking collectives inside MPI calls, so on the host path
 * the buckets progress whenever the caller comes back (ready, end); NCCL
 * overlaps on its stream. The buckets are disjoint slices of buf, so
 * several in flight in place is legal. */

static size_t bucket_hi(const rd_coll_buckets *b, size_t i) { return b->n - i * b->bucket; }
static size_t bucket_lo(const rd_coll_buckets *b, size_t i) {
  size_t hi = bucket_hi(b, i);
  return hi > b->bucket ? hi - b->bucket : 0;
}

/* Completes the oldest bucket in flight (wait = 1), or any that are done
 * (wait = 0). */
static int buckets_progress(rd_coll_buckets *b, int wait) {
  while (b->done < b->started) {
    int flag = 1, e;
    if (wait) e = MPI_Wait(&b->req[b->done], MPI_STATUS_IGNORE);
    else e = MPI_Test(&b->req[b->done], &flag, MPI_STATUS_IGNORE);
    if (e != MPI_SUCCESS) return rd_mpi_err_at(e, __FILE__, __LINE__, wait ? "MPI_Wait(bucket)" : "MPI_Test(bucket)");
    if (!flag) return RD_OK;
    b->done++;
    if (wait) return RD_OK;
  }
  return RD_OK;
}

/* Starts bucket b->started, first making room when max_inflight are out. */
static int buckets_start_next(rd_coll_buckets *b, int may_wait) {
  if (b->started - b->done >= (size_t)b->max_inflight) {
    RD_TRY(buckets_progress(b, 0));
    if (b->started - b->done >= (size_t)b->max_inflight) {
      if (!may_wait) return 1;
      RD_TRY(buckets_progress(b, 1));
    }
  }
  size_t lo = bucket_lo(b, b->started), k = bucket_hi(b, b->started) - lo;
  int e = MPI_Iallreduce(MPI_IN_PLACE, b->buf + lo, (int)k, MPI_FLOAT, MPI_SUM, b->c->mpi,
                         &b->req[b->started]);
  if (e != MPI_SUCCESS) return rd_mpi_err_at(e, __FILE__, __LINE__, "MPI_Iallreduce(bucket)");
  b->started++;
  return RD_OK;
}

int rd_coll_buckets_begin(rd_coll_buckets *b, const rd_comm *c, float *buf, size_t n, size_t bucket_elems,
                          int max_inflight) {
  const char *what = "bucketed all-reduce (float sum)";
  memset(b, 0, sizeof *b);
  RD_TRY(check_backend(c, what));
  if (bucket_elems == 0) return rd_err(RD_EINVAL, "%s: bucket size must be at least 1 element", what);
  if (max_inflight < 1) return rd_err(RD_EINVAL, "%s: at least 1 bucket must be allowed in flight", what);
  b->c = c;
  b->buf = buf;
  b->n = n;
  b->bucket = bucket_elems > RD_COLL_MAX_COUNT ? RD_COLL_MAX_COUNT : bucket_elems;
  b->max_inflight = max_inflight;
  b->active = c->size > 1 && n > 0;
  if (!b->active) return RD_OK;
  b->nb = (n + b->bucket - 1) / b->bucket;
  b->req = rd_malloc(b->nb * sizeof *b->req, "all-reduce bucket requests");
  return b->req ? RD_OK : RD_ENOMEM;
}

int rd_coll_buckets_ready(rd_coll_buckets *b, size_t from) {
  if (!b->active) return RD_OK;
  double t0 = MPI_Wtime();
  int rc = RD_OK;
  while (rc == RD_OK && b->started < b->nb && bucket_lo(b, b->started) >= from) {
    rc = buckets_start_next(b, 0);
    if (rc == 1) { /* all slots busy: start it later rather than stall backward */
      rc = RD_OK;
      break;
    }
  }
  if (rc == RD_OK) rc = buckets_progress(b, 0);
  b->seconds += MPI_Wtime() - t0;
  return rc;
}

int rd_coll_buckets_end(rd_coll_buckets *b) {
  if (!b->active) return RD_OK;
  double t0 = MPI_Wtime();
  int rc = RD_OK;
  while (rc == RD_OK && b->started < b->nb) rc = buckets_start_next(b, 1);
  /* Wait even after a failed post: the posted buckets still use buf. */
  int e = MPI_Waitall((int)(b->started - b->done), b->req + b->done, MPI_STATUSES_IGNORE);
  if (e != MPI_SUCCESS && rc == RD_OK) rc = rd_mpi_err_at(e, __FILE__, __LINE__, "MPI_Waitall(buckets)");
  free(b->req);
  b->req = NULL;
  b->active = 0;
  b->seconds += MPI_Wtime() - t0;
  if (b->c->stats) { /* one call, whatever the number of buckets */
    b->c->stats->calls++;
    b->c->stats->bytes += (int64_t)(b->n * sizeof *b->buf);
    b->c->stats->seconds += b->seconds;
  }
  return rc;
}

int rd_coll_allreduce_buckets(const rd_comm *c, float *buf, size_t n, size_t bucket_elems) {
  rd_coll_buckets b;
  RD_TRY(rd_coll_buckets_begin(&b, c, buf, n, bucket_elems, RD_COLL_BUCKETS_INFLIGHT));
  return rd_coll_buckets_end(&b);
}

int rd_coll_allgather_f32(const rd_comm *c, const float *send, float *recv, size_t n) {
  const char *what = "all-gather (float)";
  RD_TRY(check_backend(c, what));
  if (n > RD_COLL_MAX_COUNT)
    return rd_err(RD_EINVAL, "%s: %zu elements per rank exceed MPI's int count", what, n);
  if (n == 0) return RD_OK;
  if (c->size == 1) {
    if (send && send != recv) memmove(recv, send, n * sizeof *recv);
    return RD_OK;
  }
  double t0 = MPI_Wtime();
  int e = MPI_Allgather(send ? (const void *)send : MPI_IN_PLACE, (int)n, MPI_FLOAT, recv, (int)n,
                        MPI_FLOAT, c->mpi);
  int rc = e == MPI_SUCCESS ? RD_OK : rd_mpi_err_at(e, __FILE__, __LINE__, "MPI_Allgather");
  return counted(c, (size_t)c->size * n * sizeof *recv, t0, rc);
}

int rd_coll_reduce_scatter_sum_f32(const rd_comm *c, const float *send, float *recv, size_t n) {
  const char *what = "reduce-scatter (float sum)";
  RD_TRY(check_backend(c, what));
  if (n > RD_COLL_MAX_COUNT)
    return rd_err(RD_EINVAL, "%s: %zu elements per rank exceed MPI's int count", what, n);
  if (n == 0) return RD_OK;
  if (c->size == 1) {
    if (send != recv) memmove(recv, send, n * sizeof *recv);
    return RD_OK;
  }
  double t0 = MPI_Wtime();
  int e = MPI_Reduce_scatter_block(send, recv, (int)n, MPI_FLOAT, MPI_SUM, c->mpi);
  int rc = e == MPI_SUCCESS ? RD_OK
                            : rd_mpi_err_at(e, __FILE__, __LINE__, "MPI_Reduce_scatter_block");
  return counted(c, (size_t)c->size * n * sizeof *send, t0, rc);
}

static int bcast_pieces(const rd_comm *c, char *p, size_t nbytes, int root) {
  for (size_t done = 0; done < nbytes;) {
    size_t k = nbytes - done < RD_COLL_MAX_COUNT ? nbytes - done : RD_COLL_MAX_COUNT;
    RD_MPI(MPI_Bcast(p + done, (int)k, MPI_BYTE, root, c->mpi));
    done += k;
  }
  return RD_OK;
}

int rd_coll_bcast(const rd_comm *c, void *buf, size_t nbytes, int root) {
  const char *what = "broadcast";
  RD_TRY(check_backend(c, what));
  RD_TRY(check_root(c, root, what));
  if (c->size == 1 || nbytes == 0) return RD_OK;
  double t0 = MPI_Wtime();
  return counted(c, nbytes, t0, bcast_pieces(c, buf, nbytes, root));
}

void rd_coll_records_free(rd_coll_records *r) {
  free(r->len);
  free(r->off);
  free(r->data);
  memset(r, 0, sizeof *r);
}

/* Root-side buffers for the records, sized from the gathered lengths. */
static int records_alloc(rd_coll_records *out, const uint64_t *lens, int n) {
  size_t total = 0;
  for (int i = 0; i < n; i++) total += (size_t)lens[i];
  out->len = rd_calloc((size_t)n, sizeof *out->len, "gathered record lengths");
  out->off = rd_calloc((size_t)n, sizeof *out->off, "gathered record offsets");
  out->data = rd_malloc(total, "gathered records");
  if (!out->len || !out->off || !out->data) return RD_ENOMEM;
  out->n = n;
  for (int i = 0, off = 0; i < n; i++) {
    out->len[i] = (size_t)lens[i];
    out->off[i] = (size_t)off;
    off += (int)lens[i];
  }
  return RD_OK;
}

static int gather_records(const rd_comm *c, const void *rec, size_t nbytes, int root,
                          rd_coll_records *out, uint64_t *lens, int *counts, int *displs) {
  const char *what = "gather of records";
  /* Every rank learns every size (not only the root), so the 2 GiB check
   * below fails on all ranks alike instead of leaving some in MPI_Gatherv. */
  uint64_t mine = (uint64_t)nbytes;
  if (c->size == 1) {
    lens[0] = mine;
  } else {
    RD_MPI(MPI_Allgather(&mine, 1, MPI_UINT64_T, lens, 1, MPI_UINT64_T, c->mpi));
  }
  uint64_t total = 0;
  for (int i = 0; i < c->size; i++) total += lens[i];
  if (total > (uint64_t)INT_MAX)
    return rd_err(RD_EINVAL, "%s: %llu bytes in all exceed MPI's 2 GiB limit for one gather "
                  "(rank %d sends %llu)", what, (unsigned long long)total, c->rank,
                  (unsigned long long)mine);
  if (c->rank == root) RD_TRY(records_alloc(out, lens, c->size));
  if (c->size == 1) {
    if (nbytes) memcpy(out->data, rec, nbytes);
    return RD_OK;
  }
  if (c->rank == root)
    for (int i = 0; i < c->size; i++) {
      counts[i] = (int)lens[i];
      displs[i] = (int)out->off[i];
    }
  RD_MPI(MPI_Gatherv(rec, (int)nbytes, MPI_BYTE, out->data, counts, displs, MPI_BYTE, root,
                     c->mpi));
  return RD_OK;
}

int rd_coll_gather_records(const rd_comm *c, const void *rec, size_t nbytes, int root,
                           rd_coll_records *out) {
  const char *what = "gather of records";
  memset(out, 0, sizeof *out);
  RD_TRY(check_backend(c, what));
  RD_TRY(check_root(c, root, what));
  double t0 = MPI_Wtime();
  uint64_t *lens = rd_calloc((size_t)c->size, sizeof *lens, "record sizes");
  int *counts = rd_calloc((size_t)c->size, sizeof *counts, "record counts");
  int *displs = rd_calloc((size_t)c->size, sizeof *displs, "record displacements");
  int rc = (lens && counts && displs) ? gather_records(c, rec, nbytes, root, out, lens, counts,
                                                       displs)
                                      : RD_ENOMEM;
  free(lens);
  free(counts);
  free(displs);
  if (rc < 0) rd_coll_records_free(out);
  /* A one-rank gather only copies: not counted, like every one-rank call. */
  return c->size > 1 ? counted(c, nbytes, t0, rc) : rc;
}
