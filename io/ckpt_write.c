/* Writing a checkpoint (io/ckpt.h): which rank writes which slab, the HDF5
 * datasets and attributes of the file, and rd_ckpt_save, which writes under a
 * temporary name, commits, moves LATEST and prunes the folder. */
#include "io/ckpt.h"

#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/ckpt_internal.h"
#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/h5check.h"

#define CK_CHUNK_ELEMS (256 * 1024) /* 1 MiB of floats per chunk at most */

/* ---- the write plan ---------------------------------------------------- */

static void ck_part(const rd_ckpt_tensor *x, int64_t *lo, int64_t *cnt) {
  *lo = x->split_axis < 0 ? 0 : x->slab_offset;
  *cnt = x->split_axis < 0 ? x->shape[0] : x->slab_count;
}

static int ck_cmp_i64pair(const void *a, const void *b) {
  const int64_t *x = a, *y = b;
  return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1];
}

/* How this rank writes one tensor. */
typedef struct {
  int writer;    /* this rank is the lowest holding its slab: replicas (dp
                    copies, replicated tensors) are written once */
  int64_t align; /* > 0: every slab boundary along the split axis is a
                    multiple of it, so chunks of that width are each written
                    by one rank (chunks shared by ranks cost a redistribution,
                    about 3x the time of a save) */
} ck_plan;

static int64_t ck_gcd(int64_t a, int64_t b) {
  while (b) {
    int64_t r = a % b;
    a = b;
    b = r;
  }
  return a;
}

/* Plans the writes, and checks that the distinct slabs tile the split axis,
 * so no part of a tensor is left unwritten or written twice from different
 * data. */
static int ck_plan_writes(const ck_comm *c, const rd_ckpt_tensor *t, int n, ck_plan *plan) {
  if (c->size == 1) {
    for (int i = 0; i < n; i++) {
      int64_t lo, cnt;
      ck_part(&t[i], &lo, &cnt);
      if (t[i].split_axis >= 0 && (lo != 0 || cnt != t[i].shape[t[i].split_axis]))
        return rd_err(RD_EINVAL, "checkpoint: tensor %s: one rank holds only [%" PRId64 ", +%" PRId64 ") of axis %d",
                      t[i].name, lo, cnt, t[i].split_axis);
      plan[i].writer = 1;
    }
    return RD_OK;
  }
  int64_t *mine = rd_calloc((size_t)n * 2 + 1, sizeof(int64_t), "checkpoint slabs");
  int64_t *all = rd_calloc((size_t)n * 2 * (size_t)c->size + 1, sizeof(int64_t), "checkpoint slabs");
  int64_t *iv = rd_calloc((size_t)c->size * 2 + 1, sizeof(int64_t), "checkpoint slabs");
  int st = RD_OK;
  if (!mine || !all || !iv) {
    st = RD_ENOMEM;
    goto done;
  }
  for (int i = 0; i < n; i++) ck_part(&t[i], &mine[2 * i], &mine[2 * i + 1]);
  if (MPI_Allgather(mine, 2 * n, MPI_INT64_T, all, 2 * n, MPI_INT64_T, c->comm) != MPI_SUCCESS) {
    st = rd_err(RD_EMPI, "checkpoint: gathering slab offsets failed");
    goto done;
  }
  for (int i = 0; i < n && st == RD_OK; i++) {
    plan[i].writer = 1;
    for (int r = 0; r < c->rank; r++)
      if (all[(size_t)r * 2 * n + 2 * i] == mine[2 * i] &&
          all[(size_t)r * 2 * n + 2 * i + 1] == mine[2 * i + 1])
        plan[i].writer = 0;
    if (t[i].split_axis < 0) continue;
    for (int r = 0; r < c->size; r++) {
      iv[2 * r] = all[(size_t)r * 2 * n + 2 * i];
      iv[2 * r + 1] = all[(size_t)r * 2 * n + 2 * i + 1];
    }
    qsort(iv, (size_t)c->size, 2 * sizeof(int64_t), ck_cmp_i64pair);
    int64_t end = 0, g = t[i].shape[t[i].split_axis];
    for (int r = 0; r < c->size; r++) {
      if (r > 0 && iv[2 * r] == iv[2 * r - 2] && iv[2 * r + 1] == iv[2 * r - 1]) continue;
      g = ck_gcd(ck_gcd(g, iv[2 * r]), iv[2 * r + 1]);
      if (iv[2 * r] != end) {
        st = rd_err(RD_EINVAL, "checkpoint: tensor %s: the ranks' slabs of axis %d %s at %" PRId64,
                    t[i].name, t[i].split_axis, iv[2 * r] > end ? "leave a gap" : "overlap", end);
        break;
      }
      end += iv[2 * r + 1];
    }
    /* Narrow chunks would make whole-tensor reads slow: align to 64+. */
    plan[i].align = g >= 64 && g < t[i].shape[t[i].split_axis] ? g : 0;
    if (st == RD_OK && end != t[i].shape[t[i].split_axis])
      st = rd_err(RD_EINVAL, "checkpoint: tensor %s: the ranks' slabs cover %" PRId64 " of %" PRId64 " along axis %d",
                  t[i].name, end, t[i].shape[t[i].split_axis], t[i].split_axis);
  }
done:
  free(mine);
  free(all);
  free(iv);
  return st;
}

/* ---- HDF5 pieces ------------------------------------------------------- */

/* Chunks of at most CK_CHUNK_ELEMS elements, whole trailing rows first;
 * along the split axis a divisor of align when there is one. */
static void ck_chunk(const rd_ckpt_tensor *x, int64_t align, hsize_t *chunk) {
  hsize_t left = CK_CHUNK_ELEMS;
  for (int d = x->ndim - 1; d >= 0; d--) {
    int aligned = d == x->split_axis && align > 0;
    hsize_t dim = (hsize_t)(aligned ? align : x->shape[d]);
    chunk[d] = dim < left ? dim : left;
    while (aligned && (hsize_t)align % chunk[d]) chunk[d]--;
    left /= chunk[d];
  }
}

static int ck_write_ds(hid_t grp, const char *path, const char *gname, const rd_ckpt_tensor *x,
                       const float *data, const ck_plan *plan, hid_t dxpl) {
  int st = RD_OK;
  hid_t space = -1, dcpl = -1, ds = -1, mspace = -1;
  hsize_t dims[RD_CKPT_MAXDIM], chunk[RD_CKPT_MAXDIM];
  for (int d = 0; d < x->ndim; d++) dims[d] = (hsize_t)x->shape[d];
  ck_chunk(x, plan->align, chunk);
  RD_H5_GOTO(space = H5Screate_simple(x->ndim, dims, NULL), st, out, "%s: /%s/%s", path, gname, x->name);
  RD_H5_GOTO(dcpl = H5Pcreate(H5P_DATASET_CREATE), st, out, "%s: /%s/%s", path, gname, x->name);
  RD_H5_GOTO(H5Pset_chunk(dcpl, x->ndim, chunk), st, out, "%s: /%s/%s", path, gname, x->name);
  RD_H5_GOTO(H5Pset_fletcher32(dcpl), st, out, "%s: /%s/%s", path, gname, x->name);
  /* Every element is written, so HDF5 need not write fill values first. */
  RD_H5_GOTO(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), st, out, "%s: /%s/%s", path, gname, x->name);
  RD_H5_GOTO(ds = H5Dcreate2(grp, x->name, H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), st, out,
             "%s: cannot create /%s/%s", path, gname, x->name);
  RD_H5_GOTO(mspace = ck_select(space, x, plan->writer), st, out, "%s: selecting /%s/%s", path, gname,
             x->name);
  RD_H5_GOTO(H5Dwrite(ds, H5T_NATIVE_FLOAT, mspace, space, dxpl, data), st, out, "%s: cannot write /%s/%s",
             path, gname, x->name);
out:
  if (mspace >= 0) H5Sclose(mspace);
  if (ds >= 0) H5Dclose(ds);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (space >= 0) H5Sclose(space);
  return st;
}

static int ck_attr(hid_t obj, const char *path, const char *name, hid_t ftype, hid_t mtype,
                   hsize_t n, const void *val) {
  int st = RD_OK;
  hid_t space = -1, a = -1;
  RD_H5_GOTO(space = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR), st, out, "%s: attribute %s",
             path, name);
  RD_H5_GOTO(a = H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT), st, out, "%s: attribute %s",
             path, name);
  RD_H5_GOTO(H5Awrite(a, mtype, val), st, out, "%s: cannot write attribute %s", path, name);
out:
  if (a >= 0) H5Aclose(a);
  if (space >= 0) H5Sclose(space);
  return st;
}

static int ck_attr_str(hid_t obj, const char *path, const char *name, const char *s) {
  int st = RD_OK;
  hid_t type = -1;
  if (!s) s = "";
  RD_H5_GOTO(type = H5Tcopy(H5T_C_S1), st, out, "%s: attribute %s", path, name);
  RD_H5_GOTO(H5Tset_size(type, strlen(s) + 1), st, out, "%s: attribute %s", path, name);
  RD_H5_GOTO(H5Tset_strpad(type, H5T_STR_NULLTERM), st, out, "%s: attribute %s", path, name);
  st = ck_attr(obj, path, name, type, type, 0, s);
out:
  if (type >= 0) H5Tclose(type);
  return st;
}

#define CK_A_I64(o, p, n, v) ck_attr(o, p, n, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, v)
#define CK_A_U64(o, p, n, v) ck_attr(o, p, n, H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, v)

static int ck_write_meta(hid_t f, const char *path, const rd_ckpt_meta *m) {
  int64_t schema = RD_CKPT_SCHEMA, round = m->round, n_rng = m->n_rng;
  RD_TRY(CK_A_I64(f, path, "schema_version", &schema));
  char stage[sizeof m->stage + 1];
  snprintf(stage, sizeof stage, "%.*s", (int)sizeof m->stage, m->stage);
  RD_TRY(ck_attr_str(f, path, "stage", stage));
  RD_TRY(CK_A_I64(f, path, "round", &round));
  RD_TRY(CK_A_I64(f, path, "step", &m->step));
  RD_TRY(CK_A_I64(f, path, "epoch", &m->epoch));
  RD_TRY(CK_A_I64(f, path, "cursor", &m->cursor));
  RD_TRY(CK_A_U64(f, path, "seed", &m->seed));
  RD_TRY(CK_A_I64(f, path, "n_rng", &n_rng));
  if (m->n_rng > 0)
    RD_TRY(ck_attr(f, path, "rng", H5T_STD_U32LE, H5T_NATIVE_UINT32, (hsize_t)m->n_rng, m->rng));
  RD_TRY(CK_A_I64(f, path, "bad_steps", &m->bad_steps));
  RD_TRY(ck_attr(f, path, "loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &m->loss));
  RD_TRY(CK_A_U64(f, path, "vocab_hash", &m->vocab_hash));
  RD_TRY(CK_A_U64(f, path, "config_hash", &m->config_hash));
  return ck_attr_str(f, path, "config_yaml", m->config_yaml);
}

/* The collective part of a save: every rank calls it with the same arguments
 * except the data and the plans. */
static int ck_write_file(const ck_comm *c, const char *tmp, const char *path, const rd_ckpt_tensor *t,
                         int n, const ck_plan *plan, const rd_ckpt_meta *meta) {
  static const char *groups[3] = {"params", "adam_m", "adam_v"};
  int st = RD_OK, any_m = 0;
  hid_t fapl = -1, f = -1, dxpl = -1, g[3] = {-1, -1, -1};
  for (int i = 0; i < n; i++) any_m |= t[i].m != NULL;
  RD_H5_GOTO(fapl = ck_fapl(c), st, out, "%s: file access list", path);
  RD_H5_GOTO(dxpl = H5Pcreate(H5P_DATASET_XFER), st, out, "%s: transfer list", path);
  /* HDF5 1.10 writes filtered (checksummed) chunks in parallel only
   * collectively. */
  if (c->size > 1)
    RD_H5_GOTO(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE), st, out, "%s: collective transfer", path);
  RD_H5_GOTO(f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), st, out, "cannot create %s", tmp);
  for (int k = 0; k < (any_m ? 3 : 1); k++)
    RD_H5_GOTO(g[k] = H5Gcreate2(f, groups[k], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), st, out,
               "%s: group /%s", path, groups[k]);
  for (int i = 0; i < n && st == RD_OK; i++) {
    const float *data[3] = {t[i].param, t[i].m, t[i].v};
    for (int k = 0; k < 3 && st == RD_OK; k++)
      if (data[k]) st = ck_write_ds(g[k], path, groups[k], &t[i], data[k], &plan[i], dxpl);
  }
  if (st == RD_OK) st = ck_write_meta(f, path, meta);
  if (st == RD_OK) {
    /* Last, so a file that has it holds everything written before it. */
    int64_t one = 1;
    st = CK_A_I64(f, path, "complete", &one);
  }
out:
  for (int k = 0; k < 3; k++)
    if (g[k] >= 0) H5Gclose(g[k]);
  /* A failed close after a failure must not replace its message. */
  if (f >= 0 && st == RD_OK)
    st = RD_H5_CTX(H5Fclose(f), "cannot close %s", tmp);
  else if (f >= 0)
    H5Fclose(f);
  if (dxpl >= 0) H5Pclose(dxpl);
  if (fapl >= 0) H5Pclose(fapl);
  return st;
}

/* ---- the save ---------------------------------------------------------- */

int rd_ckpt_save(const char *dir, const rd_ckpt_tensor *t, int n, const rd_ckpt_meta *meta,
                 int keep, MPI_Comm comm, char *path_out, size_t n_path) {
  ck_comm c;
  RD_TRY(ck_comm_init(&c, comm));
  ck_quiet q;
  ck_quiet_on(&q);
  char path[RD_PATH_MAX] = "", tmp[RD_PATH_MAX] = "", name[CK_FILE_MAX];
  ck_plan *plan = NULL;
  char *yaml = NULL;
  rd_ckpt_meta m0 = *meta;
  int st = ck_check_tensors(t, n, 1);
  if (st == RD_OK && meta->step < 0) st = rd_err(RD_EINVAL, "checkpoint: step %" PRId64 " is negative", meta->step);
  if (st == RD_OK && (meta->n_rng < 0 || meta->n_rng > RD_CKPT_MAXRNG))
    st = rd_err(RD_EINVAL, "checkpoint: n_rng = %d (0..%d)", meta->n_rng, RD_CKPT_MAXRNG);
  st = ck_agree(&c, st);
  if (st == RD_OK) st = ck_agree(&c, ck_same_list(&c, t, n));
  if (st == RD_OK) {
    plan = rd_calloc((size_t)n + 1, sizeof *plan, "checkpoint write plan");
    st = ck_agree(&c, plan ? ck_plan_writes(&c, t, n, plan) : RD_ENOMEM);
  }
  if (st == RD_OK && c.size > 1) {
    /* HDF5 needs the same attribute values on all ranks: rank 0's win. */
    uint64_t len = meta->config_yaml ? strlen(meta->config_yaml) : 0;
    if (MPI_Bcast(&m0, sizeof m0, MPI_BYTE, 0, comm) != MPI_SUCCESS ||
        MPI_Bcast(&len, 1, MPI_UINT64_T, 0, comm) != MPI_SUCCESS)
      st = rd_err(RD_EMPI, "checkpoint: broadcasting the meta failed");
    else if (!(yaml = rd_malloc(len + 1, "checkpoint config text")))
      st = RD_ENOMEM;
    st = ck_agree(&c, st);
    if (st == RD_OK) {
      if (c.rank == 0) memcpy(yaml, meta->config_yaml ? meta->config_yaml : "", len + 1);
      if (MPI_Bcast(yaml, (int)len + 1, MPI_CHAR, 0, comm) != MPI_SUCCESS)
        st = rd_err(RD_EMPI, "checkpoint: broadcasting the config failed");
      m0.config_yaml = yaml;
    }
    st = ck_agree(&c, st);
  }
  if (st == RD_OK && m0.config_yaml && strlen(m0.config_yaml) >= 60000)
    st = rd_err(RD_EINVAL, "checkpoint: config text of %zu bytes is too long for an attribute",
                strlen(m0.config_yaml));
  if (st == RD_OK) {
    rd_ckpt_filename(m0.step, name, sizeof name);
    if (c.rank == 0) {
      st = rd_fs_mkdirs(dir);
      if (st == RD_OK) st = rd_fs_join(path, sizeof path, dir, name);
      if (st == RD_OK) st = rd_fs_tmpname(path, tmp, sizeof tmp);
    }
    st = ck_agree(&c, st);
    if (st == RD_OK && c.size > 1) {
      st = ck_agree(&c, MPI_Bcast(path, sizeof path, MPI_CHAR, 0, comm) == MPI_SUCCESS &&
                                MPI_Bcast(tmp, sizeof tmp, MPI_CHAR, 0, comm) == MPI_SUCCESS
                            ? RD_OK
                            : rd_err(RD_EMPI, "checkpoint: broadcasting the file name failed"));
    }
  }
  int wrote = 0;
  if (st == RD_OK) {
    wrote = 1;
    st = ck_agree(&c, ck_write_file(&c, tmp, path, t, n, plan, &m0));
  }
  if (c.rank == 0 && wrote) {
    if (st == RD_OK) st = rd_fs_commit(tmp, path);
    if (st == RD_OK) {
      char latest[RD_PATH_MAX], line[CK_FILE_MAX + 1];
      snprintf(line, sizeof line, "%s\n", name);
      st = rd_fs_join(latest, sizeof latest, dir, "LATEST");
      if (st == RD_OK) st = rd_fs_write_atomic(latest, line, strlen(line));
    }
    if (st == RD_OK) ck_prune(dir, m0.step, keep);
    else rd_fs_discard(tmp);
  }
  if (wrote) st = ck_agree(&c, st);
  if (st == RD_OK && path_out && n_path) snprintf(path_out, n_path, "%s", path);
  free(plan);
  free(yaml);
  ck_quiet_off(&q);
  return st;
}
