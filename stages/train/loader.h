/* Which samples a training step uses.
 *
 * The order is a function of (seed, step) alone: epoch e visits the training
 * set in a permutation drawn from the stream (seed, SHUFFLE, e), and step s
 * takes global positions [s*B, (s+1)*B) of the concatenated epochs. So a
 * resumed run needs no saved cursor to continue exactly, and every dp rank
 * can compute the same global batch and take its own part of it. */
#ifndef RD_STAGES_TRAIN_LOADER_H
#define RD_STAGES_TRAIN_LOADER_H

#include <stdint.h>

typedef struct {
  int64_t n;       /* samples in the training set */
  int batch;       /* global batch B */
  uint64_t seed;
  int64_t epoch;   /* epoch of perm, -1 when none */
  int64_t *perm;   /* [n] */
} rd_loader;

int rd_loader_init(rd_loader *l, int64_t n, int batch, uint64_t seed);
void rd_loader_free(rd_loader *l);
/* Dataset indices of global batch slots [first, first + count) of step. */
int rd_loader_slots(rd_loader *l, int64_t step, int first, int count, int64_t *idx);
/* The epoch a step starts in (for logs and checkpoints). */
int64_t rd_loader_epoch(const rd_loader *l, int64_t step);

#endif
