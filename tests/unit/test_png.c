/* PNG: written pictures have the enlarged size and the exact pixels, read
 * back both by our reader and from the raw IHDR bytes; bad input is refused
 * and leaves no file. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/core/fs.h"
#include "io/png.h"
#include "rd_test.h"

static char tmpdir[64];

static void make_tmpdir(void) {
  strcpy(tmpdir, "/tmp/rd_png_XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    exit(1);
  }
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void write_and_read_back(void) {
  enum { H = 5, W = 7, S = 3 };
  uint8_t rgb[H * W * 3];
  for (int i = 0; i < H * W * 3; i++) rgb[i] = (uint8_t)(i * 37 + 11);
  char path[256];
  snprintf(path, sizeof path, "%s/pics/sample.png", tmpdir);
  CHECK_OK(rd_png_write(path, rgb, H, W, S));

  /* The file itself: PNG signature, IHDR with width, height, 8-bit RGB. */
  char *data;
  size_t n;
  CHECK_OK(rd_fs_read_all(path, &data, &n));
  const unsigned char *u = (const unsigned char *)data;
  CHECK(n > 33 && memcmp(u, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(u + 12, "IHDR", 4) == 0);
  CHECK(be32(u + 16) == W * S && be32(u + 20) == H * S);
  CHECK(u[24] == 8 && u[25] == 2); /* bit depth 8, colour type RGB */
  free(data);

  uint8_t *back = NULL;
  int h = 0, w = 0;
  CHECK_OK(rd_png_read(path, &back, &h, &w));
  CHECK(h == H * S && w == W * S);
  int bad = 0;
  for (int y = 0; back && y < h; y++)
    for (int x = 0; x < w; x++)
      bad += memcmp(back + ((size_t)y * w + x) * 3, rgb + ((size_t)(y / S) * W + x / S) * 3, 3) != 0;
  CHECK_MSG(bad == 0, "%d pixels differ", bad);
  free(back);

  /* Scale 1 keeps the picture as it is. */
  CHECK_OK(rd_png_write(path, rgb, H, W, 1));
  CHECK_OK(rd_png_read(path, &back, &h, &w));
  CHECK(h == H && w == W && back && memcmp(back, rgb, sizeof rgb) == 0);
  free(back);
}

static void bad_input(void) {
  uint8_t rgb[3] = {1, 2, 3};
  char path[256], cmd[300];
  snprintf(path, sizeof path, "%s/bad/x.png", tmpdir);
  CHECK_ERR(rd_png_write(path, rgb, 0, 1, 1), "x.png: picture of 0x1 pixels");
  CHECK_ERR(rd_png_write(path, rgb, 1, 1, 0), "at scale 0");
  CHECK(!rd_fs_exists(path));
  /* A truncated PNG: libpng's complaint, with the file name. */
  CHECK_OK(rd_png_write(path, rgb, 1, 1, 40));
  char *data;
  size_t n;
  CHECK_OK(rd_fs_read_all(path, &data, &n));
  CHECK_OK(rd_fs_write_atomic(path, data, n / 2));
  free(data);
  uint8_t *back = NULL;
  int h, w;
  CHECK_ERR(rd_png_read(path, &back, &h, &w), "x.png: not a readable PNG");
  CHECK(back == NULL);
  CHECK_OK(rd_fs_write_atomic(path, "hello", 5));
  CHECK_ERR(rd_png_read(path, &back, &h, &w), "x.png: not a PNG file");
  /* A parent that is a file, not a folder: refused, nothing written. */
  snprintf(cmd, sizeof cmd, "%s/file", tmpdir);
  CHECK_OK(rd_fs_write_atomic(cmd, "x", 1));
  snprintf(path, sizeof path, "%s/file/y.png", tmpdir);
  CHECK_ERR(rd_png_write(path, rgb, 1, 1, 1), "file");
  CHECK(!rd_fs_exists(path));
}

static void cleanup(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  CHECK(system(cmd) == 0);
}

static void setup(void) { make_tmpdir(); }

RD_TEST_MAIN("png", RD_CASE(setup), RD_CASE(write_and_read_back), RD_CASE(bad_input),
             RD_CASE(cleanup))
