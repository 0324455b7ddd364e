/* The small model the model tests build: 16 wide, 2 LM blocks, a 1-block
 * vision tower of width 8 on 16x16 images in 2x2 patches of 8, 8 response
 * tokens. Tests change the fields their case needs. Shared by
 * tests/unit/test_model_grad.c, test_parity.c, test_decode.c and
 * tests/mpi/tp_model.c. */
#ifndef RD_TESTS_MODEL_FIXTURE_H
#define RD_TESTS_MODEL_FIXTURE_H

#include <string.h>

#include "io/config.h"

static inline rd_model_cfg rd_test_model_cfg(void) {
  rd_model_cfg c;
  memset(&c, 0, sizeof c);
  c.d_model = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.d_ff = 24;
  c.vision_layers = 1;
  c.vision_d = 8;
  c.vision_heads = 2;
  c.vision_d_ff = 12;
  c.image_size = 16;
  c.patch = 8;
  c.gen_len = 8;
  c.rope_theta = 100.0;
  c.norm_eps = 1e-5;
  /* Larger than a training init so every layer has gradients well above
   * the finite-difference noise. */
  c.init_std = 0.3;
  c.vocab_multiple = 16;
  return c;
}

#endif
