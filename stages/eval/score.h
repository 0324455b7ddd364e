/* Scoring decoded ShapesCap captions (docs/metrics.md, "Fact metrics").
 *
 * The fact and syntax scores are sums of integer counts, so data-parallel
 * ranks add their counts exactly (rd_coll_allreduce_sum_i64) and any split
 * of the samples gives the same numbers. The corpus text metrics (BLEU-4,
 * CIDEr-D, repetition) need every caption in one place and are computed by
 * rd_score_text from the gathered tokens. */
#ifndef RD_STAGES_EVAL_SCORE_H
#define RD_STAGES_EVAL_SCORE_H

#include <stdint.h>

#include "data/shapes.h"
#include "io/vocab.h"

/* Counts over captions; every field an int64 so the struct is summed as an
 * array of RD_SCORE_NCOUNTS int64. */
typedef struct {
  int64_t n_captions;
  int64_t n_claimed, n_true;      /* distinct facts claimed per caption, and the true ones */
  int64_t n_reference, n_covered; /* count + object facts of the scene, and those claimed */
  int64_t n_sentences, n_parsed;  /* sentences (incl. an unterminated tail), and those that parse */
  int64_t n_words, n_empty;       /* words before EOS; captions with none */
} rd_score_counts;
#define RD_SCORE_NCOUNTS ((int)(sizeof(rd_score_counts) / sizeof(int64_t)))

/* The facts a caption must state to cover its scene: the object count and
 * one fact per object, what every reference caption states. Relations and
 * shape counts are optional in references, so they are not required for
 * coverage; a claimed one still counts for factuality. */
#define RD_SCORE_RECALL_KINDS (RD_FACT_BIT(RD_FACT_COUNT) | RD_FACT_BIT(RD_FACT_OBJECT))

/* Adds one caption: tokens [L] (cut at the first [EOS]) against scene. */
int rd_score_caption(const rd_vocab *v, const int32_t *tokens, int L, const rd_scene *scene, rd_score_counts *acc);

typedef struct {
  double factuality; /* n_true / n_claimed (0 when nothing is claimed) */
  double coverage;   /* n_covered / n_reference */
  double f1;         /* harmonic mean of factuality and coverage */
  double syntax;     /* n_parsed / n_sentences (0 when there are no sentences) */
  double repetition; /* mean bigram repetition per caption */
  double bleu4;      /* corpus BLEU-4 against the one reference caption each */
  double cider;      /* CIDEr-D, same references */
} rd_score;

/* The fact and syntax rates of the counts (the text fields untouched). */
void rd_score_rates(const rd_score_counts *c, rd_score *out);
/* A 95% (or other level) percentile-bootstrap interval over images of F1
 * and syntax: B resamples of the n images with replacement, each giving
 * the corpus rates of its summed counts; the interval is the (1 - level)/2
 * and (1 + level)/2 quantiles (linear between order statistics) of the B
 * values. Resample k draws from the stream (seed, RD_RNG_BOOTSTRAP, k), so
 * the interval depends on the per-image counts and the seed only. */
typedef struct {
  double f1_lo, f1_hi;
  double syntax_lo, syntax_hi;
} rd_score_ci;
int rd_score_bootstrap(const rd_score_counts *per_image, int64_t n, int B, double level, uint64_t seed,
                       rd_score_ci *out);

/* BLEU-4, CIDEr-D and repetition of n candidates cand [n, L] against
 * references ref [n, L], both cut at the first eos. */
int rd_score_text(const int32_t *cand, const int32_t *ref, int n, int L, int32_t eos, rd_score *out);

#endif
