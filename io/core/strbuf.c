#include "io/core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"

int rd_strbuf_reserve(rd_strbuf *b, size_t extra) {
  if (b->oom) return RD_ENOMEM;
  if (b->p && b->n + extra + 1 <= b->cap) return RD_OK;
  /* Doubling keeps appends linear; 4096 is a page, more than most pieces. */
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->n + extra + 1) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = 1;
    return rd_err(RD_ENOMEM, "out of memory (a buffer of %zu bytes)", cap);
  }
  if (!b->p) p[0] = '\0';
  b->p = p;
  b->cap = cap;
  return RD_OK;
}

void rd_strbuf_commit(rd_strbuf *b, size_t k) {
  b->n += k;
  b->p[b->n] = '\0';
}

int rd_strbuf_put(rd_strbuf *b, const void *s, size_t n) {
  RD_TRY(rd_strbuf_reserve(b, n));
  if (n) memcpy(b->p + b->n, s, n);
  rd_strbuf_commit(b, n);
  return RD_OK;
}

int rd_strbuf_str(rd_strbuf *b, const char *s) { return rd_strbuf_put(b, s, strlen(s)); }

int rd_strbuf_printf(rd_strbuf *b, const char *fmt, ...) {
  if (b->oom) return RD_ENOMEM;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (k < 0) return rd_err(RD_EINVAL, "cannot format \"%s\"", fmt);
  RD_TRY(rd_strbuf_reserve(b, (size_t)k));
  va_start(ap, fmt);
  vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)k;
  return RD_OK;
}

void rd_strbuf_drop(rd_strbuf *b, size_t k) {
  if (!b->p) return;
  if (k > b->n) k = b->n;
  memmove(b->p, b->p + k, b->n - k + 1);
  b->n -= k;
}

int rd_strbuf_take(rd_strbuf *b, const char *what, char **out, size_t *n) {
  *out = NULL;
  if (n) *n = 0;
  if (!b->oom && !b->p) rd_strbuf_reserve(b, 0);
  if (b->oom) {
    rd_strbuf_free(b);
    return rd_err(RD_ENOMEM, "out of memory writing %s", what);
  }
  *out = b->p;
  if (n) *n = b->n;
  *b = (rd_strbuf)RD_STRBUF_INIT;
  return RD_OK;
}

void rd_strbuf_free(rd_strbuf *b) {
  free(b->p);
  *b = (rd_strbuf)RD_STRBUF_INIT;
}
