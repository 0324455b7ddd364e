/* Collectives: the one interface the model and the stages call.
 *
 * Every call takes an rd_comm, a handle for a group of ranks and the backend
 * that moves the bytes. Today there is one backend, MPI on host buffers. A
 * CUDA backend (none in this version) would add NCCL on device buffers behind
 * these same calls (the rd_comm then also carrying the NCCL communicator, set
 * up from the MPI one by sharing the NCCL id with MPI_Bcast), so callers never
 * name MPI or NCCL.
 *
 * Every call is collective over the rd_comm: all its ranks call it in the
 * same order with the same counts (and the same root). Counts are elements
 * unless the name says bytes. On a one-rank rd_comm every call returns at
 * once with the data as it is (the sum over one rank is the buffer itself).
 *
 * Determinism. A sum is computed in an order the library chooses from the
 * message size and the number of ranks. Open MPI's algorithms are fixed
 * functions of (communicator size, count, datatype, algorithm choice), so on a
 * fixed grid the same inputs give bitwise the same sums on every run: a run
 * and its rerun match exactly. Across DIFFERENT dp sizes they do not: float
 * addition is not associative, and going from dp = 1 to dp = 4 changes both
 * the order of the per-rank partial sums and what each rank summed locally.
 * The difference is rounding, bounded by about (p - 1) * eps * sum_i |x_i| for
 * a sum of p terms (eps = 2^-24 for float, 2^-53 for double), and in practice
 * around sqrt(p) * eps relative. So tests that compare a dp x tp run with a
 * single process use tolerances relative to a tensor's scale (|a - b| <=
 * tol * max|b|; elements that cancel to near zero have no useful relative
 * error of their own): about 1e-5 on one step's gradients and losses,
 * looser (1e-4 .. 1e-3) after many optimizer steps, where AdamW's division
 * by sqrt(v) amplifies differences in tiny second moments. Loss and
 * token-count reductions use double and int64 (rd_coll_allreduce_sum_f64 and
 * _i64) so logged numbers do not drift with the grid: int64 sums are exact and
 * double rounding is far below what a log shows. See docs/parallel.md. */
#ifndef RD_MPI_COLL_H
#define RD_MPI_COLL_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  RD_COMM_MPI = 0, /* MPI on host buffers */
  RD_COMM_NCCL = 1 /* NCCL on device buffers (CUDA builds; not yet built) */
} rd_comm_backend;

/* What the collectives issued on one rd_comm cost this rank, since the
 * comm was made or last reset. Counted per call of this interface, on every
 * rank for itself:
 *   calls    one per rd_coll_* call that communicates: a call on a one-rank
 *            comm, or with nothing to move (n = 0, nbytes = 0), returns at
 *            once and counts nothing; a bucketed all-reduce is ONE call
 *            whatever its number of buckets.
 *   bytes    the payload, the bytes of the buffer the call is handed (the
 *            convention of nccl-tests' "size"), NOT the bytes on the wire:
 *              all-reduce (all four, and buckets)  n * sizeof(element)
 *              all-gather                          size * n * 4 (the whole
 *                                                  gathered buffer)
 *              reduce-scatter                      size * n * 4 (the whole
 *                                                  input buffer)
 *              broadcast                           nbytes
 *              gather of records                   this rank's nbytes
 *            A ring all-reduce puts 2 (p - 1) / p times its payload on each
 *            rank's link, a ring all-gather or reduce-scatter (p - 1) / p
 *            (docs/scaling.md).
 *   seconds  wall time from entry to completion of those calls, waits for
 *            the other ranks and for every bucket of a nonblocking
 *            all-reduce included (MPI_Wtime). */
typedef struct {
  int64_t calls;
  int64_t bytes;
  double seconds;
} rd_comm_stats;

typedef struct {
  rd_comm_backend backend;
  MPI_Comm mpi; /* the group; with NCCL it also bootstraps the NCCL comm */
  int rank;     /* this rank's index in the group */
  int size;     /* ranks in the group */
  void *impl;   /* backend state beyond MPI (NCCL comm, stream); NULL for MPI */
  /* Behind a pointer so that calls taking a const rd_comm * can count;
   * NULL (a zeroed or failed comm) counts nothing. */
  rd_comm_stats *stats;
} rd_comm;

/* Wraps comm (not owned: rd_comm_free does not free it) with the MPI backend
 * and sets MPI_ERRORS_RETURN on it so failures come back as RD_EMPI.
 * Allocates the comm's counters, zeroed. */
int rd_comm_init_mpi(rd_comm *c, MPI_Comm comm);
/* Releases backend state and the counters; the MPI communicator stays.
 * Safe on a zeroed or failed rd_comm. */
void rd_comm_free(rd_comm *c);

/* *out = the comm's counters (all zero for a zeroed comm). Local: no
 * communication, so ranks may read at different times. Like the calls, not
 * for use from several threads at once on one comm. */
void rd_comm_stats_get(const rd_comm *c, rd_comm_stats *out);
/* Zeroes the comm's counters (local). */
void rd_comm_stats_reset(const rd_comm *c);

/* In place, element-wise over the ranks: buf[i] = sum (or max) of every
 * rank's buf[i]. n elements, the same n on every rank. */
int rd_coll_allreduce_sum_f32(const rd_comm *c, float *buf, size_t n);
int rd_coll_allreduce_sum_f64(const rd_comm *c, double *buf, size_t n);
int rd_coll_allreduce_sum_i64(const rd_comm *c, int64_t *buf, size_t n);
int rd_coll_allreduce_max_f32(const rd_comm *c, float *buf, size_t n);

/* The sum all-reduce of a large buffer (gradients) as one nonblocking
 * all-reduce per bucket of bucket_elems elements, cut from the end of the
 * buffer (the first bucket may be shorter), at most
 * RD_COLL_BUCKETS_INFLIGHT in flight, then waited for. Same result as
 * rd_coll_allreduce_sum_f32 up to the summation-order note above. */
#define RD_COLL_BUCKETS_INFLIGHT 4
int rd_coll_allreduce_buckets(const rd_comm *c, float *buf, size_t n, size_t bucket_elems);

/* The same, started while the buffer is still being written (gradients
 * during backward):
 *   rd_coll_buckets_begin(&b, c, buf, n, bucket_elems, max_inflight);
 *   ... rd_coll_buckets_ready(&b, from) whenever buf[from .. n) is final
 *       (from only decreases): starts the buckets lying wholly in it, as
 *       far as max_inflight allows without waiting, and advances those in
 *       flight;
 *   rd_coll_buckets_end(&b): starts the rest, waits for all, frees.
 * Every rank of c must make the same begin and end calls; the ready calls
 * may differ (a bucket is the same operation whenever it starts). Counted
 * as one call of n floats. After a failure inside ready, the buckets
 * already started still use buf: a rank that cannot call end leaves the
 * job to be aborted (stages/main.c does). */
typedef struct {
  const rd_comm *c;
  float *buf;
  size_t n, bucket, nb;  /* elements, bucket size, buckets */
  size_t started, done;  /* buckets started and completed, counted from the end of buf */
  int max_inflight, active;
  MPI_Request *req;      /* [nb] */
  double seconds;        /* inside the calls */
} rd_coll_buckets;
int rd_coll_buckets_begin(rd_coll_buckets *b, const rd_comm *c, float *buf, size_t n, size_t bucket_elems,
                          int max_inflight);
int rd_coll_buckets_ready(rd_coll_buckets *b, size_t from);
int rd_coll_buckets_end(rd_coll_buckets *b);

/* recv[r * n .. r * n + n) = rank r's send[0 .. n) on every rank.
 * recv: [size * n]. send == NULL means in place: this rank's block is
 * already at recv + rank * n. */
int rd_coll_allgather_f32(const rd_comm *c, const float *send, float *recv, size_t n);

/* recv[0 .. n) = sum over ranks of their send[rank * n .. rank * n + n).
 * send: [size * n], recv: [n]. */
int rd_coll_reduce_scatter_sum_f32(const rd_comm *c, const float *send, float *recv, size_t n);

/* buf[0 .. nbytes) of rank root copied to every rank. */
int rd_coll_bcast(const rd_comm *c, void *buf, size_t nbytes, int root);

/* Records gathered to one rank, in rank order, back to back. */
typedef struct {
  int n;               /* records held: the comm size on the root, 0 elsewhere */
  size_t *len;         /* [n] bytes of rank i's record */
  size_t *off;         /* [n] offset of rank i's record in data */
  unsigned char *data; /* [sum of len] the records */
} rd_coll_records;

/* Gathers every rank's record (nbytes bytes, may differ per rank, may be 0)
 * to root: on root, out holds rank i's record at out->data + out->off[i],
 * out->len[i] bytes long; elsewhere out is empty (n = 0). The whole gather
 * must stay under 2 GiB (MPI's int displacements); every rank checks this
 * from the gathered sizes, so all fail together when it does not. Free out
 * with rd_coll_records_free on every rank. */
int rd_coll_gather_records(const rd_comm *c, const void *rec, size_t nbytes, int root,
                           rd_coll_records *out);
void rd_coll_records_free(rd_coll_records *r);

#endif
