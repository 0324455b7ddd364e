/* Checkpoints across grids, driven by tests/mpi/ckpt_slabs.sh:
 *
 *   ckpt_mpi save DIR TP STEP   every rank saves its slabs (tp ranks split,
 *                               the rest replicate: rank = dp * TP + tp)
 *   ckpt_mpi load DIR TP STEP   every rank loads its slabs via LATEST and
 *                               checks each value and the step
 *   ckpt_mpi corrupt FILE       flips bytes in the middle of the first chunk
 *                               of /params/big (serial)
 *
 * Every value is a function of (tensor, kind, global index), so any grid can
 * check any other grid's file. Exit 0 when all matches, 1 otherwise. */
#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/ckpt.h"
#include "io/core/err.h"
#include "io/core/fs.h"

#define NT 5
static const char *names[NT] = {"emb", "wqkv", "w3", "big", "norm"};
static const int ndims[NT] = {2, 2, 3, 2, 1};
static const int64_t shapes[NT][3] = {{10, 6, 0}, {9, 7, 0}, {4, 6, 5}, {64, 5000, 0}, {6, 0, 0}};
static const int axes[NT] = {0, 1, 1, 1, -1};

static float value(int i, int kind, int64_t gi) {
  uint64_t h = (uint64_t)gi * 2654435761u + (uint64_t)i * 97 + (uint64_t)kind * 7919;
  return (float)(h % 100003) / 1024.0f - 40.0f - (float)kind;
}

/* Global flat index of element j of this rank's slab. */
static int64_t global_index(const rd_ckpt_tensor *t, int64_t j) {
  int64_t idx[4], cnt[4];
  for (int d = 0; d < t->ndim; d++) cnt[d] = t->shape[d];
  if (t->split_axis >= 0) cnt[t->split_axis] = t->slab_count;
  for (int d = t->ndim - 1; d >= 0; d--) {
    idx[d] = j % cnt[d];
    j /= cnt[d];
  }
  if (t->split_axis >= 0) idx[t->split_axis] += t->slab_offset;
  int64_t g = 0;
  for (int d = 0; d < t->ndim; d++) g = g * t->shape[d] + idx[d];
  return g;
}

static int64_t slab_numel(const rd_ckpt_tensor *t) {
  int64_t k = 1;
  for (int d = 0; d < t->ndim; d++) k *= d == t->split_axis ? t->slab_count : t->shape[d];
  return k;
}

static void setup(rd_ckpt_tensor *t, int tp_rank, int tp) {
  for (int i = 0; i < NT; i++) {
    memset(&t[i], 0, sizeof t[i]);
    t[i].name = names[i];
    t[i].ndim = ndims[i];
    for (int d = 0; d < ndims[i]; d++) t[i].shape[d] = shapes[i][d];
    t[i].split_axis = tp > 1 ? axes[i] : -1;
    if (t[i].split_axis >= 0) {
      int64_t dim = t[i].shape[t[i].split_axis];
      t[i].slab_offset = dim * tp_rank / tp;
      t[i].slab_count = dim * (tp_rank + 1) / tp - t[i].slab_offset;
    }
    size_t n = (size_t)slab_numel(&t[i]);
    t[i].param = calloc(n, sizeof(float));
    t[i].m = calloc(n, sizeof(float));
    t[i].v = calloc(n, sizeof(float));
  }
}

static int corrupt(const char *path) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "/params/big", H5P_DEFAULT);
  hid_t s = H5Dget_space(d);
  hsize_t off[2], size = 0;
  haddr_t addr = 0;
  unsigned mask = 0;
  int bad = H5Dget_chunk_info(d, s, 0, off, &mask, &addr, &size) < 0;
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
  char *data = NULL;
  size_t n = 0;
  if (bad || rd_fs_read_all(path, &data, &n) != 0 || addr + size > n) {
    fprintf(stderr, "ckpt_mpi: cannot find the chunk to corrupt in %s\n", path);
    return 1;
  }
  for (int i = 0; i < 8; i++) data[addr + size / 2 + (hsize_t)i] ^= 0x33;
  int st = rd_fs_write_atomic(path, data, n);
  free(data);
  return st != 0;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size, bad = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc == 3 && strcmp(argv[1], "corrupt") == 0) {
    bad = corrupt(argv[2]);
    MPI_Finalize();
    return bad;
  }
  if (argc != 5 || (strcmp(argv[1], "save") != 0 && strcmp(argv[1], "load") != 0)) {
    fprintf(stderr, "usage: ckpt_mpi save|load DIR TP STEP | corrupt FILE\n");
    MPI_Finalize();
    return 2;
  }
  int tp = atoi(argv[3]);
  int64_t step = atoll(argv[4]);
  rd_ckpt_tensor t[NT];
  setup(t, rank % tp, tp);
  rd_ckpt_meta meta = {.step = step, .n_rng = 2, .rng = {7, 9}, .config_yaml = "x: 1\n"};
  snprintf(meta.stage, sizeof meta.stage, "base");
  char path[RD_PATH_MAX] = "";
  int st;
  if (argv[1][0] == 's') {
    for (int i = 0; i < NT; i++)
      for (int64_t j = 0; j < slab_numel(&t[i]); j++) {
        int64_t g = global_index(&t[i], j);
        t[i].param[j] = value(i, 0, g);
        t[i].m[j] = value(i, 1, g);
        t[i].v[j] = value(i, 2, g);
      }
    st = rd_ckpt_save(argv[2], t, NT, &meta, 0, MPI_COMM_WORLD, path, sizeof path);
  } else {
    rd_ckpt_meta got = {0};
    st = rd_ckpt_load_latest(argv[2], t, NT, &got, MPI_COMM_WORLD, path, sizeof path);
    if (st == 0 && (got.step != step || strcmp(got.stage, "base") != 0 || got.rng[1] != 9)) {
      fprintf(stderr, "ckpt_mpi: rank %d: meta mismatch: step %lld stage %s\n", rank,
              (long long)got.step, got.stage);
      bad = 1;
    }
    rd_ckpt_meta_free(&got);
    for (int i = 0; i < NT && st == 0; i++) {
      int64_t wrong = 0;
      for (int64_t j = 0; j < slab_numel(&t[i]); j++) {
        int64_t g = global_index(&t[i], j);
        wrong += t[i].param[j] != value(i, 0, g) || t[i].m[j] != value(i, 1, g) ||
                 t[i].v[j] != value(i, 2, g);
      }
      if (wrong) {
        fprintf(stderr, "ckpt_mpi: rank %d: %s: %lld of %lld values differ\n", rank, t[i].name,
                (long long)wrong, (long long)slab_numel(&t[i]));
        bad = 1;
      }
    }
  }
  if (st != 0) {
    fprintf(stderr, "ckpt_mpi: rank %d: %s\n", rank, st > 0 ? "no checkpoint" : rd_err_msg());
    bad = 1;
  } else if (rank == 0 && !bad) {
    printf("ckpt_mpi: %s %s on %d ranks (tp %d): ok\n", argv[1], path, size, tp);
  }
  for (int i = 0; i < NT; i++) {
    free(t[i].param);
    free(t[i].m);
    free(t[i].v);
  }
  MPI_Finalize();
  return bad;
}
