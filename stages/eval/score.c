#include "stages/eval/score.h"

#include <math.h>
#include <stdlib.h>

#include "data/textmetrics.h"
#include "io/core/err.h"
#include "io/core/rng.h"

int rd_score_caption(const rd_vocab *v, const int32_t *tokens, int L, const rd_scene *scene, rd_score_counts *acc) {
  const char *words[RD_WORDS_MAX];
  int n = 0;
  /* At most RD_WORDS_MAX words are read, the grammar's longest caption. */
  RD_TRY(rd_vocab_decode_words(v, tokens, L < RD_WORDS_MAX ? L : RD_WORDS_MAX, 1, words, &n));
  rd_facts facts;
  rd_parse_report rep;
  RD_TRY(rd_caption_parse_strings(words, n, &facts, &rep));
  rd_fact_score fs;
  rd_facts_score(&facts, scene, RD_SCORE_RECALL_KINDS, &fs);
  acc->n_captions++;
  acc->n_claimed += fs.n_claimed;
  acc->n_true += fs.n_true;
  acc->n_reference += fs.n_reference;
  acc->n_covered += fs.n_covered;
  acc->n_sentences += rep.n_sentences;
  acc->n_parsed += rep.n_parsed;
  acc->n_words += n;
  acc->n_empty += n == 0;
  return RD_OK;
}

static double ratio(int64_t a, int64_t b) { return b > 0 ? (double)a / (double)b : 0.0; }

void rd_score_rates(const rd_score_counts *c, rd_score *out) {
  out->factuality = ratio(c->n_true, c->n_claimed);
  out->coverage = ratio(c->n_covered, c->n_reference);
  double s = out->factuality + out->coverage;
  out->f1 = s > 0 ? 2 * out->factuality * out->coverage / s : 0.0;
  out->syntax = ratio(c->n_parsed, c->n_sentences);
}

int rd_score_text(const int32_t *cand, const int32_t *ref, int n, int L, int32_t eos, rd_score *out) {
  out->bleu4 = out->cider = out->repetition = 0;
  if (n <= 0) return RD_OK;
  rd_caption *c = malloc((size_t)n * sizeof *c), *r = malloc((size_t)n * sizeof *r);
  int *off = malloc((size_t)(n + 1) * sizeof *off);
  if (!c || !r || !off) {
    free(c), free(r), free(off);
    return rd_err(RD_ENOMEM, "out of memory scoring %d captions", n);
  }
  for (int i = 0; i < n; i++) {
    c[i] = rd_textmetrics_caption(cand + (size_t)i * L, L, eos);
    r[i] = rd_textmetrics_caption(ref + (size_t)i * L, L, eos);
    off[i] = i;
  }
  off[n] = n;
  rd_caption_corpus corpus = {n, c, off, r};
  rd_bleu bleu;
  rd_repetition rep;
  int s = rd_textmetrics_bleu4(&corpus, &bleu);
  if (s == RD_OK) s = rd_textmetrics_cider_d(&corpus, &out->cider, NULL);
  if (s == RD_OK) s = rd_textmetrics_repetition(c, n, 2, &rep);
  if (s == RD_OK) {
    out->bleu4 = bleu.bleu4;
    out->repetition = rep.repetition;
  }
  free(c), free(r), free(off);
  return s;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The q-quantile of sorted v[n], linear between order statistics. */
static double quantile(const double *v, int n, double q) {
  double pos = q * (n - 1);
  int i = (int)floor(pos);
  if (i >= n - 1) return v[n - 1];
  return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

int rd_score_bootstrap(const rd_score_counts *per_image, int64_t n, int B, double level, uint64_t seed,
                       rd_score_ci *out) {
  if (n < 1 || B < 1 || !(level > 0 && level < 1))
    return rd_err(RD_EINVAL, "bootstrap of %lld images, %d resamples, level %g", (long long)n, B, level);
  if (n > UINT32_MAX) return rd_err(RD_EINVAL, "bootstrap of %lld images: too many", (long long)n);
  double *f1 = malloc((size_t)B * sizeof *f1), *syn = malloc((size_t)B * sizeof *syn);
  if (!f1 || !syn) {
    free(f1), free(syn);
    return rd_err(RD_ENOMEM, "out of memory for %d bootstrap resamples", B);
  }
  for (int k = 0; k < B; k++) {
    rd_rng r;
    rd_rng_init(&r, seed, RD_RNG_BOOTSTRAP, (uint64_t)k, 0);
    int64_t sum[RD_SCORE_NCOUNTS] = {0};
    for (int64_t j = 0; j < n; j++) {
      const int64_t *c = (const int64_t *)&per_image[rd_rng_below(&r, (uint32_t)n)];
      for (int f = 0; f < RD_SCORE_NCOUNTS; f++) sum[f] += c[f];
    }
    rd_score sc;
    rd_score_rates((const rd_score_counts *)sum, &sc);
    f1[k] = sc.f1;
    syn[k] = sc.syntax;
  }
  qsort(f1, (size_t)B, sizeof *f1, cmp_double);
  qsort(syn, (size_t)B, sizeof *syn, cmp_double);
  double lo = (1 - level) / 2, hi = (1 + level) / 2;
  out->f1_lo = quantile(f1, B, lo), out->f1_hi = quantile(f1, B, hi);
  out->syntax_lo = quantile(syn, B, lo), out->syntax_hi = quantile(syn, B, hi);
  free(f1), free(syn);
  return RD_OK;
}
