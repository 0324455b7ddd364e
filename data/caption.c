/* The caption writer: plans the sentences of a scene, fits them to the word
 * budget, writes them. */
#include <stdio.h>
#include <string.h>

#include "data/grammar.h"
#include "io/core/err.h"
#include "io/core/rng.h"

typedef struct {
  int t; /* template */
  rd_sent v;
  int len; /* words */
} planned;

static void shuffle(rd_rng *r, int *a, int n) {
  for (int i = n - 1; i > 0; i--) {
    int j = (int)rd_rng_below(r, (uint32_t)(i + 1));
    int x = a[i]; a[i] = a[j]; a[j] = x;
  }
}

static void plan_fact(planned *pl, const rd_fact *f, int phrasing, int size_var) {
  pl->t = rd_grammar_from_fact(f, phrasing, size_var, &pl->v);
  pl->len = rd_grammar_len(pl->t, &pl->v);
}

static void object_fact(const rd_object *o, rd_fact *f) {
  memset(f, 0, sizeof *f);
  f->kind = RD_FACT_OBJECT;
  f->size = o->size;
  f->colour = o->colour;
  f->shape = o->shape;
  f->row = o->row;
  f->col = o->col;
}

int rd_caption_write(const rd_scene *s, const rd_shapes_params *p, uint64_t seed,
                     int64_t sample_id, rd_words *out, rd_facts *stated) {
  RD_TRY(rd_shapes_params_check(p));
  if (s->n < 1 || s->n > RD_OBJECTS_MAX)
    return rd_err(RD_EINVAL, "caption: scene has %d objects (1..%d)", s->n, RD_OBJECTS_MAX);
  rd_rng r;
  rd_rng_init(&r, seed, RD_RNG_CAPTION, (uint64_t)sample_id, 0);
  /* Every draw happens before the budget is applied, so a smaller
   * max_words drops sentences but never changes the phrasings of the rest. */
  rd_fact f;
  planned count, objs[RD_OBJECTS_MAX], extra[RD_RELATIONS_MAX + RD_SHAPES];
  int n_extra = 0;

  memset(&f, 0, sizeof f);
  f.kind = RD_FACT_COUNT;
  f.count = (int8_t)s->n;
  plan_fact(&count, &f, (int)rd_rng_below(&r, RD_PHRASINGS_COUNT), 0);

  int order[RD_OBJECTS_MAX];
  for (int i = 0; i < s->n; i++) order[i] = i;
  shuffle(&r, order, s->n);
  for (int i = 0; i < s->n; i++) {
    object_fact(&s->obj[order[i]], &f);
    int ph = (int)rd_rng_below(&r, RD_PHRASINGS_OBJECT);
    plan_fact(&objs[i], &f, ph, (int)rd_rng_below(&r, 2));
  }

  /* Relations between distinct pairs, along an axis where they differ. */
  int pairs[RD_OBJECTS_MAX * (RD_OBJECTS_MAX - 1) / 2], n_pairs = 0;
  for (int a = 0; a < s->n; a++)
    for (int b = a + 1; b < s->n; b++) pairs[n_pairs++] = a * RD_OBJECTS_MAX + b;
  int k_max = p->max_relations < n_pairs ? p->max_relations : n_pairs;
  int k = (int)rd_rng_below(&r, (uint32_t)(k_max + 1));
  for (int i = 0; i < k; i++) {
    int j = i + (int)rd_rng_below(&r, (uint32_t)(n_pairs - i));
    int x = pairs[i]; pairs[i] = pairs[j]; pairs[j] = x;
    const rd_object *A = &s->obj[pairs[i] / RD_OBJECTS_MAX];
    const rd_object *B = &s->obj[pairs[i] % RD_OBJECTS_MAX];
    int rel = A->col == B->col ? RD_REL_ABOVE
              : A->row == B->row ? RD_REL_LEFT_OF
                                 : (int)rd_rng_below(&r, RD_RELS);
    /* Store it in the fact's direction: A left of / above B. */
    if (rel == RD_REL_LEFT_OF ? A->col > B->col : A->row > B->row) {
      const rd_object *t = A; A = B; B = t;
    }
    f = rd_fact_relation(A, rel, B);
    plan_fact(&extra[n_extra++], &f, (int)rd_rng_below(&r, RD_PHRASINGS_RELATION), 0);
  }

  /* Each present shape's count is said with probability 1/2. */
  for (int sh = 0; sh < RD_SHAPES; sh++) {
    int c = 0;
    for (int i = 0; i < s->n; i++) c += s->obj[i].shape == sh;
    int say = (int)rd_rng_below(&r, 2), ph = (int)rd_rng_below(&r, RD_PHRASINGS_SHAPE_COUNT);
    if (!c || !say) continue;
    memset(&f, 0, sizeof f);
    f.kind = RD_FACT_SHAPE_COUNT;
    f.shape = (int8_t)sh;
    f.count = (int8_t)c;
    plan_fact(&extra[n_extra++], &f, ph, 0);
  }
  int eorder[RD_RELATIONS_MAX + RD_SHAPES];
  for (int i = 0; i < n_extra; i++) eorder[i] = i;
  shuffle(&r, eorder, n_extra);

  /* Fit: count and objects always; if they overflow, shortest phrasings
   * (longest sentences first), then the extras that still fit. */
  int total = count.len;
  for (int i = 0; i < s->n; i++) total += objs[i].len;
  while (total > p->max_words) {
    int longest = -1;
    for (int i = 0; i < s->n; i++)
      if (objs[i].len > RD_GRAMMAR_MIN_OBJECT_WORDS &&
          (longest < 0 || objs[i].len > objs[longest].len))
        longest = i;
    planned *pl = longest >= 0 ? &objs[longest] : &count;
    if (longest < 0 && count.len == RD_GRAMMAR_MIN_COUNT_WORDS)
      return rd_err(RD_EINVAL,
                    "caption: a scene of %d objects needs at least %d words; max_words is %d", s->n,
                    total, p->max_words);
    rd_fact keep;
    rd_grammar_fact(pl->t, &pl->v, &keep);
    int shortest = longest >= 0 ? RD_PHRASINGS_OBJECT - 1 : 0;
    total -= pl->len;
    plan_fact(pl, &keep, shortest, pl->v.size_var);
    total += pl->len;
  }
  /* Relations (extra[0..k)) are fitted before shape counts: they carry
   * the most phrasing variety and are longer, so the short shape counts
   * would otherwise crowd them out. */
  int keep_extra[RD_RELATIONS_MAX + RD_SHAPES] = {0};
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < n_extra; i++) {
      const planned *pl = &extra[eorder[i]];
      if ((eorder[i] < k) != (pass == 0) || total + pl->len > p->max_words) continue;
      keep_extra[i] = 1;
      total += pl->len;
    }

  out->n = 0;
  if (stated) stated->n = 0;
  const planned *seq[1 + RD_OBJECTS_MAX + RD_RELATIONS_MAX + RD_SHAPES];
  int n_seq = 0;
  seq[n_seq++] = &count;
  for (int i = 0; i < s->n; i++) seq[n_seq++] = &objs[i];
  for (int i = 0; i < n_extra; i++)
    if (keep_extra[i]) seq[n_seq++] = &extra[eorder[i]];
  for (int i = 0; i < n_seq; i++) {
    rd_grammar_write(seq[i]->t, &seq[i]->v, out->w + out->n);
    out->n += seq[i]->len;
    if (stated) {
      rd_grammar_fact(seq[i]->t, &seq[i]->v, &f);
      stated->f[stated->n++] = f;
    }
  }
  return RD_OK;
}

int rd_fact_write(const rd_fact *f, int phrasing, int size_var, rd_words *out) {
  rd_sent v;
  int t = rd_grammar_from_fact(f, phrasing, size_var, &v);
  if (t < 0)
    return rd_err(RD_EINVAL, "caption: cannot write fact of kind %d in phrasing %d", f->kind,
                  phrasing);
  int len = rd_grammar_len(t, &v);
  if (out->n < 0 || out->n + len > RD_WORDS_MAX)
    return rd_err(RD_EINVAL, "caption: %d words do not fit after %d (max %d)", len, out->n,
                  RD_WORDS_MAX);
  rd_grammar_write(t, &v, out->w + out->n);
  out->n += len;
  return RD_OK;
}

int rd_words_join(const rd_words *w, char *buf, size_t n) {
  size_t at = 0;
  if (n) buf[0] = 0;
  for (int i = 0; i < w->n; i++) {
    const char *word = w->w[i] ? w->w[i] : "(null)";
    int k = snprintf(at < n ? buf + at : NULL, at < n ? n - at : 0, "%s%s", i ? " " : "", word);
    at += (size_t)k;
  }
  return (int)at;
}
