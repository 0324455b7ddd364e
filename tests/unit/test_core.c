/* The leaf utilities of io/core/ that have no test of their own: the
 * growable buffer, the clock, the end of a log file, and the process
 * module (capture, a logged run, a child on pipes stopped by a kill of its
 * process group). */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/core/clock.h"
#include "io/core/fs.h"
#include "io/core/proc.h"
#include "io/core/strbuf.h"
#include "rd_test.h"

static char dir[256];

static void strbuf_grows(void) {
  rd_strbuf b = RD_STRBUF_INIT;
  for (int i = 0; i < 3000; i++) CHECK_OK(rd_strbuf_printf(&b, "%04d,", i));
  CHECK(b.n == 15000 && strlen(b.p) == 15000 && strncmp(b.p + 14995, "2999,", 5) == 0);
  CHECK_OK(rd_strbuf_put(&b, "a\0b", 3)); /* any bytes */
  CHECK(b.n == 15003 && b.p[15001] == '\0' && b.p[15003] == '\0');
  rd_strbuf_drop(&b, 15000);
  CHECK(b.n == 3 && b.p[0] == 'a' && b.p[2] == 'b');
  CHECK_OK(rd_strbuf_reserve(&b, 10));
  memcpy(b.p + b.n, "xyz", 3);
  rd_strbuf_commit(&b, 3);
  CHECK(b.n == 6 && strcmp(b.p + 3, "xyz") == 0);
  char *text;
  size_t n;
  CHECK_OK(rd_strbuf_take(&b, "a test", &text, &n));
  CHECK(n == 6 && b.p == NULL && b.n == 0);
  free(text);
  /* An empty buffer hands over "", and a failed one its error. */
  CHECK_OK(rd_strbuf_take(&b, "a test", &text, &n));
  CHECK(text && text[0] == '\0' && n == 0);
  free(text);
  b.oom = 1;
  CHECK(rd_strbuf_str(&b, "x") == RD_ENOMEM);
  CHECK_ERR(rd_strbuf_take(&b, "a test", &text, NULL), "out of memory writing a test");
  CHECK(text == NULL && !b.oom);
}

static void clock_moves(void) {
  double t0 = rd_clock_now(), c0 = rd_clock_cpu();
  rd_clock_sleep(0.02);
  double t1 = rd_clock_now();
  CHECK_MSG(t1 - t0 >= 0.019 && t1 - t0 < 5, "slept %.3f s", t1 - t0);
  volatile double x = 0;
  for (int i = 0; i < 20000000 && rd_clock_cpu() - c0 < 0.01; i++) x += i;
  CHECK(rd_clock_cpu() > c0);
}

static void tail_of_log(void) {
  char p[RD_PATH_MAX], *t;
  CHECK_OK(rd_fs_join(p, sizeof p, dir, "log.txt"));
  CHECK_OK(rd_fs_tail(p, 3, &t));
  CHECK(t == NULL); /* missing */
  CHECK_OK(rd_fs_write_atomic(p, "one\ntwo\n\nthree\nfour \n\n", 22));
  CHECK_OK(rd_fs_tail(p, 3, &t));
  CHECK_MSG(t && strcmp(t, "\nthree\nfour") == 0, "got '%s'", t ? t : "(null)");
  free(t);
  CHECK_OK(rd_fs_tail(p, 100, &t));
  CHECK(t && strcmp(t, "one\ntwo\n\nthree\nfour") == 0);
  free(t);
  CHECK_OK(rd_fs_write_atomic(p, " \n\n", 3));
  CHECK_OK(rd_fs_tail(p, 3, &t));
  CHECK(t == NULL); /* only white space */
}

static void proc_capture(void) {
  const char *ok[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
  rd_proc_result r;
  CHECK_OK(rd_proc_capture(ok, &r));
  CHECK(r.status == 3 && strcmp(r.out, "out\n") == 0 && strcmp(r.err, "err\n") == 0);
  CHECK_ERR(rd_proc_fail(ok, &r), "`sh -c echo out; echo err >&2; exit 3` exited with 3: err");
  rd_proc_result_free(&r);
  CHECK_ERR(rd_proc_capture_ok(ok, &r), "exited with 3");
  const char *none[] = {"rd-no-such-program", NULL};
  CHECK_ERR(rd_proc_capture(none, &r), "cannot run rd-no-such-program: not found in PATH");
  /* More output than a pipe holds, on both pipes at once. */
  const char *big[] = {"sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo 0123456789abcdef; echo e >&2; i=$((i+1)); done",
                       NULL};
  CHECK_OK(rd_proc_capture_ok(big, &r));
  CHECK(strlen(r.out) == 3000 * 17 && strlen(r.err) == 3000 * 2);
  rd_proc_result_free(&r);
  char sh[RD_PATH_MAX];
  CHECK(rd_proc_find("sh", sh, sizeof sh) == 1 && sh[0] == '/');
  CHECK(rd_proc_find("rd-no-such-program", sh, sizeof sh) == 0);
}

static void proc_logged(void) {
  char log[RD_PATH_MAX], sh[RD_PATH_MAX], *t = NULL;
  CHECK_OK(rd_fs_join(log, sizeof log, dir, "stage.log"));
  CHECK(rd_proc_find("sh", sh, sizeof sh));
  char *argv[] = {sh, "-c", "echo to-out; echo to-err >&2; kill -TERM $$", NULL};
  int status = 0;
  CHECK_OK(rd_proc_run_logged(argv, log, &status));
  CHECK_OK(rd_proc_run_logged(argv, log, &status)); /* appended */
  CHECK_MSG(status == 128 + 15, "status %d", status);
  CHECK_OK(rd_fs_tail(log, 10, &t));
  CHECK(t && strcmp(t, "to-out\nto-err\nto-out\nto-err") == 0);
  free(t);
}

static void proc_child(void) {
  rd_proc p = {0, -1, -1};
  /* The shell's child ignores a closed stdin: only the group kill ends it. */
  CHECK_OK(rd_proc_start_shell(&p, "read line; echo \"got $line\"; sleep 30", "a test"));
  CHECK(write(p.in_fd, "hello\n", 6) == 6);
  char buf[64];
  size_t n = 0;
  double deadline = rd_clock_now() + 10;
  while (n < 10 && rd_proc_wait_fd(p.out_fd, POLLIN, deadline) > 0) {
    ssize_t k = read(p.out_fd, buf + n, sizeof buf - 1 - n);
    if (k <= 0) break;
    n += (size_t)k;
  }
  buf[n] = '\0';
  CHECK_MSG(strcmp(buf, "got hello\n") == 0, "read '%s'", buf);
  /* Nothing more comes: the deadline passes. */
  CHECK(rd_proc_wait_fd(p.out_fd, POLLIN, rd_clock_now() + 0.05) == 0);
  double t0 = rd_clock_now();
  rd_proc_stop(&p, 0.1);
  CHECK(p.pid == 0 && p.in_fd < 0 && p.out_fd < 0 && rd_clock_now() - t0 < 5);
  rd_proc_stop(&p, 0.1); /* again: nothing to do */
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/rd_core_XXXXXX", base && base[0] ? base : "/tmp");
  if (!mkdtemp(dir)) return 1;
  static const rd_test_case cases[] = {RD_CASE(strbuf_grows), RD_CASE(clock_moves), RD_CASE(tail_of_log),
                                       RD_CASE(proc_capture), RD_CASE(proc_logged), RD_CASE(proc_child)};
  int rc = rd_test_run("core", cases, (int)(sizeof cases / sizeof cases[0]));
  rd_fs_rmtree(dir);
  return rc;
}
