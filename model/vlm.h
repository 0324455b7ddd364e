/* The masked-diffusion vision-language model (docs/model.md).
 *
 *   image [B,H,W,3] -> patches -> vision tower -> projector -> Np tokens
 *   sequence [image (Np)][prompt (Tp)][response (L)] -> LM blocks
 *   -> final RMSNorm -> LM head at the L response positions -> logits
 *
 * Every parameter lives in ONE buffer described by a table of tensors
 * (name, shape, offset, tensor-parallel split axis); gradients and the AdamW
 * moments use the same layout, so zeroing, all-reducing, clipping and
 * checkpointing are loops over the table. Activations are sized for
 * max_batch at init and allocated once.
 *
 * Tensor parallelism (Megatron; docs/parallel.md): with a tp group of size
 * p, each rank holds 1/p of the LM's attention heads and MLP units
 * (column-parallel wqkv, wgate, wup; row-parallel wo, wdown) and 1/p of the
 * vocabulary rows of the LM head, and the vision tower's blocks are split
 * the same way. The buffers hold only this rank's slabs; the table keeps
 * both the full (logical) shape, which checkpoints store, and the local
 * one. The patch embedding, position table, projector, token embedding and
 * the norms are replicated. */
#ifndef RD_MODEL_VLM_H
#define RD_MODEL_VLM_H

#include <stddef.h>
#include <stdint.h>

#include "io/config.h"
#include "mpi/coll.h"

#define RD_TENSOR_NAME 48

typedef struct {
  char name[RD_TENSOR_NAME]; /* "lm.3.attn.wqkv" */
  int ndim;                  /* 1 or 2 */
  int shape[2];              /* full logical shape: [out_features, in_features] for weights */
  int local[2];              /* this rank's slab: shape with the split axis divided by tp */
  int slab_offset;           /* first index of the slab along the split axis (0 if replicated) */
  size_t numel;              /* elements of the slab (local[0] * local[1]) */
  size_t offset; /* in floats, into params, grads, adam_m and adam_v */
  int split;     /* tensor parallel: -1 replicated, 0 rows split (column-
                  * parallel, vocab-parallel), 1 columns split (row-parallel) */
  int decay;     /* 1: AdamW weight decay applies (matmul weights only) */
} rd_tensor;

typedef struct {
  float beta1, beta2, eps, weight_decay;
} rd_adamw_cfg;

typedef struct {
  int B;
  const uint8_t *images;  /* [B, H, W, 3], or NULL in features mode */
  const float *features;  /* [B, Np, feature_dim], or NULL in image mode */
  const int32_t *x;       /* [B, L] response input tokens */
  const int32_t *y;       /* [B, L] targets, or NULL (logits only) */
  const float *w;         /* [B, L] loss weights, or NULL (logits only) */
  /* The perception loss (a model with cell_classes > 0): the class of each
   * image token's grid cell, each token's cross-entropy weighted by cell_w.
   * NULL: no perception loss. */
  const int32_t *cells;   /* [B, Np] in [0, cell_classes), or NULL */
  float cell_w;
} rd_batch;

/* One transformer block's weights (or their gradients): views into a
 * buffer laid out by the tensor table. */
typedef struct {
  float *attn_norm; /* [C] */
  float *wqkv;      /* [H*3*hd, C], rows [head][q|k|v][hd] */
  float *wo;        /* [C, H*hd] */
  float *mlp_norm;  /* [C] */
  float *wgate;     /* [dff, C] */
  float *wup;       /* [dff, C] */
  float *wdown;     /* [C, dff] */
} rd_block_w;

/* What one block keeps from forward for backward. N = B*T rows. */
typedef struct {
  float *x;     /* [N, C] block input (residual stream) */
  float *ln1;   /* [N, C] */
  float *rstd1; /* [N] */
  float *qkv;   /* [N, H*3*hd] after RoPE */
  float *att;   /* [B, H, T, T] attention probabilities */
  float *atty;  /* [N, H*hd] attention output before wo */
  float *x2;    /* [N, C] residual after attention */
  float *ln2;   /* [N, C] */
  float *rstd2; /* [N] */
  float *gate;  /* [N, dff] */
  float *up;    /* [N, dff] */
  float *h;     /* [N, dff] silu(gate) * up */
} rd_block_acts;

/* A stack of bidirectional blocks: the vision tower or the LM. H and dff
 * are the LOCAL head count and MLP width (tensor parallel divides them). */
typedef struct {
  int n_layers, C, H, hd, dff, T;
  /* local heads [0, img_heads) attend to keys [0, img_keys) only (the image
   * tokens of the LM; 0 in the vision tower) */
  int img_heads, img_keys;
  int rope_h0;              /* local heads [0, rope_h0) are not rotated (model.grid_pos: the image heads) */
  const rd_comm *tp;        /* sums the row-parallel outputs; NULL: not split */
  int first;                /* table index of block 0's first tensor */
  float *rope_cos, *rope_sin; /* [T, hd/2]; with model.grid_pos the LM's image rows are angle 0 */
  rd_block_acts *acts;      /* [n_layers] */
  float *out;               /* [N, C] output of the last block */
  /* backward scratch, shared by the layers */
  float *dx;    /* [N, C] gradient of the residual stream */
  float *dln;   /* [N, C] */
  float *dqkv;  /* [N, H*3*hd] */
  float *datty; /* [N, H*hd] */
  float *dgate, *dup, *dh; /* [N, dff] */
  float *work;  /* [B, H, T, T] */
} rd_tower;

/* Told during rd_vlm_backward that the gradients from float offset `from`
 * to the end of the buffers are final for this pass: backward runs from
 * the LM head toward the image, the reverse of the table's order, so `from`
 * only decreases, down to 0 at the end. A caller starts summing those
 * gradients over dp while backward goes on. Nonzero return: backward stops
 * with that status. */
typedef int (*rd_grads_ready_fn)(void *ctx, size_t from);

typedef struct {
  rd_model_cfg cfg;
  int V, Vp;          /* vocabulary, padded to cfg.vocab_multiple */
  const rd_comm *tp;  /* the tensor-parallel group, or NULL (one rank) */
  int tp_rank, tp_size;
  int v0, Vl, Vr;     /* this rank's head rows: vocabulary ids [v0, v0 + Vl),
                       * of which the first Vr are real (not padding) */
  int Np, Tp, L, T;   /* image tokens, prompt, response, whole sequence */
  int feature_dim;    /* 0: images through the vision tower; else Dv */
  int Din;            /* projector input width */
  int patch_dim;      /* P*P*3 */
  int max_batch;
  int32_t *prompt;    /* [Tp] */

  int n_tensors;
  rd_tensor *tensors;
  size_t n_floats;    /* floats in each of the four buffers (with alignment) */
  size_t n_params;    /* parameters of the whole model (full shapes) */
  size_t n_local;     /* parameters this rank holds (slabs); = n_params when tp = 1 */
  float *params, *grads, *adam_m, *adam_v;

  /* table indices of the single tensors (-1 when absent) */
  int t_patch_w, t_patch_b, t_pos, t_vnorm, t_proj_w1, t_proj_b1, t_proj_w2, t_proj_b2;
  int t_img_norm, t_grid_pos; /* "img.norm" [d], "img.pos" [Np, d], with model.grid_pos */
  int t_cell_w, t_cell_b;     /* "cell.w" [K, d], "cell.b" [K], with model.cell_classes = K > 0 */
  int t_tok_emb, t_lm_norm, t_lm_head;

  rd_tower vis, lm;
  float *acts;        /* the one activation allocation */
  size_t n_acts;
  /* activations outside the towers; Nv = B*Np, Nr = B*L */
  float *patches;     /* [Nv, patch_dim] (or the copied features [Nv, Dv]) */
  float *vnorm, *vrstd; /* [Nv, Cv], [Nv] */
  float *proj_h, *proj_g, *proj_out; /* [Nv, d] before GELU, after, the image tokens at the LM input */
  /* with grid_pos: the projector's output proj_lin is normed into content,
   * and proj_out = content + img.pos; without, all three are one buffer */
  float *proj_lin, *content, *crstd; /* [Nv, d], [Nv, d], [Nv] */
  float *cell_logits, *cell_lse;     /* [Nv, K], [Nv]: the perception head */
  float *dcell_logits, *dcontent, *dproj_lin; /* [Nv, K], [Nv, d], [Nv, d] */
  int32_t *cells;                    /* [Nv] copy of the last perception targets */
  double *cell_stats;                /* [2, Nv] sums of exponentials, target logits */
  float *cell_wv;                    /* [Nv] their weights */
  float *resp, *lnf, *rstdf; /* [Nr, d], [Nr, d], [Nr] */
  float *logits, *lse;       /* [Nr, Vl] this rank's columns, [Nr] */
  double *xstats;            /* [2, Nr] sum of exponentials, target logit */
  float *full_logits;        /* [Nr, Vp] gathered rows for decoding (= logits when tp = 1) */
  float *gathered;           /* [tp, Nr, Vl] all-gather scratch (tp > 1) */
  float *dlogits, *dlnf, *dresp, *dproj_out, *dproj_g, *dproj_h, *dvnorm;
  int32_t *ids;       /* [B, T] token ids, -1 at image positions */
  int32_t *y;         /* [B, L] copy of the last targets */
  float *w;           /* [B, L] copy of the last weights */

  rd_grads_ready_fn grads_ready; /* NULL: nobody listens */
  void *grads_ready_ctx;

  int B;              /* batch of the last forward, 0 = none */
  int has_targets;
  int has_cells;      /* the last forward had perception targets */
  double loss;        /* the caption loss of the last forward */
  double cell_loss;   /* its perception loss (0 without cells) */
} rd_vlm;

/* prompt: the fixed instruction token ids. feature_dim 0: the model reads
 * images; > 0: it reads precomputed features [B, Np, feature_dim] with
 * Np = (image_size / patch)^2 and has no vision tower. Parameters are
 * initialised from rd_rng streams (seed, RD_RNG_INIT, tensor index) over
 * the FULL tensor, each rank keeping its slab, so any tp starts from the
 * same model. */
int rd_vlm_init(rd_vlm *m, const rd_model_cfg *cfg, int vocab_size, const int32_t *prompt,
                int n_prompt, int max_batch, int feature_dim, uint64_t seed);
/* The same, tensor-parallel over tp (NULL or one rank: not split). The
 * model keeps the pointer: tp must outlive it. Every call below that says
 * "collective" is then collective over tp. tp must divide n_heads, d_ff,
 * the padded vocabulary and, with a vision tower, vision_heads and
 * vision_d_ff. */
int rd_vlm_init_tp(rd_vlm *m, const rd_model_cfg *cfg, int vocab_size, const int32_t *prompt,
                   int n_prompt, int max_batch, int feature_dim, uint64_t seed, const rd_comm *tp);
void rd_vlm_free(rd_vlm *m);

const rd_tensor *rd_vlm_tensors(const rd_vlm *m, int *n);
/* The table entry of that name, or NULL. */
const rd_tensor *rd_vlm_find(const rd_vlm *m, const char *name);
void rd_vlm_memory(const rd_vlm *m, size_t *bytes_params, size_t *bytes_grads, size_t *bytes_opt,
                   size_t *bytes_acts);

/* Forward on a batch (collective). With y and w set, *loss = sum_i w_i
 * CE(logits_i, y_i) (loss may be NULL), from the vocab-parallel
 * cross-entropy: the full rows of logits are never gathered. With cells set
 * too, m->cell_loss = cell_w * sum over image tokens of the perception
 * head's cross-entropy (not part of *loss), and backward adds its
 * gradient. With both NULL
 * only logits are computed, and under tp gathered to full rows on every
 * rank (decoding needs the whole distribution). The batch's arrays are
 * copied as needed and may change after the call. */
int rd_vlm_forward(rd_vlm *m, const rd_batch *b, float *loss);
/* [B, L, Vp] of the last forward; padding columns hold -INFINITY. Under
 * tp > 1 only after a logits-only forward. */
const float *rd_vlm_logits(const rd_vlm *m);
/* Gradients of the last forward's loss, ADDED to m->grads (collective). */
int rd_vlm_backward(rd_vlm *m);
void rd_vlm_zero_grad(rd_vlm *m);
/* L2 norm of all gradients of the whole model (collective: the slabs'
 * squares summed over tp, replicated tensors counted once). Non-finite
 * when any rank's gradients are, so every rank skips a bad step alike. */
int rd_vlm_grad_norm(const rd_vlm *m, double *norm);
/* A hash of the whole model's parameters that every rank holding a replica
 * of it gets alike (collective over tp): the replicated tensors hashed,
 * plus the sum over tp of each rank's hash of its slabs. Ranks whose hashes
 * differ hold models that drifted apart. */
int rd_vlm_params_hash(const rd_vlm *m, uint64_t *hash);
/* One AdamW step over every tensor; gradients are multiplied by grad_scale
 * first (clipping, averaging). Weight decay only where tensor.decay. */
int rd_vlm_adamw_step(rd_vlm *m, const rd_adamw_cfg *c, int step, float lr, float grad_scale);

/* Internals shared by model/vlm*.c and model/block.c. */
enum { RD_BLOCK_TENSORS = 7 }; /* tensors per block, in rd_block_w order */
/* Views of layer `layer` of tower t inside buf (params or grads). */
void rd_block_view(const rd_vlm *m, const rd_tower *t, float *buf, int layer, rd_block_w *w);
/* Calls m->grads_ready (if set) with from. */
int rd_vlm_grads_ready(rd_vlm *m, size_t from);
/* Runs all blocks: t->acts[0].x holds the input, t->out gets the output. */
int rd_tower_forward(const rd_vlm *m, rd_tower *t, int B);
/* On entry t->dx holds d(t->out); on return d(t->acts[0].x). Weight
 * gradients are added to m->grads. */
int rd_tower_backward(rd_vlm *m, rd_tower *t, int B);

#endif
