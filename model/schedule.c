/* Learning-rate schedule and clipping factor: scalar arithmetic shared by
 * every backend. */
#include <math.h>

#include "model/ops.h"

static const double rd_pi = 3.14159265358979323846;

float rd_lr_schedule(int step, float lr, int warmup, int total, float min_lr_frac) {
  if (step < warmup) return lr * (float)step / (float)warmup;
  if (total <= warmup) return lr;
  double progress = (double)(step - warmup) / (double)(total - warmup);
  if (progress > 1.0) progress = 1.0;
  double lo = (double)lr * min_lr_frac;
  return (float)(lo + ((double)lr - lo) * 0.5 * (1.0 + cos(rd_pi * progress)));
}

float rd_clip_scale(double norm, double max_norm) {
  if (max_norm > 0.0 && norm > max_norm) return (float)(max_norm / norm);
  return 1.0f;
}
