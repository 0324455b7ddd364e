/* Elementwise ops: SwiGLU, GELU (tanh approximation), residual add. Each
 * element is independent, so any thread split gives the same bits. */
#include <math.h>

#include "model/ops.h"

#define RD_PAR_MIN 16384 /* below this, a parallel region costs more than it saves */

void rd_swiglu_forward(float *out, const float *gate, const float *up, size_t n) {
#pragma omp parallel for schedule(static) if (n > RD_PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

void rd_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                        const float *up, size_t n) {
  /* silu'(g) = s (1 + g (1 - s)) with s = sigmoid(g) */
#pragma omp parallel for schedule(static) if (n > RD_PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float g = gate[i], s = 1.0f / (1.0f + expf(-g));
    dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
    dup[i] += dout[i] * g * s;
  }
}

#define GELU_K 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_C 0.044715f

void rd_gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > RD_PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float x = inp[i];
    out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x)));
  }
}

void rd_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > RD_PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float x = inp[i], u = GELU_K * (x + GELU_C * x * x * x), th = tanhf(u);
    float sech2 = 1.0f - th * th;
    float d = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
    dinp[i] += dout[i] * d;
  }
}

void rd_residual_forward(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for schedule(static) if (n > RD_PAR_MIN)
  for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void rd_residual_backward(float *da, float *db, const float *dout, size_t n) {
#pragma omp parallel for schedule(static) if (n > RD_PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    da[i] += dout[i];
    db[i] += dout[i];
  }
}
