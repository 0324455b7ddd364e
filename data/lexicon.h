/* The ShapesCap words: attribute names and the full lexicon. */
#ifndef RD_DATA_LEXICON_H
#define RD_DATA_LEXICON_H

/* Static strings; NULL for a value out of range. */
const char *rd_shape_name(int shape, int plural); /* "circle" / "circles" */
const char *rd_colour_name(int colour);           /* "red" */
/* variant 0: "large" / "small", 1: "big" / "little" */
const char *rd_size_name(int size, int variant);
const char *rd_row_name(int row);                 /* "top", "middle", "bottom" */
const char *rd_col_name(int col);                 /* "left", "centre", "right" */
const char *rd_number_name(int n);                /* 1..9: "one" .. "nine" */

/* Every word the grammar can write, in a fixed order. Copies the first
 * min(max, total) word pointers (static strings) and returns the total. */
int rd_shapes_lexicon(const char **words, int max);

#endif
