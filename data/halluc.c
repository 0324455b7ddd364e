/* One-fact hallucinations with the same word count (ViCrit style): the
 * caption is parsed, one sentence's values are changed so its fact turns
 * false, and the sentence is rewritten in the same phrasing. */
#include <string.h>

#include "data/grammar.h"
#include "io/core/err.h"
#include "io/core/rng.h"

enum { H_COLOUR, H_SHAPE, H_SIZE, H_CELL, H_COUNT, H_SHAPE_COUNT, H_RELATION, H_KINDS };

/* A count near n (within 2, 1..9) other than n: plausible, and one word. */
static int other_count(rd_rng *r, int n) {
  int c[4], k = 0;
  for (int m = n - 2; m <= n + 2; m++)
    if (m >= 1 && m <= 9 && m != n) c[k++] = m;
  return c[rd_rng_below(r, (uint32_t)k)];
}

static int same_set(const rd_facts *a, const rd_facts *b) {
  for (int i = 0; i < a->n; i++)
    if (!rd_facts_contains(b, &a->f[i])) return 0;
  for (int i = 0; i < b->n; i++)
    if (!rd_facts_contains(a, &b->f[i])) return 0;
  return 1;
}

int rd_halluc_make(const rd_scene *s, const rd_words *caption, const rd_facts *stated,
                   uint64_t seed, int64_t sample_id, rd_words *out, int *span_start,
                   int *span_len) {
  rd_facts facts;
  rd_parse_report rep;
  RD_TRY(rd_caption_parse(caption, &facts, &rep));
  if (rep.n_sentences == 0 || rep.n_unparsed)
    return rd_err(RD_EINVAL, "hallucination: %d of %d sentences of the caption do not parse",
                  rep.n_unparsed, rep.n_sentences);
  if (stated && !same_set(&facts, stated))
    return rd_err(RD_EINVAL, "hallucination: the caption's %d facts differ from the %d stated",
                  facts.n, stated->n);

  int cand[H_KINDS][RD_WORDS_MAX], nc[H_KINDS] = {0};
  for (int i = 0; i < rep.n_sentences; i++) {
    switch (rep.s[i].kind) {
    case RD_FACT_OBJECT:
      for (int h = H_COLOUR; h <= H_CELL; h++) cand[h][nc[h]++] = i;
      break;
    case RD_FACT_COUNT: cand[H_COUNT][nc[H_COUNT]++] = i; break;
    case RD_FACT_SHAPE_COUNT: cand[H_SHAPE_COUNT][nc[H_SHAPE_COUNT]++] = i; break;
    default: cand[H_RELATION][nc[H_RELATION]++] = i; break;
    }
  }
  int avail[H_KINDS], na = 0;
  for (int h = 0; h < H_KINDS; h++)
    if (nc[h]) avail[na++] = h;

  rd_rng r;
  rd_rng_init(&r, seed, RD_RNG_HALLUC, (uint64_t)sample_id, 0);
  int h = avail[rd_rng_below(&r, (uint32_t)na)];
  const rd_sentence *sen = &rep.s[cand[h][rd_rng_below(&r, (uint32_t)nc[h])]];

  int ids[RD_WORDS_MAX];
  for (int i = 0; i < sen->len; i++) ids[i] = rd_lex_id(caption->w[sen->start + i]);
  int t = rd_grammar_template(sen->kind, sen->phrasing);
  rd_sent v;
  if (t < 0 || !rd_grammar_match(t, ids, sen->len, &v, NULL))
    return rd_err(RD_ESTATE, "hallucination: sentence at word %d does not re-parse", sen->start);
  switch (h) {
  case H_COLOUR:
    v.colour = (v.colour + 1 + (int)rd_rng_below(&r, RD_COLOURS - 1)) % RD_COLOURS;
    break;
  case H_SHAPE: v.shape = (v.shape + 1 + (int)rd_rng_below(&r, RD_SHAPES - 1)) % RD_SHAPES; break;
  case H_SIZE:
    v.size = 1 - v.size;
    v.size_var = (int)rd_rng_below(&r, 2);
    break;
  case H_CELL: {
    int cells = RD_GRID * RD_GRID;
    int c = (v.row * RD_GRID + v.col + 1 + (int)rd_rng_below(&r, (uint32_t)(cells - 1))) % cells;
    v.row = c / RD_GRID;
    v.col = c % RD_GRID;
    break;
  }
  case H_COUNT:
  case H_SHAPE_COUNT: v.num = other_count(&r, v.num); break;
  default: v.srel = (v.srel + 2) % 4; break; /* left <-> right, above <-> below */
  }
  /* Every change keeps the phrasing, and each slot word has the same length
   * in words (left of <-> right of), so the count is kept. */
  if (rd_grammar_len(t, &v) != sen->len)
    return rd_err(RD_ESTATE, "hallucination: rewrite changed the sentence length");
  rd_fact changed;
  rd_grammar_fact(t, &v, &changed);
  if (rd_fact_true(&changed, s))
    return rd_err(RD_EINVAL, "hallucination: the caption's sentence at word %d was not true of "
                             "the scene, so changing it did not make it false", sen->start);

  out->n = caption->n;
  memcpy(out->w, caption->w, sizeof(out->w[0]) * (size_t)caption->n);
  rd_grammar_write(t, &v, out->w + sen->start);
  int a = sen->start, b = sen->start + sen->len - 1;
  while (a <= b && strcmp(out->w[a], caption->w[a]) == 0) a++;
  while (b >= a && strcmp(out->w[b], caption->w[b]) == 0) b--;
  *span_start = a;
  *span_len = b - a + 1;
  return RD_OK;
}
