/* Rotary position embedding and bidirectional multi-head attention.
 *
 * Attention runs one (batch, head) pair per OpenMP iteration with
 * single-threaded sgemm calls inside (see model/cpu/matmul.c): per-head
 * matrices are small (T x hd), so splitting across heads keeps every core
 * busy, and each head's arithmetic is the same whichever thread runs it. */
#include <cblas.h>
#include <math.h>

#include "model/ops.h"

void rd_rope_tables(float *cos_t, float *sin_t, int T, int hd, double theta) {
  int half = hd / 2;
  for (int t = 0; t < T; t++)
    for (int i = 0; i < half; i++) {
      double ang = t * pow(theta, -2.0 * i / hd);
      cos_t[t * half + i] = (float)cos(ang);
      sin_t[t * half + i] = (float)sin(ang);
    }
}

/* Rotates q and k of heads [h0, H) at every position by +angle (dir = 1)
 * or -angle (dir = -1, the transpose, for gradients). */
static void rope_apply(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int H,
                       int hd, int h0, float dir) {
  int half = hd / 2;
  size_t S = (size_t)3 * H * hd;
#pragma omp parallel for schedule(static) if ((size_t)B * T * S > 32768)
  for (int bt = 0; bt < B * T; bt++) {
    int t = bt % T;
    const float *c = cos_t + (size_t)t * half, *s = sin_t + (size_t)t * half;
    for (int h = h0; h < H; h++)
      for (int part = 0; part < 2; part++) { /* q, then k */
        float *x = qkv + bt * S + (size_t)h * 3 * hd + (size_t)part * hd;
        for (int i = 0; i < half; i++) {
          float a = x[i], b = x[i + half], sn = dir * s[i];
          x[i] = a * c[i] - b * sn;
          x[i + half] = b * c[i] + a * sn;
        }
      }
  }
}

void rd_rope_forward(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int H,
                     int hd, int h0) {
  rope_apply(qkv, cos_t, sin_t, B, T, H, hd, h0, 1.0f);
}

void rd_rope_backward(float *dqkv, const float *cos_t, const float *sin_t, int B, int T, int H,
                      int hd, int h0) {
  rope_apply(dqkv, cos_t, sin_t, B, T, H, hd, h0, -1.0f);
}

void rd_attention_forward(float *out, float *att, const float *qkv, int B, int T, int H, int hd,
                          int img_heads, int img_keys) {
  const int S = 3 * H * hd, OS = H * hd; /* row strides of qkv and out */
  const float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * H; bh++) {
    int b = bh / H, h = bh % H;
    const float *q = qkv + (size_t)b * T * S + (size_t)h * 3 * hd, *k = q + hd, *v = q + 2 * hd;
    float *p = att + (size_t)bh * T * T;
    /* keys [0, nk) take part in this head's softmax */
    const int nk = h < img_heads && img_keys > 0 && img_keys < T ? img_keys : T;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, q, S, k, S, 0.0f, p, T);
    for (int i = 0; i < T; i++) {
      float *r = p + (size_t)i * T, mx = r[0], sum = 0.0f;
      for (int j = 1; j < nk; j++) mx = r[j] > mx ? r[j] : mx;
      for (int j = 0; j < nk; j++) {
        r[j] = expf(r[j] - mx);
        sum += r[j];
      }
      float inv = 1.0f / sum;
      for (int j = 0; j < nk; j++) r[j] *= inv;
      for (int j = nk; j < T; j++) r[j] = 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, p, T, v, S, 0.0f,
                out + (size_t)b * T * OS + (size_t)h * hd, OS);
  }
}

void rd_attention_backward(float *dqkv, float *work, const float *dout, const float *qkv,
                           const float *att, int B, int T, int H, int hd) {
  const int S = 3 * H * hd, OS = H * hd;
  const float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * H; bh++) {
    int b = bh / H, h = bh % H;
    size_t off = (size_t)b * T * S + (size_t)h * 3 * hd;
    const float *q = qkv + off, *k = q + hd, *v = q + 2 * hd;
    float *dq = dqkv + off, *dk = dq + hd, *dv = dq + 2 * hd;
    const float *p = att + (size_t)bh * T * T;
    const float *dO = dout + (size_t)b * T * OS + (size_t)h * hd;
    float *ds = work + (size_t)bh * T * T;
    /* dP = dO V^T; dV += P^T dO */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dO, OS, v, S, 0.0f, ds,
                T);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, p, T, dO, OS, 1.0f, dv,
                S);
    /* softmax backward: dS = P * (dP - rowsum(P * dP)) */
    for (int i = 0; i < T; i++) {
      const float *pr = p + (size_t)i * T;
      float *dr = ds + (size_t)i * T, dot = 0.0f;
      for (int j = 0; j < T; j++) dot += pr[j] * dr[j];
      for (int j = 0; j < T; j++) dr[j] = pr[j] * (dr[j] - dot);
    }
    /* scores were scale * q k^T: dQ += scale dS K; dK += scale dS^T Q */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, scale, ds, T, k, S, 1.0f, dq,
                S);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, scale, ds, T, q, S, 1.0f, dk,
                S);
  }
}
