#include "stages/train/loader.h"

#include <stdlib.h>

#include "io/core/err.h"
#include "io/core/rng.h"

int rd_loader_init(rd_loader *l, int64_t n, int batch, uint64_t seed) {
  if (n <= 0) return rd_err(RD_EINVAL, "the training set is empty");
  if (batch <= 0) return rd_err(RD_EINVAL, "batch size must be positive, got %d", batch);
  l->n = n;
  l->batch = batch;
  l->seed = seed;
  l->epoch = -1;
  l->perm = rd_malloc((size_t)n * sizeof *l->perm, "the data order");
  return l->perm ? RD_OK : RD_ENOMEM;
}

void rd_loader_free(rd_loader *l) {
  free(l->perm);
  l->perm = NULL;
}

static void set_epoch(rd_loader *l, int64_t epoch) {
  if (l->epoch == epoch) return;
  for (int64_t i = 0; i < l->n; i++) l->perm[i] = i;
  rd_rng r;
  rd_rng_init(&r, l->seed, RD_RNG_SHUFFLE, (uint64_t)epoch, 0);
  rd_rng_shuffle(&r, l->perm, l->n);
  l->epoch = epoch;
}

int rd_loader_slots(rd_loader *l, int64_t step, int first, int count, int64_t *idx) {
  if (first < 0 || count < 0 || first + count > l->batch)
    return rd_err(RD_ESTATE, "batch slots [%d, %d) outside the batch of %d", first, first + count, l->batch);
  for (int j = 0; j < count; j++) {
    int64_t pos = step * l->batch + first + j;
    set_epoch(l, pos / l->n);
    idx[j] = l->perm[pos % l->n];
  }
  return RD_OK;
}

int64_t rd_loader_epoch(const rd_loader *l, int64_t step) { return step * l->batch / l->n; }
