/* `rediff submit`: the pipeline as a chain of dependent Slurm batch jobs
 * (docs/slurm.md). Every stage not yet done becomes one job whose script
 * runs `rediff <stage>` under the configured launcher; each job waits for
 * the previous one with afterok, and a failed job cancels the rest
 * (--kill-on-invalid-dep=yes). The jobs load a copy of the effective config
 * (RUN_DIR/slurm/config.yaml), so --set overrides reach them and a later
 * edit of the YAML file cannot change a chain already queued. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/core/proc.h"
#include "stages/commands.h"
#include "stages/run/rundir.h"
#include "slurm/slurm.h"

typedef struct {
  rd_config cfg;
  char run_dir[RD_PATH_MAX]; /* absolute */
  char rediff[RD_PATH_MAX];  /* this binary, which the jobs run */
  char config[RD_PATH_MAX];  /* RUN_DIR/slurm/config.yaml */
  rd_slurm_job jobs[RD_SLURM_MAX_JOBS];
  int n_jobs;
  rd_slurm_chain chain;
} submit_ctx;

/* Job ids of the chain that Slurm still holds (pending, running, ...). */
static int active_jobs(const rd_slurm_chain *c, char *ids, size_t n, int *count) {
  *count = 0;
  ids[0] = '\0';
  int any = 0;
  for (int i = 0; i < c->n; i++) any |= c->jobs[i].job_id[0] != '\0';
  if (!any) return RD_OK;
  const char *argv[] = {"squeue", "--me", "-h", "-o", "%i", NULL};
  rd_proc_result r;
  RD_TRY(rd_proc_capture_ok(argv, &r));
  /* One id per line: look for "\n<id>\n" in "\n<output>\n". */
  size_t len = strlen(r.out);
  char *all = malloc(len + 3);
  if (!all) return rd_proc_result_free(&r), rd_err(RD_ENOMEM, "out of memory");
  snprintf(all, len + 3, "\n%s%s", r.out, len && r.out[len - 1] == '\n' ? "" : "\n");
  for (int i = 0; i < c->n; i++) {
    char pat[40];
    if (!c->jobs[i].job_id[0]) continue;
    snprintf(pat, sizeof pat, "\n%s\n", c->jobs[i].job_id);
    if (!strstr(all, pat)) continue;
    size_t k = strlen(ids);
    snprintf(ids + k, n - k, "%s%s", k ? " " : "", c->jobs[i].job_id);
    (*count)++;
  }
  free(all);
  rd_proc_result_free(&r);
  return RD_OK;
}

static int cancel(submit_ctx *x) {
  int found;
  RD_TRY(rd_slurm_chain_read(x->run_dir, &x->chain, &found));
  if (!found) {
    printf("no chain submitted in %s (no slurm/chain.json); nothing to cancel\n", x->run_dir);
    return RD_OK;
  }
  char ids[RD_SLURM_MAX_JOBS * 24];
  int count;
  RD_TRY(active_jobs(&x->chain, ids, sizeof ids, &count));
  if (!count) {
    printf("no job of the chain in %s is queued or running; nothing to cancel\n", x->run_dir);
    return RD_OK;
  }
  const char *argv[RD_SLURM_MAX_JOBS + 2] = {"scancel"};
  int k = 1;
  for (char *save = NULL, *id = strtok_r(ids, " ", &save); id; id = strtok_r(NULL, " ", &save)) argv[k++] = id;
  argv[k] = NULL;
  rd_proc_result r;
  RD_TRY(rd_proc_capture_ok(argv, &r));
  rd_proc_result_free(&r);
  printf("cancelled %d job%s:", count, count == 1 ? "" : "s");
  for (int i = 1; i < k; i++) printf(" %s", argv[i]);
  printf("\n");
  return RD_OK;
}

/* Ranks are the same for `rediff pipeline` and the chain, so both give the
 * same results; the per-stage slurm.ranks_* keys are the exceptions. */
static int check_shape(const rd_config *cfg) {
  int ranks = cfg->slurm.nodes * cfg->slurm.tasks_per_node;
  if (ranks != cfg->parallel.ranks)
    return rd_err(RD_EINVAL,
                  "%s: slurm.nodes x slurm.tasks_per_node = %d x %d = %d ranks per job, but parallel.ranks is %d; "
                  "make them equal",
                  cfg->source, cfg->slurm.nodes, cfg->slurm.tasks_per_node, ranks, cfg->parallel.ranks);
  return RD_OK;
}

static int write_config(const submit_ctx *x) {
  char *yaml;
  RD_TRY(rd_config_to_yaml(&x->cfg, &yaml));
  static const char head[] = "# The config of the Slurm chain, written by `rediff submit`: every job loads it.\n";
  size_t n = strlen(head) + strlen(yaml);
  char *text = malloc(n + 1);
  if (!text) return free(yaml), rd_err(RD_ENOMEM, "out of memory");
  strcpy(text, head);
  strcat(text, yaml);
  int s = rd_fs_write_atomic(x->config, text, n);
  free(text);
  free(yaml);
  return s;
}

static void now_utc(char *out, size_t n) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* sbatch --parsable prints "<id>" or "<id>;<cluster>". */
static int parse_job_id(const char *out, char *id, size_t n) {
  size_t k = strspn(out, "0123456789");
  if (k == 0 || k >= n) return rd_err(RD_EIO, "sbatch printed '%s', not a job id", out);
  memcpy(id, out, k);
  id[k] = '\0';
  return RD_OK;
}

static int submit_chain(submit_ctx *x) {
  int found;
  rd_slurm_chain old;
  RD_TRY(rd_slurm_chain_read(x->run_dir, &old, &found));
  if (found) {
    char ids[RD_SLURM_MAX_JOBS * 24];
    int count;
    RD_TRY(active_jobs(&old, ids, sizeof ids, &count));
    if (count)
      return rd_err(RD_ESTATE,
                    "%s/slurm/chain.json: %d job%s of an earlier chain %s still queued or running (%s); two "
                    "chains would write the same checkpoints: wait, or `rediff submit --cancel` first",
                    x->run_dir, count, count == 1 ? "" : "s", count == 1 ? "is" : "are", ids);
  }
  char logs[RD_PATH_MAX];
  RD_TRY(rd_fs_join(logs, sizeof logs, x->run_dir, "slurm/logs"));
  RD_TRY(rd_fs_mkdirs(logs));
  RD_TRY(write_config(x));

  rd_slurm_chain *c = &x->chain;
  memset(c, 0, sizeof *c);
  now_utc(c->submitted, sizeof c->submitted);
  char prev[32] = "";
  int s = RD_OK;
  for (int i = 0; i < x->n_jobs && s == RD_OK; i++) {
    const rd_slurm_job *j = &x->jobs[i];
    rd_slurm_entry *e = &c->jobs[c->n++];
    snprintf(e->stage, sizeof e->stage, "%s", j->stage);
    e->round = j->round;
    snprintf(e->name, sizeof e->name, "%s", j->name);
    if (rd_done_exists(x->run_dir, j->stage, j->round)) continue;
    char path[RD_PATH_MAX], *script;
    s = rd_slurm_script_path(path, sizeof path, x->run_dir, j);
    if (s == RD_OK) s = rd_slurm_script(&x->cfg, j, x->run_dir, x->rediff, x->config, &script);
    if (s < 0) break;
    s = rd_fs_write_atomic(path, script, strlen(script));
    free(script);
    if (s < 0) break;
    /* The first job waits for nothing; each later one for the one before. */
    char dep[64];
    snprintf(dep, sizeof dep, "--dependency=afterok:%s", prev);
    const char *argv[6] = {"sbatch", "--parsable"};
    int k = 2;
    if (prev[0]) argv[k++] = dep, argv[k++] = "--kill-on-invalid-dep=yes";
    argv[k++] = path;
    argv[k] = NULL;
    rd_proc_result r;
    s = rd_proc_capture_ok(argv, &r);
    if (s == RD_OK) {
      s = parse_job_id(r.out, e->job_id, sizeof e->job_id);
      rd_proc_result_free(&r);
    }
    if (s == RD_OK) snprintf(prev, sizeof prev, "%s", e->job_id);
  }
  if (s < 0) {
    /* Half a chain would run stages whose successors never come: cancel
     * what was queued, keep the error for the user. */
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", rd_err_msg());
    const char *argv[RD_SLURM_MAX_JOBS + 2] = {"scancel"};
    int k = 1;
    for (int i = 0; i < c->n; i++)
      if (c->jobs[i].job_id[0]) argv[k++] = c->jobs[i].job_id;
    argv[k] = NULL;
    if (k > 1) {
      rd_proc_result r;
      if (rd_proc_capture(argv, &r) == RD_OK) rd_proc_result_free(&r);
    }
    return rd_err(s, "%s%s", msg, k > 1 ? " (the jobs already queued were cancelled)" : "");
  }
  RD_TRY(rd_slurm_chain_write(x->run_dir, c));

  int queued = 0;
  for (int i = 0; i < c->n; i++) queued += c->jobs[i].job_id[0] != '\0';
  if (!queued) {
    printf("every stage of %s is done; nothing submitted\n", x->run_dir);
    return RD_OK;
  }
  printf("submitted %d job%s (%s/slurm/chain.json):\n", queued, queued == 1 ? "" : "s", x->run_dir);
  for (int i = 0; i < c->n; i++) {
    char label[64], path[RD_PATH_MAX];
    rd_slurm_label(&x->jobs[i], label, sizeof label);
    if (!c->jobs[i].job_id[0]) {
      printf("  %-10s done, skipped\n", label);
      continue;
    }
    RD_TRY(rd_slurm_script_path(path, sizeof path, x->run_dir, &x->jobs[i]));
    printf("  %-10s job %-8s %s\n", label, c->jobs[i].job_id, path);
  }
  printf("follow it with: rediff status --run-dir %s\n", x->run_dir);
  return RD_OK;
}

/* The scripts and a shell transcript of the sbatch calls, nothing written. */
static int dry_run(const submit_ctx *x) {
  int prev = -1;
  char cmds[RD_SLURM_MAX_JOBS][RD_PATH_MAX + 160];
  int n_cmds = 0;
  for (int i = 0; i < x->n_jobs; i++) {
    const rd_slurm_job *j = &x->jobs[i];
    char label[64], path[RD_PATH_MAX], var[16];
    rd_slurm_label(j, label, sizeof label);
    if (rd_done_exists(x->run_dir, j->stage, j->round)) {
      printf("# %s: done already, not submitted\n\n", label);
      continue;
    }
    RD_TRY(rd_slurm_script_path(path, sizeof path, x->run_dir, j));
    char *script;
    RD_TRY(rd_slurm_script(&x->cfg, j, x->run_dir, x->rediff, x->config, &script));
    printf("# ==> %s <==\n%s\n", path, script);
    free(script);
    snprintf(var, sizeof var, "j%d", i + 1);
    if (prev < 0)
      snprintf(cmds[n_cmds++], sizeof cmds[0], "%s=$(sbatch --parsable %s)", var, path);
    else
      snprintf(cmds[n_cmds++], sizeof cmds[0], "%s=$(sbatch --parsable --dependency=afterok:$j%d --kill-on-invalid-dep=yes %s)",
               var, prev + 1, path);
    prev = i;
  }
  printf("# the sbatch commands, in order (each job waits for the one before):\n");
  for (int i = 0; i < n_cmds; i++) printf("%s\n", cmds[i]);
  if (!n_cmds) printf("# none: every stage is done\n");
  return RD_OK;
}

int rd_cmd_submit(const rd_cli *cli) {
  static const char *const known[] = {"dry-run", "cancel", NULL};
  RD_TRY(rd_cli_check_opts(cli, known));
  if (cli->n_args) return rd_err(RD_EUSAGE, "'submit' takes no arguments, got '%s'", cli->args[0]);
  int dry = rd_cli_flag(cli, "dry-run"), cancel_it = rd_cli_flag(cli, "cancel");
  if (dry && cancel_it) return rd_err(RD_EUSAGE, "'submit' takes --dry-run or --cancel, not both");
  submit_ctx *x = calloc(1, sizeof *x);
  if (!x) return rd_err(RD_ENOMEM, "out of memory");
  int s = rd_cli_config(cli, &x->cfg);
  if (s == RD_OK) s = rd_slurm_abspath(x->cfg.run_dir, x->run_dir, sizeof x->run_dir);
  if (s == RD_OK && cancel_it) {
    s = cancel(x);
    free(x);
    return s;
  }
  if (s == RD_OK) s = check_shape(&x->cfg);
  if (s == RD_OK) s = rd_slurm_plan(&x->cfg, x->jobs, &x->n_jobs);
  if (s == RD_OK) {
    ssize_t k = readlink("/proc/self/exe", x->rediff, sizeof x->rediff - 1);
    if (k <= 0) s = rd_err(RD_EIO, "cannot find the rediff binary (/proc/self/exe)");
    else x->rediff[k] = '\0';
  }
  if (s == RD_OK) s = rd_fs_join(x->config, sizeof x->config, x->run_dir, "slurm/config.yaml");
  /* The jobs see the run folder as an absolute path. */
  if (s == RD_OK && strlen(x->run_dir) >= sizeof x->cfg.run_dir)
    s = rd_err(RD_EINVAL, "the run folder's absolute path is too long: %s", x->run_dir);
  if (s == RD_OK) memcpy(x->cfg.run_dir, x->run_dir, strlen(x->run_dir) + 1);
  if (s == RD_OK) s = dry ? dry_run(x) : submit_chain(x);
  free(x);
  return s;
}
