/* The tensor-parallel model against the same model on one rank, started
 * under mpirun with every rank in one tp group:
 *
 *   tp_model         (mpirun -np 2 or 4; see tp_model.sh)
 *
 * Each rank builds the model twice from the same seed: whole (tp = 1, no
 * communication) and split over the tp group. The split one must hold
 * exactly its slab of the whole one's parameters; its loss, its gathered
 * logits and its gradients (slab by slab) must match the whole model's
 * within 1e-5 relative (they differ only in the order of float sums); its
 * replicated tensors must get bitwise the same gradients on every rank. The
 * vocabulary (12 ids, padded to 16) leaves the last of 4 ranks no real
 * column. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/hash.h"
#include "io/core/rng.h"
#include "model/vlm.h"
#include "mpi/grid.h"
#include "tests/unit/model_fixture.h"
#include "tests/unit/rd_test.h"

enum { V = 12, B = 3 };

static rd_model_cfg cfg(int n_heads) {
  rd_model_cfg c = rd_test_model_cfg();
  c.n_heads = n_heads;
  c.vision_heads = 4; /* 4 ranks split the vision tower too */
  c.vision_d_ff = 16;
  /* 3 of 4 LM heads read the image only: under tp 2 rank 0 holds two of
   * them and rank 1 one, under tp 4 rank 3 holds none */
  c.image_heads = 3 < n_heads ? 3 : n_heads;
  return c;
}

typedef struct {
  uint8_t images[B * 16 * 16 * 3];
  int32_t x[B * 8], y[B * 8];
  float w[B * 8];
} batch;

static void make_batch(batch *b) {
  rd_rng r;
  rd_rng_init(&r, 5, RD_RNG_TEST, 2, 0);
  for (size_t i = 0; i < sizeof b->images; i++) b->images[i] = (uint8_t)rd_rng_below(&r, 256);
  for (int i = 0; i < B * 8; i++) {
    b->x[i] = (int32_t)rd_rng_below(&r, V);
    b->y[i] = (int32_t)rd_rng_below(&r, V);
    b->w[i] = rd_rng_uniform(&r) < 0.3 ? 0.0f : (float)(0.5 + rd_rng_uniform(&r)) / 8;
  }
}

/* Element k of the slab of tensor t, as an index into the whole tensor. */
static size_t whole_index(const rd_tensor *t, size_t k) {
  size_t r = k / (size_t)t->local[1], c = k % (size_t)t->local[1];
  if (t->split == 0) r += (size_t)t->slab_offset;
  if (t->split == 1) c += (size_t)t->slab_offset;
  return r * (size_t)t->shape[1] + c;
}

/* max |slab - whole| / max |whole| over tensor i's slab. */
static double slab_error(const rd_vlm *part, const float *pbuf, const rd_vlm *whole, const float *wbuf,
                         int i) {
  const rd_tensor *t = &part->tensors[i], *u = &whole->tensors[i];
  double diff = 0, scale = 1e-30;
  for (size_t k = 0; k < u->numel; k++) scale = fmax(scale, fabs(wbuf[u->offset + k]));
  for (size_t k = 0; k < t->numel; k++)
    diff = fmax(diff, fabs((double)pbuf[t->offset + k] - wbuf[u->offset + whole_index(t, k)]));
  return diff / scale;
}

static void compare(const rd_grid *g) {
  rd_model_cfg c = cfg(4);
  static const int32_t prompt[3] = {1, 4, 7};
  rd_vlm whole, part;
  if (rd_vlm_init(&whole, &c, V, prompt, 3, B, 0, 42) || rd_vlm_init_tp(&part, &c, V, prompt, 3, B, 0, 42, &g->tp)) {
    fprintf(stderr, "tp_model: %s\n", rd_err_msg());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  CHECK(whole.n_tensors == part.n_tensors);
  CHECK(part.Vl == 16 / g->tp_size && part.v0 == g->tp_rank * part.Vl);

  /* The split init is the whole init, sliced. */
  double init_err = 0;
  for (int i = 0; i < part.n_tensors; i++) init_err = fmax(init_err, slab_error(&part, part.params, &whole, whole.params, i));
  CHECK(init_err == 0.0);

  batch b;
  make_batch(&b);
  rd_batch rb = {B, b.images, NULL, b.x, b.y, b.w, NULL, 0.0f};
  float lw, lp;
  rd_vlm_zero_grad(&whole);
  rd_vlm_zero_grad(&part);
  CHECK_OK(rd_vlm_forward(&whole, &rb, &lw));
  CHECK_OK(rd_vlm_forward(&part, &rb, &lp));
  CHECK_OK(rd_vlm_backward(&whole));
  CHECK_OK(rd_vlm_backward(&part));
  double loss_err = fabs((double)lp - lw) / fabs((double)lw);
  CHECK(loss_err <= 1e-5);

  double grad_err = 0;
  for (int i = 0; i < part.n_tensors; i++) {
    double e = slab_error(&part, part.grads, &whole, whole.grads, i);
    if (e > 1e-5) printf("rank %d: gradient of %s differs by %.3g\n", g->rank, part.tensors[i].name, e);
    grad_err = fmax(grad_err, e);
  }
  CHECK(grad_err <= 1e-5);
  double gw, gp;
  CHECK_OK(rd_vlm_grad_norm(&whole, &gw));
  CHECK_OK(rd_vlm_grad_norm(&part, &gp));
  CHECK(fabs(gp - gw) <= 1e-5 * gw);

  /* Replicated tensors: bitwise the same gradient on every rank. */
  uint64_t h = RD_HASH_INIT;
  for (int i = 0; i < part.n_tensors; i++)
    if (part.tensors[i].split < 0)
      for (size_t k = 0; k < part.tensors[i].numel; k++) {
        float v = part.grads[part.tensors[i].offset + k];
        uint32_t u;
        memcpy(&u, &v, sizeof u);
        h = rd_hash_bytes(h, &u, sizeof u);
      }
  uint64_t *all = calloc((size_t)g->size, sizeof *all);
  MPI_Allgather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
  for (int r = 0; r < g->size; r++) CHECK(all[r] == all[0]);
  free(all);

  /* Logits only: full rows gathered on every rank, padding -inf. */
  rd_batch lb = {B, b.images, NULL, b.x, NULL, NULL, NULL, 0.0f};
  CHECK_OK(rd_vlm_forward(&whole, &lb, NULL));
  CHECK_OK(rd_vlm_forward(&part, &lb, NULL));
  const float *zw = rd_vlm_logits(&whole), *zp = rd_vlm_logits(&part);
  double lscale = 1e-30, ldiff = 0;
  int pad_ok = 1;
  for (int n = 0; n < B * 8; n++)
    for (int v = 0; v < 16; v++) {
      float a = zp[n * 16 + v], e = zw[n * 16 + v];
      if (v >= V) {
        pad_ok &= isinf(a) && a < 0;
        continue;
      }
      lscale = fmax(lscale, fabs(e));
      ldiff = fmax(ldiff, fabs((double)a - e));
    }
  CHECK(pad_ok && ldiff / lscale <= 1e-5);

  /* After an optimizer step the parameter hashes of all ranks agree. */
  rd_adamw_cfg ac = {0.9f, 0.95f, 1e-8f, 0.1f};
  CHECK_OK(rd_vlm_adamw_step(&part, &ac, 1, 1e-3f, 1.0f));
  uint64_t ph = 0, *phs = calloc((size_t)g->size, sizeof *phs);
  CHECK_OK(rd_vlm_params_hash(&part, &ph));
  MPI_Allgather(&ph, 1, MPI_UINT64_T, phs, 1, MPI_UINT64_T, MPI_COMM_WORLD);
  for (int r = 0; r < g->size; r++) CHECK(phs[r] == phs[0]);
  free(phs);

  double worst[4] = {init_err, loss_err, grad_err, ldiff / lscale};
  MPI_Allreduce(MPI_IN_PLACE, worst, 4, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  if (g->rank == 0)
    printf("tp %d against one rank: init %.3g, loss %.3g, gradients %.3g, logits %.3g (relative)\n", g->tp_size,
           worst[0], worst[1], worst[2], worst[3]);
  rd_vlm_free(&whole);
  rd_vlm_free(&part);

  /* A tp that does not divide the heads is refused on every rank. */
  if (g->tp_size > 2) {
    rd_model_cfg bad = cfg(2);
    CHECK_ERR(rd_vlm_init_tp(&part, &bad, V, prompt, 3, B, 0, 42, &g->tp), "must divide model.n_heads (2)");
    bad = cfg(4);
    bad.vision_heads = 2;
    CHECK_ERR(rd_vlm_init_tp(&part, &bad, V, prompt, 3, B, 0, 42, &g->tp), "must divide model.vision_heads (2)");
  }
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  rd_grid g;
  if (rd_grid_init(&g, MPI_COMM_WORLD, size) < 0) {
    fprintf(stderr, "tp_model: %s\n", rd_err_msg());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  compare(&g);
  int64_t tally[2] = {rd_test_checks, rd_test_fails};
  MPI_Allreduce(MPI_IN_PLACE, tally, 2, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  if (g.rank == 0)
    printf("tp_model: %d ranks: %lld checks, %lld failed\n", g.size, (long long)tally[0], (long long)tally[1]);
  rd_grid_free(&g);
  MPI_Finalize();
  return tally[1] ? 1 : 0;
}
