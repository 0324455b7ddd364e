#define _GNU_SOURCE /* pipe2 */
#include "io/core/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/core/clock.h"
#include "io/core/err.h"
#include "io/core/strbuf.h"

extern char **environ;

/* waitpid through EINTR, the status as one number: the exit code, or
 * 128 + N for signal N, as a shell reports it. */
static int wait_child(pid_t pid, const char *name, int *status) {
  int ws;
  while (waitpid(pid, &ws, 0) < 0)
    if (errno != EINTR) return rd_err(RD_EIO, "waiting for %s: %s", name, strerror(errno));
  *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 1;
  return RD_OK;
}

char *rd_proc_cmdline(const char *const *argv) {
  rd_strbuf b = RD_STRBUF_INIT;
  for (int i = 0; argv[i]; i++) rd_strbuf_printf(&b, "%s%s", i ? " " : "", argv[i]);
  char *line = NULL;
  if (rd_strbuf_take(&b, "a command line", &line, NULL) < 0) rd_err_clear();
  return line;
}

/* Reads both pipes until both close; poll() so a program filling one pipe
 * while we block on the other cannot deadlock. */
static int drain(int fo, int fe, rd_strbuf *out, rd_strbuf *err) {
  struct pollfd p[2] = {{.fd = fo, .events = POLLIN}, {.fd = fe, .events = POLLIN}};
  rd_strbuf *dst[2] = {out, err};
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
        /* Past an error the pipes are still read to their end, so the
         * program is not blocked writing and can be waited for. */
        s = rd_strbuf_put(dst[i], chunk, (size_t)k);
      }
    }
  }
  return s < 0 ? rd_err(s, "out of memory capturing a program's output") : s;
}

int rd_proc_capture(const char *const *argv, rd_proc_result *r) {
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
  rd_strbuf out = RD_STRBUF_INIT, err = RD_STRBUF_INIT;
  int s = drain(po[0], pe[0], &out, &err);
  int status = 1, w = wait_child(pid, argv[0], &status);
  if (s == RD_OK) s = w;
  if (s == RD_OK) s = rd_strbuf_take(&out, "a program's output", &r->out, NULL);
  if (s == RD_OK) s = rd_strbuf_take(&err, "a program's output", &r->err, NULL);
  rd_strbuf_free(&out);
  rd_strbuf_free(&err);
  if (s < 0) {
    rd_proc_result_free(r);
    return s;
  }
  r->status = status;
  return RD_OK;
}

int rd_proc_fail(const char *const *argv, const rd_proc_result *r) {
  char *line = rd_proc_cmdline(argv);
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

int rd_proc_capture_ok(const char *const *argv, rd_proc_result *r) {
  RD_TRY(rd_proc_capture(argv, r));
  if (r->status == 0) return RD_OK;
  int s = rd_proc_fail(argv, r);
  rd_proc_result_free(r);
  return s;
}

void rd_proc_result_free(rd_proc_result *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

int rd_proc_run_logged(char *const *argv, const char *log, int *status) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
  pid_t pid;
  int e = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (e != 0) return rd_err(RD_EIO, "cannot start %s: %s", argv[0], strerror(e));
  return wait_child(pid, argv[0], status);
}

int rd_proc_find(const char *name, char *out, size_t n) {
  const char *path = getenv("PATH");
  for (const char *p = path ? path : ""; *p;) {
    size_t k = strcspn(p, ":");
    /* Only absolute entries: a relative one would name another program
     * after a change of folder. */
    if (k > 0 && k + 1 + strlen(name) < n && p[0] == '/') {
      snprintf(out, n, "%.*s/%s", (int)k, p, name);
      if (access(out, X_OK) == 0) return 1;
    }
    p += k + (p[k] == ':');
  }
  return 0;
}

int rd_proc_start_shell(rd_proc *p, const char *command, const char *what) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return rd_err(RD_EIO, "%s: pipe: %s", what, strerror(errno));
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]);
    return rd_err(RD_EIO, "%s: pipe: %s", what, strerror(errno));
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    return rd_err(RD_EIO, "%s: fork: %s", what, strerror(errno));
  }
  if (pid == 0) {
    /* Its own process group, so a timeout kills the shell's children too. */
    setpgid(0, 0);
    dup2(in[0], 0);
    dup2(out[1], 1);
    execl("/bin/sh", "sh", "-c", command, (char *)NULL);
    _exit(127);
  }
  setpgid(pid, pid); /* also here: whichever runs first */
  close(in[0]);
  close(out[1]);
  p->pid = pid;
  p->in_fd = in[1];
  p->out_fd = out[0];
  fcntl(p->in_fd, F_SETFL, fcntl(p->in_fd, F_GETFL) | O_NONBLOCK);
  fcntl(p->out_fd, F_SETFL, fcntl(p->out_fd, F_GETFL) | O_NONBLOCK);
  return RD_OK;
}

int rd_proc_wait_fd(int fd, short events, double deadline) {
  double left = deadline - rd_clock_now();
  if (left <= 0) return 0;
  struct pollfd p = {fd, events, 0};
  int r = poll(&p, 1, (int)(left * 1000) + 1);
  if (r < 0 && errno == EINTR) return 1; /* spurious wake-ups just loop */
  if (r < 0) return rd_err(RD_EIO, "poll: %s", strerror(errno));
  return r > 0;
}

void rd_proc_stop(rd_proc *p, double grace_s) {
  if (p->in_fd >= 0) close(p->in_fd);
  if (p->out_fd >= 0) close(p->out_fd);
  p->in_fd = p->out_fd = -1;
  if (p->pid <= 0) return;
  double until = rd_clock_now() + grace_s;
  int status;
  while (waitpid(p->pid, &status, WNOHANG) == 0) {
    if (rd_clock_now() >= until) {
      kill(-p->pid, SIGKILL);
      waitpid(p->pid, &status, 0);
      break;
    }
    rd_clock_sleep(0.01);
  }
  p->pid = 0;
}
