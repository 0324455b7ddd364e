/* The held-out samples one rank measures, in memory with their
 * image-ablated copies, and the two measurements made on them: caption
 * scores of a captioner (eval), and the perception probe (eval and the
 * training log). docs/metrics.md, "The blind control" and "The probe".
 *
 * The ablated copy of a sample carries another sample's image: sample i
 * of a scored set of n gets the image (or features) of sample
 * (i + n / 2) mod n, so its caption, scene and id stay and only what the
 * model sees changes. A model that ignores its image scores the same on
 * both; one that reads it describes the other scene and loses. Every
 * number depends on the set, never on how it is split over ranks.
 *
 * The measurements call the model through a function pointer (a captioner
 * or a predictor), so they are tested with stub models whose dependence on
 * the image is known. */
#ifndef RD_STAGES_EVAL_EVALSET_H
#define RD_STAGES_EVAL_EVALSET_H

#include <stdint.h>

#include "io/shard.h"
#include "io/vocab.h"
#include "model/decode.h"
#include "stages/eval/score.h"

typedef struct {
  int64_t n;            /* samples held */
  int64_t n_set;        /* samples of the whole scored set (over all ranks) */
  int L;                /* gen_len */
  rd_shard_batch real;  /* [n] the samples as stored */
  rd_shard_batch blind; /* [n] the same samples with the images of others */
} rd_evalset;

/* Reads samples [begin, begin + count) of the first n_set samples of set,
 * and for the ablated copy the images of samples (i + n_set / 2) mod n_set.
 * n_set >= 2 (with one sample there is no other image). */
int rd_evalset_load(rd_evalset *e, rd_shardset *set, int64_t n_set, int64_t begin, int64_t count);
/* An empty set of count samples of info's shape, for callers that fill the
 * arrays themselves (tests). */
int rd_evalset_init(rd_evalset *e, const rd_shard_info *info, int64_t n_set, int64_t count);
void rd_evalset_free(rd_evalset *e);

/* ---- captions */

/* Decodes in->B samples into out (rd_decode's contract); ctx is the
 * caller's. */
typedef int (*rd_captioner)(void *ctx, const rd_decode_input *in, rd_decode_output *out);

/* Captions every sample, batch at a time, from its image (blind 0) or
 * from the ablated image (blind 1). tokens [n, L]; margin [n] (may be
 * NULL) each caption's smallest decision margin; *passes (may be NULL)
 * adds the forward passes. */
int rd_evalset_caption(const rd_evalset *e, int blind, int batch, rd_captioner f, void *ctx, int32_t *tokens,
                       float *margin, int64_t *passes);
/* per [n]: each caption's counts against its sample's scene (the set must
 * have /scenes). */
int rd_evalset_score(const rd_evalset *e, const rd_vocab *v, const int32_t *tokens, rd_score_counts *per);

/* ---- the perception probe */

/* The attribute words of a reference caption the probe asks for. */
enum {
  RD_PROBE_COUNT,    /* the number of a count or shape-count sentence */
  RD_PROBE_SIZE,     /* of an object sentence */
  RD_PROBE_COLOUR,   /* of an object sentence */
  RD_PROBE_SHAPE,    /* of an object sentence */
  RD_PROBE_POSITION, /* row and column words of an object sentence */
  RD_PROBE_RELATION, /* the relation word of a relation sentence */
  RD_PROBE_KINDS
};
/* "count", "size", "colour", "shape", "position", "relation". */
const char *rd_probe_kind_name(int kind);
/* kind [L]: the probe kind of each word of caption [L] (-1: not asked),
 * from the caption parser; words of sentences that do not parse are not
 * asked. keep [L]: bit k of a word is set when its sentence asks a kind-k
 * word (0 outside parsed sentences). */
int rd_probe_word_kinds(const rd_vocab *v, const int32_t *caption, int L, int8_t *kind, uint8_t *keep);

typedef struct {
  int64_t right[RD_PROBE_KINDS], total[RD_PROBE_KINDS];
} rd_probe_counts;
#define RD_PROBE_NCOUNTS (2 * RD_PROBE_KINDS)

/* x0 [B, L]: the model's choice at every position for the response tokens
 * x [B, L] (mask where undecided) of B samples with those images or
 * features (one of the two NULL). */
typedef int (*rd_predictor)(void *ctx, int B, const uint8_t *images, const float *features, const int32_t *x,
                            int32_t *x0);

/* Teacher-forced accuracy of the attribute words: for each kind, the
 * sentences of the reference caption that hold a word of that kind are
 * given with those words masked, every other word is masked too, and the
 * prediction at each asked word compared with the reference (one pass per
 * kind and batch; a size is right when its class is: "big" answers
 * "large"). From the images (blind 0) or
 * the ablated ones (blind 1); adds to acc. */
int rd_evalset_probe(const rd_evalset *e, const rd_vocab *v, int blind, int batch, rd_predictor f, void *ctx,
                     rd_probe_counts *acc);
/* right / total of kind k, or NAN when nothing was asked. */
double rd_probe_accuracy(const rd_probe_counts *c, int k);

#endif
