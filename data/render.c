/* The ShapesCap renderer: flat colours, no anti-aliasing. Perception should
 * be easy (colours far apart, objects centred in their cells) so that the
 * errors a model makes are decoding errors, not vision errors. */
#include <string.h>

#include "data/scene.h"
#include "io/core/err.h"

/* Saturated and far apart in hue and brightness. */
static const uint8_t colour_rgb[RD_COLOURS][3] = {
    {220, 30, 30},   /* red */
    {30, 190, 50},   /* green */
    {40, 80, 235},   /* blue */
    {240, 225, 30},  /* yellow */
    {160, 50, 210},  /* purple */
    {250, 135, 20},  /* orange */
};
static const uint8_t background_level[RD_BACKGROUNDS] = {32, 56, 80, 104};

void rd_colour_rgb(int colour, uint8_t rgb[3]) { memcpy(rgb, colour_rgb[colour], 3); }
uint8_t rd_background_level(int background) { return background_level[background]; }

int rd_object_pixels(int cell, int size) {
  return size == RD_SIZE_LARGE ? (cell * 3 + 2) / 4 : (cell * 7 + 8) / 16;
}

/* Coverage test at a pixel centre, relative to the object centre (px, py). */
static int inside(int shape, float d, float px, float py) {
  switch (shape) {
  case RD_SHAPE_CIRCLE:
    /* The extra 0.5 px^2 keeps the middle rows of an odd-sized circle as
     * wide as the size says, so circles and squares look equally big. */
    return px * px + py * py <= 0.25f * d * d + 0.5f;
  case RD_SHAPE_SQUARE:
    return px >= -0.45f * d && px <= 0.45f * d && py >= -0.45f * d && py <= 0.45f * d;
  default: { /* triangle, apex up, base 1.1 d, height d */
    float t = (py + 0.5f * d) / d;
    if (t < 0.0f || t > 1.0f) return 0;
    float half = t * 0.55f * d;
    return px >= -half && px <= half;
  }
  }
}

int rd_scene_render(const rd_scene *s, const rd_shapes_params *p, uint8_t *img) {
  RD_TRY(rd_shapes_params_check(p));
  const int size = p->image_size, cell = size / RD_GRID;
  memset(img, background_level[s->background], (size_t)size * size * 3);
  for (int i = 0; i < s->n; i++) {
    const rd_object *o = &s->obj[i];
    const float d = (float)rd_object_pixels(cell, o->size);
    const float cx = (float)(o->col * cell) + 0.5f * (float)cell + (float)o->dx;
    const float cy = (float)(o->row * cell) + 0.5f * (float)cell + (float)o->dy;
    /* Bounding box with a pixel of margin, clipped to the image: unpacked
     * scenes may carry more jitter than these params would sample. */
    int x0 = (int)(cx - 0.6f * d) - 1, x1 = (int)(cx + 0.6f * d) + 1;
    int y0 = (int)(cy - 0.6f * d) - 1, y1 = (int)(cy + 0.6f * d) + 1;
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > size - 1) x1 = size - 1;
    if (y1 > size - 1) y1 = size - 1;
    const uint8_t *rgb = colour_rgb[o->colour];
    for (int y = y0; y <= y1; y++) {
      uint8_t *px = img + ((size_t)y * size) * 3;
      for (int x = x0; x <= x1; x++)
        if (inside(o->shape, d, (float)x + 0.5f - cx, (float)y + 0.5f - cy))
          memcpy(px + 3 * x, rgb, 3);
    }
  }
  return RD_OK;
}
