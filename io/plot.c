#include "io/plot.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/png.h"

/* 5x7 glyphs on a 9-row cell, one byte per row, bit 4 the leftmost pixel:
 * rows 0-6 above the baseline, rows 7-8 the descenders of g, j, p, q, y. */
static const char glyph_chars[] = "0123456789.-/_:()Fabcdefghijklmnopqrstuvwxyz?";
static const uint8_t glyphs[][9] = {
    {14, 17, 19, 21, 25, 17, 14, 0, 0}, {4, 12, 4, 4, 4, 4, 14, 0, 0}, {14, 17, 1, 2, 4, 8, 31, 0, 0},
    {31, 2, 4, 2, 1, 17, 14, 0, 0}, {2, 6, 10, 18, 31, 2, 2, 0, 0}, {31, 16, 30, 1, 1, 17, 14, 0, 0},
    {6, 8, 16, 30, 17, 17, 14, 0, 0}, {31, 1, 2, 4, 8, 8, 8, 0, 0}, {14, 17, 17, 14, 17, 17, 14, 0, 0},
    {14, 17, 17, 15, 1, 2, 12, 0, 0}, {0, 0, 0, 0, 0, 12, 12, 0, 0}, {0, 0, 0, 31, 0, 0, 0, 0, 0},
    {0, 1, 2, 4, 8, 16, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 31, 0, 0}, {0, 12, 12, 0, 12, 12, 0, 0, 0},
    {2, 4, 8, 8, 8, 4, 2, 0, 0}, {8, 4, 2, 2, 2, 4, 8, 0, 0}, {31, 16, 16, 30, 16, 16, 16, 0, 0},
    {0, 0, 14, 1, 15, 17, 15, 0, 0}, {16, 16, 22, 25, 17, 17, 30, 0, 0}, {0, 0, 14, 16, 16, 17, 14, 0, 0},
    {1, 1, 13, 19, 17, 17, 15, 0, 0}, {0, 0, 14, 17, 31, 16, 14, 0, 0}, {6, 9, 8, 28, 8, 8, 8, 0, 0},
    {0, 0, 15, 17, 17, 17, 15, 1, 14}, {16, 16, 22, 25, 17, 17, 17, 0, 0}, {4, 0, 12, 4, 4, 4, 14, 0, 0},
    {2, 0, 6, 2, 2, 2, 2, 18, 12}, {16, 16, 18, 20, 24, 20, 18, 0, 0}, {12, 4, 4, 4, 4, 4, 14, 0, 0},
    {0, 0, 26, 21, 21, 17, 17, 0, 0}, {0, 0, 22, 25, 17, 17, 17, 0, 0}, {0, 0, 14, 17, 17, 17, 14, 0, 0},
    {0, 0, 30, 17, 17, 17, 30, 16, 16}, {0, 0, 15, 17, 17, 17, 15, 1, 1}, {0, 0, 22, 25, 16, 16, 16, 0, 0},
    {0, 0, 14, 16, 14, 1, 30, 0, 0}, {8, 8, 28, 8, 8, 9, 6, 0, 0}, {0, 0, 17, 17, 17, 19, 13, 0, 0},
    {0, 0, 17, 17, 17, 10, 4, 0, 0}, {0, 0, 17, 17, 21, 21, 10, 0, 0}, {0, 0, 17, 10, 4, 10, 17, 0, 0},
    {0, 0, 17, 17, 17, 17, 15, 1, 14}, {0, 0, 31, 2, 4, 8, 31, 0, 0}, {14, 17, 1, 2, 4, 0, 4, 0, 0},
};

_Static_assert(sizeof glyphs / sizeof glyphs[0] == sizeof glyph_chars - 1, "one glyph per character");

typedef struct {
  uint8_t *px; /* [h, w, 3] */
  int w, h;
} canvas;

static void dot(canvas *c, int x, int y, const uint8_t rgb[3]) {
  if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
  memcpy(c->px + ((size_t)y * c->w + x) * 3, rgb, 3);
}

static void rect(canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
  for (int y = y0; y <= y1; y++)
    for (int x = x0; x <= x1; x++) dot(c, x, y, rgb);
}

/* Bresenham; dashed lines draw 4 pixels of every 7. */
static void line(canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3], int dashed) {
  int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
  for (int k = 0;; k++) {
    if (!dashed || k % 7 < 4) dot(c, x0, y0, rgb), dot(c, x0, y0 + 1, rgb);
    if (x0 == x1 && y0 == y1) break;
    int e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

/* Text with its top-left corner at (x, y); returns its width. */
static int text(canvas *c, int x, int y, const char *s, const uint8_t rgb[3]) {
  int x0 = x;
  for (; *s; s++, x += 6) {
    if (*s == ' ') continue;
    char ch = *s == 'F' ? 'F' : (char)tolower((unsigned char)*s);
    const char *at = strchr(glyph_chars, ch);
    const uint8_t *g = glyphs[at ? at - glyph_chars : (int)strlen(glyph_chars) - 1];
    for (int r = 0; r < 9; r++)
      for (int b = 0; b < 5; b++)
        if (g[r] & (16 >> b)) dot(c, x + b, y + r, rgb);
  }
  return x - x0;
}

static int text_width(const char *s) { return 6 * (int)strlen(s); }

enum { PW = 250, PH = 190, ML = 34, MR = 12, MT = 18, MB = 32, LEGEND_W = 150 };

static void panel(canvas *c, const rd_plot_panel *p, int ox) {
  static const uint8_t black[3] = {0, 0, 0}, grid[3] = {222, 222, 222}, grey[3] = {90, 90, 90};
  const int x0 = ox + ML, x1 = ox + PW - MR, y0 = MT, y1 = PH - MB;
  double lo = p->logx ? log2(p->x[0]) : p->x[0], hi = p->logx ? log2(p->x[p->n_x - 1]) : p->x[p->n_x - 1];
  if (hi <= lo) lo -= 1, hi += 1;
  const double pad = 0.06 * (hi - lo);
  lo -= pad, hi += pad;
#define PX(v) (x0 + (int)lround(((p->logx ? log2(v) : (v)) - lo) / (hi - lo) * (x1 - x0)))
#define PY(v) (y1 - (int)lround(((v) - p->ymin) / (p->ymax - p->ymin) * (y1 - y0)))
  char buf[32];
  for (int k = 0; k <= 5; k++) {
    double v = p->ymin + k * (p->ymax - p->ymin) / 5;
    int y = PY(v);
    if (k > 0) line(c, x0 + 1, y, x1, y, grid, 0);
    snprintf(buf, sizeof buf, "%.1f", v);
    text(c, x0 - 4 - text_width(buf), y - 3, buf, grey);
    line(c, x0 - 3, y, x0, y, black, 0);
  }
  for (int i = 0; i < p->n_x; i++) {
    int x = PX(p->x[i]);
    line(c, x, y1, x, y1 + 3, black, 0);
    snprintf(buf, sizeof buf, "%g", p->x[i]);
    text(c, x - text_width(buf) / 2, y1 + 6, buf, grey);
  }
  rect(c, x0, y0, x1, y0, black), rect(c, x0, y1, x1, y1, black);
  rect(c, x0, y0, x0, y1, black), rect(c, x1, y0, x1, y1, black);
  text(c, (x0 + x1 - text_width(p->title)) / 2, 5, p->title, black);
  text(c, (x0 + x1 - text_width(p->xlabel)) / 2, PH - 13, p->xlabel, black);
  for (int s = 0; s < p->n_series; s++) {
    const rd_plot_series *se = &p->series[s];
    int have = 0, px = 0, py = 0;
    for (int i = 0; i < p->n_x; i++) {
      if (isnan(se->y[i])) continue;
      int x = PX(p->x[i]), y = PY(fmin(fmax(se->y[i], p->ymin), p->ymax));
      if (have) line(c, px, py, x, y, se->rgb, se->dashed);
      rect(c, x - 2, y - 2, x + 2, y + 2, se->rgb);
      have = 1, px = x, py = y;
    }
  }
#undef PX
#undef PY
}

int rd_plot_write(const char *path, const rd_plot_panel *panels, int n_panels, int scale) {
  if (n_panels < 1) return rd_err(RD_EINVAL, "%s: a plot needs at least one panel", path);
  for (int i = 0; i < n_panels; i++)
    if (panels[i].n_x < 1 || !(panels[i].ymax > panels[i].ymin) || (panels[i].logx && panels[i].x[0] <= 0))
      return rd_err(RD_EINVAL, "%s: panel %d has no x values, an empty y range or x <= 0 on a log axis", path, i);
  const int n_leg = panels[0].n_series;
  canvas c = {NULL, n_panels * PW + LEGEND_W, PH > 24 + 12 * n_leg ? PH : 24 + 12 * n_leg};
  c.px = malloc((size_t)c.w * c.h * 3);
  if (!c.px) return rd_err(RD_ENOMEM, "out of memory drawing %s", path);
  memset(c.px, 255, (size_t)c.w * c.h * 3);
  for (int i = 0; i < n_panels; i++) panel(&c, &panels[i], i * PW);
  static const uint8_t black[3] = {0, 0, 0};
  const int lx = n_panels * PW + 4;
  for (int s = 0; s < n_leg; s++) {
    const rd_plot_series *se = &panels[0].series[s];
    int y = MT + 4 + 12 * s;
    line(&c, lx, y + 3, lx + 20, y + 3, se->rgb, se->dashed);
    rect(&c, lx + 8, y + 1, lx + 12, y + 5, se->rgb);
    text(&c, lx + 26, y, se->label, black);
  }
  int s = rd_png_write(path, c.px, c.h, c.w, scale);
  free(c.px);
  return s;
}
