/* RMSNorm with a learned scale (LLaMA style, no bias, no mean removal). */
#include <math.h>

#include "model/ops.h"

void rd_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N,
                        int C, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C > 16384)
  for (int n = 0; n < N; n++) {
    const float *x = inp + (size_t)n * C;
    float *o = out + (size_t)n * C;
    double ss = 0.0;
    for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
    float r = (float)(1.0 / sqrt(ss / C + eps));
    for (int c = 0; c < C; c++) o[c] = x[c] * r * weight[c];
    rstd[n] = r;
  }
}

void rd_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                         const float *weight, const float *rstd, int N, int C) {
  /* y = x r w with r = (mean x^2 + eps)^-1/2, so with g = dy * w:
   * dx = r g - x r^3 mean(g x). */
#pragma omp parallel for schedule(static) if ((size_t)N * C > 16384)
  for (int n = 0; n < N; n++) {
    const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
    float *dx = dinp + (size_t)n * C;
    float r = rstd[n];
    double dot = 0.0;
    for (int c = 0; c < C; c++) dot += (double)dy[c] * weight[c] * x[c];
    float k = (float)(dot / C) * r * r * r;
    for (int c = 0; c < C; c++) dx[c] += r * dy[c] * weight[c] - k * x[c];
  }
  /* Weight gradient: a reduction over rows, so threads split the features
   * and each sums its rows in order (thread-count independent). */
  enum { BLK = 64 };
  int nblk = (C + BLK - 1) / BLK;
#pragma omp parallel for schedule(static) if ((size_t)N * C > 16384)
  for (int b = 0; b < nblk; b++) {
    int c0 = b * BLK, c1 = c0 + BLK < C ? c0 + BLK : C;
    float acc[BLK];
    for (int c = c0; c < c1; c++) acc[c - c0] = 0.0f;
    for (int n = 0; n < N; n++) {
      const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
      float r = rstd[n];
      for (int c = c0; c < c1; c++) acc[c - c0] += dy[c] * x[c] * r;
    }
    for (int c = c0; c < c1; c++) dweight[c] += acc[c - c0];
  }
}
