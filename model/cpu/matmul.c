/* Linear layers through OpenBLAS sgemm, and the thread settings of the CPU
 * backend. Shapes follow nn.Linear: weight [OC, C]. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "model/ops.h"

/* All threading is OpenMP; OpenBLAS always runs one thread per call. Its
 * own threading splits the work by thread count and changes the rounding
 * with it (measured: a 2528x384x128 sgemm differs in 30000 outputs between
 * 1 and 2 threads), so instead the matmuls below cut their outputs into
 * tiles, each tile one single-threaded sgemm, and OpenMP shares the tiles.
 * The tiles depend on the matrix shapes only, never on the thread count, so
 * the bits are the same for any thread count.
 *
 * Tile sizes: every sgemm call packs (copies) both of its operands, so a
 * tile repacks the part of the other operand it multiplies; 256 output rows
 * (forward, dinp) and 256 x 512 dweight tiles keep the packing near 5% of
 * the time (128 and 64 x 128 spent ~15% of a 512-wide model's step in
 * packing). Tile counts are made even, and large dweight products get at
 * least 4 tiles, so that 2 (or 4) threads get equal shares. */
enum {
  ROWS_TARGET = 256,   /* forward and dinp: output rows per tile, at most */
  DW_ROWS_TARGET = 256, /* dweight: output features per tile, at most */
  DW_COLS_TARGET = 512, /* dweight: input features per tile, at most */
  TILE_ALIGN = 16,      /* tile edges on multiples of the kernels' unroll */
  MIN_SPLIT_MACS = 1 << 24 /* a dweight product this large is split 4 ways */
};

static int min_i(int a, int b) { return a < b ? a : b; }
static int cdiv(int a, int b) { return (a + b - 1) / b; }

/* The size of each of ntile tiles covering n, rounded up to TILE_ALIGN. */
static int tile_size(int n, int ntile) {
  int t = cdiv(n, ntile);
  return cdiv(t, TILE_ALIGN) * TILE_ALIGN;
}
/* About n / target tiles, an even count when more than one. */
static int even_count(int n, int target) {
  int k = cdiv(n, target);
  return k > 1 && k % 2 ? k + 1 : k;
}

void rd_ops_set_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  openblas_set_num_threads(1);
}

int rd_ops_get_threads(void) { return omp_get_max_threads(); }

void rd_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int N, int C, int OC) {
  const int rt = tile_size(N, even_count(N, ROWS_TARGET)), ntile = cdiv(N, rt);
#pragma omp parallel for schedule(static) if (ntile > 1)
  for (int t = 0; t < ntile; t++) {
    int n0 = t * rt, nn = min_i(rt, N - n0);
    float *o = out + (size_t)n0 * OC;
    float beta = 0.0f;
    if (bias) { /* seed with the bias rows and let sgemm add onto them */
      for (int n = 0; n < nn; n++) memcpy(o + (size_t)n * OC, bias, sizeof(float) * OC);
      beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nn, OC, C, 1.0f, inp + (size_t)n0 * C, C,
                weight, C, beta, o, OC);
  }
}

void rd_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int N, int C, int OC) {
  if (dinp) {
    const int rt = tile_size(N, even_count(N, ROWS_TARGET)), ntile = cdiv(N, rt);
#pragma omp parallel for schedule(static) if (ntile > 1)
    for (int t = 0; t < ntile; t++) {
      int n0 = t * rt, nn = min_i(rt, N - n0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nn, C, OC, 1.0f,
                  dout + (size_t)n0 * OC, OC, weight, C, 1.0f, dinp + (size_t)n0 * C, C);
    }
  }
  if (dweight) {
    /* Each tile sums over all N rows inside one sgemm. */
    int ko = cdiv(OC, DW_ROWS_TARGET), kc = cdiv(C, DW_COLS_TARGET);
    /* Split the wider side further (large products), then even the count. */
    while (ko * kc < 4 && (double)N * OC * C >= MIN_SPLIT_MACS &&
           (OC / ko > TILE_ALIGN || C / kc > TILE_ALIGN)) {
      if (OC / ko >= C / kc) ko++;
      else kc++;
    }
    if (ko * kc > 1 && ko * kc % 2) {
      if (OC / ko >= C / kc) ko++;
      else kc++;
    }
    const int ro = tile_size(OC, ko), rc = tile_size(C, kc);
    const int to = cdiv(OC, ro), tc = cdiv(C, rc);
#pragma omp parallel for schedule(static) if (to * tc > 1)
    for (int t = 0; t < to * tc; t++) {
      int o0 = t / tc * ro, c0 = t % tc * rc;
      int no = min_i(ro, OC - o0), nc = min_i(rc, C - c0);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, no, nc, N, 1.0f, dout + o0, OC,
                  inp + c0, C, 1.0f, dweight + (size_t)o0 * C + c0, C);
    }
  }
  if (dbias) {
    /* Each thread owns a block of output features and sums the rows in
     * order: the same bits for any thread count. */
    enum { BLK = 64 };
    int nblk = (OC + BLK - 1) / BLK;
#pragma omp parallel for schedule(static) if ((size_t)N * OC > 32768)
    for (int b = 0; b < nblk; b++) {
      int o0 = b * BLK, o1 = o0 + BLK < OC ? o0 + BLK : OC;
      float acc[BLK];
      for (int o = o0; o < o1; o++) acc[o - o0] = 0.0f;
      for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * OC;
        for (int o = o0; o < o1; o++) acc[o - o0] += d[o];
      }
      for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
    }
  }
}
