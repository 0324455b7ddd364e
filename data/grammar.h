/* The ShapesCap sentence templates, shared by the writer, the parser and the
 * hallucinator, so whatever the writer can say the parser reads back.
 * Internal to data/: other folders include data/shapes.h. */
#ifndef RD_DATA_GRAMMAR_H
#define RD_DATA_GRAMMAR_H

#include <stdint.h>

#include "data/caption.h"
#include "data/facts.h"

/* Word ids, in lexicon order. */
enum {
  RD_W_DOT, RD_W_COMMA,
  RD_W_ONE, RD_W_TWO, RD_W_THREE, RD_W_FOUR, RD_W_FIVE, RD_W_SIX, RD_W_SEVEN, RD_W_EIGHT,
  RD_W_NINE,
  RD_W_OBJECT, RD_W_OBJECTS,
  RD_W_CIRCLE, RD_W_SQUARE, RD_W_TRIANGLE, RD_W_CIRCLES, RD_W_SQUARES, RD_W_TRIANGLES,
  RD_W_RED, RD_W_GREEN, RD_W_BLUE, RD_W_YELLOW, RD_W_PURPLE, RD_W_ORANGE,
  RD_W_LARGE, RD_W_BIG, RD_W_SMALL, RD_W_LITTLE,
  RD_W_TOP, RD_W_MIDDLE, RD_W_BOTTOM, RD_W_LEFT, RD_W_CENTRE, RD_W_RIGHT,
  RD_W_ABOVE, RD_W_BELOW, RD_W_OF,
  RD_W_THERE, RD_W_IS, RD_W_ARE, RD_W_A, RD_W_THE, RD_W_AT, RD_W_IN, RD_W_HOLDS, RD_W_IMAGE,
  RD_W_SHOWS, RD_W_PICTURE, RD_W_CAN, RD_W_BE, RD_W_SEEN,
  RD_LEX_N
};
extern const char *const rd_lex_words[RD_LEX_N];
/* Word id of a string, -1 if not a ShapesCap word (or NULL). */
int rd_lex_id(const char *w);

/* Shortest count and object sentences, for the length budget check. */
#define RD_GRAMMAR_MIN_COUNT_WORDS 5
#define RD_GRAMMAR_MIN_OBJECT_WORDS 9
#define RD_GRAMMAR_TEMPLATES 11

/* Surface relation words; fact rel = srel % 2, and srel >= 2 names the pair
 * in the inverse order. */
enum { RD_SREL_LEFT, RD_SREL_ABOVE, RD_SREL_RIGHT, RD_SREL_BELOW };

/* The values a sentence carries. num decides is/are and the noun's number. */
typedef struct {
  int num;
  int size, size_var;
  int colour, shape, row, col;
  int srel, colour2, shape2;
} rd_sent;

/* Template of a (fact kind, phrasing); -1 if out of range. */
int rd_grammar_template(int kind, int phrasing);
/* Kind and phrasing of a template, given the surface relation for relations. */
int rd_grammar_kind(int t);
int rd_grammar_phrasing(int t, const rd_sent *v);
/* Words the filled template has, "." included. */
int rd_grammar_len(int t, const rd_sent *v);
/* Writes the filled template to dst (room for rd_grammar_len words). */
void rd_grammar_write(int t, const rd_sent *v, const char **dst);
/* 1 if ids[0..n) (ending in ".") is exactly template t; fills v and, when
 * slot is not NULL, slot[RD_SLOTS] with word offsets from ids (-1 unused). */
int rd_grammar_match(int t, const int *ids, int n, rd_sent *v, int *slot);
/* The fact a filled template states. */
void rd_grammar_fact(int t, const rd_sent *v, rd_fact *f);
/* The sentence stating f with the given phrasing (size_var picks
 * large/big, small/little); -1 if f or phrasing is invalid. */
int rd_grammar_from_fact(const rd_fact *f, int phrasing, int size_var, rd_sent *v);

#endif
