/* The sentence templates: one table read by the writer, the parser and the
 * hallucinator, so every phrasing written is a phrasing parsed. */
#include "data/grammar.h"

#include <string.h>

/* Template codes: a word id (< 64) is that literal word; these are slots. */
enum {
  T_NUM = 64, /* one .. nine */
  T_BE,       /* is / are, agreeing with T_NUM */
  T_OBJN,     /* object / objects, agreeing with T_NUM */
  T_SHAPEN,   /* circle(s) / square(s) / triangle(s), agreeing with T_NUM */
  T_SIZE,     /* large big small little */
  T_COLOUR,
  T_SHAPE, /* singular */
  T_ROW,
  T_COL,
  T_REL, /* "left of", "right of", "above", "below" */
  T_COLOUR2,
  T_SHAPE2,
  T_END = -1
};

typedef struct {
  int8_t kind;
  int8_t code[14];
} rd_template;

/* Template index = kind's first template + phrasing; relations have two
 * templates, each written direct or inverse (4 phrasings). */
static const rd_template templates[RD_GRAMMAR_TEMPLATES] = {
    /* count: "there are three objects ." */
    {RD_FACT_COUNT, {RD_W_THERE, T_BE, T_NUM, T_OBJN, RD_W_DOT, T_END}},
    /* "the image shows three objects ." */
    {RD_FACT_COUNT, {RD_W_THE, RD_W_IMAGE, RD_W_SHOWS, T_NUM, T_OBJN, RD_W_DOT, T_END}},
    /* "three objects are in the picture ." */
    {RD_FACT_COUNT, {T_NUM, T_OBJN, T_BE, RD_W_IN, RD_W_THE, RD_W_PICTURE, RD_W_DOT, T_END}},
    /* object: "a large red circle is at the top left ." */
    {RD_FACT_OBJECT,
     {RD_W_A, T_SIZE, T_COLOUR, T_SHAPE, RD_W_IS, RD_W_AT, RD_W_THE, T_ROW, T_COL, RD_W_DOT,
      T_END}},
    /* "at the top left , there is a large red circle ." */
    {RD_FACT_OBJECT,
     {RD_W_AT, RD_W_THE, T_ROW, T_COL, RD_W_COMMA, RD_W_THERE, RD_W_IS, RD_W_A, T_SIZE, T_COLOUR,
      T_SHAPE, RD_W_DOT, T_END}},
    /* "there is a large red circle in the top left ." */
    {RD_FACT_OBJECT,
     {RD_W_THERE, RD_W_IS, RD_W_A, T_SIZE, T_COLOUR, T_SHAPE, RD_W_IN, RD_W_THE, T_ROW, T_COL,
      RD_W_DOT, T_END}},
    /* "the top left holds a large red circle ." */
    {RD_FACT_OBJECT,
     {RD_W_THE, T_ROW, T_COL, RD_W_HOLDS, RD_W_A, T_SIZE, T_COLOUR, T_SHAPE, RD_W_DOT, T_END}},
    /* relation: "the red circle is left of the blue square ." */
    {RD_FACT_RELATION,
     {RD_W_THE, T_COLOUR, T_SHAPE, RD_W_IS, T_REL, RD_W_THE, T_COLOUR2, T_SHAPE2, RD_W_DOT, T_END}},
    /* "left of the blue square is the red circle ." */
    {RD_FACT_RELATION,
     {T_REL, RD_W_THE, T_COLOUR2, T_SHAPE2, RD_W_IS, RD_W_THE, T_COLOUR, T_SHAPE, RD_W_DOT, T_END}},
    /* shape count: "there are two circles ." */
    {RD_FACT_SHAPE_COUNT, {RD_W_THERE, T_BE, T_NUM, T_SHAPEN, RD_W_DOT, T_END}},
    /* "two circles can be seen ." */
    {RD_FACT_SHAPE_COUNT, {T_NUM, T_SHAPEN, RD_W_CAN, RD_W_BE, RD_W_SEEN, RD_W_DOT, T_END}},
};
static const int8_t first_template[RD_FACT_KINDS] = {0, 3, 7, 9};
static const int8_t phrasings[RD_FACT_KINDS] = {RD_PHRASINGS_COUNT, RD_PHRASINGS_OBJECT,
                                                RD_PHRASINGS_RELATION, RD_PHRASINGS_SHAPE_COUNT};

int rd_phrasings(int kind) { return kind >= 0 && kind < RD_FACT_KINDS ? phrasings[kind] : 0; }

int rd_grammar_template(int kind, int phrasing) {
  if (kind < 0 || kind >= RD_FACT_KINDS || phrasing < 0 || phrasing >= phrasings[kind]) return -1;
  return first_template[kind] + (kind == RD_FACT_RELATION ? phrasing / 2 : phrasing);
}

int rd_grammar_kind(int t) { return templates[t].kind; }

int rd_grammar_phrasing(int t, const rd_sent *v) {
  int k = templates[t].kind, i = t - first_template[k];
  return k == RD_FACT_RELATION ? 2 * i + (v->srel >= RD_SREL_RIGHT) : i;
}

static int horizontal(int srel) { return srel == RD_SREL_LEFT || srel == RD_SREL_RIGHT; }

int rd_grammar_len(int t, const rd_sent *v) {
  int n = 0;
  for (const int8_t *c = templates[t].code; *c != T_END; c++)
    n += 1 + (*c == T_REL && horizontal(v->srel));
  return n;
}

void rd_grammar_write(int t, const rd_sent *v, const char **dst) {
  const char *const *L = rd_lex_words;
  int sing = v->num == 1;
  for (const int8_t *c = templates[t].code; *c != T_END; c++) {
    switch (*c) {
    case T_NUM: *dst++ = L[RD_W_ONE + v->num - 1]; break;
    case T_BE: *dst++ = L[sing ? RD_W_IS : RD_W_ARE]; break;
    case T_OBJN: *dst++ = L[sing ? RD_W_OBJECT : RD_W_OBJECTS]; break;
    case T_SHAPEN: *dst++ = L[(sing ? RD_W_CIRCLE : RD_W_CIRCLES) + v->shape]; break;
    case T_SIZE: *dst++ = L[RD_W_LARGE + 2 * v->size + v->size_var]; break;
    case T_COLOUR: *dst++ = L[RD_W_RED + v->colour]; break;
    case T_SHAPE: *dst++ = L[RD_W_CIRCLE + v->shape]; break;
    case T_ROW: *dst++ = L[RD_W_TOP + v->row]; break;
    case T_COL: *dst++ = L[RD_W_LEFT + v->col]; break;
    case T_COLOUR2: *dst++ = L[RD_W_RED + v->colour2]; break;
    case T_SHAPE2: *dst++ = L[RD_W_CIRCLE + v->shape2]; break;
    case T_REL:
      switch (v->srel) {
      case RD_SREL_LEFT: *dst++ = L[RD_W_LEFT]; *dst++ = L[RD_W_OF]; break;
      case RD_SREL_RIGHT: *dst++ = L[RD_W_RIGHT]; *dst++ = L[RD_W_OF]; break;
      case RD_SREL_ABOVE: *dst++ = L[RD_W_ABOVE]; break;
      default: *dst++ = L[RD_W_BELOW]; break;
      }
      break;
    default: *dst++ = L[*c]; break;
    }
  }
}

/* id in [lo, lo + n): its offset, else -1. */
static int in_range(int id, int lo, int n) { return id >= lo && id < lo + n ? id - lo : -1; }

int rd_grammar_match(int t, const int *ids, int n, rd_sent *v, int *slot) {
  int i = 0, be_plural = -1, noun_plural = -1, x;
  memset(v, 0, sizeof *v);
  if (slot)
    for (int k = 0; k < RD_SLOTS; k++) slot[k] = -1;
#define SLOT(k) \
  do {          \
    if (slot) slot[k] = i; \
  } while (0)
  for (const int8_t *c = templates[t].code; *c != T_END; c++, i++) {
    if (i >= n) return 0;
    int id = ids[i];
    switch (*c) {
    case T_NUM:
      if ((x = in_range(id, RD_W_ONE, 9)) < 0) return 0;
      SLOT(RD_SLOT_NUM);
      v->num = x + 1;
      break;
    case T_BE:
      if ((x = in_range(id, RD_W_IS, 2)) < 0) return 0;
      SLOT(RD_SLOT_BE);
      be_plural = x;
      break;
    case T_OBJN:
      if ((x = in_range(id, RD_W_OBJECT, 2)) < 0) return 0;
      SLOT(RD_SLOT_NOUN);
      noun_plural = x;
      break;
    case T_SHAPEN:
      if ((x = in_range(id, RD_W_CIRCLE, 2 * RD_SHAPES)) < 0) return 0;
      SLOT(RD_SLOT_NOUN);
      noun_plural = x / RD_SHAPES;
      v->shape = x % RD_SHAPES;
      break;
    case T_SIZE:
      if ((x = in_range(id, RD_W_LARGE, 2 * RD_SIZES)) < 0) return 0;
      SLOT(RD_SLOT_SIZE);
      v->size = x / 2;
      v->size_var = x % 2;
      break;
    case T_COLOUR:
    case T_COLOUR2:
      if ((x = in_range(id, RD_W_RED, RD_COLOURS)) < 0) return 0;
      if (*c == T_COLOUR) {
        SLOT(RD_SLOT_COLOUR);
        v->colour = x;
      } else {
        SLOT(RD_SLOT_COLOUR2);
        v->colour2 = x;
      }
      break;
    case T_SHAPE:
    case T_SHAPE2:
      if ((x = in_range(id, RD_W_CIRCLE, RD_SHAPES)) < 0) return 0;
      if (*c == T_SHAPE) {
        SLOT(RD_SLOT_SHAPE);
        v->shape = x;
      } else {
        SLOT(RD_SLOT_SHAPE2);
        v->shape2 = x;
      }
      break;
    case T_ROW:
      if ((x = in_range(id, RD_W_TOP, RD_GRID)) < 0) return 0;
      SLOT(RD_SLOT_ROW);
      v->row = x;
      break;
    case T_COL:
      if ((x = in_range(id, RD_W_LEFT, RD_GRID)) < 0) return 0;
      SLOT(RD_SLOT_COL);
      v->col = x;
      break;
    case T_REL:
      SLOT(RD_SLOT_REL);
      if (id == RD_W_ABOVE) {
        v->srel = RD_SREL_ABOVE;
      } else if (id == RD_W_BELOW) {
        v->srel = RD_SREL_BELOW;
      } else if ((id == RD_W_LEFT || id == RD_W_RIGHT) && i + 1 < n && ids[i + 1] == RD_W_OF) {
        v->srel = id == RD_W_LEFT ? RD_SREL_LEFT : RD_SREL_RIGHT;
        i++;
      } else {
        return 0;
      }
      break;
    default:
      if (id != *c) return 0;
      break;
    }
  }
#undef SLOT
  if (i != n) return 0;
  /* Number agreement: "one object is", "two objects are". */
  int plural = v->num > 1;
  if (be_plural >= 0 && be_plural != plural) return 0;
  if (noun_plural >= 0 && noun_plural != plural) return 0;
  return 1;
}

void rd_grammar_fact(int t, const rd_sent *v, rd_fact *f) {
  memset(f, 0, sizeof *f);
  f->kind = templates[t].kind;
  switch (f->kind) {
  case RD_FACT_COUNT: f->count = (int8_t)v->num; break;
  case RD_FACT_SHAPE_COUNT:
    f->count = (int8_t)v->num;
    f->shape = (int8_t)v->shape;
    break;
  case RD_FACT_OBJECT:
    f->size = (int8_t)v->size;
    f->colour = (int8_t)v->colour;
    f->shape = (int8_t)v->shape;
    f->row = (int8_t)v->row;
    f->col = (int8_t)v->col;
    break;
  default: { /* relation, stored left-of / above */
    int inv = v->srel >= RD_SREL_RIGHT;
    f->rel = (int8_t)(v->srel % 2);
    f->colour = (int8_t)(inv ? v->colour2 : v->colour);
    f->shape = (int8_t)(inv ? v->shape2 : v->shape);
    f->colour2 = (int8_t)(inv ? v->colour : v->colour2);
    f->shape2 = (int8_t)(inv ? v->shape : v->shape2);
    break;
  }
  }
}

static int ok(int x, int n) { return x >= 0 && x < n; }

int rd_grammar_from_fact(const rd_fact *f, int phrasing, int size_var, rd_sent *v) {
  int t = rd_grammar_template(f->kind, phrasing);
  if (t < 0 || !ok(size_var, 2)) return -1;
  memset(v, 0, sizeof *v);
  switch (f->kind) {
  case RD_FACT_COUNT:
    if (f->count < 1 || f->count > 9) return -1;
    v->num = f->count;
    break;
  case RD_FACT_SHAPE_COUNT:
    if (f->count < 1 || f->count > 9 || !ok(f->shape, RD_SHAPES)) return -1;
    v->num = f->count;
    v->shape = f->shape;
    break;
  case RD_FACT_OBJECT:
    if (!ok(f->size, RD_SIZES) || !ok(f->colour, RD_COLOURS) || !ok(f->shape, RD_SHAPES) ||
        !ok(f->row, RD_GRID) || !ok(f->col, RD_GRID))
      return -1;
    v->size = f->size;
    v->size_var = size_var;
    v->colour = f->colour;
    v->shape = f->shape;
    v->row = f->row;
    v->col = f->col;
    break;
  default: {
    if (!ok(f->rel, RD_RELS) || !ok(f->colour, RD_COLOURS) || !ok(f->shape, RD_SHAPES) ||
        !ok(f->colour2, RD_COLOURS) || !ok(f->shape2, RD_SHAPES))
      return -1;
    int inv = phrasing % 2;
    v->srel = f->rel + (inv ? RD_SREL_RIGHT : 0);
    v->colour = inv ? f->colour2 : f->colour;
    v->shape = inv ? f->shape2 : f->shape;
    v->colour2 = inv ? f->colour : f->colour2;
    v->shape2 = inv ? f->shape : f->shape2;
    break;
  }
  }
  return t;
}
