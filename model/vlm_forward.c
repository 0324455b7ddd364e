/* The VLM's forward and backward passes over the whole sequence
 * [image (Np)][prompt (Tp)][response (L)].
 *
 * Under tensor parallelism the patch embedding, projector, token embedding
 * and norms run replicated on every rank of the tp group (same inputs, same
 * parameters, so the same values); the blocks of both towers communicate
 * inside model/block.c; the LM head is vocab-parallel: each rank computes the
 * logits of its vocabulary rows, the cross-entropy combines row max, sums of
 * exponentials and target logits over the group, and in backward the
 * gradient of the normed LM output is summed over the group. */
#include <math.h>
#include <string.h>

#include "io/core/err.h"
#include "model/ops.h"
#include "model/vlm.h"

#define P(i) (m->params + m->tensors[(i)].offset)
#define G(i) (m->grads + m->tensors[(i)].offset)

static int check_batch(const rd_vlm *m, const rd_batch *b) {
  if (b->B < 1 || b->B > m->max_batch)
    return rd_err(RD_EINVAL, "batch of %d samples: the model was sized for 1 to %d", b->B,
                  m->max_batch);
  if (m->feature_dim == 0 && !b->images)
    return rd_err(RD_EINVAL, "the model reads images but the batch has none");
  if (m->feature_dim > 0 && !b->features)
    return rd_err(RD_EINVAL, "the model reads precomputed features but the batch has none");
  if (!b->x) return rd_err(RD_EINVAL, "the batch has no response tokens x");
  if (b->cells) {
    if (m->cfg.cell_classes <= 0)
      return rd_err(RD_EINVAL, "the batch has perception targets but the model has no perception head "
                               "(model.cell_classes is 0)");
    if (!b->y) return rd_err(RD_EINVAL, "the batch has perception targets but no caption targets y");
    if (!isfinite(b->cell_w) || b->cell_w < 0)
      return rd_err(RD_EINVAL, "the perception weight %g is not a finite number >= 0", (double)b->cell_w);
    for (size_t i = 0; i < (size_t)b->B * m->Np; i++)
      if (b->cells[i] < 0 || b->cells[i] >= m->cfg.cell_classes)
        return rd_err(RD_EINVAL, "cells[%zu][%zu] = %d is outside the perception classes [0, %d)",
                      i / m->Np, i % m->Np, b->cells[i], m->cfg.cell_classes);
  }
  if (!b->y != !b->w) return rd_err(RD_EINVAL, "the batch has targets y without weights w or the reverse");
  size_t n = (size_t)b->B * m->L;
  for (size_t i = 0; i < n; i++) {
    if (b->x[i] < 0 || b->x[i] >= m->V)
      return rd_err(RD_EINVAL, "x[%zu][%zu] = %d is outside the vocabulary [0, %d)", i / m->L,
                    i % m->L, b->x[i], m->V);
    if (b->w && b->w[i] != 0.0f) {
      if (!isfinite(b->w[i]))
        return rd_err(RD_EINVAL, "w[%zu][%zu] is not finite", i / m->L, i % m->L);
      if (b->y[i] < 0 || b->y[i] >= m->V)
        return rd_err(RD_EINVAL, "y[%zu][%zu] = %d is outside the vocabulary [0, %d)", i / m->L,
                      i % m->L, b->y[i], m->V);
    }
  }
  return RD_OK;
}

/* Image tokens [Nv, d] of the projector, from images or features. */
static int encode_image(rd_vlm *m, const rd_batch *b) {
  const int B = b->B, Nv = B * m->Np, d = m->cfg.d_model;
  const float *proj_in;
  if (m->feature_dim == 0) {
    rd_tower *t = &m->vis;
    rd_patchify(m->patches, b->images, B, m->cfg.image_size, m->cfg.image_size, m->cfg.patch);
    rd_matmul_forward(t->acts[0].x, m->patches, P(m->t_patch_w), P(m->t_patch_b), Nv,
                      m->patch_dim, t->C);
    rd_posemb_forward(t->acts[0].x, P(m->t_pos), B, m->Np, t->C);
    RD_TRY(rd_tower_forward(m, t, B));
    rd_rmsnorm_forward(m->vnorm, m->vrstd, t->out, P(m->t_vnorm), Nv, t->C,
                       (float)m->cfg.norm_eps);
    proj_in = m->vnorm;
  } else {
    memcpy(m->patches, b->features, (size_t)Nv * m->Din * sizeof(float));
    proj_in = m->patches;
  }
  rd_matmul_forward(m->proj_h, proj_in, P(m->t_proj_w1), P(m->t_proj_b1), Nv, m->Din, d);
  rd_gelu_forward(m->proj_g, m->proj_h, (size_t)Nv * d);
  rd_matmul_forward(m->proj_lin, m->proj_g, P(m->t_proj_w2), P(m->t_proj_b2), Nv, d, d);
  if (m->t_grid_pos >= 0) {
    rd_rmsnorm_forward(m->content, m->crstd, m->proj_lin, P(m->t_img_norm), Nv, d, (float)m->cfg.norm_eps);
    memcpy(m->proj_out, m->content, (size_t)Nv * d * sizeof(float));
    rd_posemb_forward(m->proj_out, P(m->t_grid_pos), B, m->Np, d);
  }
  return RD_OK;
}

/* The perception loss: the head's logits [Nv, K] of the content tokens
 * against the class of each token's cell. */
static int cell_forward(rd_vlm *m, const rd_batch *b) {
  const int Nv = b->B * m->Np, K = m->cfg.cell_classes, d = m->cfg.d_model;
  memcpy(m->cells, b->cells, (size_t)Nv * sizeof(int32_t));
  for (int i = 0; i < Nv; i++) m->cell_wv[i] = b->cell_w;
  rd_matmul_forward(m->cell_logits, m->content, P(m->t_cell_w), P(m->t_cell_b), Nv, d, K);
  /* the head is replicated under tp: every rank has the whole rows */
  float *mx = m->cell_lse; /* the row max, then overwritten by the log-sum-exp */
  double *sumexp = m->cell_stats, *target = m->cell_stats + Nv;
  rd_xent_rowmax(mx, m->cell_logits, Nv, K, K);
  rd_xent_rowstats(sumexp, target, m->cell_logits, mx, m->cells, m->cell_wv, Nv, K, K, 0);
  m->cell_loss = rd_xent_finish(m->cell_lse, mx, sumexp, target, m->cell_wv, Nv);
  return RD_OK;
}

/* The vocab-parallel cross-entropy of the local logits [Nr, Vl]. */
static int xent(rd_vlm *m, int Nr, double *loss) {
  float *mx = m->lse; /* the row max, then overwritten by the log-sum-exp */
  double *sumexp = m->xstats, *target = m->xstats + Nr;
  rd_xent_rowmax(mx, m->logits, Nr, m->Vr, m->Vl);
  if (m->tp) RD_TRY(rd_coll_allreduce_max_f32(m->tp, mx, (size_t)Nr));
  rd_xent_rowstats(sumexp, target, m->logits, mx, m->y, m->w, Nr, m->Vr, m->Vl, m->v0);
  if (m->tp) RD_TRY(rd_coll_allreduce_sum_f64(m->tp, m->xstats, 2 * (size_t)Nr));
  *loss = rd_xent_finish(m->lse, mx, sumexp, target, m->w, Nr);
  return RD_OK;
}

/* Full rows [Nr, Vp] of logits on every rank, for decoding; padding
 * columns -inf so no argmax or softmax of a decoder picks them. */
static int full_logits(rd_vlm *m, int Nr) {
  if (m->tp) {
    const size_t slab = (size_t)Nr * m->Vl;
    RD_TRY(rd_coll_allgather_f32(m->tp, m->logits, m->gathered, slab));
    for (int r = 0; r < m->tp_size; r++)
      for (int n = 0; n < Nr; n++)
        memcpy(m->full_logits + (size_t)n * m->Vp + (size_t)r * m->Vl,
               m->gathered + r * slab + (size_t)n * m->Vl, (size_t)m->Vl * sizeof(float));
  }
  if (m->Vp > m->V)
    for (int n = 0; n < Nr; n++)
      for (int v = m->V; v < m->Vp; v++) m->full_logits[(size_t)n * m->Vp + v] = -INFINITY;
  return RD_OK;
}

int rd_vlm_forward(rd_vlm *m, const rd_batch *b, float *loss) {
  m->B = 0;
  RD_TRY(check_batch(m, b));
  const int B = b->B, T = m->T, Np = m->Np, L = m->L, d = m->cfg.d_model, Nr = B * L;
  const int r0 = Np + m->Tp; /* first response position */
  RD_TRY(encode_image(m, b));

  /* The LM input: image tokens, then embedded prompt and response tokens. */
  float *x0 = m->lm.acts[0].x;
  for (int s = 0; s < B; s++) {
    int32_t *ids = m->ids + (size_t)s * T;
    for (int i = 0; i < Np; i++) ids[i] = -1;
    memcpy(ids + Np, m->prompt, (size_t)m->Tp * sizeof(int32_t));
    memcpy(ids + r0, b->x + (size_t)s * L, (size_t)L * sizeof(int32_t));
    memcpy(x0 + (size_t)s * T * d, m->proj_out + (size_t)s * Np * d, (size_t)Np * d * sizeof(float));
  }
  rd_embedding_forward(x0, m->ids, P(m->t_tok_emb), B * T, d);
  RD_TRY(rd_tower_forward(m, &m->lm, B));

  /* The head only at the response positions; the final RMSNorm is per row,
   * so normalising just those rows is the same. */
  for (int s = 0; s < B; s++)
    memcpy(m->resp + (size_t)s * L * d, m->lm.out + ((size_t)s * T + r0) * d,
           (size_t)L * d * sizeof(float));
  rd_rmsnorm_forward(m->lnf, m->rstdf, m->resp, P(m->t_lm_norm), Nr, d, (float)m->cfg.norm_eps);
  /* Vocab-parallel head: this rank's rows of the vocabulary. */
  rd_matmul_forward(m->logits, m->lnf, P(m->t_lm_head), NULL, Nr, d, m->Vl);

  m->has_targets = b->y != NULL;
  m->has_cells = b->cells != NULL;
  m->loss = m->cell_loss = 0.0;
  if (m->has_cells) RD_TRY(cell_forward(m, b));
  if (m->has_targets) {
    memcpy(m->y, b->y, (size_t)Nr * sizeof(int32_t));
    memcpy(m->w, b->w, (size_t)Nr * sizeof(float));
    RD_TRY(xent(m, Nr, &m->loss));
    /* Without tp the logits are the full rows: keep rd_vlm_logits valid. */
    if (!m->tp) RD_TRY(full_logits(m, Nr));
  } else {
    RD_TRY(full_logits(m, Nr));
  }
  if (loss) *loss = (float)m->loss;
  m->B = B;
  return RD_OK;
}

const float *rd_vlm_logits(const rd_vlm *m) { return m->full_logits; }

int rd_vlm_grads_ready(rd_vlm *m, size_t from) {
  return m->grads_ready ? m->grads_ready(m->grads_ready_ctx, from) : RD_OK;
}

int rd_vlm_backward(rd_vlm *m) {
  if (m->B == 0 || !m->has_targets)
    return rd_err(RD_ESTATE, "rd_vlm_backward needs a forward pass with targets y and weights w");
  const int B = m->B, T = m->T, Np = m->Np, L = m->L, d = m->cfg.d_model, Nr = B * L,
            Nv = B * Np;
  const int r0 = Np + m->Tp;
  rd_tower *lm = &m->lm;

  memset(m->dlogits, 0, (size_t)Nr * m->Vl * sizeof(float));
  rd_xent_backward_slab(m->dlogits, m->logits, m->lse, m->y, m->w, Nr, m->Vr, m->Vl, m->v0);
  memset(m->dlnf, 0, (size_t)Nr * d * sizeof(float));
  rd_matmul_backward(m->dlnf, G(m->t_lm_head), NULL, m->dlogits, m->lnf, P(m->t_lm_head), Nr, d,
                     m->Vl);
  /* Each rank's head rows give a partial sum of the gradient. */
  if (m->tp) RD_TRY(rd_coll_allreduce_sum_f32(m->tp, m->dlnf, (size_t)Nr * d));
  memset(m->dresp, 0, (size_t)Nr * d * sizeof(float));
  rd_rmsnorm_backward(m->dresp, G(m->t_lm_norm), m->dlnf, m->resp, P(m->t_lm_norm), m->rstdf, Nr,
                      d);
  RD_TRY(rd_vlm_grads_ready(m, m->tensors[m->t_lm_norm].offset));

  /* Only response rows of the LM output have a gradient. */
  memset(lm->dx, 0, (size_t)B * T * d * sizeof(float));
  for (int s = 0; s < B; s++)
    memcpy(lm->dx + ((size_t)s * T + r0) * d, m->dresp + (size_t)s * L * d,
           (size_t)L * d * sizeof(float));
  RD_TRY(rd_tower_backward(m, lm, B));
  rd_embedding_backward(G(m->t_tok_emb), lm->dx, m->ids, B * T, d);
  RD_TRY(rd_vlm_grads_ready(m, m->tensors[m->t_tok_emb].offset));

  for (int s = 0; s < B; s++)
    memcpy(m->dproj_out + (size_t)s * Np * d, lm->dx + (size_t)s * T * d,
           (size_t)Np * d * sizeof(float));
  /* d(content): through img.pos's add unchanged, plus the perception head's */
  if (m->t_grid_pos >= 0) {
    rd_posemb_backward(G(m->t_grid_pos), m->dproj_out, B, Np, d);
    memcpy(m->dcontent, m->dproj_out, (size_t)Nv * d * sizeof(float));
  }
  if (m->has_cells) {
    const int K = m->cfg.cell_classes;
    memset(m->dcell_logits, 0, (size_t)Nv * K * sizeof(float));
    rd_xent_backward(m->dcell_logits, m->cell_logits, m->cell_lse, m->cells, m->cell_wv, Nv, K, K);
    rd_matmul_backward(m->dcontent, G(m->t_cell_w), G(m->t_cell_b), m->dcell_logits, m->content,
                       P(m->t_cell_w), Nv, d, K);
  }
  if (m->t_grid_pos >= 0) {
    memset(m->dproj_lin, 0, (size_t)Nv * d * sizeof(float));
    rd_rmsnorm_backward(m->dproj_lin, G(m->t_img_norm), m->dcontent, m->proj_lin, P(m->t_img_norm), m->crstd,
                        Nv, d);
  }
  memset(m->dproj_g, 0, (size_t)Nv * d * sizeof(float));
  rd_matmul_backward(m->dproj_g, G(m->t_proj_w2), G(m->t_proj_b2), m->dproj_lin, m->proj_g,
                     P(m->t_proj_w2), Nv, d, d);
  memset(m->dproj_h, 0, (size_t)Nv * d * sizeof(float));
  rd_gelu_backward(m->dproj_h, m->dproj_g, m->proj_h, (size_t)Nv * d);
  if (m->feature_dim > 0) {
    rd_matmul_backward(NULL, G(m->t_proj_w1), G(m->t_proj_b1), m->dproj_h, m->patches,
                       P(m->t_proj_w1), Nv, m->Din, d);
    return rd_vlm_grads_ready(m, 0);
  }
  rd_tower *vis = &m->vis;
  memset(m->dvnorm, 0, (size_t)Nv * vis->C * sizeof(float));
  rd_matmul_backward(m->dvnorm, G(m->t_proj_w1), G(m->t_proj_b1), m->dproj_h, m->vnorm,
                     P(m->t_proj_w1), Nv, m->Din, d);
  memset(vis->dx, 0, (size_t)Nv * vis->C * sizeof(float));
  rd_rmsnorm_backward(vis->dx, G(m->t_vnorm), m->dvnorm, vis->out, P(m->t_vnorm), m->vrstd, Nv,
                      vis->C);
  RD_TRY(rd_vlm_grads_ready(m, m->tensors[m->t_vnorm].offset)); /* with the projector after it */
  RD_TRY(rd_tower_backward(m, vis, B));
  rd_posemb_backward(G(m->t_pos), vis->dx, B, Np, vis->C);
  rd_matmul_backward(NULL, G(m->t_patch_w), G(m->t_patch_b), vis->dx, m->patches,
                     P(m->t_patch_w), Nv, m->patch_dim, vis->C);
  return rd_vlm_grads_ready(m, 0);
}
