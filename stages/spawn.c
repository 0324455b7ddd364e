#include "stages/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/err.h"

extern char **environ;

typedef struct {
  char *p;
  size_t n, cap;
} buf;

static int buf_put(buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 4096;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return rd_err(RD_ENOMEM, "out of memory capturing a program's output");
    b->p = p, b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
  return RD_OK;
}

char *rd_spawn_cmdline(const char *const *argv) {
  buf b = {0};
  for (int i = 0; argv[i]; i++) {
    if (i && buf_put(&b, " ", 1) < 0) break;
    if (buf_put(&b, argv[i], strlen(argv[i])) < 0) break;
  }
  return b.p;
}

/* Reads both pipes until both close; poll() so a program filling one pipe
 * while we block on the other cannot deadlock. */
static int drain(int fo, int fe, buf *out, buf *err) {
  struct pollfd p[2] = {{.fd = fo, .events = POLLIN}, {.fd = fe, .events = POLLIN}};
  buf *dst[2] = {out, err};
  int open = 2, s = RD_OK;
  while (open > 0) {
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return rd_err(RD_EIO, "poll: %s", strerror(errno));
    }
    for (int i = 0; i < 2; i++) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char chunk[4096];
      ssize_t k = read(p[i].fd, chunk, sizeof chunk);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        close(p[i].fd);
        p[i].fd = -1;
        open--;
      } else if (s == RD_OK) {
        s = buf_put(dst[i], chunk, (size_t)k);
      }
    }
  }
  return s;
}

int rd_spawn(const char *const *argv, rd_spawn_result *r) {
  memset(r, 0, sizeof *r);
  int po[2] = {-1, -1}, pe[2] = {-1, -1};
  if (pipe(po) < 0 || pipe(pe) < 0) {
    int e = errno;
    if (po[0] >= 0) close(po[0]), close(po[1]);
    return rd_err(RD_EIO, "cannot run %s: pipe: %s", argv[0], strerror(e));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, po[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
  posix_spawn_file_actions_addclose(&fa, po[0]);
  posix_spawn_file_actions_addclose(&fa, pe[0]);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid;
  /* The argv strings are not modified by the child; the cast is the
   * posix_spawn signature's. */
  int e = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(po[1]);
  close(pe[1]);
  if (e != 0) {
    close(po[0]);
    close(pe[0]);
    if (e == ENOENT) return rd_err(RD_EIO, "cannot run %s: not found in PATH", argv[0]);
    return rd_err(RD_EIO, "cannot run %s: %s", argv[0], strerror(e));
  }
  buf out = {0}, err = {0};
  int s = drain(po[0], pe[0], &out, &err);
  int ws;
  while (waitpid(pid, &ws, 0) < 0) {
    if (errno != EINTR) {
      s = rd_err(RD_EIO, "waiting for %s: %s", argv[0], strerror(errno));
      ws = 0;
      break;
    }
  }
  if (s == RD_OK && (buf_put(&out, "", 0) < 0 || buf_put(&err, "", 0) < 0)) s = RD_ENOMEM;
  if (s < 0) {
    free(out.p);
    free(err.p);
    return s;
  }
  r->out = out.p;
  r->err = err.p;
  r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 1;
  return RD_OK;
}

int rd_spawn_fail(const char *const *argv, const rd_spawn_result *r) {
  char *line = rd_spawn_cmdline(argv);
  /* Its stderr on one line ("; " between lines): one message per error. */
  char err[2048] = "";
  size_t k = 0;
  for (const char *c = r->err ? r->err : ""; *c && k + 3 < sizeof err; c++) {
    if (*c != '\n') err[k++] = *c;
    else if (c[1] && k) err[k++] = ';', err[k++] = ' ';
  }
  err[k] = '\0';
  int s = rd_err(RD_EIO, "`%s` exited with %d%s%s", line ? line : argv[0], r->status, k ? ": " : "", err);
  free(line);
  return s;
}

int rd_spawn_check(const char *const *argv, rd_spawn_result *r) {
  RD_TRY(rd_spawn(argv, r));
  if (r->status == 0) return RD_OK;
  int s = rd_spawn_fail(argv, r);
  rd_spawn_free(r);
  return s;
}

void rd_spawn_free(rd_spawn_result *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}
