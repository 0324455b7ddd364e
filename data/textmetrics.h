/* Text metrics of the caption evaluation, on token ids: corpus BLEU-4,
 * CIDEr-D and n-gram repetition. The exact definitions (and the value each
 * takes on empty input) are in docs/metrics.md; the tests hold BLEU-4 and
 * CIDEr-D to Python re-implementations of the published formulas
 * (tests/reference/bleu_ref.py, tests/reference/cider_ref.py).
 *
 * A caption is a run of token ids; in a shard row it is the ids before the
 * first EOS (rd_textmetrics_caption). Metrics compare ids only, so any
 * tokenizer works as long as candidates and references share it. */
#ifndef RD_DATA_TEXTMETRICS_H
#define RD_DATA_TEXTMETRICS_H

#include <stdint.h>

#define RD_TEXTMETRICS_MAX_N 4 /* longest n-gram any metric looks at */

typedef struct {
  const int32_t *ids; /* [len], not owned */
  int len;
} rd_caption;

/* n candidates; candidate i is scored against
 * refs[ref_off[i] .. ref_off[i+1]), at least one reference each. */
typedef struct {
  int n;
  const rd_caption *cand; /* [n] */
  const int *ref_off;     /* [n+1], ref_off[0] = 0, non-decreasing */
  const rd_caption *refs; /* [ref_off[n]] */
} rd_caption_corpus;

/* The caption in row[0..max_len): the ids before the first eos, or all
 * max_len ids when there is none. */
rd_caption rd_textmetrics_caption(const int32_t *row, int max_len, int32_t eos);

typedef struct {
  double bleu4;        /* BP * exp(mean_n log precision[n]), 0 if any precision is 0 */
  double precision[4]; /* clipped n-gram precision, n = 1..4, over the corpus */
  double bp;           /* brevity penalty, closest reference length */
  int64_t cand_len;    /* c: total candidate tokens */
  int64_t ref_len;     /* r: total closest-reference tokens */
} rd_bleu;

/* Corpus BLEU-4 (Papineni et al. 2002). An empty corpus scores all zeros. */
int rd_textmetrics_bleu4(const rd_caption_corpus *c, rd_bleu *out);

/* CIDEr-D (Vedantam et al. 2015) as the coco-caption CiderD scorer computes
 * it, with document frequencies over the references of this corpus. Writes
 * the corpus mean to *mean and, when per_caption is not NULL, each
 * candidate's score to per_caption[0..n). An empty corpus scores 0. */
int rd_textmetrics_cider_d(const rd_caption_corpus *c, double *mean, double *per_caption);

typedef struct {
  double repetition; /* mean over captions of 1 - distinct/total n-grams */
  double runs;       /* mean over captions of maximal runs of >= 2 equal ids */
} rd_repetition;

/* Repetition of n-grams (1 <= ngram <= RD_TEXTMETRICS_MAX_N; the eval uses
 * 2) in caps[0..n). A caption shorter than ngram counts as 0; an empty set of
 * captions scores 0. */
int rd_textmetrics_repetition(const rd_caption *caps, int n, int ngram, rd_repetition *out);

#endif
