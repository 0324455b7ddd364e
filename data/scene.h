/* ShapesCap scenes: a few coloured shapes on the cells of a 3x3 grid.
 *
 * A scene is a handful of small integers, sampled from its own Philox stream
 * (seed, RD_RNG_SCENE, sample id), so any rank can regenerate sample i
 * without the others. The renderer draws it; the caption grammar
 * (caption.h) describes it; facts.h checks statements against it. */
#ifndef RD_DATA_SCENE_H
#define RD_DATA_SCENE_H

#include <stdint.h>

/* The position words ("top left" ... "bottom right") name a 3x3 grid. */
#define RD_GRID 3
#define RD_OBJECTS_MAX (RD_GRID * RD_GRID)
/* Largest jitter any image size may ask for, in pixels; unpack rejects more. */
#define RD_JITTER_MAX 4
/* Most relation sentences a caption may ask for. */
#define RD_RELATIONS_MAX 16
/* Largest caption the grammar writes or the parser reads, in words. */
#define RD_WORDS_MAX 128

enum { RD_SHAPE_CIRCLE, RD_SHAPE_SQUARE, RD_SHAPE_TRIANGLE, RD_SHAPES };
enum {
  RD_COLOUR_RED,
  RD_COLOUR_GREEN,
  RD_COLOUR_BLUE,
  RD_COLOUR_YELLOW,
  RD_COLOUR_PURPLE,
  RD_COLOUR_ORANGE,
  RD_COLOURS
};
enum { RD_SIZE_LARGE, RD_SIZE_SMALL, RD_SIZES };
/* Background grey levels (dark to neutral); not described by captions. */
#define RD_BACKGROUNDS 4

typedef struct {
  int image_size;    /* pixels per side, a multiple of grid (48) */
  int grid;          /* cells per side; must be RD_GRID (3) */
  int min_objects;   /* 1 */
  int max_objects;   /* 4, at most grid * grid */
  int max_relations; /* relation sentences per caption, at most (2) */
  int jitter;        /* object centre offset from the cell centre, +- px (1) */
  int max_words;     /* caption length budget in words incl. "." (63: gen_len 64 minus EOS) */
} rd_shapes_params;

typedef struct {
  int8_t shape, colour, size; /* RD_SHAPE_*, RD_COLOUR_*, RD_SIZE_* */
  int8_t row, col;            /* cell, 0..RD_GRID-1; row 0 is the top */
  int8_t dx, dy;              /* jitter in pixels */
} rd_object;

/* Objects sit in distinct cells and no two share both colour and shape, so
 * "the red circle" names one object. */
typedef struct {
  int n;          /* objects, 1..RD_OBJECTS_MAX */
  int background; /* 0..RD_BACKGROUNDS-1 */
  rd_object obj[RD_OBJECTS_MAX];
} rd_scene;

/* Packed form for the int32 [N, K, F] shard dataset: K = max_objects + 1
 * rows of RD_SCENE_FIELDS. Row 0 is the header {n, background, grid, 0, 0,
 * 0, 0}; row 1 + i is object i {shape, colour, size, row, col, dx, dy};
 * rows past n are all -1. */
#define RD_SCENE_FIELDS 7

void rd_shapes_params_default(rd_shapes_params *p);
/* RD_EINVAL with a message naming the bad field. */
int rd_shapes_params_check(const rd_shapes_params *p);

/* Deterministic in (seed, sample_id): the stream (seed, RD_RNG_SCENE, id). */
int rd_scene_sample(rd_scene *s, const rd_shapes_params *p, uint64_t seed, int64_t sample_id);

/* Draws into img, uint8 [image_size, image_size, 3] RGB, row-major. */
int rd_scene_render(const rd_scene *s, const rd_shapes_params *p, uint8_t *img);
/* RGB of a colour / background level, for tests and reports. */
void rd_colour_rgb(int colour, uint8_t rgb[3]);
uint8_t rd_background_level(int background);
/* Object extent in pixels for a cell of cell px: large 3/4 of the cell (12 of
 * 16), small 7/16 (7 of 16). */
int rd_object_pixels(int cell, int size);

/* out: int32 [(max_objects + 1) * RD_SCENE_FIELDS]. RD_EINVAL if the scene
 * has more than max_objects objects. */
int rd_scene_pack(const rd_scene *s, int32_t *out, int max_objects);
/* Inverse of pack; every value is checked (ranges, distinct cells, unique
 * colour+shape, padding rows -1) and a bad one is RD_EINVAL naming the row
 * and field. */
int rd_scene_unpack(const int32_t *in, int max_objects, rd_scene *s);

/* Index of the object in a cell / named by colour and shape, or -1. */
int rd_scene_at(const rd_scene *s, int row, int col);
int rd_scene_find(const rd_scene *s, int colour, int shape);

/* What a grid cell holds, as one class: 0 empty, else
 * 1 + (shape * RD_COLOURS + colour) * RD_SIZES + size. */
#define RD_CELL_CLASSES (1 + RD_SHAPES * RD_COLOURS * RD_SIZES)
/* out [g * g], row-major: the class of the cell under each of the g x g
 * patches of the image (g a multiple of RD_GRID, so each patch lies in one
 * cell). RD_EINVAL otherwise. */
int rd_scene_cell_classes(const rd_scene *s, int g, int32_t *out);

#endif
