/* Metrics lines are valid JSON with the values written (checked by text and
 * by parsing them back), non-finite numbers become null plus a flag,
 * append mode keeps and repairs earlier lines; progress throttles its bar
 * and logs by units and time. */
#include <stdlib.h>
#include <unistd.h>

#include "io/core/fs.h"
#include "io/metrics.h"
#include "rd_test.h"

static char dir[256];

static void path_in(char *out, size_t n, const char *name) { CHECK_OK(rd_fs_join(out, n, dir, name)); }

static char *slurp(const char *path) {
  char *s = NULL;
  CHECK_OK(rd_fs_read_all(path, &s, NULL));
  return s ? s : calloc(1, 1);
}

/* Every line, read back by rd_metrics_each, parses (io/core/json,
 * libjansson) as an object with step, stage and kind first. */
static int key_order(void *ctx, const rd_metrics_line *l) {
  int *ok = ctx;
  if (!l->obj) {
    fprintf(stderr, "%s\n", rd_err_msg());
    *ok = 0;
    return RD_OK;
  }
  const char *want[3] = {"step", "stage", "kind"};
  void *it = json_object_iter(l->obj);
  for (int k = 0; k < 3; k++, it = json_object_iter_next(l->obj, it))
    if (!it || strcmp(json_object_iter_key(it), want[k]) != 0) *ok = 0;
  return RD_OK;
}

static int lines_parse(const char *path) {
  int ok = 1;
  CHECK_OK(rd_metrics_each(path, key_order, &ok));
  return ok;
}

static void test_lines(void) {
  char p[RD_PATH_MAX];
  path_in(p, sizeof p, "logs/base.jsonl");
  rd_metrics m;
  CHECK_OK(rd_metrics_open(&m, p, "base", 0));
  CHECK_OK(RD_METRICS(&m, 100, "train", rd_kv_num("loss", 2.3125), rd_kv_int("tokens", 123456789012ll),
                      rd_kv_num("lr", 3e-4), rd_kv_bool("skipped", 0)));
  CHECK_OK(RD_METRICS(&m, 101, "note", rd_kv_str("msg", "a \"quoted\"\\ line\n\ttab \x01 é")));
  CHECK_OK(RD_METRICS(&m, 102, "train", rd_kv_num("loss", NAN), rd_kv_num("gnorm", INFINITY),
                      rd_kv_num("x", -INFINITY), rd_kv_num("small", 1.5e-30)));
  CHECK_ERR(RD_METRICS(&m, 103, "train", rd_kv_int("step", 1)), "reserved");
  CHECK_ERR(RD_METRICS(&m, 103, "train", rd_kv_num("x", 1), rd_kv_num("x", 2)), "key \"x\" added twice");
  CHECK_ERR(RD_METRICS(&m, 103, "note", rd_kv_str("msg", "a\xff")), "Invalid UTF-8 string");
  rd_metrics_close(&m);
  char *s = slurp(p);
  const char *want =
      "{\"step\":100,\"stage\":\"base\",\"kind\":\"train\",\"loss\":2.3125,\"tokens\":123456789012,"
      "\"lr\":0.0003,\"skipped\":false}\n"
      "{\"step\":101,\"stage\":\"base\",\"kind\":\"note\",\"msg\":\"a \\\"quoted\\\"\\\\ line\\n\\ttab \\u0001 é\"}\n"
      "{\"step\":102,\"stage\":\"base\",\"kind\":\"train\",\"loss\":null,\"loss_nonfinite\":\"nan\","
      "\"gnorm\":null,\"gnorm_nonfinite\":\"inf\",\"x\":null,\"x_nonfinite\":\"-inf\",\"small\":1.5e-30}\n";
  CHECK_MSG(strcmp(s, want) == 0, "got:\n%s", s);
  CHECK(lines_parse(p));
  free(s);
}

static void test_append(void) {
  char p[RD_PATH_MAX];
  path_in(p, sizeof p, "stage1.jsonl");
  rd_metrics m;
  CHECK_OK(rd_metrics_open(&m, p, "stage1", 0));
  CHECK_OK(RD_METRICS(&m, 1, "train", rd_kv_num("loss", 1)));
  rd_metrics_close(&m);
  /* A run killed mid-line: the resumed one must not glue onto it. */
  FILE *f = fopen(p, "a");
  fputs("{\"step\":2,\"stage\":\"st", f);
  fclose(f);
  CHECK_OK(rd_metrics_open(&m, p, "stage1", 1));
  CHECK_OK(RD_METRICS(&m, 2, "train", rd_kv_num("loss", 0.5)));
  rd_metrics_close(&m);
  char *s = slurp(p);
  CHECK(strcmp(s, "{\"step\":1,\"stage\":\"stage1\",\"kind\":\"train\",\"loss\":1.0}\n"
                  "{\"step\":2,\"stage\":\"st\n"
                  "{\"step\":2,\"stage\":\"stage1\",\"kind\":\"train\",\"loss\":0.5}\n") == 0);
  free(s);
  /* Not appending starts over. */
  CHECK_OK(rd_metrics_open(&m, p, "stage1", 0));
  CHECK_OK(RD_METRICS(&m, 7, "eval", rd_kv_num("acc", 0.25)));
  rd_metrics_close(&m);
  s = slurp(p);
  CHECK(strcmp(s, "{\"step\":7,\"stage\":\"stage1\",\"kind\":\"eval\",\"acc\":0.25}\n") == 0);
  free(s);
  CHECK_ERR(rd_metrics_write(&m, 8, "eval", NULL, 0), "is not open");
}

static void write_text(const char *path, const char *text) {
  CHECK_OK(rd_fs_write_atomic(path, text, strlen(text)));
}

typedef struct {
  int lines, cut, bad, last_step;
} seen;

static int count_lines(void *ctx, const rd_metrics_line *l) {
  seen *x = ctx;
  x->lines++;
  x->cut += l->cut;
  if (!l->obj) {
    x->bad++;
    rd_err_clear();
    return RD_OK;
  }
  x->last_step = (int)json_integer_value(json_object_get(l->obj, "step"));
  return x->last_step == 3 ? 1 : RD_OK; /* stops at step 3 */
}

/* Reading back: every line in order, a cut one flagged; stopping early;
 * cutting a resumed log back to its checkpoint's step. */
static void test_read_back(void) {
  char p[RD_PATH_MAX];
  path_in(p, sizeof p, "resume.jsonl");
  static const char text[] = "{\"step\":1,\"stage\":\"s\",\"kind\":\"train\"}\n"
                             "{\"step\":2,\"stage\":\"s\",\"kind\":\"train\"}\n"
                             "{\"step\":3,\"stage\":\"s\",\"kind\":\"eval\"}\n"
                             "{\"step\":4,\"stage\":\"s\",\"kind\":\"train\"}\n"
                             "{\"step\":5,\"sta";
  write_text(p, text);
  seen x = {0};
  CHECK_OK(rd_metrics_each(p, count_lines, &x));
  CHECK_MSG(x.lines == 3 && x.last_step == 3 && x.cut == 0, "%d lines, step %d", x.lines, x.last_step);
  CHECK_OK(rd_metrics_truncate(p, 2));
  char *s = slurp(p);
  CHECK_MSG(strcmp(s, "{\"step\":1,\"stage\":\"s\",\"kind\":\"train\"}\n"
                      "{\"step\":2,\"stage\":\"s\",\"kind\":\"train\"}\n") == 0,
            "got:\n%s", s);
  free(s);
  /* The cut line is handed over too, flagged, when nothing stops first. */
  write_text(p, "{\"step\":1}\n{\"st");
  memset(&x, 0, sizeof x);
  CHECK_OK(rd_metrics_each(p, count_lines, &x));
  CHECK(x.lines == 2 && x.cut == 1 && x.bad == 1);
  /* A line that is not a metrics object is refused, naming the line. */
  write_text(p, "{\"step\":1}\nnot json\n");
  CHECK_ERR(rd_metrics_truncate(p, 5), "resume.jsonl:2:");
  write_text(p, "{\"step\":1}\n{\"kind\":\"x\"}\n");
  CHECK_ERR(rd_metrics_truncate(p, 5), "resume.jsonl:2: not a metrics line");
  char missing[RD_PATH_MAX];
  path_in(missing, sizeof missing, "none.jsonl");
  CHECK_OK(rd_metrics_truncate(missing, 1));
  CHECK(!rd_fs_exists(missing));
}

static char *capture(rd_progress *p, FILE *f) {
  fflush(f);
  long n = ftell(f);
  char *s = calloc((size_t)n + 1, 1);
  rewind(f);
  if (fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = '\0';
  (void)p;
  return s;
}

static int count(const char *s, char c) {
  int n = 0;
  for (; *s; s++) n += *s == c;
  return n;
}

static void test_progress(void) {
  FILE *f = tmpfile();
  rd_progress p;
  rd_progress_init(&p, "base", 1000, 1);
  p.out = f;
  p.t0 = 0;
  /* 65 updates in 1 s (exact binary times): the bar is drawn at most every
   * 0.2 s, at 0, 13/64, 26/64, 39/64 and 52/64 s. */
  for (int i = 0; i <= 64; i++) rd_progress_update_at(&p, i, "loss 2.50", i / 64.0);
  rd_progress_update_at(&p, 100, "loss 2.50", 10.0);
  rd_progress_end_at(&p, 1000, NULL, 20.0);
  char *s = capture(&p, f);
  CHECK_MSG(count(s, '\r') == 7, "%d redraws", count(s, '\r'));
  CHECK(strstr(s, "\rbase [##......................] 100/1000  10% 10/s ETA 1:30  loss 2.50") != NULL);
  CHECK(strstr(s, "\rbase [########################] 1000/1000 100% 50/s in 0:20") != NULL);
  CHECK(count(s, '\n') == 1 && s[strlen(s) - 1] == '\n');
  free(s);
  fclose(f);

  /* A log: a line every 250 units, or after 60 s without one. */
  f = tmpfile();
  rd_progress_init(&p, "stage1", 1000, 0);
  p.out = f;
  p.t0 = 0;
  p.start = 200; /* resumed at 200: the rate counts this run's units */
  p.log_every = 250;
  for (int i = 200; i <= 700; i += 50) rd_progress_update_at(&p, i, NULL, (i - 200) * 0.1);
  rd_progress_update_at(&p, 710, NULL, 200.0);
  rd_progress_end_at(&p, 1000, "loss 1.00", 300.0);
  s = capture(&p, f);
  CHECK_MSG(strcmp(s, "stage1: 450/1000  45% 10/s ETA 0:55\n"
                      "stage1: 700/1000  70% 10/s ETA 0:30\n"
                      "stage1: 710/1000  71% 2.55/s ETA 1:54\n"
                      "stage1: done 1000/1000 100% 2.67/s in 5:00  loss 1.00\n") == 0,
            "got:\n%s", s);
  free(s);
  fclose(f);
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/rd_metrics_XXXXXX", base && base[0] ? base : "/tmp");
  if (!mkdtemp(dir)) return 1;
  static const rd_test_case cases[] = {RD_CASE(test_lines), RD_CASE(test_append), RD_CASE(test_read_back),
                                       RD_CASE(test_progress)};
  int rc = rd_test_run("metrics", cases, (int)(sizeof cases / sizeof cases[0]));
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  return rc;
}
