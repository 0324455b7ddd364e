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
 * tiles of a FIXED size, each tile one single-threaded sgemm, and OpenMP
 * shares the tiles. The tiles, and so the bits, are the same for any thread
 * count; tile sizes keep sgemm's packing overhead near 1%. */
enum {
  ROWS_TILE = 128,  /* forward and dinp: rows of the output per tile */
  DW_ROWS_TILE = 64, /* dweight: output features per tile */
  DW_COLS_TILE = 128 /* dweight: input features per tile */
};

void rd_ops_set_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  openblas_set_num_threads(1);
}

int rd_ops_get_threads(void) { return omp_get_max_threads(); }

static int min_i(int a, int b) { return a < b ? a : b; }

void rd_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int N, int C, int OC) {
  int ntile = (N + ROWS_TILE - 1) / ROWS_TILE;
#pragma omp parallel for schedule(static) if (ntile > 1)
  for (int t = 0; t < ntile; t++) {
    int n0 = t * ROWS_TILE, nn = min_i(ROWS_TILE, N - n0);
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
    int ntile = (N + ROWS_TILE - 1) / ROWS_TILE;
#pragma omp parallel for schedule(static) if (ntile > 1)
    for (int t = 0; t < ntile; t++) {
      int n0 = t * ROWS_TILE, nn = min_i(ROWS_TILE, N - n0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nn, C, OC, 1.0f,
                  dout + (size_t)n0 * OC, OC, weight, C, 1.0f, dinp + (size_t)n0 * C, C);
    }
  }
  if (dweight) {
    /* Each tile sums over all N rows inside one sgemm. */
    int to = (OC + DW_ROWS_TILE - 1) / DW_ROWS_TILE, tc = (C + DW_COLS_TILE - 1) / DW_COLS_TILE;
#pragma omp parallel for schedule(static) if (to * tc > 1)
    for (int t = 0; t < to * tc; t++) {
      int o0 = t / tc * DW_ROWS_TILE, c0 = t % tc * DW_COLS_TILE;
      int no = min_i(DW_ROWS_TILE, OC - o0), nc = min_i(DW_COLS_TILE, C - c0);
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
