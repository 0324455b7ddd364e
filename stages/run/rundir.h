/* The run directory: where every stage finds its inputs and leaves its
 * outputs (docs/architecture.md, "Stages and the run directory"), and the
 * done markers that make stages restartable: a stage that finds its marker
 * exits at once. */
#ifndef RD_STAGES_RUN_RUNDIR_H
#define RD_STAGES_RUN_RUNDIR_H

#include <stddef.h>
#include <stdint.h>

/* "<run_dir>/<rel>" */
int rd_run_path(char *out, size_t n, const char *run_dir, const char *rel);
/* "<run_dir>/done/<stage>" or "<run_dir>/done/<stage>.r<round>" (round > 0). */
int rd_done_path(char *out, size_t n, const char *run_dir, const char *stage, int round);
int rd_done_exists(const char *run_dir, const char *stage, int round);
/* The checkpoint folder of a training stage: "<run_dir>/ckpt/<stage>" or
 * "<run_dir>/ckpt/<stage>_r<round>" (round > 0). Stages that do not train
 * have none on disk. */
int rd_ckpt_dir_path(char *out, size_t n, const char *run_dir, const char *stage, int round);
/* Writes the marker atomically; its text records when and with which config. */
int rd_done_write(const char *run_dir, const char *stage, int round, uint64_t config_hash);

/* The last line a stage printed as "rediff: ..." in its log (launchers such
 * as mpirun print their notes after it) into out; 1 when found, 0 when the
 * log is missing or has none. */
int rd_log_error_line(const char *log, char *out, size_t n);

#endif
