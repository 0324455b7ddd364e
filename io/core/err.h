/* The one error facility of rediff.
 *
 * Every function that can fail returns int: 0 (RD_OK) on success, a negative
 * RD_E* code on failure, after leaving a message here. The message is for the
 * user: it names the file, dataset, YAML line or tensor at fault. Drivers in
 * stages/ print it and decide whether to exit or abort. The message buffer is
 * thread-local so OpenMP workers cannot clobber each other's errors. */
#ifndef RD_IO_CORE_ERR_H
#define RD_IO_CORE_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum {
  RD_OK = 0,
  RD_EINVAL = -1,  /* bad input: a file, a config value, an argument */
  RD_EIO = -2,     /* a read, write or library failure */
  RD_ENOMEM = -3,  /* allocation failed */
  RD_ESTATE = -4,  /* a call out of order or a broken invariant */
  RD_EMPI = -5,    /* an MPI failure, or another rank failed */
  RD_EUSAGE = -6,  /* command-line usage error (exit code 2) */
  RD_ESTOP = -7,   /* stopped on request (a signal): checkpointed, not an error */
  RD_ENUM = -8,    /* numerics: too many non-finite steps in a row */
};

/* Sets the message (printf-style) and returns code, so callers can write
 * `return rd_err(RD_EINVAL, "...")`. */
int rd_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like rd_err, with the source place appended: for failures of a library
 * call, where the place in our code helps whoever reads the report. */
int rd_err_at(int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prefixes the current message with context ("reading shard x.h5: ..."),
 * returns code unchanged. */
int rd_err_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *rd_err_msg(void);
void rd_err_clear(void);
/* Short name of an RD_E* code. */
const char *rd_err_name(int code);

/* Propagates a negative status unchanged. */
#define RD_TRY(expr)                                                           \
  do {                                                                         \
    int rd_try_s_ = (expr);                                                    \
    if (rd_try_s_ < 0) return rd_try_s_;                                       \
  } while (0)

/* Allocation that reports what it was for. */
void *rd_malloc(size_t n, const char *what);
void *rd_calloc(size_t n, size_t size, const char *what);
#define RD_ALLOC(ptr, n, what)                                                 \
  do {                                                                         \
    (ptr) = rd_calloc((n), sizeof(*(ptr)), (what));                            \
    if (!(ptr)) return RD_ENOMEM;                                              \
  } while (0)

#endif
