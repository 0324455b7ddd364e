/* The blind control and the perception probe (stages/eval/evalset.c), on a
 * small shard of ShapesCap samples with stub models whose use of the image
 * is known: a stub that reads its image (it recognises the image and
 * answers with that sample's reference caption) loses F1 when each image
 * is another sample's; a stub that ignores the image scores the same
 * either way, to the count. The probe of the reading stub is 1 for every
 * kind with the images and falls with the others'. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/shapes.h"
#include "io/shard.h"
#include "io/vocab.h"
#include "rd_test.h"
#include "stages/eval/evalset.h"

enum { N = 40, L = 64, HW = 48 };

typedef struct {
  rd_shapes_params p;
  rd_vocab v;
  rd_shard_info info;
  uint8_t img[N][HW * HW * 3];
  int32_t ids[N][L];
  int32_t scene[N][5 * RD_SCENE_FIELDS];
  char dir[64];
} world;

static world W;

static void setup(void) {
  static int done;
  if (done) return;
  done = 1;
  rd_shapes_params_default(&W.p);
  rd_scene sc[N];
  rd_words cap[N];
  rd_vocab_builder b;
  rd_vocab_builder_init(&b);
  for (int i = 0; i < N; i++) {
    CHECK_OK(rd_scene_sample(&sc[i], &W.p, 3, i));
    CHECK_OK(rd_caption_write(&sc[i], &W.p, 3, i, &cap[i], NULL));
    CHECK_OK(rd_scene_render(&sc[i], &W.p, W.img[i]));
    CHECK_OK(rd_scene_pack(&sc[i], W.scene[i], W.p.max_objects));
    CHECK_OK(rd_vocab_builder_add(&b, cap[i].w, cap[i].n));
  }
  CHECK_OK(rd_vocab_builder_finish(&b, NULL, 0, &W.v));
  rd_vocab_builder_free(&b);
  for (int i = 0; i < N; i++) CHECK_OK(rd_vocab_encode(&W.v, cap[i].w, cap[i].n, W.ids[i], L, NULL, NULL));
  W.info = (rd_shard_info){.n_samples = N, .image_size = HW, .gen_len = L, .scene_k = W.p.max_objects + 1,
                           .scene_f = RD_SCENE_FIELDS, .vocab_hash = rd_vocab_hash(&W.v)};
  snprintf(W.info.split, sizeof W.info.split, "eval");
  snprintf(W.dir, sizeof W.dir, "/tmp/rd_test_evalset.XXXXXX");
  CHECK(mkdtemp(W.dir) != NULL);
  char path[256];
  CHECK_OK(rd_shard_name(path, sizeof path, W.dir, "eval", 0));
  rd_shard_writer *w;
  CHECK_OK(rd_shard_writer_open(&w, path, &W.info, 0, 0));
  for (int i = 0; i < N; i++) {
    int32_t len = 0;
    while (len < L && W.ids[i][len] != RD_TOK_EOS) len++;
    rd_shard_sample s = {W.img[i], NULL, W.ids[i], len, NULL, {0, 0}, W.scene[i], 1000 + i};
    CHECK_OK(rd_shard_writer_append(w, &s));
  }
  CHECK_OK(rd_shard_writer_close(w));
}

static void teardown(void) {
  char path[256];
  CHECK_OK(rd_shard_name(path, sizeof path, W.dir, "eval", 0));
  remove(path);
  rmdir(W.dir);
}

/* The sample whose image this is, or -1. */
static int which(const uint8_t *image) {
  for (int i = 0; i < N; i++)
    if (memcmp(image, W.img[i], sizeof W.img[i]) == 0) return i;
  return -1;
}

/* Reads the image: the caption of the sample it shows. */
static int seeing(void *ctx, const rd_decode_input *in, rd_decode_output *out) {
  (void)ctx;
  for (int j = 0; j < in->B; j++) {
    int k = which(in->images + (size_t)j * HW * HW * 3);
    CHECK(k >= 0);
    memcpy(out->tokens + (size_t)j * L, W.ids[k < 0 ? 0 : k], sizeof W.ids[0]);
    if (out->margin) out->margin[j] = 1.0f;
  }
  out->forward_passes++;
  return RD_OK;
}

/* Ignores the image: the caption of the sample id it is asked about. */
static int ignoring(void *ctx, const rd_decode_input *in, rd_decode_output *out) {
  (void)ctx;
  for (int j = 0; j < in->B; j++)
    memcpy(out->tokens + (size_t)j * L, W.ids[(in->sample_id[j] * 7) % N], sizeof W.ids[0]);
  out->forward_passes++;
  return RD_OK;
}

/* Copies the answer of the image it is shown into every position. */
static int copying(void *ctx, int B, const uint8_t *images, const float *features, const int32_t *x, int32_t *x0) {
  (void)ctx, (void)features, (void)x;
  for (int j = 0; j < B; j++) {
    int k = which(images + (size_t)j * HW * HW * 3);
    memcpy(x0 + (size_t)j * L, W.ids[k < 0 ? 0 : k], sizeof W.ids[0]);
  }
  return RD_OK;
}

static void totals(const rd_score_counts *per, int n, rd_score *sc) {
  rd_score_counts sum = {0};
  for (int i = 0; i < n; i++)
    for (int f = 0; f < RD_SCORE_NCOUNTS; f++) ((int64_t *)&sum)[f] += ((const int64_t *)&per[i])[f];
  rd_score_rates(&sum, sc);
}

/* Two ranks' slices, as eval splits them, scored by fn with and without
 * the images: F1 of each. */
static void score_both(rd_captioner fn, rd_score *real, rd_score *blind) {
  rd_shardset set;
  CHECK_OK(rd_shardset_open(&set, W.dir, "eval", W.info.vocab_hash));
  static rd_score_counts per[2][N];
  static int32_t tok[N * L];
  int64_t at = 0;
  for (int r = 0; r < 2; r++) {
    int64_t begin, count;
    CHECK_OK(rd_shardset_slice(N, r, 2, &begin, &count));
    rd_evalset e;
    CHECK_OK(rd_evalset_load(&e, &set, N, begin, count));
    CHECK(e.n == count && e.real.sample_id[0] == 1000 + begin);
    /* the ablated copy of sample i shows sample (i + N/2) mod N */
    CHECK(memcmp(e.blind.images, W.img[(begin + N / 2) % N], sizeof W.img[0]) == 0);
    for (int b = 0; b < 2; b++) {
      float margin[N];
      int64_t passes = 0;
      CHECK_OK(rd_evalset_caption(&e, b, 7, fn, NULL, tok, margin, &passes));
      CHECK(passes == (count + 6) / 7);
      CHECK_OK(rd_evalset_score(&e, &W.v, tok, per[b] + at));
    }
    at += count;
    rd_evalset_free(&e);
  }
  CHECK(at == N);
  rd_shardset_close(&set);
  totals(per[0], N, real);
  totals(per[1], N, blind);
}

static void test_blind_control(void) {
  setup();
  rd_score real, blind;
  score_both(seeing, &real, &blind);
  CHECK_NEAR(real.f1, 1.0, 0);
  CHECK_MSG(blind.f1 < 0.5, "a model that reads its image scores F1 %.3f with other images", blind.f1);
  CHECK_NEAR(blind.syntax, 1.0, 0); /* the captions are fluent, only wrong */
  score_both(ignoring, &real, &blind);
  CHECK(real.f1 < 0.6);
  CHECK_MSG(real.f1 == blind.f1 && real.syntax == blind.syntax, "an image-blind model: F1 %.6f, blind %.6f",
            real.f1, blind.f1);
}

/* The whole shard as one rank's evalset (the set is closed again: the
 * evalset holds what it read). */
static void load_whole(rd_evalset *e) {
  setup();
  rd_shardset set;
  CHECK_OK(rd_shardset_open(&set, W.dir, "eval", W.info.vocab_hash));
  CHECK_OK(rd_evalset_load(e, &set, N, 0, N));
  rd_shardset_close(&set);
}

static void test_probe(void) {
  rd_evalset e;
  load_whole(&e);
  rd_probe_counts img = {0}, oth = {0};
  CHECK_OK(rd_evalset_probe(&e, &W.v, 0, 16, copying, NULL, &img));
  CHECK_OK(rd_evalset_probe(&e, &W.v, 1, 16, copying, NULL, &oth));
  double sum_oth = 0;
  for (int k = 0; k < RD_PROBE_KINDS; k++) {
    CHECK_MSG(img.total[k] > 0, "no %s word asked", rd_probe_kind_name(k));
    CHECK(img.total[k] == oth.total[k]);
    CHECK_NEAR(rd_probe_accuracy(&img, k), 1.0, 0);
    CHECK_MSG(rd_probe_accuracy(&oth, k) < 1.0, "%s: %.3f with other images", rd_probe_kind_name(k),
              rd_probe_accuracy(&oth, k));
    sum_oth += rd_probe_accuracy(&oth, k);
  }
  CHECK(sum_oth / RD_PROBE_KINDS < 0.7);
  rd_evalset_free(&e);
}

/* Which words the probe asks for: in every reference caption, each object
 * sentence gives one size, colour and shape word and two position words,
 * each count sentence one count word, and they are words of that kind.
 * What the probe of a kind leaves visible is the sentences asking that
 * kind: no colour word stays for the count, nothing of the caption's end
 * (its length would tell the count). */
static void test_word_kinds(void) {
  setup();
  for (int i = 0; i < N; i++) {
    int8_t kind[L];
    uint8_t keep[L];
    CHECK_OK(rd_probe_word_kinds(&W.v, W.ids[i], L, kind, keep));
    int n[RD_PROBE_KINDS] = {0};
    for (int t = 0; t < L; t++) {
      const char *w = rd_vocab_token(&W.v, W.ids[i][t]);
      if (W.ids[i][t] == RD_TOK_EOS) CHECK_MSG(keep[t] == 0, "sample %d word %d", i, t);
      if (keep[t] >> RD_PROBE_COUNT & 1u)
        CHECK_MSG(strstr("red green blue yellow purple orange", w) == NULL, "count probe shows '%s'", w);
      if (kind[t] < 0) continue;
      CHECK_MSG(keep[t] >> kind[t] & 1u, "sample %d word %d: asked but its sentence not kept", i, t);
      n[kind[t]]++;
      if (kind[t] == RD_PROBE_COLOUR)
        CHECK_MSG(strstr("red green blue yellow purple orange", w) != NULL, "colour word '%s'", w);
      if (kind[t] == RD_PROBE_POSITION)
        CHECK_MSG(strstr("top middle bottom left centre right", w) != NULL, "position word '%s'", w);
      if (kind[t] == RD_PROBE_SIZE) CHECK_MSG(strstr("large big small little", w) != NULL, "size word '%s'", w);
    }
    CHECK(n[RD_PROBE_SIZE] == n[RD_PROBE_COLOUR] && n[RD_PROBE_COLOUR] == n[RD_PROBE_SHAPE]);
    CHECK(n[RD_PROBE_POSITION] == 2 * n[RD_PROBE_SHAPE] && n[RD_PROBE_SHAPE] >= 1);
    CHECK(n[RD_PROBE_COUNT] >= 1);
  }
  /* a sentence that does not parse asks nothing and keeps nothing */
  int32_t bad[L];
  for (int t = 0; t < L; t++) bad[t] = RD_TOK_EOS;
  memcpy(bad, W.ids[0], 3 * sizeof *bad);
  int8_t kind[L];
  uint8_t keep[L];
  CHECK_OK(rd_probe_word_kinds(&W.v, bad, L, kind, keep));
  for (int t = 0; t < L; t++) CHECK(kind[t] == -1 && keep[t] == 0);
}

/* A size is asked as a class: a stub answering "big" wherever the
 * reference says "large" (and "little" for "small") is right every time,
 * one answering the other class never. */
static int size_swapper(void *ctx, int B, const uint8_t *images, const float *features, const int32_t *x,
                        int32_t *x0) {
  const int flip = *(const int *)ctx;
  int32_t large = rd_vocab_id(&W.v, "large"), big = rd_vocab_id(&W.v, "big");
  int32_t small = rd_vocab_id(&W.v, "small"), little = rd_vocab_id(&W.v, "little");
  CHECK_OK(copying(NULL, B, images, features, x, x0));
  for (int i = 0; i < B * L; i++) {
    if (x0[i] == large || x0[i] == big) x0[i] = flip ? little : (x0[i] == large ? big : large);
    else if (x0[i] == small || x0[i] == little) x0[i] = flip ? big : (x0[i] == small ? little : small);
  }
  return RD_OK;
}

static void test_probe_size_class(void) {
  rd_evalset e;
  load_whole(&e);
  for (int flip = 0; flip < 2; flip++) {
    rd_probe_counts c = {0};
    CHECK_OK(rd_evalset_probe(&e, &W.v, 0, 16, size_swapper, &flip, &c));
    CHECK(c.total[RD_PROBE_SIZE] > 0);
    CHECK_NEAR(rd_probe_accuracy(&c, RD_PROBE_SIZE), flip ? 0.0 : 1.0, 0);
    CHECK_NEAR(rd_probe_accuracy(&c, RD_PROBE_COLOUR), 1.0, 0);
  }
  rd_evalset_free(&e);
}

static void test_errors(void) {
  setup();
  rd_evalset e;
  CHECK_ERR(rd_evalset_init(&e, &W.info, 1, 1), "at least 2 samples");
  teardown();
}

RD_TEST_MAIN("evalset", RD_CASE(test_blind_control), RD_CASE(test_probe), RD_CASE(test_word_kinds), RD_CASE(test_probe_size_class),
             RD_CASE(test_errors))
