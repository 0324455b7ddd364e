/* The caption parser: any word sequence in, the facts of its well-formed
 * sentences out, with a per-sentence report (span, kind, phrasing, where each
 * attribute word sits) that the eval scores and the expert edits by. */
#include <string.h>

#include "data/grammar.h"
#include "io/core/err.h"

int rd_caption_parse_strings(const char *const *words, int n, rd_facts *out,
                             rd_parse_report *rep) {
  if (n < 0 || n > RD_WORDS_MAX)
    return rd_err(RD_EINVAL, "caption parse: %d words, expected 0..%d", n, RD_WORDS_MAX);
  if (n > 0 && !words) return rd_err(RD_EINVAL, "caption parse: no word list for %d words", n);
  int ids[RD_WORDS_MAX];
  int unknown = 0;
  for (int i = 0; i < n; i++) {
    ids[i] = rd_lex_id(words[i]);
    unknown += ids[i] < 0;
  }
  if (out) out->n = 0;
  if (rep) {
    rep->n_words = n;
    rep->n_unknown = unknown;
    rep->n_sentences = rep->n_parsed = rep->n_unparsed = 0;
  }
  for (int start = 0; start < n;) {
    int end = start;
    while (end < n && ids[end] != RD_W_DOT) end++;
    int terminated = end < n, len = end - start + terminated;
    int t = -1, slot[RD_SLOTS];
    rd_sent v;
    /* An unterminated tail is a sentence the decoder did not finish. */
    if (terminated)
      for (int k = 0; k < RD_GRAMMAR_TEMPLATES && t < 0; k++)
        if (rd_grammar_match(k, ids + start, len, &v, slot)) t = k;
    int fact = -1;
    if (t >= 0 && out && out->n < RD_FACTS_MAX) {
      fact = out->n++;
      rd_grammar_fact(t, &v, &out->f[fact]);
    }
    if (rep) {
      rd_sentence *s = &rep->s[rep->n_sentences++];
      s->start = start;
      s->len = len;
      s->parsed = t >= 0;
      s->terminated = (int8_t)terminated;
      s->kind = (int8_t)(t >= 0 ? rd_grammar_kind(t) : -1);
      s->phrasing = (int8_t)(t >= 0 ? rd_grammar_phrasing(t, &v) : -1);
      s->fact = (int16_t)fact;
      for (int k = 0; k < RD_SLOTS; k++)
        s->slot[k] = (int8_t)(t >= 0 && slot[k] >= 0 ? start + slot[k] : -1);
      if (t >= 0)
        rep->n_parsed++;
      else
        rep->n_unparsed++;
    }
    start += len;
  }
  return RD_OK;
}

int rd_caption_parse(const rd_words *w, rd_facts *out, rd_parse_report *rep) {
  return rd_caption_parse_strings(w->w, w->n, out, rep);
}
