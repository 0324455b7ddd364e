/* `rediff status`: where a run stands, stage by stage, in pipeline order:
 * done markers, partial checkpoints, and, when a chain was submitted, each
 * job's Slurm state. A failed job is shown with its exit code, its reason
 * and the end of its log. Without Slurm (no scontrol) it shows what the
 * run folder alone tells. Slurm without accounting has no sacct, so states
 * come from `scontrol show job`, which knows a job until MinJobAge after it
 * ended. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/core/json.h"
#include "io/core/proc.h"
#include "io/metrics.h"
#include "stages/commands.h"
#include "stages/run/rundir.h"
#include "slurm/slurm.h"

#define LOG_LINES 10

typedef struct {
  char state[32];     /* JobState, "?" unknown, "" no job */
  char reason[128];
  char exit_code[16];
  char restarts[16];
  char dependency[128];
} job_info;

/* The value of " Key=" in a one-line `scontrol show job -o` record. */
static void field(const char *rec, const char *key, char *out, size_t n) {
  char pat[40];
  snprintf(pat, sizeof pat, " %s=", key);
  const char *p = strstr(rec, pat);
  out[0] = '\0';
  if (!p) return;
  p += strlen(pat);
  size_t k = strcspn(p, " \n");
  if (k >= n) k = n - 1;
  memcpy(out, p, k);
  out[k] = '\0';
}

/* The last non-empty line of a program's stderr. */
static void last_line(const char *text, char *out, size_t n) {
  size_t len = strlen(text);
  while (len && (text[len - 1] == '\n' || text[len - 1] == ' ')) len--;
  size_t start = len;
  while (start && text[start - 1] != '\n') start--;
  snprintf(out, n, "%.*s", (int)(len - start), text + start);
}

/* The job's state from scontrol. When Slurm cannot answer (not installed,
 * no controller, no SLURM_CONF), *note says why and later jobs are not
 * asked. */
static void query(const char *id, job_info *j, char *note, size_t n) {
  memset(j, 0, sizeof *j);
  strcpy(j->state, "?");
  if (note[0]) return;
  const char *argv[] = {"scontrol", "show", "job", "-o", id, NULL};
  rd_proc_result r;
  if (rd_proc_capture(argv, &r) < 0) {
    snprintf(note, n, "%s", rd_err_msg());
    rd_err_clear();
    return;
  }
  if (r.status != 0) {
    /* "Invalid job id specified": it ended longer ago than MinJobAge. */
    if (strstr(r.err, "Invalid job id")) strcpy(j->state, "GONE");
    else last_line(r.err, note, n);
    if (!note[0] && !strstr(r.err, "Invalid job id")) snprintf(note, n, "scontrol exited with %d", r.status);
  } else {
    char rec[8192];
    snprintf(rec, sizeof rec, " %s", r.out);
    field(rec, "JobState", j->state, sizeof j->state);
    field(rec, "Reason", j->reason, sizeof j->reason);
    field(rec, "ExitCode", j->exit_code, sizeof j->exit_code);
    field(rec, "Restarts", j->restarts, sizeof j->restarts);
    field(rec, "Dependency", j->dependency, sizeof j->dependency);
    if (!j->state[0]) strcpy(j->state, "?");
  }
  rd_proc_result_free(&r);
}

static int failed_state(const char *s) {
  static const char *const bad[] = {"FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                                    "DEADLINE", "PREEMPTED", "CANCELLED", NULL};
  for (int i = 0; bad[i]; i++)
    if (strcmp(s, bad[i]) == 0) return 1;
  return 0;
}

/* The checkpoint a stage would resume from: the name in its LATEST. */
static void latest_ckpt(const char *run_dir, const rd_slurm_job *job, char *out, size_t n) {
  out[0] = '\0';
  /* The folder training writes (rd_ckpt_dir_path), so every training stage
   * is found, whatever its name; other stages have no LATEST there. */
  char dir[RD_PATH_MAX], path[RD_PATH_MAX];
  if (rd_ckpt_dir_path(dir, sizeof dir, run_dir, job->stage, job->round) < 0 ||
      rd_fs_join(path, sizeof path, dir, "LATEST") < 0 || !rd_fs_exists(path)) {
    rd_err_clear();
    return;
  }
  char *text;
  size_t len;
  if (rd_fs_read_all(path, &text, &len) < 0) {
    rd_err_clear();
    return;
  }
  size_t k = strcspn(text, "\r\n");
  snprintf(out, n, "%.*s", (int)k, text);
  free(text);
}

/* Prints the last lines of a log file, indented; 0 when it is missing or
 * empty. */
static int tail(const char *path, int lines) {
  char *text = NULL;
  if (rd_fs_tail(path, lines, &text) < 0) rd_err_clear();
  if (!text) return 0;
  printf("  last lines of %s:\n", path);
  for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
    printf("    %s\n", l);
  free(text);
  return 1;
}

/* The last stage line of logs/pipeline.jsonl: its name and exit code. */
typedef struct {
  const char *path;
  char name[64];
  int code;
} last_stage;

static int read_stage_line(void *ctx, const rd_metrics_line *l) {
  last_stage *x = ctx;
  if (l->len == 0) return RD_OK;
  /* A line that is not JSON (cut by a kill, or edited) is named and
   * skipped: the table above it is what status is for. */
  if (!l->obj) {
    fprintf(stderr, "rediff status: %s (line skipped)\n", rd_err_msg());
    rd_err_clear();
    return RD_OK;
  }
  const char *kind = "", *n = "";
  int e = 0;
  json_error_t err;
  if (json_unpack_ex(l->obj, &err, 0, "{s:s}", "kind", &kind) < 0 || strcmp(kind, "stage") != 0) return RD_OK;
  if (json_unpack_ex(l->obj, &err, 0, "{s:s, s:i}", "name", &n, "exit", &e) < 0)
    fprintf(stderr, "rediff status: %s:%d: %s (line skipped)\n", x->path, l->lineno, err.text);
  else
    snprintf(x->name, sizeof x->name, "%s", n), x->code = e;
  return RD_OK;
}

/* The last stage `rediff pipeline` ran here, from logs/pipeline.jsonl: when
 * it failed, its name, exit code and the end of its log. */
static int pipeline_failure(const char *run_dir) {
  char path[RD_PATH_MAX];
  last_stage x = {path, "", 0};
  if (rd_run_path(path, sizeof path, run_dir, "logs/pipeline.jsonl") < 0 || !rd_fs_exists(path) ||
      rd_metrics_each(path, read_stage_line, &x) < 0) {
    rd_err_clear();
    return 0;
  }
  const char *name = x.name;
  int code = x.code;
  if (!name[0] || code == 0) return 0;
  /* "stage2 r1" logs to logs/stage2_r1.log */
  char rel[96], stage[64];
  int round = 0;
  if (sscanf(name, "%63s r%d", stage, &round) == 2) snprintf(rel, sizeof rel, "logs/%s_r%d.log", stage, round);
  else snprintf(rel, sizeof rel, "logs/%s.log", name);
  printf("\nlast local pipeline run: stage %s %s (exit %d)\n", name, code == 3 ? "was stopped" : "failed", code);
  char line[1024];
  if (rd_run_path(path, sizeof path, run_dir, rel) != RD_OK) return 1;
  if (rd_log_error_line(path, line, sizeof line)) printf("  %s\n  (log: %s)\n", line, path);
  else tail(path, LOG_LINES);
  return 1;
}

/* Without -c, the config of the submitted chain (RUN_DIR/slurm/config.yaml)
 * when there is one: it knows the rounds; else the defaults. */
static int status_config(const rd_cli *cli, rd_config *cfg) {
  if (cli->config || !cli->run_dir) return rd_cli_config(cli, cfg);
  char snap[RD_PATH_MAX];
  RD_TRY(rd_fs_join(snap, sizeof snap, cli->run_dir, "slurm/config.yaml"));
  if (!rd_fs_exists(snap)) return rd_cli_config(cli, cfg);
  rd_cli c = *cli;
  c.config = snap;
  return rd_cli_config(&c, cfg);
}

typedef struct {
  rd_config cfg;
  char run_dir[RD_PATH_MAX];
  rd_slurm_job jobs[RD_SLURM_MAX_JOBS];
  rd_slurm_chain chain;
  job_info info[RD_SLURM_MAX_JOBS];
  const rd_slurm_entry *entry[RD_SLURM_MAX_JOBS]; /* the job of each stage in chain.json, or NULL */
} status_ctx;

static int show(status_ctx *x);

int rd_cmd_status(const rd_cli *cli) {
  static const char *const none[] = {NULL};
  RD_TRY(rd_cli_check_opts(cli, none));
  if (cli->n_args) return rd_err(RD_EUSAGE, "'status' takes no arguments, got '%s'", cli->args[0]);
  status_ctx *x = calloc(1, sizeof *x);
  if (!x) return rd_err(RD_ENOMEM, "out of memory");
  int s = status_config(cli, &x->cfg);
  if (s == RD_OK) s = rd_slurm_abspath(x->cfg.run_dir, x->run_dir, sizeof x->run_dir);
  /* A table of "no" for a folder that is not there would read as a run
   * that has not started; most often the path is wrong. */
  if (s == RD_OK && !rd_fs_exists(x->run_dir))
    s = rd_err(RD_EINVAL, "%s: no such run folder (check --run-dir or the config's run_dir)", x->run_dir);
  if (s == RD_OK) s = show(x);
  free(x);
  return s;
}

static int show(status_ctx *x) {
  const char *run_dir = x->run_dir;
  rd_slurm_job *jobs = x->jobs;
  rd_slurm_chain *chain = &x->chain;
  job_info *info = x->info;
  const rd_slurm_entry **entry = x->entry;
  int n, found;
  char note[512] = "";
  RD_TRY(rd_slurm_plan(&x->cfg, jobs, &n));
  RD_TRY(rd_slurm_chain_read(run_dir, chain, &found));

  printf("run folder: %s\n", run_dir);
  if (found) printf("chain: submitted %s (slurm/chain.json)\n", chain->submitted);
  else printf("chain: none submitted (no slurm/chain.json)\n");
  for (int i = 0; i < n; i++) {
    entry[i] = NULL;
    memset(&info[i], 0, sizeof info[i]);
    for (int k = 0; k < chain->n; k++)
      if (strcmp(chain->jobs[k].stage, jobs[i].stage) == 0 && chain->jobs[k].round == jobs[i].round &&
          chain->jobs[k].job_id[0])
        entry[i] = &chain->jobs[k];
    if (entry[i]) query(entry[i]->job_id, &info[i], note, sizeof note);
  }
  if (note[0]) printf("job states unknown, Slurm did not answer: %s\n", note);

  printf("\n%-10s %-5s %-9s %-14s detail\n", "stage", "done", "job", "state");
  for (int i = 0; i < n; i++) {
    char label[64], ckpt[256], detail[512] = "";
    rd_slurm_label(&jobs[i], label, sizeof label);
    int done = rd_done_exists(run_dir, jobs[i].stage, jobs[i].round);
    latest_ckpt(run_dir, &jobs[i], ckpt, sizeof ckpt);
    const job_info *j = &info[i];
    size_t k = 0;
    if (!done && ckpt[0]) k += (size_t)snprintf(detail + k, sizeof detail - k, "partial: checkpoint %s", ckpt);
    if (j->state[0] && strcmp(j->state, "COMPLETED") != 0) {
      if (j->reason[0] && strcmp(j->reason, "None") != 0)
        k += (size_t)snprintf(detail + k, sizeof detail - k, "%sreason %s", k ? "; " : "", j->reason);
      if (j->dependency[0] && strcmp(j->dependency, "(null)") != 0)
        k += (size_t)snprintf(detail + k, sizeof detail - k, " (%s)", j->dependency);
      if (failed_state(j->state) && j->exit_code[0] && strcmp(j->exit_code, "0:0") != 0)
        k += (size_t)snprintf(detail + k, sizeof detail - k, "%sexit %s", k ? "; " : "", j->exit_code);
    }
    if (j->restarts[0] && strcmp(j->restarts, "0") != 0 && k < sizeof detail)
      snprintf(detail + k, sizeof detail - k, "%srequeued %s", k ? "; " : "", j->restarts);
    char row[1200];
    snprintf(row, sizeof row, "%-10.63s %-5s %-9.31s %-14.31s %.511s", label, done ? "yes" : "no",
             entry[i] ? entry[i]->job_id : "-", j->state[0] ? j->state : "-", detail);
    size_t len = strlen(row);
    while (len && row[len - 1] == ' ') row[--len] = '\0';
    printf("%s\n", row);
  }

  /* Each failed job that ran: why, and the end of its log. A job cancelled
   * because its dependency failed never ran and has no log. */
  for (int i = 0; i < n; i++) {
    if (!entry[i] || !failed_state(info[i].state)) continue;
    char label[64], out[RD_PATH_MAX], err[RD_PATH_MAX];
    rd_slurm_label(&jobs[i], label, sizeof label);
    RD_TRY(rd_slurm_log_path(out, sizeof out, run_dir, entry[i]->name, entry[i]->job_id, "out"));
    RD_TRY(rd_slurm_log_path(err, sizeof err, run_dir, entry[i]->name, entry[i]->job_id, "err"));
    if (!rd_fs_exists(out) && !rd_fs_exists(err)) continue;
    printf("\njob %s (%s) %s: ExitCode=%s Reason=%s\n", entry[i]->job_id, label, info[i].state,
           info[i].exit_code[0] ? info[i].exit_code : "?", info[i].reason[0] ? info[i].reason : "?");
    if (!tail(err, LOG_LINES)) tail(out, LOG_LINES);
  }
  pipeline_failure(run_dir);
  return RD_OK;
}
