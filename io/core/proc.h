/* The one process module of rediff: running other programs without a
 * shell in between (sbatch, scontrol, a pipeline's stages, the reference
 * scripts of the tests), so paths and arguments pass unquoted and
 * unchanged, and keeping a long-lived child on pipes (the command expert)
 * with deadlines and a kill of its whole process group. */
#ifndef RD_IO_CORE_PROC_H
#define RD_IO_CORE_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* ---- run and wait ------------------------------------------------------- */

typedef struct {
  char *out;  /* its stdout, NUL-terminated (malloc'd) */
  char *err;  /* its stderr, NUL-terminated (malloc'd) */
  int status; /* exit code; 128 + N when killed by signal N */
} rd_proc_result;

/* Runs argv (argv[0] looked up in PATH, stdin /dev/null) with the same
 * environment, captures both outputs and waits for it. Fails only when it
 * could not be run: RD_EIO with a message naming the program (a missing
 * program says so). A program that ran and failed returns RD_OK with its
 * status; rd_proc_fail turns that into an error. */
int rd_proc_capture(const char *const *argv, rd_proc_result *r);
/* The error for a failed run: the command line, its exit code and its
 * stderr on one line. Returns RD_EIO. */
int rd_proc_fail(const char *const *argv, const rd_proc_result *r);
/* rd_proc_capture, then an error (r freed) unless it exited 0. */
int rd_proc_capture_ok(const char *const *argv, rd_proc_result *r);
/* Frees what rd_proc_capture captured. */
void rd_proc_result_free(rd_proc_result *r);
/* The command line as one string, for messages (malloc'd, or NULL when
 * memory ran out). */
char *rd_proc_cmdline(const char *const *argv);

/* Runs argv (argv[0] a path, not looked up) with its stdout and stderr
 * appended to the file log (created if missing) and waits for it: *status
 * is its exit code (128 + N when killed by signal N). RD_EIO when it could
 * not be started or waited for. */
int rd_proc_run_logged(char *const *argv, const char *log, int *status);

/* The first executable called name on PATH, as an absolute path, into
 * out[n]: 1 when found, 0 when not (nothing is an error). Looked up once
 * by a caller that runs it many times, so every run uses the same one. */
int rd_proc_find(const char *name, char *out, size_t n);

/* ---- a child on pipes --------------------------------------------------- */

typedef struct {
  pid_t pid;  /* 0: not running */
  int in_fd;  /* our end of its stdin (non-blocking), -1 when closed */
  int out_fd; /* our end of its stdout (non-blocking), -1 when closed */
} rd_proc;

/* Starts /bin/sh -c command in a process group of its own (so a kill
 * reaches what the shell starts), its stdin and stdout on pipes, stderr
 * shared with ours. what names it in errors ("expert.command"). */
int rd_proc_start_shell(rd_proc *p, const char *command, const char *what);
/* Waits until fd is ready for events (POLLIN, POLLOUT) or the clock
 * (rd_clock_now) reaches deadline: 1 when ready or woken by a signal (the
 * caller tries its read or write again), 0 when the deadline passed,
 * RD_EIO (with a message) when poll fails. */
int rd_proc_wait_fd(int fd, short events, double deadline);
/* Ends the child: closes both pipes (asking it to finish), waits up to
 * grace_s seconds for it to exit, then kills its whole process group.
 * Safe on a child that is not running. */
void rd_proc_stop(rd_proc *p, double grace_s);

#endif
