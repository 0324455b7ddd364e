#include "io/core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RD_ERR_LEN 2048
static _Thread_local char rd_err_buf[RD_ERR_LEN];

int rd_err(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rd_err_buf, RD_ERR_LEN, fmt, ap);
  va_end(ap);
  return code;
}

int rd_err_at(int code, const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(rd_err_buf, RD_ERR_LEN, fmt, ap);
  va_end(ap);
  if (n >= 0 && n < RD_ERR_LEN)
    snprintf(rd_err_buf + n, RD_ERR_LEN - (size_t)n, " (at %s:%d)", file, line);
  return code;
}

int rd_err_wrap(int code, const char *fmt, ...) {
  char old[RD_ERR_LEN];
  memcpy(old, rd_err_buf, RD_ERR_LEN);
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(rd_err_buf, RD_ERR_LEN, fmt, ap);
  va_end(ap);
  /* The message is cut at RD_ERR_LEN; the prefix matters most. */
  if (n >= 0 && n < RD_ERR_LEN - 2) {
    memcpy(rd_err_buf + n, ": ", 2);
    size_t room = (size_t)(RD_ERR_LEN - n - 2);
    size_t len = strnlen(old, room - 1);
    memcpy(rd_err_buf + n + 2, old, len);
    rd_err_buf[n + 2 + len] = '\0';
  }
  return code;
}

const char *rd_err_msg(void) { return rd_err_buf[0] ? rd_err_buf : "no error message"; }

void rd_err_clear(void) { rd_err_buf[0] = '\0'; }

const char *rd_err_name(int code) {
  switch (code) {
  case RD_OK: return "ok";
  case RD_EINVAL: return "invalid input";
  case RD_EIO: return "i/o error";
  case RD_ENOMEM: return "out of memory";
  case RD_ESTATE: return "bad state";
  case RD_EMPI: return "mpi error";
  case RD_EUSAGE: return "usage error";
  case RD_ESTOP: return "stopped";
  case RD_ENUM: return "numerics";
  default: return "unknown error";
  }
}

void *rd_malloc(size_t n, const char *what) {
  void *p = malloc(n ? n : 1);
  if (!p) rd_err(RD_ENOMEM, "out of memory allocating %zu bytes for %s", n, what);
  return p;
}

void *rd_calloc(size_t n, size_t size, const char *what) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) rd_err(RD_ENOMEM, "out of memory allocating %zu x %zu bytes for %s", n, size, what);
  return p;
}
