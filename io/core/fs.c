#include "io/core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/core/err.h"
#include "io/core/strbuf.h"

int rd_fs_mkdirs(const char *dir) {
  char buf[RD_PATH_MAX];
  size_t n = strlen(dir);
  if (n == 0) return RD_OK;
  if (n >= sizeof buf) return rd_err(RD_EINVAL, "path too long: %s", dir);
  memcpy(buf, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char c = buf[i];
      buf[i] = '\0';
      if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return rd_err(RD_EIO, "cannot create folder %s: %s", buf, strerror(errno));
      buf[i] = c;
    }
  }
  if (!rd_fs_isdir(dir)) return rd_err(RD_EIO, "%s exists and is not a folder", dir);
  return RD_OK;
}

int rd_fs_mkparent(const char *path) {
  char buf[RD_PATH_MAX];
  size_t n = strlen(path);
  if (n >= sizeof buf) return rd_err(RD_EINVAL, "path too long: %s", path);
  memcpy(buf, path, n + 1);
  char *slash = strrchr(buf, '/');
  if (!slash || slash == buf) return RD_OK;
  *slash = '\0';
  return rd_fs_mkdirs(buf);
}

int rd_fs_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

int rd_fs_isdir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int rd_fs_tmpname(const char *path, char *tmp, size_t n) {
  const char *slash = strrchr(path, '/');
  int len;
  if (slash)
    len = snprintf(tmp, n, "%.*s/.%s.tmp.%ld", (int)(slash - path), path, slash + 1, (long)getpid());
  else
    len = snprintf(tmp, n, ".%s.tmp.%ld", path, (long)getpid());
  if (len < 0 || (size_t)len >= n) return rd_err(RD_EINVAL, "path too long: %s", path);
  return RD_OK;
}

static int fsync_path(const char *path, int flags) {
  int fd = open(path, flags);
  if (fd < 0) return rd_err(RD_EIO, "cannot open %s to flush it: %s", path, strerror(errno));
  /* Folders on some file systems refuse fsync (EINVAL); the data is still safe. */
  if (fsync(fd) != 0 && errno != EINVAL) {
    int e = errno;
    close(fd);
    return rd_err(RD_EIO, "cannot flush %s: %s", path, strerror(e));
  }
  close(fd);
  return RD_OK;
}

int rd_fs_commit(const char *tmp, const char *path) {
  RD_TRY(fsync_path(tmp, O_RDONLY));
  if (rename(tmp, path) != 0)
    return rd_err(RD_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
  char dir[RD_PATH_MAX];
  const char *slash = strrchr(path, '/');
  if (slash) {
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (dir[0] == '\0') strcpy(dir, "/");
  } else {
    strcpy(dir, ".");
  }
  return fsync_path(dir, O_RDONLY | O_DIRECTORY);
}

void rd_fs_discard(const char *tmp) { unlink(tmp); }

int rd_fs_write_atomic(const char *path, const void *data, size_t n) {
  char tmp[RD_PATH_MAX];
  RD_TRY(rd_fs_tmpname(path, tmp, sizeof tmp));
  FILE *f = fopen(tmp, "wb");
  if (!f) return rd_err(RD_EIO, "cannot write %s: %s", path, strerror(errno));
  size_t w = fwrite(data, 1, n, f);
  int bad = (w != n) | (fflush(f) != 0);
  int e = errno;
  bad |= fclose(f) != 0;
  if (bad) {
    rd_fs_discard(tmp);
    return rd_err(RD_EIO, "cannot write %s: %s", path, strerror(e));
  }
  int s = rd_fs_commit(tmp, path);
  if (s < 0) rd_fs_discard(tmp);
  return s;
}

int rd_fs_require(const char *path, int missing_code) {
  struct stat st;
  if (stat(path, &st) == 0) return RD_OK;
  if (errno == ENOENT) return rd_err(missing_code, "no such file");
  return rd_err(RD_EIO, "cannot open: %s", strerror(errno));
}

int rd_fs_read_all(const char *path, char **data, size_t *n) {
  return rd_fs_read_max(path, (size_t)1 << 30, data, n);
}

int rd_fs_read_max(const char *path, size_t max, char **data, size_t *n) {
  /* O_NONBLOCK: opening a FIFO must not wait for a writer before fstat can
   * tell what it is; on a regular file the flag changes nothing. */
  int fd = open(path, O_RDONLY | O_NONBLOCK);
  if (fd < 0) return rd_err(RD_EIO, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return rd_err(RD_EIO, "cannot stat %s: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return rd_err(RD_EINVAL, "%s is not a regular file (a %s)", path,
                  S_ISDIR(st.st_mode)    ? "folder"
                  : S_ISFIFO(st.st_mode) ? "FIFO"
                  : S_ISCHR(st.st_mode)  ? "character device"
                  : S_ISSOCK(st.st_mode) ? "socket"
                                         : "device");
  }
  if ((uintmax_t)st.st_size > max) {
    close(fd);
    return rd_err(RD_EINVAL, "%s is %jd bytes, more than the %zu this file may have", path, (intmax_t)st.st_size,
                  max);
  }
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    int e = errno;
    close(fd);
    return rd_err(RD_EIO, "cannot open %s: %s", path, strerror(e));
  }
  rd_strbuf b = RD_STRBUF_INIT;
  int s = RD_OK;
  for (;;) {
    s = rd_strbuf_reserve(&b, 4096);
    if (s < 0) break;
    size_t r = fread(b.p + b.n, 1, b.cap - 1 - b.n, f);
    rd_strbuf_commit(&b, r);
    if (r == 0 || b.n > max) break; /* a file that grew while read */
  }
  int bad = ferror(f);
  fclose(f);
  if (s < 0) s = rd_err(RD_ENOMEM, "out of memory reading %s", path);
  else if (bad) s = rd_err(RD_EIO, "cannot read %s", path);
  else if (b.n > max) s = rd_err(RD_EINVAL, "%s grew past the %zu bytes this file may have while read", path, max);
  if (s < 0) {
    rd_strbuf_free(&b);
    return s;
  }
  return rd_strbuf_take(&b, path, data, n);
}

int rd_fs_tail(const char *path, int lines, char **tail) {
  *tail = NULL;
  if (!rd_fs_exists(path)) return RD_OK;
  char *text;
  size_t len;
  RD_TRY(rd_fs_read_all(path, &text, &len));
  while (len && (text[len - 1] == '\n' || text[len - 1] == ' ')) text[--len] = '\0';
  if (!len) {
    free(text);
    return RD_OK;
  }
  size_t start = len;
  for (int k = 0; start > 0; start--)
    if (text[start - 1] == '\n' && ++k == lines) break;
  memmove(text, text + start, len - start + 1);
  *tail = text;
  return RD_OK;
}

int rd_fs_join(char *out, size_t n, const char *a, const char *b) {
  size_t la = strlen(a);
  int len = (la > 0 && a[la - 1] == '/') ? snprintf(out, n, "%s%s", a, b)
                                         : snprintf(out, n, "%s/%s", a, b);
  if (len < 0 || (size_t)len >= n) return rd_err(RD_EINVAL, "path too long: %s/%s", a, b);
  return RD_OK;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path) == 0 ? 0 : -1;
}

int rd_fs_rmtree(const char *path) {
  if (!rd_fs_exists(path)) return RD_OK;
  if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
    return rd_err(RD_EIO, "cannot remove %s: %s", path, strerror(errno));
  return RD_OK;
}

int rd_fs_replace_dir(const char *src, const char *dst) {
  char old[RD_PATH_MAX];
  int have_old = rd_fs_exists(dst);
  if (have_old) {
    int len = snprintf(old, sizeof old, "%s.old.%ld", dst, (long)getpid());
    if (len < 0 || (size_t)len >= sizeof old) return rd_err(RD_EINVAL, "path too long: %s", dst);
    if (rename(dst, old) != 0)
      return rd_err(RD_EIO, "cannot move %s aside: %s", dst, strerror(errno));
  }
  if (rename(src, dst) != 0) {
    int e = errno;
    if (have_old) rename(old, dst);
    return rd_err(RD_EIO, "cannot rename %s to %s: %s", src, dst, strerror(e));
  }
  return have_old ? rd_fs_rmtree(old) : RD_OK;
}
