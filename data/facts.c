/* Facts against scenes: truth, equality, the full list, scores, names. */
#include "data/facts.h"

#include <stdio.h>
#include <string.h>

#include "data/lexicon.h"
#include "io/core/err.h"

rd_fact rd_fact_relation(const rd_object *A, int rel, const rd_object *B) {
  rd_fact f;
  memset(&f, 0, sizeof f);
  f.kind = RD_FACT_RELATION;
  f.rel = (int8_t)rel;
  f.colour = A->colour;
  f.shape = A->shape;
  f.colour2 = B->colour;
  f.shape2 = B->shape;
  return f;
}

int rd_fact_true(const rd_fact *f, const rd_scene *s) {
  switch (f->kind) {
  case RD_FACT_COUNT: return f->count == s->n;
  case RD_FACT_SHAPE_COUNT: {
    int c = 0;
    for (int i = 0; i < s->n; i++) c += s->obj[i].shape == f->shape;
    return c == f->count;
  }
  case RD_FACT_OBJECT: {
    int i = rd_scene_at(s, f->row, f->col);
    if (i < 0) return 0;
    const rd_object *o = &s->obj[i];
    return o->size == f->size && o->colour == f->colour && o->shape == f->shape;
  }
  case RD_FACT_RELATION: {
    int a = rd_scene_find(s, f->colour, f->shape), b = rd_scene_find(s, f->colour2, f->shape2);
    if (a < 0 || b < 0 || a == b) return 0;
    if (f->rel == RD_REL_LEFT_OF) return s->obj[a].col < s->obj[b].col;
    if (f->rel == RD_REL_ABOVE) return s->obj[a].row < s->obj[b].row;
    return 0;
  }
  default: return 0;
  }
}

int rd_fact_equal(const rd_fact *a, const rd_fact *b) {
  if (a->kind != b->kind) return 0;
  switch (a->kind) {
  case RD_FACT_COUNT: return a->count == b->count;
  case RD_FACT_SHAPE_COUNT: return a->count == b->count && a->shape == b->shape;
  case RD_FACT_OBJECT:
    return a->size == b->size && a->colour == b->colour && a->shape == b->shape &&
           a->row == b->row && a->col == b->col;
  case RD_FACT_RELATION:
    return a->rel == b->rel && a->colour == b->colour && a->shape == b->shape &&
           a->colour2 == b->colour2 && a->shape2 == b->shape2;
  default: return 0;
  }
}

int rd_facts_contains(const rd_facts *fs, const rd_fact *f) {
  for (int i = 0; i < fs->n; i++)
    if (rd_fact_equal(&fs->f[i], f)) return 1;
  return 0;
}

int rd_facts_push(rd_facts *fs, const rd_fact *f) {
  if (fs->n >= RD_FACTS_MAX) return rd_err(RD_EINVAL, "facts: more than %d facts", RD_FACTS_MAX);
  fs->f[fs->n++] = *f;
  return RD_OK;
}

void rd_scene_facts(const rd_scene *s, unsigned kinds, rd_facts *out) {
  rd_fact f;
  out->n = 0;
  if (kinds & RD_FACT_BIT(RD_FACT_COUNT)) {
    memset(&f, 0, sizeof f);
    f.kind = RD_FACT_COUNT;
    f.count = (int8_t)s->n;
    rd_facts_push(out, &f);
  }
  if (kinds & RD_FACT_BIT(RD_FACT_OBJECT)) {
    for (int i = 0; i < s->n; i++) {
      const rd_object *o = &s->obj[i];
      memset(&f, 0, sizeof f);
      f.kind = RD_FACT_OBJECT;
      f.size = o->size;
      f.colour = o->colour;
      f.shape = o->shape;
      f.row = o->row;
      f.col = o->col;
      rd_facts_push(out, &f);
    }
  }
  if (kinds & RD_FACT_BIT(RD_FACT_SHAPE_COUNT)) {
    for (int sh = 0; sh < RD_SHAPES; sh++) {
      int c = 0;
      for (int i = 0; i < s->n; i++) c += s->obj[i].shape == sh;
      if (!c) continue;
      memset(&f, 0, sizeof f);
      f.kind = RD_FACT_SHAPE_COUNT;
      f.shape = (int8_t)sh;
      f.count = (int8_t)c;
      rd_facts_push(out, &f);
    }
  }
  if (kinds & RD_FACT_BIT(RD_FACT_RELATION)) {
    for (int a = 0; a < s->n; a++)
      for (int b = 0; b < s->n; b++) {
        const rd_object *A = &s->obj[a], *B = &s->obj[b];
        for (int rel = 0; rel < RD_RELS; rel++) {
          if (rel == RD_REL_LEFT_OF ? A->col >= B->col : A->row >= B->row) continue;
          f = rd_fact_relation(A, rel, B);
          rd_facts_push(out, &f);
        }
      }
  }
}

void rd_facts_score(const rd_facts *claimed, const rd_scene *s, unsigned recall_kinds,
                    rd_fact_score *out) {
  memset(out, 0, sizeof *out);
  for (int i = 0; i < claimed->n; i++) {
    int dup = 0;
    for (int j = 0; j < i && !dup; j++) dup = rd_fact_equal(&claimed->f[i], &claimed->f[j]);
    if (dup) continue;
    out->n_claimed++;
    out->n_true += rd_fact_true(&claimed->f[i], s);
  }
  rd_facts ref;
  rd_scene_facts(s, recall_kinds, &ref);
  out->n_reference = ref.n;
  for (int i = 0; i < ref.n; i++) out->n_covered += rd_facts_contains(claimed, &ref.f[i]);
}

/* Names that survive out-of-range values in facts read from anywhere. */
static const char *nm(const char *s) { return s ? s : "?"; }

int rd_fact_format(const rd_fact *f, char *buf, size_t n) {
  switch (f->kind) {
  case RD_FACT_COUNT:
    return snprintf(buf, n, "count: %d objects", f->count);
  case RD_FACT_SHAPE_COUNT:
    return snprintf(buf, n, "shape count: %d %s", f->count, nm(rd_shape_name(f->shape, 1)));
  case RD_FACT_OBJECT:
    return snprintf(buf, n, "object: %s %s %s at %s %s", nm(rd_size_name(f->size, 0)),
                    nm(rd_colour_name(f->colour)), nm(rd_shape_name(f->shape, 0)),
                    nm(rd_row_name(f->row)), nm(rd_col_name(f->col)));
  case RD_FACT_RELATION:
    return snprintf(buf, n, "relation: %s %s %s %s %s", nm(rd_colour_name(f->colour)),
                    nm(rd_shape_name(f->shape, 0)),
                    f->rel == RD_REL_LEFT_OF ? "left of" : f->rel == RD_REL_ABOVE ? "above" : "?",
                    nm(rd_colour_name(f->colour2)), nm(rd_shape_name(f->shape2, 0)));
  default:
    return snprintf(buf, n, "fact of unknown kind %d", f->kind);
  }
}
