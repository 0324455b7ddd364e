/* One pre-norm transformer block, forward and backward, used by both the
 * vision tower and the LM:
 *   x2  = x  + wo . attention(rope(wqkv . rmsnorm(x)))
 *   out = x2 + wdown . swiglu(wgate . rmsnorm(x2), wup . rmsnorm(x2))
 *
 * Tensor parallel (Megatron): wqkv, wgate, wup are column-parallel (each
 * rank holds H/tp heads and dff/tp units: t->H and t->dff are local), wo and
 * wdown row-parallel. The block input is the same on every rank of the tp
 * group; each rank's wo and wdown products are partial sums of the output,
 * summed over the group ("g" in the Megatron paper), and in backward the
 * gradient of each normed input is a partial sum over the rank's heads or
 * units, summed the same way ("f"). Four all-reduces of [N, C] per block and
 * pass; nothing else in a block communicates. */
#include <string.h>

#include "io/core/err.h"
#include "model/ops.h"
#include "model/vlm.h"

/* Sums x [n] over the tower's tp group; nothing when the tower is not split. */
static int tp_sum(const rd_tower *t, float *x, size_t n) {
  return t->tp ? rd_coll_allreduce_sum_f32(t->tp, x, n) : RD_OK;
}

void rd_block_view(const rd_vlm *m, const rd_tower *t, float *buf, int layer, rd_block_w *w) {
  const rd_tensor *tt = m->tensors + t->first + layer * RD_BLOCK_TENSORS;
  w->attn_norm = buf + tt[0].offset;
  w->wqkv = buf + tt[1].offset;
  w->wo = buf + tt[2].offset;
  w->mlp_norm = buf + tt[3].offset;
  w->wgate = buf + tt[4].offset;
  w->wup = buf + tt[5].offset;
  w->wdown = buf + tt[6].offset;
}

static int block_forward(const rd_tower *t, const rd_block_acts *a, const rd_block_w *w,
                         float *x_out, int B, float eps) {
  const int N = B * t->T, C = t->C, H = t->H, hd = t->hd, dff = t->dff;
  rd_rmsnorm_forward(a->ln1, a->rstd1, a->x, w->attn_norm, N, C, eps);
  rd_matmul_forward(a->qkv, a->ln1, w->wqkv, NULL, N, C, 3 * H * hd);
  rd_rope_forward(a->qkv, t->rope_cos, t->rope_sin, B, t->T, H, hd, t->rope_h0);
  rd_attention_forward(a->atty, a->att, a->qkv, B, t->T, H, hd, t->img_heads, t->img_keys);
  rd_matmul_forward(a->x2, a->atty, w->wo, NULL, N, H * hd, C);
  RD_TRY(tp_sum(t, a->x2, (size_t)N * C));
  rd_residual_forward(a->x2, a->x, a->x2, (size_t)N * C);

  rd_rmsnorm_forward(a->ln2, a->rstd2, a->x2, w->mlp_norm, N, C, eps);
  rd_matmul_forward(a->gate, a->ln2, w->wgate, NULL, N, C, dff);
  rd_matmul_forward(a->up, a->ln2, w->wup, NULL, N, C, dff);
  rd_swiglu_forward(a->h, a->gate, a->up, (size_t)N * dff);
  rd_matmul_forward(x_out, a->h, w->wdown, NULL, N, dff, C);
  RD_TRY(tp_sum(t, x_out, (size_t)N * C));
  rd_residual_forward(x_out, a->x2, x_out, (size_t)N * C);
  return RD_OK;
}

/* t->dx: d(block output) on entry, d(block input) on return. The residual
 * branches need no explicit add: every backward op accumulates into dx. */
static int block_backward(rd_tower *t, const rd_block_acts *a, const rd_block_w *w,
                           const rd_block_w *g, int B) {
  const int N = B * t->T, C = t->C, H = t->H, hd = t->hd, dff = t->dff;
  const size_t nff = (size_t)N * dff, nc = (size_t)N * C;

  memset(t->dh, 0, nff * sizeof(float));
  rd_matmul_backward(t->dh, g->wdown, NULL, t->dx, a->h, w->wdown, N, dff, C);
  memset(t->dgate, 0, nff * sizeof(float));
  memset(t->dup, 0, nff * sizeof(float));
  rd_swiglu_backward(t->dgate, t->dup, t->dh, a->gate, a->up, nff);
  memset(t->dln, 0, nc * sizeof(float));
  rd_matmul_backward(t->dln, g->wgate, NULL, t->dgate, a->ln2, w->wgate, N, C, dff);
  rd_matmul_backward(t->dln, g->wup, NULL, t->dup, a->ln2, w->wup, N, C, dff);
  RD_TRY(tp_sum(t, t->dln, nc));
  rd_rmsnorm_backward(t->dx, g->mlp_norm, t->dln, a->x2, w->mlp_norm, a->rstd2, N, C);

  memset(t->datty, 0, (size_t)N * H * hd * sizeof(float));
  rd_matmul_backward(t->datty, g->wo, NULL, t->dx, a->atty, w->wo, N, H * hd, C);
  memset(t->dqkv, 0, (size_t)N * 3 * H * hd * sizeof(float));
  rd_attention_backward(t->dqkv, t->work, t->datty, a->qkv, a->att, B, t->T, H, hd);
  rd_rope_backward(t->dqkv, t->rope_cos, t->rope_sin, B, t->T, H, hd, t->rope_h0);
  memset(t->dln, 0, nc * sizeof(float));
  rd_matmul_backward(t->dln, g->wqkv, NULL, t->dqkv, a->ln1, w->wqkv, N, C, 3 * H * hd);
  RD_TRY(tp_sum(t, t->dln, nc));
  rd_rmsnorm_backward(t->dx, g->attn_norm, t->dln, a->x, w->attn_norm, a->rstd1, N, C);
  return RD_OK;
}

int rd_tower_forward(const rd_vlm *m, rd_tower *t, int B) {
  for (int l = 0; l < t->n_layers; l++) {
    rd_block_w w;
    rd_block_view(m, t, m->params, l, &w);
    float *out = l + 1 < t->n_layers ? t->acts[l + 1].x : t->out;
    RD_TRY(block_forward(t, &t->acts[l], &w, out, B, (float)m->cfg.norm_eps));
  }
  return RD_OK;
}

int rd_tower_backward(rd_vlm *m, rd_tower *t, int B) {
  for (int l = t->n_layers - 1; l >= 0; l--) {
    rd_block_w w, g;
    rd_block_view(m, t, m->params, l, &w);
    rd_block_view(m, t, m->grads, l, &g);
    RD_TRY(block_backward(t, &t->acts[l], &w, &g, B));
    RD_TRY(rd_vlm_grads_ready(m, m->tensors[t->first + l * RD_BLOCK_TENSORS].offset));
  }
  return RD_OK;
}
