/* Scene parameters, sampling and the packed form stored in shards. */
#include "data/scene.h"

#include <string.h>

#include "data/grammar.h"
#include "io/core/err.h"
#include "io/core/rng.h"

void rd_shapes_params_default(rd_shapes_params *p) {
  p->image_size = 48;
  p->grid = RD_GRID;
  p->min_objects = 1;
  p->max_objects = 4;
  p->max_relations = 2;
  p->jitter = 1;
  p->max_words = 63;
}

int rd_shapes_params_check(const rd_shapes_params *p) {
  if (p->grid != RD_GRID)
    return rd_err(RD_EINVAL, "shapes: grid is %d, but the position words name a %dx%d grid",
                  p->grid, RD_GRID, RD_GRID);
  if (p->image_size % RD_GRID || p->image_size / RD_GRID < 12 || p->image_size > 4096)
    return rd_err(RD_EINVAL,
                  "shapes: image_size %d must be a multiple of %d with cells of at least 12 px "
                  "(36..4096)",
                  p->image_size, RD_GRID);
  if (p->min_objects < 1 || p->max_objects < p->min_objects || p->max_objects > RD_OBJECTS_MAX)
    return rd_err(RD_EINVAL, "shapes: need 1 <= min_objects (%d) <= max_objects (%d) <= %d",
                  p->min_objects, p->max_objects, RD_OBJECTS_MAX);
  if (p->max_relations < 0 || p->max_relations > RD_RELATIONS_MAX)
    return rd_err(RD_EINVAL, "shapes: max_relations %d is outside 0..%d", p->max_relations,
                  RD_RELATIONS_MAX);
  int cell = p->image_size / RD_GRID;
  int slack = (cell - rd_object_pixels(cell, RD_SIZE_LARGE)) / 2;
  int jmax = slack < RD_JITTER_MAX ? slack : RD_JITTER_MAX;
  if (p->jitter < 0 || p->jitter > jmax)
    return rd_err(RD_EINVAL,
                  "shapes: jitter %d is outside 0..%d (large objects must stay in their %d px "
                  "cell)",
                  p->jitter, jmax, cell);
  /* The count sentence and every object sentence are never dropped, so the
   * budget must hold their shortest phrasings. */
  int need = RD_GRAMMAR_MIN_COUNT_WORDS + RD_GRAMMAR_MIN_OBJECT_WORDS * p->max_objects;
  if (p->max_words < need || p->max_words > RD_WORDS_MAX)
    return rd_err(RD_EINVAL,
                  "shapes: max_words %d must be in %d..%d (a caption of %d objects needs at "
                  "least %d words)",
                  p->max_words, need, RD_WORDS_MAX, p->max_objects, need);
  return RD_OK;
}

int rd_scene_sample(rd_scene *s, const rd_shapes_params *p, uint64_t seed, int64_t sample_id) {
  RD_TRY(rd_shapes_params_check(p));
  rd_rng r;
  rd_rng_init(&r, seed, RD_RNG_SCENE, (uint64_t)sample_id, 0);
  memset(s, 0, sizeof *s);
  s->n = p->min_objects + (int)rd_rng_below(&r, (uint32_t)(p->max_objects - p->min_objects + 1));
  s->background = (int)rd_rng_below(&r, RD_BACKGROUNDS);
  /* Partial Fisher-Yates draws distinct cells and distinct (colour, shape)
   * pairs without rejection loops. */
  int cells[RD_OBJECTS_MAX], kinds[RD_COLOURS * RD_SHAPES];
  for (int i = 0; i < RD_OBJECTS_MAX; i++) cells[i] = i;
  for (int i = 0; i < RD_COLOURS * RD_SHAPES; i++) kinds[i] = i;
  for (int i = 0; i < s->n; i++) {
    int j = i + (int)rd_rng_below(&r, (uint32_t)(RD_OBJECTS_MAX - i));
    int t = cells[i]; cells[i] = cells[j]; cells[j] = t;
    j = i + (int)rd_rng_below(&r, (uint32_t)(RD_COLOURS * RD_SHAPES - i));
    t = kinds[i]; kinds[i] = kinds[j]; kinds[j] = t;
    rd_object *o = &s->obj[i];
    o->row = (int8_t)(cells[i] / RD_GRID);
    o->col = (int8_t)(cells[i] % RD_GRID);
    o->colour = (int8_t)(kinds[i] / RD_SHAPES);
    o->shape = (int8_t)(kinds[i] % RD_SHAPES);
    o->size = (int8_t)rd_rng_below(&r, RD_SIZES);
    uint32_t span = (uint32_t)(2 * p->jitter + 1);
    o->dx = (int8_t)((int)rd_rng_below(&r, span) - p->jitter);
    o->dy = (int8_t)((int)rd_rng_below(&r, span) - p->jitter);
  }
  return RD_OK;
}

int rd_scene_at(const rd_scene *s, int row, int col) {
  for (int i = 0; i < s->n; i++)
    if (s->obj[i].row == row && s->obj[i].col == col) return i;
  return -1;
}

int rd_scene_cell_classes(const rd_scene *s, int g, int32_t *out) {
  if (g < RD_GRID || g % RD_GRID)
    return rd_err(RD_EINVAL, "a %d x %d patch grid does not divide into the %d x %d cells of a scene", g, g,
                  RD_GRID, RD_GRID);
  const int per = g / RD_GRID;
  for (int i = 0; i < g; i++)
    for (int j = 0; j < g; j++) {
      int k = rd_scene_at(s, i / per, j / per);
      const rd_object *o = &s->obj[k < 0 ? 0 : k];
      out[i * g + j] = k < 0 ? 0 : 1 + (o->shape * RD_COLOURS + o->colour) * RD_SIZES + o->size;
    }
  return RD_OK;
}

int rd_scene_find(const rd_scene *s, int colour, int shape) {
  for (int i = 0; i < s->n; i++)
    if (s->obj[i].colour == colour && s->obj[i].shape == shape) return i;
  return -1;
}

int rd_scene_pack(const rd_scene *s, int32_t *out, int max_objects) {
  if (max_objects < 1 || max_objects > RD_OBJECTS_MAX || s->n < 1 || s->n > max_objects)
    return rd_err(RD_EINVAL, "scene pack: %d objects do not fit max_objects %d (1..%d)", s->n,
                  max_objects, RD_OBJECTS_MAX);
  int32_t *h = out;
  h[0] = s->n;
  h[1] = s->background;
  h[2] = RD_GRID;
  h[3] = h[4] = h[5] = h[6] = 0;
  for (int i = 0; i < max_objects; i++) {
    int32_t *row = out + (size_t)(i + 1) * RD_SCENE_FIELDS;
    if (i >= s->n) {
      for (int f = 0; f < RD_SCENE_FIELDS; f++) row[f] = -1;
      continue;
    }
    const rd_object *o = &s->obj[i];
    row[0] = o->shape;
    row[1] = o->colour;
    row[2] = o->size;
    row[3] = o->row;
    row[4] = o->col;
    row[5] = o->dx;
    row[6] = o->dy;
  }
  return RD_OK;
}

static const char *const field_names[RD_SCENE_FIELDS] = {"shape", "colour", "size", "row",
                                                         "col",   "dx",     "dy"};

int rd_scene_unpack(const int32_t *in, int max_objects, rd_scene *s) {
  if (max_objects < 1 || max_objects > RD_OBJECTS_MAX)
    return rd_err(RD_EINVAL, "scene unpack: max_objects %d is outside 1..%d", max_objects,
                  RD_OBJECTS_MAX);
  memset(s, 0, sizeof *s);
  const int32_t *h = in;
  if (h[0] < 1 || h[0] > max_objects)
    return rd_err(RD_EINVAL, "scene row 0 (header): object count %d is outside 1..%d", (int)h[0],
                  max_objects);
  if (h[1] < 0 || h[1] >= RD_BACKGROUNDS)
    return rd_err(RD_EINVAL, "scene row 0 (header): background %d is outside 0..%d", (int)h[1],
                  RD_BACKGROUNDS - 1);
  if (h[2] != RD_GRID)
    return rd_err(RD_EINVAL, "scene row 0 (header): grid %d, expected %d", (int)h[2], RD_GRID);
  for (int f = 3; f < RD_SCENE_FIELDS; f++)
    if (h[f] != 0)
      return rd_err(RD_EINVAL, "scene row 0 (header): reserved field %d is %d, expected 0", f,
                    (int)h[f]);
  s->n = h[0];
  s->background = h[1];
  const int32_t hi[RD_SCENE_FIELDS] = {RD_SHAPES - 1, RD_COLOURS - 1, RD_SIZES - 1, RD_GRID - 1,
                                       RD_GRID - 1,   RD_JITTER_MAX,  RD_JITTER_MAX};
  const int32_t lo[RD_SCENE_FIELDS] = {0, 0, 0, 0, 0, -RD_JITTER_MAX, -RD_JITTER_MAX};
  for (int i = 0; i < max_objects; i++) {
    const int32_t *row = in + (size_t)(i + 1) * RD_SCENE_FIELDS;
    for (int f = 0; f < RD_SCENE_FIELDS; f++) {
      if (i >= s->n) {
        if (row[f] != -1)
          return rd_err(RD_EINVAL,
                        "scene row %d: padding after %d objects must be -1, %s is %d", i + 1,
                        s->n, field_names[f], (int)row[f]);
      } else if (row[f] < lo[f] || row[f] > hi[f]) {
        return rd_err(RD_EINVAL, "scene row %d (object %d): %s %d is outside %d..%d", i + 1, i,
                      field_names[f], (int)row[f], (int)lo[f], (int)hi[f]);
      }
    }
    if (i >= s->n) continue;
    rd_object *o = &s->obj[i];
    o->shape = (int8_t)row[0];
    o->colour = (int8_t)row[1];
    o->size = (int8_t)row[2];
    o->row = (int8_t)row[3];
    o->col = (int8_t)row[4];
    o->dx = (int8_t)row[5];
    o->dy = (int8_t)row[6];
    for (int j = 0; j < i; j++) {
      const rd_object *q = &s->obj[j];
      if (q->row == o->row && q->col == o->col)
        return rd_err(RD_EINVAL, "scene row %d (object %d): cell (%d, %d) already holds object %d",
                      i + 1, i, o->row, o->col, j);
      if (q->colour == o->colour && q->shape == o->shape)
        return rd_err(RD_EINVAL,
                      "scene row %d (object %d): colour %d and shape %d repeat object %d", i + 1,
                      i, o->colour, o->shape, j);
    }
  }
  return RD_OK;
}
