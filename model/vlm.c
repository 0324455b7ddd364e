/* The VLM's tensor table, parameter init, activation layout, and the
 * loops over the table (zeroing, norm, AdamW). Forward and backward are in
 * model/vlm_forward.c, the blocks in model/block.c. */
#include "model/vlm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/hash.h"
#include "io/core/rng.h"
#include "model/ops.h"

#define RD_ALIGN 16 /* floats: every tensor starts on a 64-byte boundary */

static size_t align_up(size_t n) { return (n + RD_ALIGN - 1) / RD_ALIGN * RD_ALIGN; }

enum { INIT_NORMAL, INIT_ONES, INIT_ZEROS };

/* Builds the table while counting; tensors == NULL only counts. */
typedef struct {
  rd_tensor *t;
  int n;
  size_t off;
  int *init;       /* INIT_* per tensor */
  double *std;     /* standard deviation of the normal init per tensor */
  double init_std; /* model.init_std, the scale std_mul multiplies */
  int tp_rank, tp_size;
} table_builder;

/* rows x cols is the full shape; a split axis keeps this rank's 1/tp of it
 * (divisibility was checked before the table is built). */
static int add(table_builder *tb, const char *name, int rows, int cols, int split, int init,
               float std_mul, int decay) {
  int i = tb->n++;
  int shape[2] = {rows, cols > 0 ? cols : 1}, local[2] = {shape[0], shape[1]}, slab = 0;
  if (split >= 0 && tb->tp_size > 1) {
    local[split] = shape[split] / tb->tp_size;
    slab = tb->tp_rank * local[split];
  }
  size_t numel = (size_t)local[0] * local[1];
  if (tb->t) {
    rd_tensor *t = &tb->t[i];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = cols > 0 ? 2 : 1;
    memcpy(t->shape, shape, sizeof shape);
    memcpy(t->local, local, sizeof local);
    t->slab_offset = slab;
    t->numel = numel;
    t->offset = tb->off;
    t->split = split;
    t->decay = decay;
    tb->init[i] = init;
    tb->std[i] = tb->init_std * std_mul;
  }
  tb->off += align_up(numel);
  return i;
}

/* Weight decay applies to the matmul weights only: not to norms, biases or
 * the embedding tables (tokens and positions are looked up, and decaying
 * rarely seen rows toward 0 would only hurt them). */
static int add_matrix(table_builder *tb, const char *name, int rows, int cols, int split,
                      float std_mul) {
  return add(tb, name, rows, cols, split, INIT_NORMAL, std_mul, 1);
}
static int add_table(table_builder *tb, const char *name, int rows, int cols, int split) {
  return add(tb, name, rows, cols, split, INIT_NORMAL, 1.0f, 0);
}
static int add_norm(table_builder *tb, const char *name, int n) {
  return add(tb, name, n, 0, -1, INIT_ONES, 0.0f, 0);
}
static int add_bias(table_builder *tb, const char *name, int n) {
  return add(tb, name, n, 0, -1, INIT_ZEROS, 0.0f, 0);
}

static void add_tower(table_builder *tb, const char *pfx, int nl, int C, int dff, int tp_split) {
  /* GPT-2 style: the projections that write into the residual stream start
   * smaller by 1/sqrt(2 * layers), so the stream's variance does not grow
   * with depth. */
  float out_mul = nl > 0 ? 1.0f / sqrtf(2.0f * nl) : 1.0f;
  int col = tp_split ? 0 : -1, row = tp_split ? 1 : -1;
  char nm[RD_TENSOR_NAME];
  for (int l = 0; l < nl; l++) {
#define NM(s) (snprintf(nm, sizeof nm, "%s.%d.%s", pfx, l, s), nm)
    add_norm(tb, NM("attn_norm"), C);
    add_matrix(tb, NM("attn.wqkv"), 3 * C, C, col, 1.0f);
    add_matrix(tb, NM("attn.wo"), C, C, row, out_mul);
    add_norm(tb, NM("mlp_norm"), C);
    add_matrix(tb, NM("mlp.wgate"), dff, C, col, 1.0f);
    add_matrix(tb, NM("mlp.wup"), dff, C, col, 1.0f);
    add_matrix(tb, NM("mlp.wdown"), C, dff, row, out_mul);
#undef NM
  }
}

/* The whole table in its fixed order (the order names the RNG streams). */
static void build_table(rd_vlm *m, table_builder *tb) {
  const rd_model_cfg *c = &m->cfg;
  int d = c->d_model, Cv = c->vision_d;
  m->t_patch_w = m->t_patch_b = m->t_pos = m->t_vnorm = -1;
  if (m->feature_dim == 0) {
    /* The tower's blocks are split like the LM's; the patch embedding and
     * position table before it are replicated. */
    m->t_patch_w = add_matrix(tb, "vis.patch.w", Cv, m->patch_dim, -1, 1.0f);
    m->t_patch_b = add_bias(tb, "vis.patch.b", Cv);
    m->t_pos = add_table(tb, "vis.pos", m->Np, Cv, -1);
    m->vis.first = tb->n;
    add_tower(tb, "vis", c->vision_layers, Cv, c->vision_d_ff, 1);
    m->t_vnorm = add_norm(tb, "vis.norm", Cv);
  }
  m->t_proj_w1 = add_matrix(tb, "proj.w1", d, m->Din, -1, 1.0f);
  m->t_proj_b1 = add_bias(tb, "proj.b1", d);
  m->t_proj_w2 = add_matrix(tb, "proj.w2", d, d, -1, 1.0f);
  m->t_proj_b2 = add_bias(tb, "proj.b2", d);
  /* With init_std 0.02 a patch of 768 centred pixels reaches the LM as a
   * faint, nearly image-independent vector, and the LM learns to ignore
   * it before the vision side has learnt anything (docs/model.md).
   * Fan-in scaling (std 1 / sqrt(cols), output projections included)
   * keeps each vision-side layer's output at the scale of its input. */
  if (c->vision_fan_in && tb->t)
    for (int i = 0; i < tb->n; i++)
      if (tb->init[i] == INIT_NORMAL) tb->std[i] = 1.0 / sqrt((double)tb->t[i].shape[1]);
  /* model.grid_pos: a learned vector per grid cell added to the image
   * tokens at the LM's width, so a caption's place words can find a cell
   * by what its token holds. Unit std, the scale of the projector's output,
   * so the place is not drowned by the content (docs/model.md). */
  m->t_img_norm = m->t_grid_pos = m->t_cell_w = m->t_cell_b = -1;
  if (c->grid_pos) {
    /* The projector's output is RMS-normed first, so the content keeps the
     * scale of the place whatever the perception loss does to it. */
    m->t_img_norm = add_norm(tb, "img.norm", d);
    m->t_grid_pos = add(tb, "img.pos", m->Np, d, -1, INIT_NORMAL, (float)(1.0 / c->init_std), 0);
  }
  /* The perception head reads each image token before its place is added
   * (docs/model.md, "The perception loss"). */
  if (c->cell_classes > 0) {
    m->t_cell_w = add_matrix(tb, "cell.w", c->cell_classes, d, -1, 1.0f);
    m->t_cell_b = add_bias(tb, "cell.b", c->cell_classes);
  }
  /* Replicated: a lookup needs no communication this way, and the table
   * (Vp x d) is small next to the LM; a vocab-parallel lookup would add an
   * all-reduce of the whole LM input per micro-batch. */
  m->t_tok_emb = add_table(tb, "tok_emb", m->Vp, d, -1);
  m->lm.first = tb->n;
  add_tower(tb, "lm", c->n_layers, d, c->d_ff, 1);
  m->t_lm_norm = add_norm(tb, "lm.norm", d);
  m->t_lm_head = add_matrix(tb, "lm_head", m->Vp, d, 0, 1.0f);
}

/* Whether element j of the full tensor t is in this rank's slab; *k gets
 * its index in the slab. */
static int in_slab(const rd_tensor *t, size_t j, size_t *k) {
  if (t->split < 0 || (t->local[0] == t->shape[0] && t->local[1] == t->shape[1])) {
    *k = j;
    return 1;
  }
  size_t r = j / (size_t)t->shape[1], c = j % (size_t)t->shape[1];
  size_t i = t->split == 0 ? r : c;
  if (i < (size_t)t->slab_offset || i >= (size_t)t->slab_offset + (size_t)t->local[t->split]) return 0;
  if (t->split == 0) r -= (size_t)t->slab_offset;
  else c -= (size_t)t->slab_offset;
  *k = r * (size_t)t->local[1] + c;
  return 1;
}

static void init_params(rd_vlm *m, const int *init, const double *std, uint64_t seed) {
  /* One stream per tensor, drawn over the full tensor and kept where it
   * falls in this rank's slab: the values depend neither on threads, nor on
   * which other tensors exist before it in memory, nor on tp. */
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < m->n_tensors; i++) {
    const rd_tensor *t = &m->tensors[i];
    float *p = m->params + t->offset;
    if (init[i] == INIT_ONES) {
      for (size_t j = 0; j < t->numel; j++) p[j] = 1.0f;
    } else if (init[i] == INIT_NORMAL) {
      rd_rng r;
      rd_rng_init(&r, seed, RD_RNG_INIT, (uint64_t)i, 0);
      double sd = std[i];
      size_t full = (size_t)t->shape[0] * t->shape[1], k;
      for (size_t j = 0; j < full; j++) {
        float v = (float)(sd * rd_rng_normal(&r));
        if (in_slab(t, j, &k)) p[k] = v;
      }
    }
  }
  /* Padding rows of the vocabulary are never looked up nor predicted. */
  const rd_tensor *e = &m->tensors[m->t_tok_emb], *h = &m->tensors[m->t_lm_head];
  size_t d = (size_t)m->cfg.d_model;
  memset(m->params + e->offset + (size_t)m->V * d, 0, (size_t)(m->Vp - m->V) * d * sizeof(float));
  memset(m->params + h->offset + (size_t)m->Vr * d, 0, (size_t)(m->Vl - m->Vr) * d * sizeof(float));
}

/* Lays the activations out in one buffer; with m->acts == NULL it only
 * counts. Every piece is [max_batch, ...] so a smaller batch uses a prefix. */
static float *take(rd_vlm *m, size_t *off, size_t n) {
  float *p = m->acts ? m->acts + *off : NULL;
  *off += align_up(n);
  return p;
}

static void layout_tower(rd_vlm *m, rd_tower *t, size_t *off) {
  size_t N = (size_t)m->max_batch * t->T, C = t->C, Q = (size_t)3 * t->H * t->hd,
         A = (size_t)t->H * t->hd, F = t->dff, AT = (size_t)m->max_batch * t->H * t->T * t->T;
  int nl = t->n_layers > 0 ? t->n_layers : 1;
  for (int l = 0; l < nl; l++) {
    rd_block_acts *a = &t->acts[l];
    memset(a, 0, sizeof *a);
    a->x = take(m, off, N * C);
    if (l >= t->n_layers) break; /* no blocks: the input is all there is */
    a->ln1 = take(m, off, N * C);
    a->rstd1 = take(m, off, N);
    a->qkv = take(m, off, N * Q);
    a->att = take(m, off, AT);
    a->atty = take(m, off, N * A);
    a->x2 = take(m, off, N * C);
    a->ln2 = take(m, off, N * C);
    a->rstd2 = take(m, off, N);
    a->gate = take(m, off, N * F);
    a->up = take(m, off, N * F);
    a->h = take(m, off, N * F);
  }
  t->out = t->n_layers > 0 ? take(m, off, N * C) : t->acts[0].x;
  t->dx = take(m, off, N * C);
  if (t->n_layers > 0) {
    t->dln = take(m, off, N * C);
    t->dqkv = take(m, off, N * Q);
    t->datty = take(m, off, N * A);
    t->dgate = take(m, off, N * F);
    t->dup = take(m, off, N * F);
    t->dh = take(m, off, N * F);
    t->work = take(m, off, AT);
  }
}

static size_t layout_acts(rd_vlm *m) {
  size_t off = 0, Nv = (size_t)m->max_batch * m->Np, Nr = (size_t)m->max_batch * m->L;
  size_t d = m->cfg.d_model, Cv = m->cfg.vision_d;
  if (m->feature_dim == 0) {
    m->patches = take(m, &off, Nv * m->patch_dim);
    layout_tower(m, &m->vis, &off);
    m->vnorm = take(m, &off, Nv * Cv);
    m->vrstd = take(m, &off, Nv);
    m->dvnorm = take(m, &off, Nv * Cv);
  } else {
    m->patches = take(m, &off, Nv * m->Din);
  }
  m->proj_h = take(m, &off, Nv * d);
  m->proj_g = take(m, &off, Nv * d);
  m->proj_out = take(m, &off, Nv * d);
  m->dproj_out = take(m, &off, Nv * d);
  if (m->cfg.grid_pos) {
    m->proj_lin = take(m, &off, Nv * d);
    m->content = take(m, &off, Nv * d);
    m->crstd = take(m, &off, Nv);
    m->dcontent = take(m, &off, Nv * d);
    m->dproj_lin = take(m, &off, Nv * d);
  } else { /* the content is the projector's output, and so is its gradient */
    m->proj_lin = m->content = m->proj_out;
    m->dproj_lin = m->dcontent = m->dproj_out;
  }
  if (m->cfg.cell_classes > 0) {
    size_t K = (size_t)m->cfg.cell_classes;
    m->cell_logits = take(m, &off, Nv * K);
    m->dcell_logits = take(m, &off, Nv * K);
    m->cell_lse = take(m, &off, Nv);
    m->cell_wv = take(m, &off, Nv);
    m->cells = (int32_t *)take(m, &off, Nv);
    m->cell_stats = (double *)take(m, &off, 4 * Nv); /* 2 Nv doubles */
  }
  m->dproj_g = take(m, &off, Nv * d);
  m->dproj_h = take(m, &off, Nv * d);
  layout_tower(m, &m->lm, &off);
  m->resp = take(m, &off, Nr * d);
  m->lnf = take(m, &off, Nr * d);
  m->rstdf = take(m, &off, Nr);
  m->logits = take(m, &off, Nr * m->Vl);
  m->lse = take(m, &off, Nr);
  m->xstats = (double *)take(m, &off, 4 * Nr); /* 2 Nr doubles */
  m->dlogits = take(m, &off, Nr * m->Vl);
  if (m->tp_size > 1) {
    m->full_logits = take(m, &off, Nr * m->Vp);
    m->gathered = take(m, &off, Nr * m->Vp);
  } else {
    m->full_logits = m->logits;
  }
  m->dlnf = take(m, &off, Nr * d);
  m->dresp = take(m, &off, Nr * d);
  return off;
}

static int check_cfg(const rd_model_cfg *c, int vocab_size, int n_prompt, int max_batch,
                     int feature_dim) {
  if (c->d_model < 1 || c->n_layers < 0 || c->n_heads < 1 || c->d_ff < 1)
    return rd_err(RD_EINVAL, "model: d_model, n_heads, d_ff must be >= 1 and n_layers >= 0");
  if (c->d_model % c->n_heads || (c->d_model / c->n_heads) % 2)
    return rd_err(RD_EINVAL,
                  "model.d_model (%d) must be n_heads (%d) times an even head size (RoPE)",
                  c->d_model, c->n_heads);
  if (feature_dim == 0 && c->vision_layers > 0 &&
      (c->vision_heads < 1 || c->vision_d % c->vision_heads ||
       (c->vision_d / c->vision_heads) % 2 || c->vision_d_ff < 1))
    return rd_err(RD_EINVAL,
                  "model.vision_d (%d) must be vision_heads (%d) times an even head size, "
                  "and vision_d_ff >= 1",
                  c->vision_d, c->vision_heads);
  if (feature_dim == 0 && (c->vision_d < 1 || c->vision_layers < 0))
    return rd_err(RD_EINVAL, "model.vision_d must be >= 1 and vision_layers >= 0");
  if (c->image_heads < 0 || c->image_heads > c->n_heads)
    return rd_err(RD_EINVAL, "model.image_heads (%d) must be between 0 and model.n_heads (%d)",
                  c->image_heads, c->n_heads);
  if (c->patch < 1 || c->image_size < c->patch || c->image_size % c->patch)
    return rd_err(RD_EINVAL, "model.patch (%d) must divide model.image_size (%d)", c->patch,
                  c->image_size);
  if (c->gen_len < 1) return rd_err(RD_EINVAL, "model.gen_len must be >= 1, not %d", c->gen_len);
  if (c->vocab_multiple < 1)
    return rd_err(RD_EINVAL, "model.vocab_multiple must be >= 1, not %d", c->vocab_multiple);
  if (!(c->norm_eps > 0) || !(c->rope_theta > 0) || !(c->init_std >= 0))
    return rd_err(RD_EINVAL, "model: norm_eps and rope_theta must be > 0, init_std >= 0");
  if (vocab_size < 1) return rd_err(RD_EINVAL, "vocabulary size must be >= 1, not %d", vocab_size);
  if (n_prompt < 0 || max_batch < 1 || feature_dim < 0)
    return rd_err(RD_EINVAL, "model init: bad prompt length %d, max batch %d or feature dim %d",
                  n_prompt, max_batch, feature_dim);
  return RD_OK;
}

/* H and dff are the full sizes; a tower split over tp keeps 1/tp of each. */
static void tower_dims(rd_tower *t, int nl, int C, int H, int dff, int T, const rd_comm *tp) {
  int p = tp ? tp->size : 1;
  t->n_layers = nl;
  t->C = C;
  t->H = H / p;
  t->hd = H > 0 ? C / H : 0;
  t->dff = dff / p;
  t->T = T;
  t->tp = p > 1 ? tp : NULL;
  t->img_heads = t->img_keys = t->rope_h0 = 0;
}

static int check_tp(const rd_model_cfg *c, int Vp, int p, int vision) {
  if (c->n_heads % p || c->d_ff % p || Vp % p)
    return rd_err(RD_EINVAL,
                  "parallel.tp = %d must divide model.n_heads (%d), model.d_ff (%d) and the padded "
                  "vocabulary (%d, a multiple of model.vocab_multiple = %d)",
                  p, c->n_heads, c->d_ff, Vp, c->vocab_multiple);
  if (vision && (c->vision_heads % p || c->vision_d_ff % p))
    return rd_err(RD_EINVAL, "parallel.tp = %d must divide model.vision_heads (%d) and model.vision_d_ff (%d)", p,
                  c->vision_heads, c->vision_d_ff);
  return RD_OK;
}

int rd_vlm_init(rd_vlm *m, const rd_model_cfg *cfg, int vocab_size, const int32_t *prompt,
                int n_prompt, int max_batch, int feature_dim, uint64_t seed) {
  return rd_vlm_init_tp(m, cfg, vocab_size, prompt, n_prompt, max_batch, feature_dim, seed, NULL);
}

int rd_vlm_init_tp(rd_vlm *m, const rd_model_cfg *cfg, int vocab_size, const int32_t *prompt,
                   int n_prompt, int max_batch, int feature_dim, uint64_t seed, const rd_comm *tp) {
  memset(m, 0, sizeof *m);
  RD_TRY(check_cfg(cfg, vocab_size, n_prompt, max_batch, feature_dim));
  for (int i = 0; i < n_prompt; i++)
    if (prompt[i] < 0 || prompt[i] >= vocab_size)
      return rd_err(RD_EINVAL, "prompt token %d is id %d, outside the vocabulary [0, %d)", i,
                    prompt[i], vocab_size);
  m->cfg = *cfg;
  m->V = vocab_size;
  m->Vp = (vocab_size + cfg->vocab_multiple - 1) / cfg->vocab_multiple * cfg->vocab_multiple;
  m->tp_size = tp ? tp->size : 1;
  m->tp_rank = tp ? tp->rank : 0;
  m->tp = m->tp_size > 1 ? tp : NULL;
  RD_TRY(check_tp(cfg, m->Vp, m->tp_size, feature_dim == 0 && cfg->vision_layers > 0));
  m->Vl = m->Vp / m->tp_size;
  m->v0 = m->tp_rank * m->Vl;
  m->Vr = m->V - m->v0 < 0 ? 0 : m->V - m->v0 < m->Vl ? m->V - m->v0 : m->Vl;
  int g = cfg->image_size / cfg->patch;
  m->Np = g * g;
  m->Tp = n_prompt;
  m->L = cfg->gen_len;
  m->T = m->Np + m->Tp + m->L;
  m->feature_dim = feature_dim;
  m->patch_dim = cfg->patch * cfg->patch * 3;
  m->Din = feature_dim ? feature_dim : cfg->vision_d;
  m->max_batch = max_batch;
  tower_dims(&m->vis, feature_dim ? 0 : cfg->vision_layers, cfg->vision_d, cfg->vision_heads,
             cfg->vision_d_ff, m->Np, m->tp);
  tower_dims(&m->lm, cfg->n_layers, cfg->d_model, cfg->n_heads, cfg->d_ff, m->T, m->tp);
  /* Image heads are the first model.image_heads of the global head order:
   * under tp, rank r holds heads [r H, (r + 1) H), so its image heads are a
   * prefix of its own. */
  {
    int first = m->tp_rank * m->lm.H, k = cfg->image_heads - first;
    m->lm.img_heads = k < 0 ? 0 : k > m->lm.H ? m->lm.H : k;
    m->lm.img_keys = m->Np;
    /* With grid positions the image heads rotate neither queries nor keys:
     * they find an image token by its content (grid cell included), the
     * same from every text position. */
    m->lm.rope_h0 = cfg->grid_pos ? m->lm.img_heads : 0;
  }

  table_builder tb = {0};
  tb.tp_rank = m->tp_rank;
  tb.tp_size = m->tp_size;
  build_table(m, &tb); /* count */
  m->n_tensors = tb.n;
  int *init = NULL;
  double *std = NULL;
  m->tensors = rd_calloc((size_t)tb.n, sizeof(rd_tensor), "tensor table");
  init = rd_calloc((size_t)tb.n, sizeof(int), "tensor table");
  std = rd_calloc((size_t)tb.n, sizeof(double), "tensor table");
  int rc = RD_ENOMEM;
  if (!m->tensors || !init || !std) goto fail;
  tb = (table_builder){m->tensors, 0, 0, init, std, cfg->init_std, m->tp_rank, m->tp_size};
  build_table(m, &tb);
  m->n_floats = tb.off;
  for (int i = 0; i < m->n_tensors; i++) {
    m->n_local += m->tensors[i].numel;
    m->n_params += (size_t)m->tensors[i].shape[0] * m->tensors[i].shape[1];
  }

  m->params = rd_calloc(m->n_floats, sizeof(float), "parameters");
  m->grads = rd_calloc(m->n_floats, sizeof(float), "gradients");
  m->adam_m = rd_calloc(m->n_floats, sizeof(float), "AdamW first moments");
  m->adam_v = rd_calloc(m->n_floats, sizeof(float), "AdamW second moments");
  if (!m->params || !m->grads || !m->adam_m || !m->adam_v) goto fail;

  m->prompt = rd_calloc((size_t)(n_prompt > 0 ? n_prompt : 1), sizeof(int32_t), "prompt");
  m->ids = rd_calloc((size_t)max_batch * m->T, sizeof(int32_t), "token ids");
  m->y = rd_calloc((size_t)max_batch * m->L, sizeof(int32_t), "targets");
  m->w = rd_calloc((size_t)max_batch * m->L, sizeof(float), "loss weights");
  int nlv = m->vis.n_layers > 0 ? m->vis.n_layers : 1;
  m->vis.acts = rd_calloc((size_t)nlv, sizeof(rd_block_acts), "vision activations");
  m->lm.acts = rd_calloc((size_t)(m->lm.n_layers > 0 ? m->lm.n_layers : 1), sizeof(rd_block_acts),
                         "LM activations");
  if (!m->prompt || !m->ids || !m->y || !m->w || !m->vis.acts || !m->lm.acts) goto fail;
  if (n_prompt > 0) memcpy(m->prompt, prompt, (size_t)n_prompt * sizeof(int32_t));

  m->n_acts = layout_acts(m);
  m->acts = rd_calloc(m->n_acts, sizeof(float), "activations");
  if (!m->acts) goto fail;
  layout_acts(m);

  /* RoPE tables [T, hd/2] per tower */
  m->lm.rope_cos = rd_calloc((size_t)m->T * m->lm.hd / 2 + 1, sizeof(float), "RoPE table");
  m->lm.rope_sin = rd_calloc((size_t)m->T * m->lm.hd / 2 + 1, sizeof(float), "RoPE table");
  if (!m->lm.rope_cos || !m->lm.rope_sin) goto fail;
  if (cfg->grid_pos) {
    /* Image rows at angle 0 (their place is in img.pos); the text counts
     * from 0 at the first prompt token. */
    const int half = m->lm.hd / 2, Nt = m->T - m->Np;
    rd_rope_tables(m->lm.rope_cos + (size_t)m->Np * half, m->lm.rope_sin + (size_t)m->Np * half, Nt,
                   m->lm.hd, cfg->rope_theta);
    for (size_t i = 0; i < (size_t)m->Np * half; i++) m->lm.rope_cos[i] = 1.0f, m->lm.rope_sin[i] = 0.0f;
  } else {
    rd_rope_tables(m->lm.rope_cos, m->lm.rope_sin, m->T, m->lm.hd, cfg->rope_theta);
  }
  if (m->vis.n_layers > 0) {
    m->vis.rope_cos = rd_calloc((size_t)m->Np * m->vis.hd / 2 + 1, sizeof(float), "RoPE table");
    m->vis.rope_sin = rd_calloc((size_t)m->Np * m->vis.hd / 2 + 1, sizeof(float), "RoPE table");
    if (!m->vis.rope_cos || !m->vis.rope_sin) goto fail;
    rd_rope_tables(m->vis.rope_cos, m->vis.rope_sin, m->Np, m->vis.hd, cfg->rope_theta);
  }

  init_params(m, init, std, seed);
  free(init);
  free(std);
  return RD_OK;
fail:
  free(init);
  free(std);
  rd_vlm_free(m);
  return rc;
}

void rd_vlm_free(rd_vlm *m) {
  free(m->tensors);
  free(m->params);
  free(m->grads);
  free(m->adam_m);
  free(m->adam_v);
  free(m->prompt);
  free(m->ids);
  free(m->y);
  free(m->w);
  free(m->vis.acts);
  free(m->lm.acts);
  free(m->acts);
  free(m->lm.rope_cos);
  free(m->lm.rope_sin);
  free(m->vis.rope_cos);
  free(m->vis.rope_sin);
  memset(m, 0, sizeof *m);
}

const rd_tensor *rd_vlm_tensors(const rd_vlm *m, int *n) {
  *n = m->n_tensors;
  return m->tensors;
}

const rd_tensor *rd_vlm_find(const rd_vlm *m, const char *name) {
  for (int i = 0; i < m->n_tensors; i++)
    if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
  return NULL;
}

void rd_vlm_memory(const rd_vlm *m, size_t *bytes_params, size_t *bytes_grads, size_t *bytes_opt,
                   size_t *bytes_acts) {
  size_t b = m->n_floats * sizeof(float);
  if (bytes_params) *bytes_params = b;
  if (bytes_grads) *bytes_grads = b;
  if (bytes_opt) *bytes_opt = 2 * b;
  if (bytes_acts) *bytes_acts = m->n_acts * sizeof(float);
}

void rd_vlm_zero_grad(rd_vlm *m) { memset(m->grads, 0, m->n_floats * sizeof(float)); }

int rd_vlm_grad_norm(const rd_vlm *m, double *norm) {
  /* Per tensor, in table order: the same sums for any thread count. The
   * slabs' squares are summed over tp; a replicated tensor's gradient is
   * the same on every tp rank (its inputs and output gradients are) and
   * counts once. A non-finite gradient on any rank makes the sum
   * non-finite on all. */
  double ss[2] = {0.0, 0.0}; /* split, replicated */
  for (int i = 0; i < m->n_tensors; i++) {
    const rd_tensor *t = &m->tensors[i];
    ss[t->split < 0] += rd_sumsq(m->grads + t->offset, t->numel);
  }
  if (m->tp) RD_TRY(rd_coll_allreduce_sum_f64(m->tp, ss, 1));
  *norm = sqrt(ss[0] + ss[1]);
  return RD_OK;
}

int rd_vlm_params_hash(const rd_vlm *m, uint64_t *hash) {
  uint64_t rep = RD_HASH_INIT, slabs = RD_HASH_INIT;
  for (int i = 0; i < m->n_tensors; i++) {
    const rd_tensor *t = &m->tensors[i];
    const float *p = m->params + t->offset;
    if (t->split < 0) rep = rd_hash_bytes(rep, p, t->numel * sizeof(float));
    else slabs = rd_hash_bytes(slabs, p, t->numel * sizeof(float));
  }
  /* 40 bits per rank: the sum over up to 2^23 ranks stays in an int64. */
  int64_t s = (int64_t)(slabs >> 24);
  if (m->tp) RD_TRY(rd_coll_allreduce_sum_i64(m->tp, &s, 1));
  *hash = rep ^ (uint64_t)s;
  return RD_OK;
}


int rd_vlm_adamw_step(rd_vlm *m, const rd_adamw_cfg *c, int step, float lr, float grad_scale) {
  if (step < 1) return rd_err(RD_EINVAL, "AdamW step must be >= 1 (1-based), not %d", step);
  for (int i = 0; i < m->n_tensors; i++) {
    const rd_tensor *t = &m->tensors[i];
    rd_adamw_update(m->params + t->offset, m->grads + t->offset, m->adam_m + t->offset,
                    m->adam_v + t->offset, t->numel, lr, c->beta1, c->beta2, c->eps,
                    t->decay ? c->weight_decay : 0.0f, step, grad_scale);
  }
  return RD_OK;
}
