/* The Slurm chain: jobs, batch scripts and chain.json (slurm/slurm.h).
 *
 * A batch script starts its stage in the background and waits for it, so
 * that a trap in the batch shell can pass Slurm's warning (--signal=B:USR1)
 * on to the stage. The stage then checkpoints and exits 3; the script
 * requeues its own job, which keeps its job id, so the next job's afterok
 * dependency still holds and the stage resumes from the checkpoint when the
 * job runs again (docs/slurm.md has the details and the limits). */
#include "slurm/slurm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/core/json.h"
#include "io/core/strbuf.h"
#include "stages/run/rundir.h"

/* ------------------------------------------------------------------- rd_strbuf */

/* A batch script is built in an rd_strbuf (io/core/strbuf.h); an
 * allocation that fails is found once, when the script is handed over. */

/* A word the shell reads back unchanged: bare when it is plain, else in
 * single quotes ('\'' for a quote inside). */
static void put_word(rd_strbuf *t, const char *w) {
  int plain = *w != '\0';
  for (const char *c = w; *c; c++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=@%+,-", *c)) plain = 0;
  if (plain) {
    rd_strbuf_printf(t, "%s", w);
    return;
  }
  rd_strbuf_printf(t, "'");
  for (const char *c = w; *c; c++) {
    if (*c == '\'') rd_strbuf_printf(t, "'\\''");
    else rd_strbuf_put(t, c, 1);
  }
  rd_strbuf_printf(t, "'");
}

/* ------------------------------------------------------------------- plan */

static void add(rd_slurm_job *jobs, int *n, const rd_config *cfg, const char *stage, int round, int ranks,
                const char *time) {
  const rd_slurm_cfg *s = &cfg->slurm;
  rd_slurm_job *j = &jobs[*n];
  memset(j, 0, sizeof *j);
  j->stage = stage;
  j->round = round;
  if (round > 0) snprintf(j->name, sizeof j->name, "%02d-%s.r%d", *n + 1, stage, round);
  else snprintf(j->name, sizeof j->name, "%02d-%s", *n + 1, stage);
  if (ranks <= 0) {
    j->nodes = s->nodes;
    j->tasks_per_node = s->tasks_per_node;
  } else if (ranks <= s->tasks_per_node) {
    j->nodes = 1;
    j->tasks_per_node = ranks;
  } else { /* a multiple of tasks_per_node (rd_config_validate) */
    j->nodes = ranks / s->tasks_per_node;
    j->tasks_per_node = s->tasks_per_node;
  }
  j->gpus_per_node = s->gpus_per_node;
  j->time = time[0] ? time : s->time;
  (*n)++;
}

int rd_slurm_plan(const rd_config *cfg, rd_slurm_job *jobs, int *n) {
  const rd_slurm_cfg *s = &cfg->slurm;
  if (3 * cfg->stage2.rounds + 5 > RD_SLURM_MAX_JOBS)
    return rd_err(RD_EINVAL, "stage2.rounds (%d) makes more than %d jobs", cfg->stage2.rounds, RD_SLURM_MAX_JOBS);
  *n = 0;
  /* data synth is one serial process: one task, no GPU. */
  add(jobs, n, cfg, "data", 0, 1, s->time_data);
  jobs[0].nodes = jobs[0].tasks_per_node = 1;
  jobs[0].gpus_per_node = 0;
  add(jobs, n, cfg, "base", 0, s->ranks_base, s->time_base);
  /* The mask-trained baseline trains like stage1 (same steps, same start). */
  int mask = 0; /* "mask" or "mask:<mode>", listed once or more */
  for (int i = 0; i < cfg->eval.models.n; i++) {
    const char *m = cfg->eval.models.v[i];
    mask |= strncmp(m, "mask", 4) == 0 && (m[4] == '\0' || m[4] == ':');
  }
  if (mask) add(jobs, n, cfg, "mask", 0, s->ranks_stage1, s->time_stage1);
  add(jobs, n, cfg, "stage1", 0, s->ranks_stage1, s->time_stage1);
  for (int r = 1; r <= cfg->stage2.rounds; r++) {
    add(jobs, n, cfg, "draft", r, s->ranks_draft, s->time_draft);
    add(jobs, n, cfg, "expert", r, s->ranks_expert, s->time_expert);
    add(jobs, n, cfg, "stage2", r, s->ranks_stage2, s->time_stage2);
  }
  add(jobs, n, cfg, "eval", 0, s->ranks_eval, s->time_eval);
  return RD_OK;
}

void rd_slurm_label(const rd_slurm_job *job, char *out, size_t n) {
  if (job->round > 0) snprintf(out, n, "%s r%d", job->stage, job->round);
  else snprintf(out, n, "%s", job->stage);
}

/* ------------------------------------------------------------------ paths */

int rd_slurm_abspath(const char *path, char *out, size_t n) {
  if (path[0] == '/') {
    if (strlen(path) >= n) return rd_err(RD_EINVAL, "path too long: %s", path);
    strcpy(out, path);
  } else {
    char cwd[RD_PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return rd_err(RD_EIO, "getcwd failed");
    const char *p = path;
    while (p[0] == '.' && p[1] == '/') p += 2;
    if (strcmp(p, ".") == 0) p = "";
    if (*p) RD_TRY(rd_fs_join(out, n, cwd, p));
    else if (strlen(cwd) < n) strcpy(out, cwd);
    else return rd_err(RD_EINVAL, "path too long: %s", cwd);
  }
  size_t len = strlen(out);
  while (len > 1 && out[len - 1] == '/') out[--len] = '\0';
  return RD_OK;
}

int rd_slurm_script_path(char *out, size_t n, const char *run_dir, const rd_slurm_job *job) {
  char rel[128];
  snprintf(rel, sizeof rel, "slurm/%s.sbatch", job->name);
  return rd_fs_join(out, n, run_dir, rel);
}

int rd_slurm_log_path(char *out, size_t n, const char *run_dir, const char *name, const char *job_id,
                      const char *ext) {
  char rel[160];
  snprintf(rel, sizeof rel, "slurm/logs/%s.%s.%s", name, job_id, ext);
  return rd_fs_join(out, n, run_dir, rel);
}

/* ----------------------------------------------------------------- script */

/* #SBATCH lines are read by sbatch, not by a shell: a path there cannot be
 * quoted, and '%' is a pattern (%j). */
static int sbatch_safe(const char *what, const char *s) {
  for (const char *c = s; *c; c++)
    if (*c == ' ' || *c == '\t' || *c == '\n' || *c == '%' || *c == '"' || *c == '\'' || *c == '\\')
      return rd_err(RD_EINVAL, "%s '%s' contains '%c', which an #SBATCH line cannot carry; choose another", what, s,
                    *c == '\n' ? ' ' : *c);
  return RD_OK;
}

/* slurm/job.sh, embedded by the build (CMakeLists.txt). */
extern const char rd_slurm_job_sh[];

typedef struct {
  const char *name; /* NAME of @NAME@ in the template */
  rd_strbuf v;
} slot;

/* Copies the template to *t with every @NAME@ replaced by its slot's text.
 * A placeholder alone on its line stands for a block: the line, newline
 * included, becomes the slot's text (which ends in a newline or is empty). */
static int fill(rd_strbuf *t, const char *tpl, slot *slots, int n) {
  for (const char *c = tpl; *c;) {
    size_t k = c[0] == '@' ? strspn(c + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") : 0;
    if (k == 0 || c[1 + k] != '@') {
      rd_strbuf_put(t, c++, 1);
      continue;
    }
    int i = 0;
    while (i < n && (strlen(slots[i].name) != k || strncmp(slots[i].name, c + 1, k) != 0)) i++;
    if (i == n) return rd_err(RD_EINVAL, "slurm/job.sh: unknown placeholder @%.*s@", (int)k, c + 1);
    const char *end = c + k + 2;
    int block = (c == tpl || c[-1] == '\n') && *end == '\n';
    rd_strbuf_printf(t, "%s", slots[i].v.p ? slots[i].v.p : "");
    c = block ? end + 1 : end;
  }
  return RD_OK;
}

int rd_slurm_script(const rd_config *cfg, const rd_slurm_job *job, const char *run_dir, const char *rediff,
                    const char *config, char **out) {
  const rd_slurm_cfg *s = &cfg->slurm;
  RD_TRY(sbatch_safe("the run folder", run_dir));
  RD_TRY(sbatch_safe("slurm.partition", s->partition));
  RD_TRY(sbatch_safe("slurm.account", s->account));
  RD_TRY(sbatch_safe("slurm.qos", s->qos));
  char label[64], logs[RD_PATH_MAX], script[RD_PATH_MAX], base[256], done[RD_PATH_MAX];
  rd_slurm_label(job, label, sizeof label);
  RD_TRY(rd_fs_join(logs, sizeof logs, run_dir, "slurm/logs"));
  RD_TRY(rd_slurm_script_path(script, sizeof script, run_dir, job));
  if (rd_done_path(done, sizeof done, run_dir, job->stage, job->round) < 0) return RD_EINVAL;
  const char *slash = strrchr(run_dir, '/');
  snprintf(base, sizeof base, "%s", slash && slash[1] ? slash + 1 : run_dir);
  for (char *c = base; *c; c++)
    if (*c == ',' || *c == '=' || *c == ':') *c = '_';
  int ranks = job->nodes * job->tasks_per_node;

  enum { LABEL, RUN_DIR, SCRIPT, SBATCH, SETUP, DONE, MAX_REQUEUES, LAUNCH, N_SLOTS };
  slot sl[N_SLOTS] = {{.name = "LABEL"},  {.name = "RUN_DIR"}, {.name = "SCRIPT"},       {.name = "SBATCH"},
                      {.name = "SETUP"},  {.name = "DONE"},    {.name = "MAX_REQUEUES"}, {.name = "LAUNCH"}};
  rd_strbuf_printf(&sl[LABEL].v, "%s", label);
  rd_strbuf_printf(&sl[RUN_DIR].v, "%s", run_dir);
  rd_strbuf_printf(&sl[SCRIPT].v, "%s", script);

  rd_strbuf *b = &sl[SBATCH].v;
  rd_strbuf_printf(b, "#SBATCH --job-name=%s.%s", base, job->stage);
  if (job->round > 0) rd_strbuf_printf(b, ".r%d", job->round);
  rd_strbuf_printf(b, "\n");
  if (s->partition[0]) rd_strbuf_printf(b, "#SBATCH --partition=%s\n", s->partition);
  if (s->account[0]) rd_strbuf_printf(b, "#SBATCH --account=%s\n", s->account);
  if (s->qos[0]) rd_strbuf_printf(b, "#SBATCH --qos=%s\n", s->qos);
  rd_strbuf_printf(b, "#SBATCH --nodes=%d\n", job->nodes);
  rd_strbuf_printf(b, "#SBATCH --ntasks-per-node=%d\n", job->tasks_per_node);
  if (job->gpus_per_node > 0) rd_strbuf_printf(b, "#SBATCH --gpus-per-node=%d\n", job->gpus_per_node);
  rd_strbuf_printf(b, "#SBATCH --cpus-per-task=%d\n", s->cpus_per_task);
  rd_strbuf_printf(b, "#SBATCH --time=%s\n", job->time);
  rd_strbuf_printf(b, "#SBATCH --output=%s/%s.%%j.out\n", logs, job->name);
  rd_strbuf_printf(b, "#SBATCH --error=%s/%s.%%j.err\n", logs, job->name);
  /* B: the warning goes to the batch shell only, which passes it on. */
  rd_strbuf_printf(b, "#SBATCH --signal=B:USR1@%d\n", s->signal_lead_s);
  rd_strbuf_printf(b, "#SBATCH --requeue\n");
  rd_strbuf_printf(b, "#SBATCH --open-mode=append\n");
  int st = RD_OK;
  for (int i = 0; i < s->extra.n && st == RD_OK; i++) {
    const char *e = s->extra.v[i];
    if (strchr(e, '\n')) st = rd_err(RD_EINVAL, "slurm.extra[%d] spans several lines", i);
    else rd_strbuf_printf(b, "%s%s\n", strncmp(e, "#SBATCH", 7) == 0 ? "" : "#SBATCH ", e);
  }

  if (s->setup.n) {
    rd_strbuf *u = &sl[SETUP].v;
    rd_strbuf_printf(u, "\n# slurm.setup: a failing line fails the job before the stage starts.\nset -e\n");
    for (int i = 0; i < s->setup.n; i++) rd_strbuf_printf(u, "%s\n", s->setup.v[i]);
    rd_strbuf_printf(u, "set +e\n");
  }
  put_word(&sl[DONE].v, done);
  rd_strbuf_printf(&sl[MAX_REQUEUES].v, "%d", s->max_requeues);

  rd_strbuf *l = &sl[LAUNCH].v;
  if (strcmp(s->launcher, "mpirun") == 0) rd_strbuf_printf(l, "mpirun -np %d ", ranks);
  else rd_strbuf_printf(l, "srun --mpi=pmix --cpus-per-task=%d ", s->cpus_per_task);
  put_word(l, rediff);
  if (strcmp(job->stage, "data") == 0) rd_strbuf_printf(l, " data synth");
  else rd_strbuf_printf(l, " %s", job->stage);
  rd_strbuf_printf(l, " -c ");
  put_word(l, config);
  rd_strbuf_printf(l, " --run-dir ");
  put_word(l, run_dir);
  if (job->round > 0) rd_strbuf_printf(l, " --round %d", job->round);

  rd_strbuf t = RD_STRBUF_INIT;
  int oom = 0;
  for (int i = 0; i < N_SLOTS; i++) oom |= sl[i].v.oom;
  if (st == RD_OK && oom) st = rd_err(RD_ENOMEM, "out of memory writing a batch script");
  if (st == RD_OK) st = fill(&t, rd_slurm_job_sh, sl, N_SLOTS);
  for (int i = 0; i < N_SLOTS; i++) free(sl[i].v.p);
  if (st < 0) return rd_strbuf_free(&t), st;
  return rd_strbuf_take(&t, "a batch script", out, NULL);
}

/* ------------------------------------------------------------- chain.json */

static int chain_path(char *out, size_t n, const char *run_dir) {
  return rd_fs_join(out, n, run_dir, "slurm/chain.json");
}

/* One job as chain.json records it: where its script and logs are, or that
 * it was skipped as done. */
static int chain_job(const char *run_dir, const rd_slurm_entry *e, const char *what, json_t **out) {
  if (!e->job_id[0])
    return rd_json_pack(out, what, "{s:s, s:i, s:s, s:s, s:s}", "stage", e->stage, "round", e->round, "name", e->name,
                        "job_id", "", "skipped", "done");
  char script[RD_PATH_MAX], log_out[RD_PATH_MAX], log_err[RD_PATH_MAX], rel[96];
  snprintf(rel, sizeof rel, "slurm/%s.sbatch", e->name);
  RD_TRY(rd_fs_join(script, sizeof script, run_dir, rel));
  RD_TRY(rd_slurm_log_path(log_out, sizeof log_out, run_dir, e->name, e->job_id, "out"));
  RD_TRY(rd_slurm_log_path(log_err, sizeof log_err, run_dir, e->name, e->job_id, "err"));
  return rd_json_pack(out, what, "{s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "stage", e->stage, "round", e->round, "name",
                      e->name, "job_id", e->job_id, "script", script, "out", log_out, "err", log_err);
}

int rd_slurm_chain_write(const char *run_dir, const rd_slurm_chain *c) {
  char path[RD_PATH_MAX];
  RD_TRY(chain_path(path, sizeof path, run_dir));
  json_t *jobs = NULL, *root = NULL;
  RD_TRY(rd_json_pack(&jobs, path, "[]"));
  int s = RD_OK;
  for (int i = 0; i < c->n && s == RD_OK; i++) {
    json_t *job;
    s = chain_job(run_dir, &c->jobs[i], path, &job);
    if (s == RD_OK) s = rd_json_add(jobs, NULL, path, "o", job);
  }
  if (s < 0) return json_decref(jobs), s;
  RD_TRY(rd_json_pack(&root, path, "{s:s, s:s, s:o}", "run_dir", run_dir, "submitted", c->submitted, "jobs", jobs));
  s = rd_fs_mkparent(path);
  if (s == RD_OK) s = rd_json_write_atomic(path, root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(root);
  return s;
}

/* A string of chain.json into out[n]; RD_EINVAL naming where when too long. */
static int copy_field(char *out, size_t n, const char *v, const char *path, const char *where) {
  if (strlen(v) >= n)
    return rd_err(RD_EINVAL, "%s: %s is longer than %zu bytes (was the file edited?)", path, where, n - 1);
  memcpy(out, v, strlen(v) + 1);
  return RD_OK;
}

int rd_slurm_chain_read(const char *run_dir, rd_slurm_chain *c, int *found) {
  memset(c, 0, sizeof *c);
  *found = 0;
  char path[RD_PATH_MAX];
  RD_TRY(chain_path(path, sizeof path, run_dir));
  if (!rd_fs_exists(path)) return RD_OK;
  char *body;
  size_t len;
  RD_TRY(rd_fs_read_all(path, &body, &len));
  json_t *root = NULL, *jobs = NULL;
  int s = rd_json_parse(body, len, path, 1, &root);
  free(body);
  const char *submitted = "";
  json_error_t e;
  /* "submitted" may be absent (an edited file); the jobs are needed. */
  if (s == RD_OK && json_unpack_ex(root, &e, 0, "{s?s, s:o}", "submitted", &submitted, "jobs", &jobs) < 0)
    s = rd_err(RD_EINVAL, "%s: %s (was the file edited?)", path, e.text);
  if (s == RD_OK && !json_is_array(jobs))
    s = rd_err(RD_EINVAL, "%s: \"jobs\" is not an array (was the file edited?)", path);
  if (s == RD_OK && json_array_size(jobs) > RD_SLURM_MAX_JOBS)
    s = rd_err(RD_EINVAL, "%s: more than %d jobs", path, RD_SLURM_MAX_JOBS);
  if (s == RD_OK) s = copy_field(c->submitted, sizeof c->submitted, submitted, path, "\"submitted\"");
  size_t i;
  json_t *job;
  json_array_foreach(jobs, i, job) {
    if (s < 0) break;
    rd_slurm_entry *en = &c->jobs[c->n];
    const char *stage, *name, *job_id;
    char where[64];
    snprintf(where, sizeof where, "jobs[%zu]", i);
    if (json_unpack_ex(job, &e, 0, "{s:s, s:i, s:s, s:s}", "stage", &stage, "round", &en->round, "name", &name,
                       "job_id", &job_id) < 0) {
      s = rd_err(RD_EINVAL, "%s: %s: %s; a job needs stage, round, name and job_id (was the file edited?)", path, where,
                 e.text);
      break;
    }
    s = copy_field(en->stage, sizeof en->stage, stage, path, where);
    if (s == RD_OK) s = copy_field(en->name, sizeof en->name, name, path, where);
    if (s == RD_OK) s = copy_field(en->job_id, sizeof en->job_id, job_id, path, where);
    if (s == RD_OK) c->n++;
  }
  json_decref(root);
  if (s == RD_OK) *found = 1;
  return s;
}
