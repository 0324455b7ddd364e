/* Checkpoints: parameters, AdamW moments and the trainer's position in one
 * HDF5 file per save (docs/checkpoints.md has the format).
 *
 * Every tensor is stored at its full logical shape, whatever the dp x tp grid
 * that wrote it: each rank writes and reads only its own slab through parallel
 * HDF5, so a run saved on one grid resumes on any other. The code knows
 * nothing of the model; callers describe their tensors with rd_ckpt_tensor.
 *
 * All functions taking a comm are collective over it: every rank calls them
 * with the same tensor list (names, shapes, split axes) and gets the same
 * status and message back. With MPI_COMM_SELF (or before MPI_Init) they are
 * plain serial reads and writes. */
#ifndef RD_IO_CKPT_H
#define RD_IO_CKPT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#define RD_CKPT_SCHEMA 1
/* The largest step a checkpoint may hold (2^40: far past any run, far from
 * overflowing the arithmetic done with steps). */
#define RD_CKPT_MAX_STEP ((int64_t)1 << 40)
#define RD_CKPT_MAXDIM 4
#define RD_CKPT_MAXRNG 8

typedef struct {
  const char *name;                /* "lm.3.attn.wqkv"; no '/' */
  int ndim;                        /* 1..RD_CKPT_MAXDIM */
  int64_t shape[RD_CKPT_MAXDIM];   /* full logical shape */
  int split_axis;                  /* -1: this rank holds all of it; else the axis it holds a slab of */
  int64_t slab_offset, slab_count; /* this rank's part along split_axis */
  float *param, *m, *v;            /* this rank's slab, contiguous row-major; m, v may be NULL */
} rd_ckpt_tensor;

typedef struct {
  char stage[32];            /* "base", "stage1", "stage2" */
  int round;                 /* stage2 round, 0 otherwise */
  int64_t step;              /* optimizer steps done */
  int64_t epoch, cursor;     /* data position: epoch and samples consumed in it */
  uint64_t seed;             /* train.seed */
  uint32_t rng[RD_CKPT_MAXRNG]; /* any RNG state words the trainer needs */
  int n_rng;
  int64_t bad_steps;         /* non-finite steps skipped in a row */
  double loss;               /* last loss, for the record */
  uint64_t vocab_hash;       /* load: if non-zero on entry, must match the file's */
  uint64_t config_hash;
  const char *config_yaml;   /* save: the effective config (< 64 KiB); load: malloc'd copy, see rd_ckpt_meta_free */
} rd_ckpt_meta;

/* Frees the config_yaml string that load and peek return. */
void rd_ckpt_meta_free(rd_ckpt_meta *meta);

/* Writes dir/step-<8 digits>.h5 (temporary name, fsync, rename), then
 * dir/LATEST, then deletes all but the `keep` newest checkpoints at or below
 * this step (keep <= 0 keeps all). A rank's slab of a tensor is written by the
 * lowest rank holding the same slab, so dp replicas write it once. path_out
 * (may be NULL) receives the file's path. */
int rd_ckpt_save(const char *dir, const rd_ckpt_tensor *t, int n, const rd_ckpt_meta *meta,
                 int keep, MPI_Comm comm, char *path_out, size_t n_path);

/* Reads every tensor's slab (and its moments where m, v are non-NULL) and the
 * meta. Errors: RD_EINVAL when the file does not fit the model (a missing or
 * extra tensor, another shape, another vocabulary hash), RD_EIO when the file
 * is unreadable, truncated, incomplete or fails a checksum. */
int rd_ckpt_load(const char *path, rd_ckpt_tensor *t, int n, rd_ckpt_meta *meta, MPI_Comm comm);

/* Loads the checkpoint LATEST names; if it is unusable (RD_EIO), warns on
 * stderr and tries the next older one, and so on. Returns 0 when one loaded
 * (path_out names it), 1 when dir has no checkpoint at all (start fresh),
 * RD_EIO when none is usable, RD_EINVAL at once when one does not fit the
 * model (falling back would hide a config error). */
int rd_ckpt_load_latest(const char *dir, rd_ckpt_tensor *t, int n, rd_ckpt_meta *meta,
                        MPI_Comm comm, char *path_out, size_t n_path);

/* Serial, needs no MPI: the meta of a complete checkpoint. */
int rd_ckpt_peek(const char *path, rd_ckpt_meta *meta);

typedef struct {
  char name[128];
  int ndim;
  int64_t shape[RD_CKPT_MAXDIM];
  int has_moments; /* adam_m and adam_v present */
} rd_ckpt_info;

/* Serial: the tensors a checkpoint holds, sorted by name; free(*out). */
int rd_ckpt_list(const char *path, rd_ckpt_info **out, int *n);

/* "[384, 128]" into buf. */
void rd_ckpt_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);

/* The checkpoint file name of a step: "step-00000500.h5". */
void rd_ckpt_filename(int64_t step, char *buf, size_t n);

#endif
