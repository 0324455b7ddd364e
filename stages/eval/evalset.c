#include "stages/eval/evalset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/grammar.h"
#include "data/shapes.h"
#include "io/core/err.h"

int rd_evalset_init(rd_evalset *e, const rd_shard_info *info, int64_t n_set, int64_t count) {
  memset(e, 0, sizeof *e);
  if (n_set < 2)
    return rd_err(RD_EINVAL, "the blind control needs at least 2 samples to swap images between, got %lld",
                  (long long)n_set);
  if (count < 0 || count > n_set)
    return rd_err(RD_EINVAL, "a slice of %lld of %lld samples", (long long)count, (long long)n_set);
  e->n = count;
  e->n_set = n_set;
  e->L = info->gen_len;
  int64_t cap = count > 0 ? count : 1;
  int s = rd_shard_batch_init(&e->real, info, cap);
  if (s == RD_OK) s = rd_shard_batch_init(&e->blind, info, cap);
  if (s != RD_OK) rd_evalset_free(e);
  return s;
}

void rd_evalset_free(rd_evalset *e) {
  if (e->real.cap) rd_shard_batch_free(&e->real);
  if (e->blind.cap) rd_shard_batch_free(&e->blind);
  memset(e, 0, sizeof *e);
}

int rd_evalset_load(rd_evalset *e, rd_shardset *set, int64_t n_set, int64_t begin, int64_t count) {
  if (n_set > set->n_total)
    return rd_err(RD_EINVAL, "%lld samples asked for, the set holds %lld", (long long)n_set,
                  (long long)set->n_total);
  RD_TRY(rd_evalset_init(e, &set->info, n_set, count));
  int s = count > 0 ? rd_shardset_read_range(set, begin, count, &e->real, 0) : RD_OK;
  /* Only the images (or features) of the ablated copy are used; the rest
   * of each slot is the other sample's and never read. */
  for (int64_t i = 0; i < count && s == RD_OK; i++)
    s = rd_shardset_read(set, (begin + i + n_set / 2) % n_set, &e->blind, i);
  if (s != RD_OK) rd_evalset_free(e);
  return s;
}

/* Elements of one sample's image (uint8) or features (float). */
static size_t image_elems(const rd_shard_info *in) {
  return in->n_patches > 0 ? (size_t)in->n_patches * in->feat_dim : (size_t)in->image_size * in->image_size * 3;
}

/* The images or features of samples [off, ...) as the model reads them. */
static void inputs(const rd_evalset *e, int blind, int64_t off, const uint8_t **images, const float **features) {
  const rd_shard_batch *b = blind ? &e->blind : &e->real;
  size_t k = image_elems(&e->real.info);
  *images = b->images ? b->images + (size_t)off * k : NULL;
  *features = b->features ? b->features + (size_t)off * k : NULL;
}

int rd_evalset_caption(const rd_evalset *e, int blind, int batch, rd_captioner f, void *ctx, int32_t *tokens,
                       float *margin, int64_t *passes) {
  if (batch < 1) return rd_err(RD_EINVAL, "caption batch %d", batch);
  for (int64_t off = 0; off < e->n; off += batch) {
    int nb = (int)(e->n - off < batch ? e->n - off : batch);
    rd_decode_input in = {nb, NULL, NULL, e->real.sample_id + off, NULL};
    inputs(e, blind, off, &in.images, &in.features);
    rd_decode_output out = {tokens + (size_t)off * e->L, NULL, 0, margin ? margin + off : NULL};
    RD_TRY(f(ctx, &in, &out));
    if (passes) *passes += out.forward_passes;
  }
  return RD_OK;
}

int rd_evalset_score(const rd_evalset *e, const rd_vocab *v, const int32_t *tokens, rd_score_counts *per) {
  const rd_shard_info *in = &e->real.info;
  if (in->scene_k <= 0) return rd_err(RD_EINVAL, "the samples have no /scenes: captions are scored against scenes");
  for (int64_t i = 0; i < e->n; i++) {
    rd_scene scene;
    int s = rd_scene_unpack(e->real.scenes + (size_t)i * in->scene_k * in->scene_f, in->scene_k - 1, &scene);
    if (s < 0) return rd_err_wrap(s, "sample id %lld: dataset /scenes", (long long)e->real.sample_id[i]);
    memset(&per[i], 0, sizeof per[i]);
    RD_TRY(rd_score_caption(v, tokens + (size_t)i * e->L, e->L, &scene, &per[i]));
  }
  return RD_OK;
}

/* ---- the probe */

static const char *const kind_names[RD_PROBE_KINDS] = {"count", "size", "colour", "shape", "position", "relation"};

const char *rd_probe_kind_name(int kind) {
  return kind >= 0 && kind < RD_PROBE_KINDS ? kind_names[kind] : "?";
}

int rd_probe_word_kinds(const rd_vocab *v, const int32_t *caption, int L, int8_t *kind, uint8_t *keep) {
  for (int i = 0; i < L; i++) kind[i] = -1, keep[i] = 0;
  const char *words[RD_WORDS_MAX];
  int n = 0;
  RD_TRY(rd_vocab_decode_words(v, caption, L < RD_WORDS_MAX ? L : RD_WORDS_MAX, 1, words, &n));
  rd_parse_report rep;
  RD_TRY(rd_caption_parse_strings(words, n, NULL, &rep));
  for (int k = 0; k < rep.n_sentences; k++) {
    const rd_sentence *s = &rep.s[k];
    if (!s->parsed) continue;
    uint8_t has = 0;
    /* word w of the caption is token w: decoding maps one id to one word */
#define ASK(sl, pk) \
  if (s->slot[sl] >= 0 && s->slot[sl] < L) kind[s->slot[sl]] = (pk), has |= 1u << (pk)
    switch (s->kind) {
    case RD_FACT_COUNT:
    case RD_FACT_SHAPE_COUNT: ASK(RD_SLOT_NUM, RD_PROBE_COUNT); break;
    case RD_FACT_OBJECT:
      ASK(RD_SLOT_SIZE, RD_PROBE_SIZE);
      ASK(RD_SLOT_COLOUR, RD_PROBE_COLOUR);
      ASK(RD_SLOT_SHAPE, RD_PROBE_SHAPE);
      ASK(RD_SLOT_ROW, RD_PROBE_POSITION);
      ASK(RD_SLOT_COL, RD_PROBE_POSITION);
      break;
    case RD_FACT_RELATION: ASK(RD_SLOT_REL, RD_PROBE_RELATION); break;
    default: break;
    }
#undef ASK
    for (int w = s->start; w < s->start + s->len && w < L; w++) keep[w] = has;
  }
  return RD_OK;
}

/* Whether answer a to a word of kind k is the reference r. Sizes are
 * asked as a class: the reference's "big" or "large" is a draw between two
 * words for one fact, and either answers it. */
static int probe_right(const rd_vocab *v, int k, int32_t a, int32_t r) {
  if (a == r) return 1;
  if (k != RD_PROBE_SIZE) return 0;
  int la = rd_lex_id(rd_vocab_token(v, a)), lr = rd_lex_id(rd_vocab_token(v, r));
  return la >= RD_W_LARGE && la < RD_W_LARGE + 2 * RD_SIZES && lr >= RD_W_LARGE && lr < RD_W_LARGE + 2 * RD_SIZES &&
         (la - RD_W_LARGE) / 2 == (lr - RD_W_LARGE) / 2;
}

int rd_evalset_probe(const rd_evalset *e, const rd_vocab *v, int blind, int batch, rd_predictor f, void *ctx,
                     rd_probe_counts *acc) {
  if (batch < 1) return rd_err(RD_EINVAL, "probe batch %d", batch);
  const int L = e->L;
  size_t nb_max = (size_t)(e->n < batch ? (e->n > 0 ? e->n : 1) : batch) * L;
  int8_t *kind = malloc(nb_max);
  uint8_t *keep = malloc(nb_max);
  int32_t *x = malloc(nb_max * sizeof *x), *x0 = malloc(nb_max * sizeof *x0);
  int s = kind && keep && x && x0 ? RD_OK : rd_err(RD_ENOMEM, "out of memory for the probe of %d samples", batch);
  for (int64_t off = 0; off < e->n && s == RD_OK; off += batch) {
    int nb = (int)(e->n - off < batch ? e->n - off : batch);
    const int32_t *ref = e->real.captions + (size_t)off * L;
    for (int j = 0; j < nb && s == RD_OK; j++)
      s = rd_probe_word_kinds(v, ref + (size_t)j * L, L, kind + (size_t)j * L, keep + (size_t)j * L);
    const uint8_t *images;
    const float *features;
    inputs(e, blind, off, &images, &features);
    for (int k = 0; k < RD_PROBE_KINDS && s == RD_OK; k++) {
      int asked = 0;
      /* Only the sentences that ask a kind-k word stay, with those words
       * masked: the others (and the end of the caption) would tell the
       * count by their number and a relation by the cells they name. */
      for (size_t i = 0; i < (size_t)nb * L; i++) {
        x[i] = kind[i] == k || !(keep[i] >> k & 1u) ? RD_TOK_MASK : ref[i];
        asked += kind[i] == k;
      }
      if (!asked) continue;
      s = f(ctx, nb, images, features, x, x0);
      for (size_t i = 0; i < (size_t)nb * L && s == RD_OK; i++)
        if (kind[i] == k) {
          acc->total[k]++;
          acc->right[k] += probe_right(v, k, x0[i], ref[i]);
        }
    }
  }
  free(kind), free(keep), free(x), free(x0);
  return s;
}

double rd_probe_accuracy(const rd_probe_counts *c, int k) {
  return c->total[k] > 0 ? (double)c->right[k] / (double)c->total[k] : NAN;
}
