#include "io/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/core/clock.h"
#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/core/json.h"
#include "io/core/strbuf.h"

/* ---- metrics ------------------------------------------------------------ */

/* A killed writer may leave a last line without its newline. */
static int ends_cut(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  int cut = 0;
  if (fseek(f, -1, SEEK_END) == 0) cut = fgetc(f) != '\n';
  fclose(f);
  return cut;
}

int rd_metrics_open(rd_metrics *m, const char *path, const char *stage, int append) {
  memset(m, 0, sizeof *m);
  if (strlen(path) >= sizeof m->path) return rd_err(RD_EINVAL, "metrics path too long: %s", path);
  snprintf(m->path, sizeof m->path, "%s", path);
  snprintf(m->stage, sizeof m->stage, "%s", stage ? stage : "");
  RD_TRY(rd_fs_mkparent(path));
  int cut = append && ends_cut(path);
  m->f = fopen(path, append ? "a" : "w");
  if (!m->f) return rd_err(RD_EIO, "cannot open metrics file %s: %s", path, strerror(errno));
  if (cut && (fputc('\n', m->f) == EOF || fflush(m->f) != 0)) {
    int e = errno;
    rd_metrics_close(m);
    return rd_err(RD_EIO, "cannot write metrics file %s: %s", path, strerror(e));
  }
  return RD_OK;
}

static int reserved(const char *k) {
  return !strcmp(k, "step") || !strcmp(k, "stage") || !strcmp(k, "kind");
}

/* Adds kv to the line o: a non-finite number as null with its flag. */
static int add_kv(json_t *o, const rd_kv *kv, const char *path) {
  switch (kv->kind) {
  case RD_KV_INT: return rd_json_add(o, kv->key, path, "I", (json_int_t)kv->i);
  case RD_KV_BOOL: return rd_json_add(o, kv->key, path, "b", (int)kv->i);
  case RD_KV_STR: return rd_json_add(o, kv->key, path, "s", kv->s ? kv->s : "");
  case RD_KV_NUM: {
    if (isfinite(kv->d)) return rd_json_add(o, kv->key, path, "f", kv->d);
    char flag[256];
    if ((size_t)snprintf(flag, sizeof flag, "%s_nonfinite", kv->key) >= sizeof flag)
      return rd_err(RD_EINVAL, "metrics %s: key %.40s... is too long", path, kv->key);
    RD_TRY(rd_json_add(o, kv->key, path, "n"));
    return rd_json_add(o, flag, path, "s", isnan(kv->d) ? "nan" : kv->d > 0 ? "inf" : "-inf");
  }
  default: return rd_err(RD_EINVAL, "metrics %s: key %s has no kind", path, kv->key);
  }
}

int rd_metrics_write(rd_metrics *m, int64_t step, const char *kind, const rd_kv *kv, int n) {
  if (!m->f) return rd_err(RD_ESTATE, "metrics file %s is not open", m->path);
  for (int i = 0; i < n; i++)
    if (!kv[i].key || reserved(kv[i].key))
      return rd_err(RD_EINVAL, "metrics %s: key \"%s\" is reserved or missing", m->path,
                    kv[i].key ? kv[i].key : "(null)");
  json_t *o = NULL;
  int s = rd_json_pack(&o, m->path, "{s:I, s:s, s:s}", "step", (json_int_t)step, "stage", m->stage, "kind",
                       kind ? kind : "");
  for (int i = 0; i < n && s == RD_OK; i++) s = add_kv(o, &kv[i], m->path);
  char *line = NULL;
  size_t len = 0;
  /* One object a line; %.9g round-trips a float exactly and keeps lines
   * short. */
  if (s == RD_OK)
    s = rd_json_dump(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9), m->path, &line, &len);
  json_decref(o);
  if (s == RD_OK && (fwrite(line, 1, len, m->f) != len || fflush(m->f) != 0))
    s = rd_err(RD_EIO, "cannot write metrics file %s: %s", m->path, strerror(errno));
  free(line);
  return s;
}

void rd_metrics_close(rd_metrics *m) {
  if (m->f) fclose(m->f);
  m->f = NULL;
}

/* ---- reading back ------------------------------------------------------- */

int rd_metrics_each(const char *path, rd_metrics_fn fn, void *ctx) {
  char *text;
  size_t n;
  RD_TRY(rd_fs_read_all(path, &text, &n));
  int s = RD_OK, lineno = 0;
  for (const char *l = text; *l && s == RD_OK;) {
    const char *end = strchr(l, '\n');
    rd_metrics_line line = {l, end ? (size_t)(end - l) : strlen(l), ++lineno, end == NULL, NULL};
    if (rd_json_parse(l, line.len, path, lineno, &line.obj) < 0) line.obj = NULL;
    s = fn(ctx, &line);
    json_decref(line.obj);
    l += line.len + (end != NULL);
  }
  free(text);
  return s > 0 ? RD_OK : s;
}

typedef struct {
  const char *path;
  int64_t step;
  rd_strbuf kept;
} truncate_ctx;

static int keep_line(void *ctx, const rd_metrics_line *l) {
  truncate_ctx *t = ctx;
  if (l->cut) {
    rd_err_clear(); /* its parse error is expected: the kill cut it */
    return RD_OK;
  }
  if (!l->obj) return RD_EINVAL; /* the parse error names the line */
  json_int_t step = 0;
  json_error_t e;
  if (json_unpack_ex(l->obj, &e, 0, "{s:I}", "step", &step) < 0)
    return rd_err(RD_EINVAL, "%s:%d: not a metrics line: %s", t->path, l->lineno, e.text);
  if (step > t->step) return RD_OK;
  RD_TRY(rd_strbuf_put(&t->kept, l->text, l->len));
  return rd_strbuf_put(&t->kept, "\n", 1);
}

int rd_metrics_truncate(const char *path, int64_t step) {
  if (!rd_fs_exists(path)) return RD_OK;
  truncate_ctx t = {path, step, RD_STRBUF_INIT};
  int s = rd_metrics_each(path, keep_line, &t);
  char *text = NULL;
  size_t n = 0;
  if (s == RD_OK) s = rd_strbuf_take(&t.kept, path, &text, &n);
  if (s == RD_OK) s = rd_fs_write_atomic(path, text, n);
  rd_strbuf_free(&t.kept);
  free(text);
  return s;
}

/* ---- progress ----------------------------------------------------------- */

int rd_isatty(FILE *f) { return isatty(fileno(f)); }

void rd_progress_init(rd_progress *p, const char *label, int64_t total, int is_tty) {
  memset(p, 0, sizeof *p);
  p->out = stderr;
  snprintf(p->label, sizeof p->label, "%s", label ? label : "");
  p->total = total > 0 ? total : 0;
  p->is_tty = is_tty;
  p->log_every = total >= 20 ? total / 20 : 1;
  p->log_secs = 60;
  p->t0 = rd_clock_now();
  p->t_shown = -1;
}

static void fmt_time(char *buf, size_t n, double s) {
  if (!(s >= 0) || s > 1e8) {
    snprintf(buf, n, "?");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* Appends printf output to buf[n] at *len; -1 (buf ends at the cut) when it
 * does not fit. */
static int put(char *buf, size_t n, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int put(char *buf, size_t n, size_t *len, const char *fmt, ...) {
  if (*len >= n) return -1;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(buf + *len, n - *len, fmt, ap);
  va_end(ap);
  if (k < 0 || (size_t)k >= n - *len) {
    *len = n - 1;
    return -1;
  }
  *len += (size_t)k;
  return 0;
}

/* "450/1000 45% 12.3/s ETA 0:45" (or, at the end, "in 1:21"). */
static void status(const rd_progress *p, int64_t done, double now, int final, char *buf, size_t n) {
  double el = now - p->t0, rate = el > 0 ? (double)(done - p->start) / el : 0;
  char t[32] = "";
  size_t len = 0;
  put(buf, n, &len, "%" PRId64, done);
  if (p->total) put(buf, n, &len, "/%" PRId64 " %3d%%", p->total, (int)(100 * done / p->total));
  if (rate >= 100) put(buf, n, &len, " %.0f/s", rate);
  else put(buf, n, &len, " %.3g/s", rate);
  if (final) {
    fmt_time(t, sizeof t, el);
    put(buf, n, &len, " in %s", t);
  } else if (p->total && rate > 0) {
    fmt_time(t, sizeof t, (double)(p->total - done) / rate);
    put(buf, n, &len, " ETA %s", t);
  }
}

static void draw(rd_progress *p, int64_t done, const char *extra, double now, int final) {
  char st[128], line[512];
  status(p, done, now, final, st, sizeof st);
  if (p->is_tty) {
    char bar[25];
    int fill = p->total ? (int)(24 * (done < p->total ? done : p->total) / p->total) : 0;
    for (int i = 0; i < 24; i++) bar[i] = i < fill ? '#' : '.';
    bar[24] = '\0';
    int w = snprintf(line, sizeof line, "%s [%s] %s%s%s", p->label, bar, st, extra ? "  " : "",
                     extra ? extra : "");
    if (w > (int)sizeof line - 1) w = (int)sizeof line - 1;
    /* Spaces over what is left of a longer previous bar. */
    fprintf(p->out, "\r%s%*s%s", line, p->width > w ? p->width - w : 0, "", final ? "\n" : "");
    p->width = w;
  } else {
    fprintf(p->out, "%s: %s%s%s%s\n", p->label, final ? "done " : "", st, extra ? "  " : "",
            extra ? extra : "");
  }
  fflush(p->out);
  p->t_shown = now;
  p->shown = done;
}

void rd_progress_update_at(rd_progress *p, int64_t done, const char *extra, double now) {
  if (p->is_tty) {
    if (p->t_shown < 0 || now - p->t_shown >= 0.2) draw(p, done, extra, now, 0);
    return;
  }
  int64_t since = done - (p->t_shown < 0 ? p->start : p->shown);
  int by_units = p->log_every > 0 && since >= p->log_every;
  int by_time = p->log_secs > 0 && now - (p->t_shown < 0 ? p->t0 : p->t_shown) >= p->log_secs;
  if (by_units || by_time) draw(p, done, extra, now, 0);
}

void rd_progress_end_at(rd_progress *p, int64_t done, const char *extra, double now) {
  draw(p, done, extra, now, 1);
}

void rd_progress_update(rd_progress *p, int64_t done, const char *extra) {
  rd_progress_update_at(p, done, extra, rd_clock_now());
}

void rd_progress_end(rd_progress *p, int64_t done, const char *extra) {
  rd_progress_end_at(p, done, extra, rd_clock_now());
}
