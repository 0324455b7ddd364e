#include "stages/score.h"

#include <stdlib.h>

#include "data/textmetrics.h"
#include "io/err.h"

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
