/* `rediff pipeline`: the whole chain on this machine, each stage its own
 * process (under mpirun when parallel.ranks > 1), in the order of the stage
 * table of docs/architecture.md. Stages whose done marker exists are skipped; a stage with a
 * checkpoint resumes from it, so a killed pipeline started again finishes
 * with the results of an uninterrupted one. Each stage's output goes to
 * RUN_DIR/logs/<stage>.log and a line per stage to logs/pipeline.jsonl. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/core/clock.h"
#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/core/proc.h"
#include "io/metrics.h"
#include "stages/commands.h"
#include "stages/run/rundir.h"
#include "slurm/slurm.h"

#define RD_PIPE_ARGS 256

/* The stage's own error from its log, or its last lines. */
static void tail_log(const char *log, char *out, size_t n) {
  out[0] = '\0';
  if (rd_log_error_line(log, out, n)) return;
  char *tail = NULL;
  if (rd_fs_tail(log, 4, &tail) < 0) rd_err_clear();
  if (tail) snprintf(out, n, "%s", tail);
  free(tail);
}

int rd_cmd_pipeline(const rd_cli *cli) {
  RD_TRY(rd_cli_check_opts(cli, NULL));
  if (cli->n_args) return rd_err(RD_EUSAGE, "'pipeline' takes no arguments");
  rd_config cfg;
  RD_TRY(rd_cli_config(cli, &cfg));
  /* The same chain `rediff submit` sends to Slurm. */
  rd_slurm_job st[RD_SLURM_MAX_JOBS];
  int n = 0;
  RD_TRY(rd_slurm_plan(&cfg, st, &n));
  char exe[RD_PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) return rd_err(RD_EIO, "cannot find the rediff binary: %s", strerror(errno));
  exe[len] = '\0';
  char logs[RD_PATH_MAX], jsonl[RD_PATH_MAX];
  RD_TRY(rd_run_path(logs, sizeof logs, cfg.run_dir, "logs"));
  RD_TRY(rd_fs_mkdirs(logs));
  RD_TRY(rd_run_path(jsonl, sizeof jsonl, cfg.run_dir, "logs/pipeline.jsonl"));
  rd_metrics pm;
  RD_TRY(rd_metrics_open(&pm, jsonl, "pipeline", 1));
  /* mpirun refuses root unless told; a pipeline started as root means it. */
  if (geteuid() == 0) {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
  }
  char mpirun[RD_PATH_MAX] = "";
  int needs_mpi = 0;
  for (int i = 0; i < n; i++)
    needs_mpi |= cfg.parallel.ranks > 1 && strcmp(st[i].stage, "data") != 0 &&
                 !rd_done_exists(cfg.run_dir, st[i].stage, st[i].round);
  if (needs_mpi) {
    if (!rd_proc_find("mpirun", mpirun, sizeof mpirun)) {
      rd_metrics_close(&pm);
      return rd_err(RD_EINVAL,
                    "mpirun is not on PATH: parallel.ranks = %d needs an MPI launcher (load your MPI module, or "
                    "install Open MPI), or set parallel.ranks: 1",
                    cfg.parallel.ranks);
    }
    fprintf(stderr, "pipeline: stages run under %s -np %d\n", mpirun, cfg.parallel.ranks);
    RD_METRICS(&pm, 0, "launcher", rd_kv_str("mpirun", mpirun), rd_kv_int("ranks", cfg.parallel.ranks));
  }
  double t_all = rd_clock_now();
  double secs[RD_SLURM_MAX_JOBS] = {0};
  int ran[RD_SLURM_MAX_JOBS] = {0}, s = RD_OK;
  char labels[RD_SLURM_MAX_JOBS][64];
  for (int i = 0; i < n && s == RD_OK; i++) {
    if (rd_done_exists(cfg.run_dir, st[i].stage, st[i].round)) continue;
    char *argv[RD_PIPE_ARGS];
    char np[16], round[16], logrel[96], log[RD_PATH_MAX];
    char *label = labels[i];
    rd_slurm_label(&st[i], label, sizeof labels[i]);
    int a = 0;
    /* data synth is one serial process; every other stage runs on the grid. */
    if (cfg.parallel.ranks > 1 && strcmp(st[i].stage, "data") != 0) {
      snprintf(np, sizeof np, "%d", cfg.parallel.ranks);
      argv[a++] = mpirun;
      argv[a++] = "--oversubscribe";
      argv[a++] = "-np";
      argv[a++] = np;
    }
    argv[a++] = exe;
    argv[a++] = (char *)st[i].stage;
    if (strcmp(st[i].stage, "data") == 0) argv[a++] = "synth";
    if (cli->config) argv[a++] = "-c", argv[a++] = (char *)cli->config;
    argv[a++] = "--run-dir";
    argv[a++] = cfg.run_dir;
    for (int k = 0; k < cli->n_sets && a < RD_PIPE_ARGS - 4; k++) argv[a++] = "--set", argv[a++] = (char *)cli->sets[k];
    if (st[i].round) {
      snprintf(round, sizeof round, "%d", st[i].round);
      argv[a++] = "--round";
      argv[a++] = round;
      snprintf(logrel, sizeof logrel, "logs/%s_r%d.log", st[i].stage, st[i].round);
    } else {
      snprintf(logrel, sizeof logrel, "logs/%s.log", st[i].stage);
    }
    argv[a] = NULL;
    s = rd_run_path(log, sizeof log, cfg.run_dir, logrel);
    if (s != RD_OK) break;
    fprintf(stderr, "pipeline: %s ... (log %s)\n", label, log);
    double t0 = rd_clock_now();
    int status = 0;
    s = rd_proc_run_logged(argv, log, &status);
    secs[i] = rd_clock_now() - t0;
    ran[i] = 1;
    if (s != RD_OK) break;
    RD_METRICS(&pm, i, "stage", rd_kv_str("name", label), rd_kv_int("exit", status), rd_kv_num("seconds", secs[i]));
    if (status != 0) {
      char tail[1024];
      tail_log(log, tail, sizeof tail);
      s = rd_err(status == 3 ? RD_ESTOP : RD_EIO, "stage %s %s (exit %d) after %.1f s; the end of %s:\n%s", label,
                 status == 3 ? "was stopped" : "failed", status, secs[i], log, tail);
    }
  }
  rd_metrics_close(&pm);
  if (s != RD_OK) return s;
  fprintf(stderr, "pipeline: done in %.1f s\n", rd_clock_now() - t_all);
  for (int i = 0; i < n; i++)
    if (ran[i]) fprintf(stderr, "  %-10s %8.1f s\n", labels[i], secs[i]);
  char results[RD_PATH_MAX];
  RD_TRY(rd_run_path(results, sizeof results, cfg.run_dir, "eval/results.md"));
  char *text;
  size_t tlen;
  RD_TRY(rd_fs_read_all(results, &text, &tlen));
  fputs(text, stdout);
  free(text);
  return RD_OK;
}
