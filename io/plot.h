/* Line charts as PNG files (libpng through io/png.h), for the eval's
 * quality-against-speed figure: panels side by side with axes, ticks, a
 * title, lines (solid or dashed) with point markers, and a legend, lettered
 * in a built-in 5x7 pixel font. No plotting library needed. */
#ifndef RD_IO_PLOT_H
#define RD_IO_PLOT_H

#include <stdint.h>

typedef struct {
  const char *label;  /* legend text */
  const double *y;    /* [n_x] values at the panel's x; NaN: no point */
  uint8_t rgb[3];
  int dashed;
} rd_plot_series;

typedef struct {
  const char *title;   /* above the panel */
  const char *xlabel;  /* below the x axis */
  const double *x;     /* [n_x] increasing, > 0 when logx; ticks at each */
  int n_x;
  int logx;            /* log2-spaced x axis */
  double ymin, ymax;   /* y range; ticks every (ymax - ymin) / 5 */
  const rd_plot_series *series;
  int n_series;
} rd_plot_panel;

/* Writes the panels left to right and a legend of panel 0's series to the
 * right, every logical pixel enlarged to scale x scale; atomic. Letters the
 * font lacks are drawn as '?'; upper case is drawn in lower case except F. */
int rd_plot_write(const char *path, const rd_plot_panel *panels, int n_panels, int scale);

#endif
