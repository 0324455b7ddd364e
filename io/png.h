/* PNG pictures of samples and attention maps (libpng). */
#ifndef RD_IO_PNG_H
#define RD_IO_PNG_H

#include <stdint.h>

/* Writes rgb [h,w,3] as an 8-bit RGB PNG of (h*scale) x (w*scale) pixels,
 * each pixel enlarged to a scale x scale block (nearest neighbour), so small
 * images stay sharp when viewed. Written atomically. */
int rd_png_write(const char *path, const uint8_t *rgb, int h, int w, int scale);

/* Reads any PNG as 8-bit RGB: *rgb is a malloc'd [*h,*w,3] (palette, grey
 * and 16-bit images are converted, alpha dropped). */
int rd_png_read(const char *path, uint8_t **rgb, int *h, int *w);

#endif
