/* Image patches, token embedding and learned position embedding. */
#include <string.h>

#include "model/ops.h"

/* Pixels map to [-0.5, 0.5], centred on mid-grey. With [0, 1] inputs
 * every patch vector shares a large positive mean component, so the patch
 * embeddings of a white background and of a coloured object point almost
 * the same way at init and the model learned captions without reading
 * the image; [-1, 1] reads it, but less well (docs/model.md, "Input
 * scaling"). */
void rd_patchify(float *out, const uint8_t *images, int B, int H, int W, int P) {
  int gh = H / P, gw = W / P, F = P * P * 3;
#pragma omp parallel for schedule(static) if ((size_t)B * H * W > 65536)
  for (int bp = 0; bp < B * gh * gw; bp++) {
    int b = bp / (gh * gw), gy = bp / gw % gh, gx = bp % gw;
    float *o = out + (size_t)bp * F;
    for (int y = 0; y < P; y++) {
      const uint8_t *row = images + (((size_t)b * H + gy * P + y) * W + (size_t)gx * P) * 3;
      for (int i = 0; i < P * 3; i++) o[y * P * 3 + i] = row[i] * (1.0f / 255.0f) - 0.5f;
    }
  }
}

void rd_embedding_forward(float *out, const int32_t *ids, const float *table, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C > 65536)
  for (int n = 0; n < N; n++)
    if (ids[n] >= 0) memcpy(out + (size_t)n * C, table + (size_t)ids[n] * C, sizeof(float) * C);
}

void rd_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int C) {
  /* Rows of the table can repeat, so threads split the features and each
   * visits the rows in order: no races, thread-count independent. */
  enum { BLK = 64 };
  int nblk = (C + BLK - 1) / BLK;
#pragma omp parallel for schedule(static) if ((size_t)N * C > 65536)
  for (int b = 0; b < nblk; b++) {
    int c0 = b * BLK, c1 = c0 + BLK < C ? c0 + BLK : C;
    for (int n = 0; n < N; n++) {
      if (ids[n] < 0) continue;
      float *d = dtable + (size_t)ids[n] * C;
      const float *g = dout + (size_t)n * C;
      for (int c = c0; c < c1; c++) d[c] += g[c];
    }
  }
}

void rd_posemb_forward(float *x, const float *pos, int B, int T, int C) {
  size_t TC = (size_t)T * C;
#pragma omp parallel for schedule(static) if ((size_t)B * TC > 65536)
  for (int b = 0; b < B; b++)
    for (size_t i = 0; i < TC; i++) x[b * TC + i] += pos[i];
}

void rd_posemb_backward(float *dpos, const float *dx, int B, int T, int C) {
  size_t TC = (size_t)T * C;
#pragma omp parallel for schedule(static) if ((size_t)B * TC > 65536)
  for (size_t i = 0; i < TC; i++) {
    float acc = 0.0f;
    for (int b = 0; b < B; b++) acc += dx[b * TC + i];
    dpos[i] += acc;
  }
}
