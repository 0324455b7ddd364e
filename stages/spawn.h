/* Running another program (sbatch, scancel, scontrol, squeue) and capturing
 * what it prints: fork/exec through posix_spawnp, no shell in between, so
 * paths and arguments pass through unquoted and unchanged. */
#ifndef RD_STAGES_SPAWN_H
#define RD_STAGES_SPAWN_H

typedef struct {
  char *out;  /* its stdout, NUL-terminated (malloc'd) */
  char *err;  /* its stderr, NUL-terminated (malloc'd) */
  int status; /* exit code; 128 + N when killed by signal N */
} rd_spawn_result;

/* Runs argv (argv[0] looked up in PATH) with the same environment and
 * waits for it. Fails only when it could not be run: RD_EIO with a message
 * naming the program (a missing program says so). A program that ran and
 * failed returns RD_OK with its status; rd_spawn_check turns that into an
 * error. */
int rd_spawn(const char *const *argv, rd_spawn_result *r);
/* The error for a failed run: the command line, its exit code and stderr. */
int rd_spawn_fail(const char *const *argv, const rd_spawn_result *r);
/* rd_spawn, then an error unless it exited 0. */
int rd_spawn_check(const char *const *argv, rd_spawn_result *r);
void rd_spawn_free(rd_spawn_result *r);
/* The command line as one string, for messages (malloc'd, or NULL). */
char *rd_spawn_cmdline(const char *const *argv);

#endif
