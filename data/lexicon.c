/* The ShapesCap words and the lookup from strings to word ids. */
#include <string.h>

#include "data/grammar.h"
#include "data/lexicon.h"

const char *const rd_lex_words[RD_LEX_N] = {
    ".",      ",",
    "one",    "two",     "three",    "four",    "five",    "six",     "seven",  "eight", "nine",
    "object", "objects",
    "circle", "square",  "triangle", "circles", "squares", "triangles",
    "red",    "green",   "blue",     "yellow",  "purple",  "orange",
    "large",  "big",     "small",    "little",
    "top",    "middle",  "bottom",   "left",    "centre",  "right",
    "above",  "below",   "of",
    "there",  "is",      "are",      "a",       "the",     "at",      "in",     "holds", "image",
    "shows",  "picture", "can",      "be",      "seen",
};

int rd_lex_id(const char *w) {
  if (!w || !w[0]) return -1;
  /* 52 words: a first-letter test skips almost every strcmp. */
  for (int i = 0; i < RD_LEX_N; i++)
    if (rd_lex_words[i][0] == w[0] && strcmp(rd_lex_words[i], w) == 0) return i;
  return -1;
}

const char *rd_shape_name(int shape, int plural) {
  if (shape < 0 || shape >= RD_SHAPES) return NULL;
  return rd_lex_words[(plural ? RD_W_CIRCLES : RD_W_CIRCLE) + shape];
}
const char *rd_colour_name(int colour) {
  return colour >= 0 && colour < RD_COLOURS ? rd_lex_words[RD_W_RED + colour] : NULL;
}
const char *rd_size_name(int size, int variant) {
  if (size < 0 || size >= RD_SIZES || variant < 0 || variant > 1) return NULL;
  return rd_lex_words[RD_W_LARGE + 2 * size + variant];
}
const char *rd_row_name(int row) {
  return row >= 0 && row < RD_GRID ? rd_lex_words[RD_W_TOP + row] : NULL;
}
const char *rd_col_name(int col) {
  return col >= 0 && col < RD_GRID ? rd_lex_words[RD_W_LEFT + col] : NULL;
}
const char *rd_number_name(int n) {
  return n >= 1 && n <= 9 ? rd_lex_words[RD_W_ONE + n - 1] : NULL;
}

int rd_shapes_lexicon(const char **words, int max) {
  for (int i = 0; i < RD_LEX_N && i < max; i++) words[i] = rd_lex_words[i];
  return RD_LEX_N;
}
