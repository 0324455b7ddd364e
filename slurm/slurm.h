/* The Slurm chain of a run (docs/slurm.md): the jobs in pipeline order,
 * the batch script of each, and the record of a submitted chain,
 * RUN_DIR/slurm/chain.json. `rediff submit` writes them; `rediff status`
 * reads them. */
#ifndef RD_SLURM_SLURM_H
#define RD_SLURM_SLURM_H

#include "io/config.h"

/* data, base, stage1, 3 per round (stage2.rounds <= 100), eval */
#define RD_SLURM_MAX_JOBS 304

typedef struct {
  const char *stage; /* data | base | mask | stage1 | draft | expert | stage2 | eval */
  int round;         /* 1..stage2.rounds for draft, expert and stage2; else 0 */
  char name[48];     /* "01-data", "05-expert.r1": the stem of its script and logs */
  int nodes;
  int tasks_per_node;/* ranks = nodes x tasks_per_node */
  int gpus_per_node;
  const char *time;  /* its time limit (slurm.time or the stage's own) */
} rd_slurm_job;

/* Every stage of the chain in order, done or not. */
int rd_slurm_plan(const rd_config *cfg, rd_slurm_job *jobs, int *n);

/* "base", "draft r1": the stage as the status table names it. */
void rd_slurm_label(const rd_slurm_job *job, char *out, size_t n);

/* The batch script of one job (malloc'd text). run_dir must be absolute;
 * rediff is the binary the job runs, config the config file it loads. */
int rd_slurm_script(const rd_config *cfg, const rd_slurm_job *job, const char *run_dir, const char *rediff,
                    const char *config, char **text);

/* RUN_DIR/slurm/<name>.sbatch and RUN_DIR/slurm/logs/<name>.<job_id>.{out,err} */
int rd_slurm_script_path(char *out, size_t n, const char *run_dir, const rd_slurm_job *job);
int rd_slurm_log_path(char *out, size_t n, const char *run_dir, const char *name, const char *job_id,
                      const char *ext);

/* One job of chain.json: a job as submitted. job_id "" = not submitted
 * because its done marker was there. */
typedef struct {
  char stage[16];
  int round;
  char name[48];
  char job_id[32];
} rd_slurm_entry;

typedef struct {
  char submitted[32]; /* UTC time of the submission */
  int n;
  rd_slurm_entry jobs[RD_SLURM_MAX_JOBS];
} rd_slurm_chain;

/* RUN_DIR/slurm/chain.json (docs/slurm.md), written atomically. */
int rd_slurm_chain_write(const char *run_dir, const rd_slurm_chain *chain);
/* Reads it back; *found = 0 (and RD_OK) when there is none. A file that is
 * not JSON, or lacks a job's stage, round, name or job_id, is RD_EINVAL
 * naming the file and the place. */
int rd_slurm_chain_read(const char *run_dir, rd_slurm_chain *chain, int *found);

/* The absolute form of path (relative to the working folder), without
 * touching the file system beyond getcwd. */
int rd_slurm_abspath(const char *path, char *out, size_t n);

#endif
