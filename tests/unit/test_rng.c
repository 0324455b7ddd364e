/* Philox against the Random123 known-answer vectors, and the stream naming
 * rules the determinism guarantees rest on. */
#include "io/core/rng.h"
#include "rd_test.h"

static void philox_known_answers(void) {
  static const uint32_t cases[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
       0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
       0x94fdcceb, 0x5001e420, 0x24126ea1},
  };
  for (int c = 0; c < 3; c++) {
    uint32_t out[4];
    rd_rng_philox(&cases[c][4], &cases[c][0], out);
    for (int i = 0; i < 4; i++) CHECK_MSG(out[i] == cases[c][6 + i], "case %d word %d: %08x", c, i, out[i]);
  }
}

static void streams_are_named_not_positional(void) {
  rd_rng a, b, c;
  rd_rng_init(&a, 7, RD_RNG_MASK, 3, 11);
  rd_rng_init(&b, 7, RD_RNG_MASK, 3, 11);
  rd_rng_init(&c, 7, RD_RNG_MASK, 3, 12);
  int same = 1, diff = 0;
  for (int i = 0; i < 100; i++) {
    uint32_t x = rd_rng_u32(&a), y = rd_rng_u32(&b), z = rd_rng_u32(&c);
    same &= x == y;
    diff += x != z;
  }
  CHECK(same);
  CHECK(diff > 95);
  /* Another kind with equal (a, b) is another stream. */
  rd_rng_init(&a, 7, RD_RNG_MASK, 3, 11);
  rd_rng_init(&b, 7, RD_RNG_NOISE, 3, 11);
  CHECK(rd_rng_u64(&a) != rd_rng_u64(&b));
}

static void uniform_and_below_are_fair(void) {
  rd_rng r;
  rd_rng_init(&r, 1, RD_RNG_TEST, 0, 0);
  double sum = 0;
  int counts[6] = {0};
  const int n = 60000;
  for (int i = 0; i < n; i++) {
    double u = rd_rng_uniform(&r);
    CHECK(u >= 0 && u < 1);
    sum += u;
    counts[rd_rng_below(&r, 6)]++;
  }
  CHECK_NEAR(sum / n, 0.5, 0.01);
  for (int k = 0; k < 6; k++) CHECK_NEAR(counts[k], n / 6.0, 400);
  double s1 = 0, s2 = 0;
  for (int i = 0; i < n; i++) {
    double z = rd_rng_normal(&r);
    s1 += z;
    s2 += z * z;
  }
  CHECK_NEAR(s1 / n, 0.0, 0.02);
  CHECK_NEAR(s2 / n, 1.0, 0.03);
}

RD_TEST_MAIN("rng", RD_CASE(philox_known_answers), RD_CASE(streams_are_named_not_positional),
             RD_CASE(uniform_and_below_are_fair))
