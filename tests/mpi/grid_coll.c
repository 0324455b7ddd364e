/* The process grid, the start-up checks, failing together and every
 * collective, checked on whatever grid it is started on:
 *
 *   grid_coll TP      checks with tensor-parallel size TP (any rank count
 *                     that TP divides, a singleton included)
 *   grid_coll fatal   the last rank calls rd_mpi_fatal while the others wait
 *                     in a barrier: the job must end (see grid_coll.sh)
 *
 * Values are integers (or halves) small enough that every float and double
 * sum is exact whatever order MPI adds in, so results are compared exactly. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpi/check.h"
#include "mpi/coll.h"
#include "mpi/fail.h"
#include "mpi/grid.h"
#include "mpi/mpicheck.h"
#include "tests/unit/rd_test.h"

/* World ranks of the members of c, in c's rank order. */
static int *members(const rd_comm *c, int world_rank) {
  int *m = calloc((size_t)c->size, sizeof *m);
  float *all = calloc((size_t)c->size, sizeof *all);
  float me = (float)world_rank;
  CHECK_OK(rd_coll_allgather_f32(c, &me, all, 1));
  for (int i = 0; i < c->size; i++) m[i] = (int)all[i];
  free(all);
  return m;
}

static void check_grid(const rd_grid *g, int tp) {
  int wrank = -1, wsize = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
  MPI_Comm_size(MPI_COMM_WORLD, &wsize);
  CHECK(g->rank == wrank && g->size == wsize);
  CHECK(g->world.rank == wrank && g->world.size == wsize);
  CHECK(g->tp_size == tp && g->dp_size == wsize / tp);
  CHECK(g->dp_rank == wrank / tp && g->tp_rank == wrank % tp);
  CHECK(g->rank == g->dp_rank * g->tp_size + g->tp_rank);
  CHECK(g->tp.rank == g->tp_rank && g->tp.size == g->tp_size);
  CHECK(g->dp.rank == g->dp_rank && g->dp.size == g->dp_size);
  CHECK(g->world.backend == RD_COMM_MPI && g->tp.backend == RD_COMM_MPI);
  /* tp group: same dp_rank, consecutive ranks; dp group: same tp_rank,
   * stride tp. */
  int *mt = members(&g->tp, g->rank), *md = members(&g->dp, g->rank);
  for (int i = 0; i < g->tp_size; i++)
    CHECK_MSG(mt[i] == g->dp_rank * tp + i, "tp member %d is rank %d", i, mt[i]);
  for (int i = 0; i < g->dp_size; i++)
    CHECK_MSG(md[i] == i * tp + g->tp_rank, "dp member %d is rank %d", i, md[i]);
  free(mt);
  free(md);
}

/* Every collective on one group, against values computed from its members. */
static void check_collectives(const rd_comm *c, int world_rank, const char *name) {
  int *m = members(c, world_rank);
  int p = c->size, me = c->rank;
  enum { N = 1000 };
  float *f = calloc(N, sizeof *f);
  double *d = calloc(N, sizeof *d);
  int64_t *q = calloc(N, sizeof *q);
  float *mx = calloc(N, sizeof *mx);
  for (int i = 0; i < N; i++) {
    f[i] = (float)(world_rank * 1000 + i);
    d[i] = world_rank * 0.5 + i;
    q[i] = (int64_t)1 << 40 | (int64_t)(world_rank * 7 + i);
    mx[i] = (float)((world_rank * 13 + i * 5) % 17) - 8.0f;
  }
  CHECK_OK(rd_coll_allreduce_sum_f32(c, f, N));
  CHECK_OK(rd_coll_allreduce_sum_f64(c, d, N));
  CHECK_OK(rd_coll_allreduce_sum_i64(c, q, N));
  CHECK_OK(rd_coll_allreduce_max_f32(c, mx, N));
  int bad = 0;
  for (int i = 0; i < N; i++) {
    double ef = 0, ed = 0, emx = -1e30;
    int64_t eq = 0;
    for (int r = 0; r < p; r++) {
      ef += m[r] * 1000 + i;
      ed += m[r] * 0.5 + i;
      eq += (int64_t)1 << 40 | (int64_t)(m[r] * 7 + i);
      double v = (double)((m[r] * 13 + i * 5) % 17) - 8.0;
      emx = v > emx ? v : emx;
    }
    bad += f[i] != (float)ef || d[i] != ed || q[i] != eq || mx[i] != (float)emx;
  }
  CHECK_MSG(bad == 0, "%s: %d all-reduce results wrong", name, bad);

  /* Buckets (not dividing n) against the plain all-reduce. */
  enum { NB = 10007 };
  float *a = calloc(NB, sizeof *a), *b = calloc(NB, sizeof *b);
  for (int i = 0; i < NB; i++) a[i] = b[i] = (float)((world_rank + 1) * (i % 977) - 3 * i);
  CHECK_OK(rd_coll_allreduce_sum_f32(c, a, NB));
  CHECK_OK(rd_coll_allreduce_buckets(c, b, NB, 1000));
  CHECK_MSG(memcmp(a, b, NB * sizeof *a) == 0, "%s: bucketed all-reduce differs", name);
  bad = 0;
  for (int i = 0; i < NB; i++) {
    double e = 0;
    for (int r = 0; r < p; r++) e += (double)((m[r] + 1) * (i % 977) - 3 * i);
    bad += a[i] != (float)e;
  }
  CHECK_MSG(bad == 0, "%s: %d plain all-reduce results wrong", name, bad);
  CHECK_OK(rd_coll_allreduce_buckets(c, b, NB, 1u << 20)); /* one bucket */
  CHECK_ERR(rd_coll_allreduce_buckets(c, b, NB, 0), "bucket size");
  /* Started while "backward" writes the buffer from its end: the region
   * [from, NB) is final at each ready call, a different schedule of calls
   * on every rank, one bucket in flight at most; the result must be the
   * plain sum of the final values. */
  for (int i = 0; i < NB; i++) b[i] = -1e9f; /* not final yet */
  rd_coll_buckets bk;
  CHECK_ERR(rd_coll_buckets_begin(&bk, c, b, NB, 1000, 0), "in flight");
  CHECK_OK(rd_coll_buckets_begin(&bk, c, b, NB, 1000, 1));
  size_t from = NB, stride = 1500 + 700 * (size_t)world_rank;
  while (from > 0) {
    size_t lo = from > stride ? from - stride : 0;
    for (size_t i = lo; i < from; i++) b[i] = (float)((world_rank + 1) * (int)(i % 977) - 3 * (int)i);
    from = lo;
    CHECK_OK(rd_coll_buckets_ready(&bk, from));
  }
  CHECK_OK(rd_coll_buckets_end(&bk));
  CHECK_MSG(memcmp(a, b, NB * sizeof *a) == 0, "%s: all-reduce started as ready differs", name);
  free(a);
  free(b);

  /* All-gather, copied and in place. */
  enum { NG = 37 };
  float send[NG], *recv = calloc((size_t)p * NG, sizeof *recv);
  float *inplace = calloc((size_t)p * NG, sizeof *inplace);
  for (int j = 0; j < NG; j++) send[j] = inplace[me * NG + j] = (float)(world_rank * 100 + j);
  CHECK_OK(rd_coll_allgather_f32(c, send, recv, NG));
  CHECK_OK(rd_coll_allgather_f32(c, NULL, inplace, NG));
  bad = 0;
  for (int r = 0; r < p; r++)
    for (int j = 0; j < NG; j++)
      bad += recv[r * NG + j] != (float)(m[r] * 100 + j) ||
             inplace[r * NG + j] != (float)(m[r] * 100 + j);
  CHECK_MSG(bad == 0, "%s: %d all-gather results wrong", name, bad);
  free(recv);
  free(inplace);

  /* Reduce-scatter: block k of the sum lands on group rank k. */
  float *rs = calloc((size_t)p * NG, sizeof *rs), out[NG];
  for (int k = 0; k < p * NG; k++) rs[k] = (float)(world_rank * 10000 + k);
  CHECK_OK(rd_coll_reduce_scatter_sum_f32(c, rs, out, NG));
  bad = 0;
  for (int j = 0; j < NG; j++) {
    double e = 0;
    for (int r = 0; r < p; r++) e += m[r] * 10000 + me * NG + j;
    bad += out[j] != (float)e;
  }
  CHECK_MSG(bad == 0, "%s: %d reduce-scatter results wrong", name, bad);
  free(rs);

  /* Broadcast of bytes from the last group rank. */
  unsigned char bytes[300];
  for (int j = 0; j < 300; j++) bytes[j] = (unsigned char)(me == p - 1 ? j * 7 + 1 : 0);
  CHECK_OK(rd_coll_bcast(c, bytes, sizeof bytes, p - 1));
  bad = 0;
  for (int j = 0; j < 300; j++) bad += bytes[j] != (unsigned char)(j * 7 + 1);
  CHECK_MSG(bad == 0, "%s: %d broadcast bytes wrong", name, bad);
  CHECK_ERR(rd_coll_bcast(c, bytes, 1, p), "root rank");

  /* Records of different sizes (group rank 0's is empty) to the last rank. */
  size_t mylen = (size_t)(me * 37 % 50) + (me > 0);
  unsigned char *rec = malloc(mylen + 1);
  for (size_t j = 0; j < mylen; j++) rec[j] = (unsigned char)(world_rank * 31 + (int)j);
  rd_coll_records recs;
  int root = p - 1;
  CHECK_OK(rd_coll_gather_records(c, rec, mylen, root, &recs));
  if (me == root) {
    CHECK(recs.n == p);
    bad = 0;
    for (int r = 0; r < p && recs.n == p; r++) {
      size_t want = (size_t)(r * 37 % 50) + (r > 0);
      bad += recs.len[r] != want;
      for (size_t j = 0; j < want && recs.len[r] == want; j++)
        bad += recs.data[recs.off[r] + j] != (unsigned char)(m[r] * 31 + (int)j);
    }
    CHECK_MSG(bad == 0, "%s: %d gathered record bytes wrong", name, bad);
  } else {
    CHECK(recs.n == 0 && recs.data == NULL);
  }
  rd_coll_records_free(&recs);
  free(rec);

  free(f);
  free(d);
  free(q);
  free(mx);
  free(m);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
  nanosleep(&ts, NULL);
}

/* The counters of one group after a known sequence of calls: exact calls and
 * payload bytes (mpi/coll.h says what each call counts), and the time of a
 * bucketed all-reduce that waits for a late rank. */
static void check_stats_on(const rd_comm *c, const rd_comm *other, const char *name) {
  int p = c->size, me = c->rank;
  rd_comm_stats s, o0, o1;
  rd_comm_stats_get(other, &o0);
  rd_comm_stats_reset(c);
  rd_comm_stats_get(c, &s);
  CHECK_MSG(s.calls == 0 && s.bytes == 0 && s.seconds == 0.0, "%s: reset left %lld calls", name,
            (long long)s.calls);
  enum { N = 1000, NB = 10007, NG = 37 };
  float *f = calloc(NB, sizeof *f), *g = calloc((size_t)p * NG, sizeof *g);
  double d[10] = {0};
  int64_t q[3] = {0};
  unsigned char bytes[300] = {0};
  CHECK_OK(rd_coll_allreduce_sum_f32(c, f, N));           /* 4000 */
  CHECK_OK(rd_coll_allreduce_sum_f64(c, d, 10));          /* 80 */
  CHECK_OK(rd_coll_allreduce_sum_i64(c, q, 3));           /* 24 */
  CHECK_OK(rd_coll_allreduce_max_f32(c, f, 5));           /* 20 */
  CHECK_OK(rd_coll_allreduce_sum_f32(c, f, 0));           /* nothing to move: not counted */
  CHECK_OK(rd_coll_allreduce_buckets(c, f, NB, 1000));    /* one call of 11 buckets: 40028 */
  CHECK_OK(rd_coll_allgather_f32(c, NULL, g, NG));        /* p * 148 */
  CHECK_OK(rd_coll_reduce_scatter_sum_f32(c, g, f, NG));  /* p * 148 */
  CHECK_OK(rd_coll_bcast(c, bytes, sizeof bytes, 0));     /* 300 */
  CHECK_OK(rd_coll_bcast(c, bytes, 0, 0));                /* not counted */
  CHECK_ERR(rd_coll_bcast(c, bytes, 1, p), "root rank");  /* refused before any message */
  rd_coll_records recs;
  size_t mine = (size_t)(me * 5);                         /* this rank's record only */
  CHECK_OK(rd_coll_gather_records(c, bytes, mine, 0, &recs));
  rd_coll_records_free(&recs);
  rd_comm_stats_get(c, &s);
  int64_t want_calls = p > 1 ? 9 : 0;
  int64_t want_bytes = p > 1 ? 4000 + 80 + 24 + 20 + 40028 + 2 * (int64_t)p * NG * 4 + 300 +
                                   (int64_t)mine
                             : 0;
  CHECK_MSG(s.calls == want_calls && s.bytes == want_bytes,
            "%s: counted %lld calls, %lld bytes; want %lld, %lld", name, (long long)s.calls,
            (long long)s.bytes, (long long)want_calls, (long long)want_bytes);
  CHECK_MSG(p > 1 ? s.seconds > 0.0 : s.seconds == 0.0, "%s: %g s in %lld calls", name,
            s.seconds, (long long)s.calls);
  /* Calls on c leave another group's counters alone. */
  rd_comm_stats_get(other, &o1);
  CHECK_MSG(o1.calls == o0.calls && o1.bytes == o0.bytes, "%s: calls counted on another group",
            name);

  /* The last rank arrives 100 ms late: every other rank's seconds include
   * the wait for it inside the bucketed all-reduce. */
  rd_comm_stats_reset(c);
  if (p > 1 && me == p - 1) sleep_ms(100);
  CHECK_OK(rd_coll_allreduce_buckets(c, f, NB, 1000));
  rd_comm_stats_get(c, &s);
  if (p > 1 && me != p - 1)
    CHECK_MSG(s.seconds >= 0.08, "%s: %g s counted for a call that waited 100 ms", name,
              s.seconds);
  CHECK(s.calls == (p > 1) && s.bytes == (p > 1 ? NB * 4 : 0));
  rd_comm_stats_reset(c);
  free(f);
  free(g);
}

static void check_stats(const rd_grid *g) {
  check_stats_on(&g->world, &g->dp, "world");
  check_stats_on(&g->tp, &g->dp, "tp");
  check_stats_on(&g->dp, &g->tp, "dp");
  /* A zeroed comm reads as zeros and resets without crashing. */
  rd_comm zero;
  memset(&zero, 0, sizeof zero);
  rd_comm_stats s = {5, 5, 5.0};
  rd_comm_stats_reset(&zero);
  rd_comm_stats_get(&zero, &s);
  CHECK(s.calls == 0 && s.bytes == 0 && s.seconds == 0.0);
  rd_comm_free(&zero);
}

static int bad_root_call(const rd_grid *g) {
  int x = 0;
  RD_MPI(MPI_Bcast(&x, 1, MPI_INT, g->size + 5, g->world.mpi));
  return RD_OK;
}

static void check_failures(const rd_grid *g) {
  /* A tp that does not divide the ranks fails on every rank. */
  int bad_tp = g->size % 3 != 0 ? 3 : g->size + 1;
  char want[128];
  snprintf(want, sizeof want, "parallel.tp = %d does not divide the %d MPI ranks", bad_tp,
           g->size);
  rd_grid bad;
  CHECK_ERR(rd_grid_init(&bad, MPI_COMM_WORLD, bad_tp), want);
  rd_grid_free(&bad);
  CHECK_ERR(rd_grid_init(&bad, MPI_COMM_WORLD, 0), "at least 1");
  rd_grid zero;
  memset(&zero, 0, sizeof zero);
  rd_grid_free(&zero); /* a zeroed grid frees without crashing */

  /* The MPI check macro reports MPI's own message and our place. */
  CHECK_ERR(bad_root_call(g), "MPI_ERR_ROOT");
  CHECK_ERR(bad_root_call(g), "grid_coll.c:");

  /* Same hash everywhere; then the last rank differs. */
  CHECK_OK(rd_grid_check_same(g, 0x9f8e7d6c5b4a3921ull, "config"));
  if (g->size > 1) {
    int last = g->size - 1;
    uint64_t h = g->rank == last ? 0x1a2bull : 0x9f8eull;
    snprintf(want, sizeof want,
             "config differs between ranks: rank %d has hash 0000000000001a2b, rank 0 has "
             "0000000000009f8e", last);
    CHECK_ERR(rd_grid_check_same(g, h, "config"), want);
  }

  /* Agreement: all pass; then rank 1 (and the last) fail with different
   * messages: everyone gets rank 1's code and message. */
  int failed = 7;
  CHECK_OK(rd_mpi_agree(g, 0, &failed));
  CHECK(failed == -1);
  int victim = g->size > 1 ? 1 : 0, st = 0;
  rd_err_clear();
  if (g->rank == victim) st = rd_err(RD_EIO, "cannot open shard train-0001.h5");
  else if (g->rank == g->size - 1) st = rd_err(RD_EINVAL, "another failure on the last rank");
  /* one rank: its own message, with no rank named */
  if (g->size > 1) snprintf(want, sizeof want, "rank %d failed: cannot open shard train-0001.h5", victim);
  else snprintf(want, sizeof want, "cannot open shard train-0001.h5");
  int one = g->size == 1;
  int rc = rd_mpi_agree(g, st, &failed);
  CHECK_MSG(rc == RD_EIO && strstr(rd_err_msg(), want) && (!one || !strstr(rd_err_msg(), "rank")) && failed == victim,
            "agree gave %d, failed rank %d: %s", rc, failed, rd_err_msg());
}

static int run_fatal(void) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (rank == size - 1) {
    /* Let the others get into the barrier first. */
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    rd_mpi_fatal("deliberate failure for the test", 3);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  fprintf(stderr, "rank %d: the barrier returned: the job was not aborted\n", rank);
  MPI_Finalize();
  return 1;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  if (argc != 2) {
    fprintf(stderr, "usage: grid_coll TP | fatal\n");
    MPI_Finalize();
    return 2;
  }
  if (strcmp(argv[1], "fatal") == 0) return run_fatal();
  int tp = atoi(argv[1]);
  rd_grid g;
  int rc = rd_grid_init(&g, MPI_COMM_WORLD, tp);
  if (rc < 0) rd_mpi_fatal(rd_err_msg(), 1);
  check_grid(&g, tp);
  check_collectives(&g.world, g.rank, "world");
  check_collectives(&g.tp, g.rank, "tp");
  check_collectives(&g.dp, g.rank, "dp");
  check_stats(&g);
  check_failures(&g);

  int64_t tally[2] = {rd_test_checks, rd_test_fails};
  CHECK_OK(rd_coll_allreduce_sum_i64(&g.world, tally, 2));
  if (g.rank == 0)
    printf("grid_coll: %d ranks, dp %d x tp %d: %lld checks, %lld failed\n", g.size, g.dp_size,
           g.tp_size, (long long)tally[0], (long long)tally[1]);
  rd_grid_free(&g);
  MPI_Finalize();
  return tally[1] ? 1 : 0;
}
