/* Linear layers through OpenBLAS sgemm, and the thread settings of the CPU
 * backend. Shapes follow nn.Linear: weight [OC, C]. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "model/ops.h"

void rd_ops_set_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int rd_ops_get_threads(void) { return omp_get_max_threads(); }

void rd_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int N, int C, int OC) {
  float beta = 0.0f;
  if (bias) {
    /* Seed the output with the bias rows and let sgemm add onto them. */
#pragma omp parallel for schedule(static) if ((size_t)N * OC > 32768)
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, sizeof(float) * OC);
    beta = 1.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C, beta,
              out, OC);
}

void rd_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int N, int C, int OC) {
  if (dinp)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C,
                1.0f, dinp, C);
  if (dweight)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C,
                1.0f, dweight, C);
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
