/* Weighted softmax cross-entropy over the real vocabulary columns.
 *
 * Tensor parallel hook: with a vocab-parallel head each rank holds a slice
 * of the columns; the row max, the sum of exponentials and the target logit
 * are then all-reduced across the tp group between the passes below, and
 * full rows of logits are never gathered. */
#include <math.h>

#include "model/ops.h"

double rd_xent_forward(float *lse, const float *logits, const int32_t *y, const float *w, int N,
                       int V, int Vp) {
#pragma omp parallel for schedule(static) if ((size_t)N * V > 65536)
  for (int n = 0; n < N; n++) {
    const float *z = logits + (size_t)n * Vp;
    float mx = z[0];
    for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
    double s = 0.0;
    for (int v = 0; v < V; v++) s += expf(z[v] - mx); /* float exp, double sum */
    lse[n] = mx + (float)log(s);
  }
  double loss = 0.0;
  for (int n = 0; n < N; n++)
    if (w[n] != 0.0f) loss += (double)w[n] * ((double)lse[n] - logits[(size_t)n * Vp + y[n]]);
  return loss;
}

void rd_xent_backward(float *dlogits, const float *logits, const float *lse, const int32_t *y,
                      const float *w, int N, int V, int Vp) {
#pragma omp parallel for schedule(static) if ((size_t)N * V > 65536)
  for (int n = 0; n < N; n++) {
    float wn = w[n];
    if (wn == 0.0f) continue;
    const float *z = logits + (size_t)n * Vp;
    float *d = dlogits + (size_t)n * Vp;
    for (int v = 0; v < V; v++) d[v] += wn * expf(z[v] - lse[n]);
    d[y[n]] -= wn;
  }
}
