/* Metrics as JSON lines, and progress for long work (docs/logs.md).
 *
 * A metrics file holds one JSON object per line (io/core/json.h, compact, numbers
 * to 9 significant digits), each starting with "step", "stage" and "kind",
 * flushed as it is written so a killed run keeps its log:
 *   {"step":100,"stage":"base","kind":"train","loss":2.31,"lr":0.0003}
 * JSON has no NaN or Inf: such a value is written as null with a flag beside
 * it ("loss":null,"loss_nonfinite":"nan").
 *
 * A metrics file is read back line by line (rd_metrics_each): `rediff
 * status` finds the last stage of a pipeline there, and a resumed stage
 * cuts its log back to its checkpoint (rd_metrics_truncate).
 *
 * Progress goes to a terminal as one bar redrawn in place, and to a log (not
 * a terminal) as a plain line every so many units or seconds. */
#ifndef RD_IO_METRICS_H
#define RD_IO_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "io/core/json.h"

/* ---- metrics ------------------------------------------------------------ */

enum { RD_KV_INT = 1, RD_KV_NUM, RD_KV_STR, RD_KV_BOOL };

typedef struct {
  const char *key;
  int kind; /* RD_KV_* */
  int64_t i;
  double d;
  const char *s;
} rd_kv;

static inline rd_kv rd_kv_int(const char *key, int64_t v) { return (rd_kv){key, RD_KV_INT, v, 0, 0}; }
static inline rd_kv rd_kv_num(const char *key, double v) { return (rd_kv){key, RD_KV_NUM, 0, v, 0}; }
static inline rd_kv rd_kv_str(const char *key, const char *v) { return (rd_kv){key, RD_KV_STR, 0, 0, v}; }
static inline rd_kv rd_kv_bool(const char *key, int v) { return (rd_kv){key, RD_KV_BOOL, v != 0, 0, 0}; }

typedef struct {
  FILE *f;
  char path[1024];
  char stage[32];
} rd_metrics;

/* Opens path (creating its folder) for stage. append = 1 on resume: earlier
 * lines stay, and a line cut short by a kill is ended first so the next one
 * parses. */
int rd_metrics_open(rd_metrics *m, const char *path, const char *stage, int append);
/* Writes {"step":S,"stage":"...","kind":"...", kv...} and flushes it. The
 * keys step, stage and kind are reserved; every key is given once (and a
 * number's key K not beside a key K_nonfinite). A NULL kind or string value
 * is written as "". Strings must be UTF-8 (RD_EINVAL otherwise). */
int rd_metrics_write(rd_metrics *m, int64_t step, const char *kind, const rd_kv *kv, int n);
void rd_metrics_close(rd_metrics *m);

/* RD_METRICS(&m, step, "train", rd_kv_num("loss", loss), rd_kv_int("tokens", nt)) */
#define RD_METRICS(m, step, kind, ...)                                         \
  rd_metrics_write((m), (step), (kind), (const rd_kv[]){__VA_ARGS__},          \
                   (int)(sizeof((const rd_kv[]){__VA_ARGS__}) / sizeof(rd_kv)))

/* ---- reading back ------------------------------------------------------- */

/* One line of a metrics file, as rd_metrics_each hands it over. */
typedef struct {
  const char *text; /* the line, without its newline (not NUL-terminated) */
  size_t len;
  int lineno;       /* 1-based */
  int cut;          /* the last line, without its newline: a writer was killed */
  json_t *obj;      /* the parsed line (borrowed: valid during the call), or
                     * NULL when it is not JSON; rd_err_msg then says
                     * "PATH:LINE:COLUMN: bad JSON: ..." */
} rd_metrics_line;

/* What rd_metrics_each calls for each line: RD_OK to go on, 1 to stop
 * there, or a negative status to stop with. */
typedef int (*rd_metrics_fn)(void *ctx, const rd_metrics_line *line);

/* Calls fn for every line of the metrics file path in order, empty lines
 * and a cut last line included (the caller decides what they mean).
 * Returns RD_OK (also when fn stopped with 1), fn's negative status, or
 * the error of reading the file (a missing file is RD_EINVAL naming it). */
int rd_metrics_each(const char *path, rd_metrics_fn fn, void *ctx);

/* Keeps the lines of steps <= step: a resumed stage then writes the same
 * log an uninterrupted one would, without the lines of steps that the
 * interruption threw away. A cut last line goes too; any other line must
 * be a metrics object with its step (RD_EINVAL naming the line). Nothing
 * to do when path does not exist. Rewrites the file atomically. */
int rd_metrics_truncate(const char *path, int64_t step);

/* ---- progress ----------------------------------------------------------- */

typedef struct {
  FILE *out;          /* stderr unless set after init */
  char label[48];
  int64_t total;      /* 0: unknown, no percent or ETA */
  int64_t start;      /* units already done at init (a resumed run), not in the rate */
  int is_tty;
  int64_t log_every;  /* log: a line every this many units (0: by time only) */
  double log_secs;    /* log: or every this many seconds (0: by units only) */
  double t0, t_shown; /* monotonic seconds: start, last bar or line */
  int64_t shown;      /* units at the last line */
  int width;          /* length of the last bar, to blank what is left of it */
} rd_progress;

/* Whether f is a terminal: pass rd_isatty(stderr) as is_tty. */
int rd_isatty(FILE *f);

/* Defaults: out = stderr; in a log a line every total/20 units (at least 1)
 * and at least every 60 s. */
void rd_progress_init(rd_progress *p, const char *label, int64_t total, int is_tty);
/* done units so far; extra is appended ("loss 2.31"), may be NULL. A bar is
 * redrawn at most 5 times a second. */
void rd_progress_update(rd_progress *p, int64_t done, const char *extra);
/* Final bar or line, with the total time and rate. */
void rd_progress_end(rd_progress *p, int64_t done, const char *extra);
/* The same with the time given, for tests. */
void rd_progress_update_at(rd_progress *p, int64_t done, const char *extra, double now);
void rd_progress_end_at(rd_progress *p, int64_t done, const char *extra, double now);

#endif
