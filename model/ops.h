/* The ops the model is written against: every op has a forward and a backward.
 *
 * Backend-neutral: plain float pointers and sizes, so a CUDA implementation
 * (model/cuda/, bf16 storage) can sit behind the same declarations. The CPU
 * implementation (model/cpu/) uses OpenBLAS sgemm and OpenMP loops in fp32.
 *
 * Conventions, for every op:
 * - Row-major tensors; shapes are written beside each argument. N is a row
 *   count (usually B*T), C a feature count.
 * - Backward ops ACCUMULATE (+=) into every gradient they write (dinp,
 *   dweight, dbias, ...), so a tensor used twice gets the sum, the residual
 *   stream's gradient needs no explicit add, and gradient accumulation over
 *   micro-batches works. Callers zero gradient buffers before first use.
 *   Exception: rd_rope_backward rotates its argument in place.
 * - Results do not depend on the number of threads: reductions over rows
 *   (weight and bias gradients, sums of squares) run in a fixed order. */
#ifndef RD_MODEL_OPS_H
#define RD_MODEL_OPS_H

#include <stddef.h>
#include <stdint.h>

/* Threads for the op loops and the BLAS (one rank's share of the cores). */
void rd_ops_set_threads(int n);
int rd_ops_get_threads(void);

/* ---- matmul (model/cpu/matmul.c) ---------------------------------------
 * out[N,OC] = inp[N,C] . weight[OC,C]^T + bias[OC]   (bias may be NULL).
 * Weights are [out_features, in_features] as in PyTorch's nn.Linear. */
void rd_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int N, int C, int OC);
/* dinp[N,C] += dout . weight; dweight[OC,C] += dout^T . inp;
 * dbias[OC] += sum_n dout[n]. Any of dinp, dweight, dbias may be NULL. */
void rd_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int N, int C, int OC);

/* ---- RMSNorm (model/cpu/norm.c) -----------------------------------------
 * out = inp * rstd * weight, rstd[n] = 1 / sqrt(mean_c inp[n,c]^2 + eps). */
void rd_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N,
                        int C, float eps);
void rd_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                         const float *weight, const float *rstd, int N, int C);

/* ---- RoPE and attention (model/cpu/attention.c) --------------------------
 * qkv rows are [H, 3, hd]: for each head its q, k and v side by side, so a
 * contiguous split of the rows of the qkv weight by heads (tensor parallel)
 * gives each rank whole heads. H is the LOCAL head count.
 *
 * RoPE pairs feature i with i + hd/2 of each head ("rotate half", as in
 * LLaMA in Hugging Face transformers); angle = pos * theta^(-2i/hd).
 * Tables are [T, hd/2]. */
void rd_rope_tables(float *cos_t, float *sin_t, int T, int hd, double theta);
/* Rotates q and k of heads [h0, H) of qkv [B, T, H*3*hd] in place, row t
 * of the sequence by row t of the tables; heads [0, h0) are left as they
 * are (0 <= h0 <= H). */
void rd_rope_forward(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int H,
                     int hd, int h0);
/* The transpose rotation of a gradient, in place (RoPE is orthogonal). */
void rd_rope_backward(float *dqkv, const float *cos_t, const float *sin_t, int B, int T, int H,
                      int hd, int h0);
/* Bidirectional softmax(q k^T / sqrt(hd)) v per head. Heads [0, img_heads)
 * attend to keys [0, img_keys) only (their other probabilities are 0);
 * the rest attend to all T keys. img_heads = 0: no head is restricted.
 * out [B, T, H*hd], att [B, H, T, T] (probabilities, kept for backward).
 * rd_attention_backward needs no such argument: a probability of 0 passes
 * no gradient to its score, key or value. */
void rd_attention_forward(float *out, float *att, const float *qkv, int B, int T, int H, int hd,
                          int img_heads, int img_keys);
/* dqkv [B, T, H*3*hd] += ...; work is scratch of B*H*T*T floats. */
void rd_attention_backward(float *dqkv, float *work, const float *dout, const float *qkv,
                           const float *att, int B, int T, int H, int hd);

/* ---- elementwise (model/cpu/activations.c) ------------------------------ */
/* out = silu(gate) * up, silu(g) = g / (1 + exp(-g)). */
void rd_swiglu_forward(float *out, const float *gate, const float *up, size_t n);
void rd_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                        const float *up, size_t n);
/* GELU, tanh approximation (PyTorch's approximate='tanh'). */
void rd_gelu_forward(float *out, const float *inp, size_t n);
void rd_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);
/* out = a + b. The backward passes dout to both (da += dout, db += dout). */
void rd_residual_forward(float *out, const float *a, const float *b, size_t n);
void rd_residual_backward(float *da, float *db, const float *dout, size_t n);

/* ---- embeddings and patches (model/cpu/embed.c) ------------------------- */
/* images uint8 [B, H, W, 3] -> out [B, (H/P)*(W/P), P*P*3] in [0, 1].
 * Patches in row-major grid order, features in (row, column, channel) order
 * within a patch. No backward: pixels are data. */
void rd_patchify(float *out, const uint8_t *images, int B, int H, int W, int P);
/* out[n] = table[ids[n]] for ids[n] >= 0; rows with ids[n] < 0 are left as
 * they are (the image positions of the sequence). table [V, C]. */
void rd_embedding_forward(float *out, const int32_t *ids, const float *table, int N, int C);
/* dtable[ids[n]] += dout[n] for ids[n] >= 0. */
void rd_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int C);
/* x[B, T, C] += pos[T, C] (learned position embedding). */
void rd_posemb_forward(float *x, const float *pos, int B, int T, int C);
/* dpos[T, C] += sum_b dx[b]. */
void rd_posemb_backward(float *dpos, const float *dx, int B, int T, int C);

/* ---- weighted softmax cross-entropy (model/cpu/loss.c) --------------------
 * logits [N, Vp], of which the first V columns are real vocabulary; padding
 * columns are outside the softmax and get no gradient. lse [N] receives the
 * log-sum-exp of each row. Returns sum_n w[n] * (lse[n] - logits[n, y[n]]),
 * summed in double in row order; rows with w[n] == 0 are skipped (their y is
 * not read). Allocates N floats and 2N doubles of scratch (NAN when that
 * fails): a convenience for one rank; the model uses the pieces below. */
double rd_xent_forward(float *lse, const float *logits, const int32_t *y, const float *w, int N,
                       int V, int Vp);
/* dlogits[n] += w[n] * (softmax(logits[n]) - onehot(y[n])). */
void rd_xent_backward(float *dlogits, const float *logits, const float *lse, const int32_t *y,
                      const float *w, int N, int V, int Vp);

/* The same in pieces, over a slab of the vocabulary (vocab-parallel): the
 * rank's logits [N, ld] hold ids [v0, v0 + ld), of which the first Vr
 * columns are real (Vr may be 0). Between the pieces, a tensor-parallel
 * caller takes the max of mx over the ranks, then sums sumexp and target:
 *   rowmax:   mx[n] = max of the Vr real columns (-inf when Vr = 0);
 *   rowstats: sumexp[n] = sum exp(z - mx[n]) over them; target[n] = the
 *             logit of y[n] when this slab holds it and w[n] != 0, else 0
 *             (y may be NULL: targets all 0);
 *   finish:   lse = mx + log(sumexp), returns sum w (lse - target). */
void rd_xent_rowmax(float *mx, const float *logits, int N, int Vr, int ld);
void rd_xent_rowstats(double *sumexp, double *target, const float *logits, const float *mx,
                      const int32_t *y, const float *w, int N, int Vr, int ld, int v0);
double rd_xent_finish(float *lse, const float *mx, const double *sumexp, const double *target,
                      const float *w, int N);
/* dlogits[n, k] += w[n] * (exp(z[n, k] - lse[n]) - [v0 + k == y[n]]) for
 * the Vr real columns of the slab. */
void rd_xent_backward_slab(float *dlogits, const float *logits, const float *lse, const int32_t *y,
                           const float *w, int N, int Vr, int ld, int v0);

/* ---- optimizer (model/cpu/optimizer.c) ------------------------------------
 * AdamW with decoupled weight decay and bias correction (PyTorch's AdamW):
 *   g = grad * grad_scale; p -= lr * weight_decay * p;
 *   m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *   p -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps).
 * step is 1-based. */
void rd_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                     float beta2, float eps, float weight_decay, int step, float grad_scale);
/* sum of x^2 in double, the same for any thread count; non-finite when any
 * x is (which is how the trainer finds a bad step: one pass, not two). */
double rd_sumsq(const float *x, size_t n);

/* ---- schedules (model/schedule.c; scalar, backend-free) ------------------ */
/* lr * step / warmup for step < warmup; then cosine from lr down to
 * lr * min_lr_frac at step == total (held there after). step is 1-based. */
float rd_lr_schedule(int step, float lr, int warmup, int total, float min_lr_frac);
/* The factor that brings a gradient of this norm down to max_norm:
 * max_norm / norm when norm > max_norm > 0, else 1. */
float rd_clip_scale(double norm, double max_norm);

#endif
