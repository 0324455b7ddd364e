/* Weighted softmax cross-entropy over the real vocabulary columns, in
 * pieces so that the vocabulary can be split over ranks (Megatron's
 * vocab-parallel cross-entropy): each rank holds the logits of a slab of
 * columns; the row max, the sums of exponentials and the target logits are
 * combined across ranks between the pieces, and full rows of logits are
 * never gathered. With one rank the pieces compose to rd_xent_forward. */
#include <math.h>
#include <stdlib.h>

#include "model/ops.h"

void rd_xent_rowmax(float *mx, const float *logits, int N, int Vr, int ld) {
#pragma omp parallel for schedule(static) if ((size_t)N * Vr > 65536)
  for (int n = 0; n < N; n++) {
    const float *z = logits + (size_t)n * ld;
    float m = -INFINITY;
    for (int v = 0; v < Vr; v++) m = z[v] > m ? z[v] : m;
    mx[n] = m;
  }
}

void rd_xent_rowstats(double *sumexp, double *target, const float *logits, const float *mx,
                      const int32_t *y, const float *w, int N, int Vr, int ld, int v0) {
#pragma omp parallel for schedule(static) if ((size_t)N * Vr > 65536)
  for (int n = 0; n < N; n++) {
    const float *z = logits + (size_t)n * ld;
    double s = 0.0;
    for (int v = 0; v < Vr; v++) s += expf(z[v] - mx[n]); /* float exp, double sum */
    sumexp[n] = s;
    int k = y && w[n] != 0.0f ? y[n] - v0 : -1;
    target[n] = k >= 0 && k < Vr ? (double)z[k] : 0.0;
  }
}

double rd_xent_finish(float *lse, const float *mx, const double *sumexp, const double *target,
                      const float *w, int N) {
  double loss = 0.0;
  for (int n = 0; n < N; n++) {
    lse[n] = mx[n] + (float)log(sumexp[n]);
    if (w[n] != 0.0f) loss += (double)w[n] * ((double)lse[n] - target[n]);
  }
  return loss;
}

double rd_xent_forward(float *lse, const float *logits, const int32_t *y, const float *w, int N,
                       int V, int Vp) {
  float *mx = malloc((size_t)N * sizeof *mx);
  double *st = malloc((size_t)N * 2 * sizeof *st);
  if (!mx || !st) {
    free(mx);
    free(st);
    return NAN;
  }
  rd_xent_rowmax(mx, logits, N, V, Vp);
  rd_xent_rowstats(st, st + N, logits, mx, y, w, N, V, Vp, 0);
  double loss = rd_xent_finish(lse, mx, st, st + N, w, N);
  free(mx);
  free(st);
  return loss;
}

void rd_xent_backward_slab(float *dlogits, const float *logits, const float *lse, const int32_t *y,
                           const float *w, int N, int Vr, int ld, int v0) {
#pragma omp parallel for schedule(static) if ((size_t)N * Vr > 65536)
  for (int n = 0; n < N; n++) {
    float wn = w[n];
    if (wn == 0.0f) continue;
    const float *z = logits + (size_t)n * ld;
    float *d = dlogits + (size_t)n * ld;
    for (int v = 0; v < Vr; v++) d[v] += wn * expf(z[v] - lse[n]);
    int k = y[n] - v0;
    if (k >= 0 && k < Vr) d[k] -= wn;
  }
}

void rd_xent_backward(float *dlogits, const float *logits, const float *lse, const int32_t *y,
                      const float *w, int N, int V, int Vp) {
  rd_xent_backward_slab(dlogits, logits, lse, y, w, N, V, Vp, 0);
}
