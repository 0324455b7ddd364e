#include "io/png.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/fs.h"

/* libpng reports errors through a callback that must not return; ours
 * keeps the message and jumps back to the setjmp of the call in progress. */
typedef struct {
  jmp_buf jmp;
  char msg[256];
} png_ctx;

static void on_error(png_structp png, png_const_charp msg) {
  png_ctx *c = png_get_error_ptr(png);
  snprintf(c->msg, sizeof c->msg, "%s", msg);
  longjmp(c->jmp, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg; /* warnings (e.g. unknown chunks) do not concern the user */
}

/* The libpng part of writing, separate so that nothing it changes after
 * setjmp lives in its caller's locals. */
static int write_png(FILE *f, const uint8_t *rgb, int h, int w, int scale, png_bytep row,
                     const char *path) {
  png_ctx c;
  c.msg[0] = '\0';
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &c, on_error, on_warning);
  if (!png) return rd_err(RD_ENOMEM, "%s: cannot start libpng", path);
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    return rd_err(RD_ENOMEM, "%s: cannot start libpng", path);
  }
  if (setjmp(c.jmp)) {
    png_destroy_write_struct(&png, &info);
    return rd_err(RD_EIO, "%s: libpng: %s", path, c.msg);
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)(w * scale), (png_uint_32)(h * scale), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < h * scale; y++) {
    const uint8_t *src = rgb + (size_t)(y / scale) * (size_t)w * 3;
    for (int x = 0; x < w * scale; x++) memcpy(row + (size_t)x * 3, src + (size_t)(x / scale) * 3, 3);
    png_write_row(png, row);
  }
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  return RD_OK;
}

int rd_png_write(const char *path, const uint8_t *rgb, int h, int w, int scale) {
  if (h < 1 || w < 1 || scale < 1 || (int64_t)h * scale > 1 << 16 || (int64_t)w * scale > 1 << 16)
    return rd_err(RD_EINVAL, "%s: picture of %dx%d pixels at scale %d", path, h, w, scale);
  char tmp[RD_PATH_MAX];
  RD_TRY(rd_fs_mkparent(path));
  RD_TRY(rd_fs_tmpname(path, tmp, sizeof tmp));
  png_bytep row = rd_malloc((size_t)w * (size_t)scale * 3, "PNG row");
  if (!row) return RD_ENOMEM;
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    free(row);
    return rd_err(RD_EIO, "cannot create %s: %s", tmp, strerror(errno));
  }
  int rc = write_png(f, rgb, h, w, scale, row, path);
  free(row);
  if (fclose(f) != 0 && rc == RD_OK) rc = rd_err(RD_EIO, "cannot write %s: %s", tmp, strerror(errno));
  if (rc == RD_OK) rc = rd_fs_commit(tmp, path);
  if (rc < 0) rd_fs_discard(tmp);
  return rc;
}

static int read_png(FILE *f, const char *path, uint8_t **out, int *h, int *w) {
  png_ctx c;
  c.msg[0] = '\0';
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, on_error, on_warning);
  if (!png) return rd_err(RD_ENOMEM, "%s: cannot start libpng", path);
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    return rd_err(RD_ENOMEM, "%s: cannot start libpng", path);
  }
  /* Changed after setjmp and read after a jump: volatile keeps them valid. */
  uint8_t *volatile rgb = NULL;
  png_bytep *volatile rows = NULL;
  if (setjmp(c.jmp)) {
    if (rows) png_free(png, rows);
    png_destroy_read_struct(&png, &info, NULL);
    free(rgb);
    return rd_err(RD_EINVAL, "%s: not a readable PNG: %s", path, c.msg);
  }
  png_init_io(png, f);
  png_read_info(png, info);
  png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
  int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  /* Whatever the file holds, hand back 8-bit RGB. */
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png);
  if (type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) {
    png_set_tRNS_to_alpha(png);
    png_set_strip_alpha(png);
  }
  if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != (size_t)width * 3 || width > 1 << 16 || height > 1 << 16)
    png_error(png, "unexpected pixel layout or size");
  rgb = malloc((size_t)width * height * 3);
  if (!rgb) png_error(png, "out of memory");
  rows = png_malloc(png, height * sizeof *rows);
  for (png_uint_32 y = 0; y < height; y++) rows[y] = rgb + (size_t)y * width * 3;
  png_read_image(png, rows);
  png_free(png, rows);
  rows = NULL;
  png_read_end(png, NULL);
  png_destroy_read_struct(&png, &info, NULL);
  *out = rgb;
  *h = (int)height;
  *w = (int)width;
  return RD_OK;
}

int rd_png_read(const char *path, uint8_t **rgb, int *h, int *w) {
  *rgb = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return rd_err(RD_EINVAL, "cannot open %s: %s", path, strerror(errno));
  unsigned char sig[8];
  int rc = RD_OK;
  if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8) != 0)
    rc = rd_err(RD_EINVAL, "%s: not a PNG file", path);
  if (rc == RD_OK) {
    rewind(f);
    rc = read_png(f, path, rgb, h, w);
  }
  fclose(f);
  return rc;
}
