/* Checkpoints in HDF5: one file per save, every tensor at its full logical
 * shape, each rank writing and reading its own hyperslab (docs/checkpoints.md).
 *
 * Parallel discipline: HDF5's file, dataset and attribute calls are collective
 * under the MPI-IO driver, so every rank walks the same sequence of them and
 * errors are made common with ck_agree() before the next collective step. */
#include "io/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/err.h"
#include "io/fs.h"
#include "io/h5check.h"

/* MPI's default handler aborts on failure; the check still reports the place
 * when a caller installs MPI_ERRORS_RETURN. */
#define CK_MPI(call)                                                           \
  do {                                                                         \
    int ck_mpi_s_ = (call);                                                    \
    if (ck_mpi_s_ != MPI_SUCCESS) {                                            \
      char ck_mpi_m_[MPI_MAX_ERROR_STRING];                                    \
      int ck_mpi_l_ = 0;                                                       \
      MPI_Error_string(ck_mpi_s_, ck_mpi_m_, &ck_mpi_l_);                      \
      return rd_err_at(RD_EMPI, __FILE__, __LINE__, "MPI: %s", ck_mpi_m_);    \
    }                                                                          \
  } while (0)

/* The link-info type of H5Literate's callback was renamed in 1.12. */
#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t ck_linfo;
#else
typedef H5L_info_t ck_linfo;
#endif

#define CK_CHUNK_ELEMS (256 * 1024) /* 1 MiB of floats per chunk at most */
#define CK_NAME_MAX 128
#define CK_FILE_MAX 64

/* Our errors are reported through io/err.h; HDF5's own printing is off
 * while we run and restored after. */
typedef struct {
  H5E_auto2_t fn;
  void *data;
} ck_quiet;

static void ck_quiet_on(ck_quiet *q) {
  H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
static void ck_quiet_off(ck_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->fn, q->data); }

typedef struct {
  MPI_Comm comm;
  int rank, size;
} ck_comm;

/* Before MPI_Init (a serial tool loading a checkpoint) MPI_COMM_SELF means
 * this process alone. */
static int ck_comm_init(ck_comm *c, MPI_Comm comm) {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  c->comm = comm;
  c->rank = 0;
  c->size = 1;
  if (!init || fin) {
    if (comm != MPI_COMM_SELF)
      return rd_err(RD_ESTATE, "checkpoint: MPI is not running; only MPI_COMM_SELF works");
    return RD_OK;
  }
  CK_MPI(MPI_Comm_rank(comm, &c->rank));
  CK_MPI(MPI_Comm_size(comm, &c->size));
  return RD_OK;
}

/* Makes a status common to all ranks: the lowest failing rank's code and
 * message become everyone's. */
static int ck_agree(const ck_comm *c, int s) {
  if (c->size == 1) return s;
  int who = s < 0 ? c->rank : c->size, first = c->size;
  CK_MPI(MPI_Allreduce(&who, &first, 1, MPI_INT, MPI_MIN, c->comm));
  if (first == c->size) return s;
  int code = s;
  char msg[2048];
  if (c->rank == first) snprintf(msg, sizeof msg, "%s", rd_err_msg());
  CK_MPI(MPI_Bcast(&code, 1, MPI_INT, first, c->comm));
  CK_MPI(MPI_Bcast(msg, sizeof msg, MPI_CHAR, first, c->comm));
  if (c->rank != first) rd_err(code, "%s", msg);
  return code;
}

void rd_ckpt_shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
  size_t at = 0;
  buf[0] = '\0';
  at += (size_t)snprintf(buf, n, "[");
  for (int d = 0; d < ndim && at < n; d++)
    at += (size_t)snprintf(buf + at, n - at, "%s%" PRId64, d ? ", " : "", shape[d]);
  if (at < n) snprintf(buf + at, n - at, "]");
}

void rd_ckpt_filename(int64_t step, char *buf, size_t n) {
  snprintf(buf, n, "step-%08" PRId64 ".h5", step);
}

void rd_ckpt_meta_free(rd_ckpt_meta *meta) {
  free((char *)meta->config_yaml);
  meta->config_yaml = NULL;
}

/* ---- tensor descriptors ------------------------------------------------- */

static int ck_check_tensors(const rd_ckpt_tensor *t, int n, int need_param) {
  if (n < 0) return rd_err(RD_EINVAL, "checkpoint: %d tensors", n);
  for (int i = 0; i < n; i++) {
    const rd_ckpt_tensor *x = &t[i];
    if (!x->name || !x->name[0] || strchr(x->name, '/') || strlen(x->name) >= CK_NAME_MAX)
      return rd_err(RD_EINVAL, "checkpoint: tensor %d has a bad name \"%s\" (non-empty, no '/', < %d chars)",
                    i, x->name ? x->name : "(null)", CK_NAME_MAX);
    if (x->ndim < 1 || x->ndim > RD_CKPT_MAXDIM)
      return rd_err(RD_EINVAL, "checkpoint: tensor %s has %d dimensions (1..%d)", x->name, x->ndim,
                    RD_CKPT_MAXDIM);
    for (int d = 0; d < x->ndim; d++)
      if (x->shape[d] < 1)
        return rd_err(RD_EINVAL, "checkpoint: tensor %s has dimension %d of size %" PRId64, x->name,
                      d, x->shape[d]);
    if (x->split_axis < -1 || x->split_axis >= x->ndim)
      return rd_err(RD_EINVAL, "checkpoint: tensor %s has split axis %d (-1..%d)", x->name,
                    x->split_axis, x->ndim - 1);
    if (x->split_axis >= 0) {
      int64_t dim = x->shape[x->split_axis];
      if (x->slab_offset < 0 || x->slab_count < 0 || x->slab_offset + x->slab_count > dim)
        return rd_err(RD_EINVAL, "checkpoint: tensor %s: slab [%" PRId64 ", +%" PRId64 ") is outside axis %d of size %" PRId64,
                      x->name, x->slab_offset, x->slab_count, x->split_axis, dim);
    }
    if (need_param && !x->param) return rd_err(RD_EINVAL, "checkpoint: tensor %s has no data", x->name);
    if (!x->m != !x->v)
      return rd_err(RD_EINVAL, "checkpoint: tensor %s has one AdamW moment without the other", x->name);
    for (int j = 0; j < i; j++)
      if (strcmp(t[j].name, x->name) == 0)
        return rd_err(RD_EINVAL, "checkpoint: tensor %s is listed twice", x->name);
  }
  return RD_OK;
}

/* FNV-1a over what must be the same on every rank. */
static uint64_t ck_fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

static int ck_same_list(const ck_comm *c, const rd_ckpt_tensor *t, int n) {
  if (c->size == 1) return RD_OK;
  uint64_t h = ck_fnv(14695981039346656037ull, &n, sizeof n), lo, hi;
  for (int i = 0; i < n; i++) {
    int f[3] = {t[i].ndim, t[i].split_axis, t[i].m != NULL};
    h = ck_fnv(h, t[i].name, strlen(t[i].name) + 1);
    h = ck_fnv(h, f, sizeof f);
    h = ck_fnv(h, t[i].shape, sizeof(int64_t) * (size_t)t[i].ndim);
  }
  CK_MPI(MPI_Allreduce(&h, &lo, 1, MPI_UINT64_T, MPI_MIN, c->comm));
  CK_MPI(MPI_Allreduce(&h, &hi, 1, MPI_UINT64_T, MPI_MAX, c->comm));
  if (lo != hi)
    return rd_err(RD_EINVAL, "checkpoint: ranks disagree on the tensor list (names, shapes, split axes or moments)");
  return RD_OK;
}

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

static hid_t ck_fapl(const ck_comm *c) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0) return fapl;
  if (c->size > 1 && H5Pset_fapl_mpio(fapl, c->comm, MPI_INFO_NULL) < 0) {
    H5Pclose(fapl);
    return -1;
  }
  return fapl;
}

/* Selects this rank's slab in fspace (or nothing) and makes the matching
 * memory space: the slab is contiguous row-major in memory. */
static hid_t ck_select(hid_t fspace, const rd_ckpt_tensor *x, int active) {
  hsize_t start[RD_CKPT_MAXDIM] = {0}, count[RD_CKPT_MAXDIM];
  for (int d = 0; d < x->ndim; d++) count[d] = (hsize_t)x->shape[d];
  if (x->split_axis >= 0) {
    start[x->split_axis] = (hsize_t)x->slab_offset;
    count[x->split_axis] = (hsize_t)x->slab_count;
  }
  if (!active || (x->split_axis >= 0 && x->slab_count == 0)) {
    hsize_t one = 1;
    hid_t m = H5Screate_simple(1, &one, NULL);
    if (m < 0 || H5Sselect_none(m) < 0 || H5Sselect_none(fspace) < 0) return -1;
    return m;
  }
  if (H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0) return -1;
  return H5Screate_simple(x->ndim, count, NULL);
}

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

/* ---- folder of checkpoints ---------------------------------------------- */

typedef struct {
  int64_t step;
  char name[CK_FILE_MAX];
} ck_entry;

/* "step-<8+ digits>.h5" -> step; anything else (temporaries) -> -1. */
static int64_t ck_parse_name(const char *s) {
  if (strncmp(s, "step-", 5) != 0) return -1;
  const char *p = s + 5;
  int64_t step = 0;
  int digits = 0;
  for (; *p >= '0' && *p <= '9' && digits < 18; p++, digits++) step = step * 10 + (*p - '0');
  if (digits < 8 || strcmp(p, ".h5") != 0) return -1;
  return step;
}

static int ck_cmp_desc(const void *a, const void *b) {
  const ck_entry *x = a, *y = b;
  return x->step < y->step ? 1 : x->step > y->step ? -1 : 0;
}

/* The checkpoints in dir, newest first; a missing folder has none. */
static int ck_scan(const char *dir, ck_entry **out, int *n) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT) return RD_OK;
    return rd_err(RD_EIO, "cannot list %s: %s", dir, strerror(errno));
  }
  int cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    int64_t step = ck_parse_name(e->d_name);
    if (step < 0 || strlen(e->d_name) >= CK_FILE_MAX) continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 16;
      ck_entry *nb = realloc(*out, (size_t)cap * sizeof **out);
      if (!nb) {
        closedir(d);
        free(*out);
        *out = NULL;
        return rd_err(RD_ENOMEM, "out of memory listing %s", dir);
      }
      *out = nb;
    }
    (*out)[*n].step = step;
    memcpy((*out)[*n].name, e->d_name, strlen(e->d_name) + 1); /* < CK_FILE_MAX, checked above */
    (*n)++;
  }
  closedir(d);
  if (*n) qsort(*out, (size_t)*n, sizeof **out, ck_cmp_desc);
  return RD_OK;
}

/* Keeps the `keep` newest checkpoints at or below `step`; newer ones (left
 * by a run that went further before being resumed from an older file) are
 * not ours to judge and stay. Temporaries of interrupted saves go. Failing
 * to delete is a warning: the new checkpoint is safe either way. */
static void ck_prune(const char *dir, int64_t step, int keep) {
  ck_entry *e;
  int n, kept = 0;
  if (keep > 0 && ck_scan(dir, &e, &n) == RD_OK) {
    for (int i = 0; i < n; i++) {
      if (e[i].step > step) continue;
      if (kept++ < keep || e[i].step == step) continue;
      char p[RD_PATH_MAX];
      if (rd_fs_join(p, sizeof p, dir, e[i].name) == RD_OK && unlink(p) != 0)
        fprintf(stderr, "rediff: warning: cannot delete old checkpoint %s: %s\n", p, strerror(errno));
    }
    free(e);
  }
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (strncmp(de->d_name, ".step-", 6) != 0 || !strstr(de->d_name, ".h5.tmp.")) continue;
    char p[RD_PATH_MAX];
    if (rd_fs_join(p, sizeof p, dir, de->d_name) == RD_OK) unlink(p);
  }
  if (d) closedir(d);
}

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

/* ---- reading ------------------------------------------------------------ */

static int ck_has_attr(hid_t f, const char *path, const char *name) {
  htri_t e = -1;
  RD_TRY(RD_H5_CTX(e = H5Aexists(f, name), "%s: attribute %s", path, name));
  return e > 0;
}

/* Reads a numeric attribute of n elements, converted to mtype. */
static int ck_get(hid_t f, const char *path, const char *name, hid_t mtype, hsize_t n, void *val) {
  int st = RD_OK;
  hid_t a = -1, space = -1;
  int e = ck_has_attr(f, path, name);
  if (e <= 0) return e < 0 ? e : rd_err(RD_EIO, "%s: attribute %s is missing", path, name);
  RD_H5_GOTO(a = H5Aopen(f, name, H5P_DEFAULT), st, out, "%s: attribute %s", path, name);
  RD_H5_GOTO(space = H5Aget_space(a), st, out, "%s: attribute %s", path, name);
  hssize_t have = H5Sget_simple_extent_npoints(space);
  if (have != (hssize_t)(n ? n : 1)) {
    st = rd_err(RD_EIO, "%s: attribute %s has %lld values, want %llu", path, name, (long long)have,
                (unsigned long long)(n ? n : 1));
    goto out;
  }
  RD_H5_GOTO(H5Aread(a, mtype, val), st, out, "%s: cannot read attribute %s", path, name);
out:
  if (space >= 0) H5Sclose(space);
  if (a >= 0) H5Aclose(a);
  return st;
}

/* A fixed-length string attribute as a malloc'd NUL-terminated string. */
static int ck_get_str(hid_t f, const char *path, const char *name, char **out) {
  int st = RD_OK;
  hid_t a = -1, ftype = -1, mtype = -1;
  char *buf = NULL;
  int e = ck_has_attr(f, path, name);
  if (e <= 0) return e < 0 ? e : rd_err(RD_EIO, "%s: attribute %s is missing", path, name);
  RD_H5_GOTO(a = H5Aopen(f, name, H5P_DEFAULT), st, out, "%s: attribute %s", path, name);
  RD_H5_GOTO(ftype = H5Aget_type(a), st, out, "%s: attribute %s", path, name);
  if (H5Tget_class(ftype) != H5T_STRING || H5Tis_variable_str(ftype) != 0) {
    st = rd_err(RD_EIO, "%s: attribute %s is not a fixed-length string", path, name);
    goto out;
  }
  size_t sz = H5Tget_size(ftype);
  RD_H5_GOTO(mtype = H5Tcopy(H5T_C_S1), st, out, "%s: attribute %s", path, name);
  RD_H5_GOTO(H5Tset_size(mtype, sz), st, out, "%s: attribute %s", path, name);
  if (!(buf = rd_malloc(sz + 1, "checkpoint string attribute"))) {
    st = RD_ENOMEM;
    goto out;
  }
  RD_H5_GOTO(H5Aread(a, mtype, buf), st, out, "%s: cannot read attribute %s", path, name);
  buf[sz] = '\0';
  *out = buf;
  buf = NULL;
out:
  free(buf);
  if (mtype >= 0) H5Tclose(mtype);
  if (ftype >= 0) H5Tclose(ftype);
  if (a >= 0) H5Aclose(a);
  return st;
}

/* Meta of an open checkpoint; the file must be complete and of a schema we
 * read. meta->config_yaml is malloc'd on success. */
static int ck_read_meta(hid_t f, const char *path, rd_ckpt_meta *m) {
  int64_t schema = 0, complete = 0, round = 0, n_rng = 0;
  char *stage = NULL;
  memset(m, 0, sizeof *m);
  int e = ck_has_attr(f, path, "complete");
  if (e < 0) return e;
  if (e == 0) return rd_err(RD_EIO, "%s: incomplete checkpoint (no 'complete' attribute): the save was interrupted", path);
  RD_TRY(ck_get(f, path, "complete", H5T_NATIVE_INT64, 0, &complete));
  if (complete != 1) return rd_err(RD_EIO, "%s: incomplete checkpoint (complete = %lld)", path, (long long)complete);
  RD_TRY(ck_get(f, path, "schema_version", H5T_NATIVE_INT64, 0, &schema));
  if (schema != RD_CKPT_SCHEMA)
    return rd_err(RD_EINVAL, "%s: checkpoint schema version %lld, this build reads version %d", path,
                  (long long)schema, RD_CKPT_SCHEMA);
  RD_TRY(ck_get_str(f, path, "stage", &stage));
  snprintf(m->stage, sizeof m->stage, "%s", stage);
  free(stage);
  RD_TRY(ck_get(f, path, "round", H5T_NATIVE_INT64, 0, &round));
  m->round = (int)round;
  RD_TRY(ck_get(f, path, "step", H5T_NATIVE_INT64, 0, &m->step));
  RD_TRY(ck_get(f, path, "epoch", H5T_NATIVE_INT64, 0, &m->epoch));
  RD_TRY(ck_get(f, path, "cursor", H5T_NATIVE_INT64, 0, &m->cursor));
  RD_TRY(ck_get(f, path, "seed", H5T_NATIVE_UINT64, 0, &m->seed));
  RD_TRY(ck_get(f, path, "n_rng", H5T_NATIVE_INT64, 0, &n_rng));
  if (n_rng < 0 || n_rng > RD_CKPT_MAXRNG)
    return rd_err(RD_EIO, "%s: n_rng = %lld (0..%d)", path, (long long)n_rng, RD_CKPT_MAXRNG);
  m->n_rng = (int)n_rng;
  if (n_rng > 0) RD_TRY(ck_get(f, path, "rng", H5T_NATIVE_UINT32, (hsize_t)n_rng, m->rng));
  RD_TRY(ck_get(f, path, "bad_steps", H5T_NATIVE_INT64, 0, &m->bad_steps));
  RD_TRY(ck_get(f, path, "loss", H5T_NATIVE_DOUBLE, 0, &m->loss));
  RD_TRY(ck_get(f, path, "vocab_hash", H5T_NATIVE_UINT64, 0, &m->vocab_hash));
  RD_TRY(ck_get(f, path, "config_hash", H5T_NATIVE_UINT64, 0, &m->config_hash));
  char *yaml = NULL;
  RD_TRY(ck_get_str(f, path, "config_yaml", &yaml));
  m->config_yaml = yaml;
  return RD_OK;
}

static int ck_read_ds(hid_t f, const char *path, const char *gname, const rd_ckpt_tensor *x,
                      float *buf, hid_t dxpl) {
  int st = RD_OK;
  hid_t ds = -1, space = -1, mspace = -1;
  char dsname[CK_NAME_MAX + 16];
  snprintf(dsname, sizeof dsname, "/%s/%s", gname, x->name);
  htri_t e = -1;
  RD_H5_GOTO(e = H5Lexists(f, gname, H5P_DEFAULT), st, out, "%s: looking up %s", path, dsname);
  if (e > 0) RD_H5_GOTO(e = H5Lexists(f, dsname, H5P_DEFAULT), st, out, "%s: looking up %s", path, dsname);
  if (e == 0) {
    if (strcmp(gname, "params") == 0) return rd_err(RD_EINVAL, "%s: has no tensor %s (no dataset %s)", path, x->name, dsname);
    return rd_err(RD_EINVAL, "%s: has no AdamW state for tensor %s (no dataset %s)", path, x->name, dsname);
  }
  RD_H5_GOTO(ds = H5Dopen2(f, dsname, H5P_DEFAULT), st, out, "%s: cannot open %s", path, dsname);
  RD_H5_GOTO(space = H5Dget_space(ds), st, out, "%s: %s", path, dsname);
  hsize_t dims[H5S_MAX_RANK];
  int nd = -1;
  RD_H5_GOTO(nd = H5Sget_simple_extent_ndims(space), st, out, "%s: %s", path, dsname);
  if (nd > H5S_MAX_RANK) nd = H5S_MAX_RANK;
  RD_H5_GOTO(H5Sget_simple_extent_dims(space, dims, NULL), st, out, "%s: %s", path, dsname);
  int same = nd == x->ndim;
  int64_t have[H5S_MAX_RANK];
  for (int d = 0; d < nd; d++) {
    have[d] = (int64_t)dims[d];
    same &= d < x->ndim && have[d] == x->shape[d];
  }
  if (!same) {
    char a[160], b[160];
    rd_ckpt_shape_str(nd, have, a, sizeof a);
    rd_ckpt_shape_str(x->ndim, x->shape, b, sizeof b);
    st = rd_err(RD_EINVAL, "%s: tensor %s has shape %s, the model wants %s", path, x->name, a, b);
    goto out;
  }
  RD_H5_GOTO(mspace = ck_select(space, x, 1), st, out, "%s: selecting %s", path, dsname);
  RD_H5_GOTO(H5Dread(ds, H5T_NATIVE_FLOAT, mspace, space, dxpl, buf), st, out, "%s: cannot read %s", path,
             dsname);
out:
  if (mspace >= 0) H5Sclose(mspace);
  if (space >= 0) H5Sclose(space);
  if (ds >= 0) H5Dclose(ds);
  return st;
}

typedef struct {
  const rd_ckpt_tensor *t;
  int n;
  char extra[CK_NAME_MAX];
  int n_extra;
} ck_extra_ctx;

static herr_t ck_extra_cb(hid_t g, const char *name, const ck_linfo *info, void *data) {
  ck_extra_ctx *x = data;
  for (int i = 0; i < x->n; i++)
    if (strcmp(x->t[i].name, name) == 0) return 0;
  if (x->n_extra++ == 0) snprintf(x->extra, sizeof x->extra, "%s", name);
  return 0;
}

/* A tensor in the file the model does not have means another model. */
static int ck_check_extra(hid_t f, const char *path, const rd_ckpt_tensor *t, int n) {
  int st = RD_OK;
  hid_t g = -1;
  ck_extra_ctx x = {t, n, "", 0};
  htri_t e = -1;
  RD_H5_GOTO(e = H5Lexists(f, "params", H5P_DEFAULT), st, out, "%s: looking up /params", path);
  if (e == 0) return rd_err(RD_EIO, "%s: no /params group", path);
  RD_H5_GOTO(g = H5Gopen2(f, "params", H5P_DEFAULT), st, out, "%s: cannot open /params", path);
  RD_H5_GOTO(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, ck_extra_cb, &x), st, out,
             "%s: listing /params", path);
  if (x.n_extra)
    st = rd_err(RD_EINVAL, "%s: holds tensor %s%s that the model does not have", path, x.extra,
                x.n_extra > 1 ? " and others" : "");
out:
  if (g >= 0) H5Gclose(g);
  return st;
}

static int ck_open(const ck_comm *c, const char *path, hid_t *f) {
  int st = RD_OK;
  hid_t fapl = -1;
  *f = -1;
  if (!rd_fs_exists(path)) return rd_err(RD_EIO, "%s: no such file", path);
  RD_H5_GOTO(fapl = ck_fapl(c), st, out, "%s: file access list", path);
  RD_H5_GOTO(*f = H5Fopen(path, H5F_ACC_RDONLY, fapl), st, out,
             "%s: cannot open as HDF5 (truncated or not a checkpoint)", path);
out:
  if (fapl >= 0) H5Pclose(fapl);
  return st;
}

int rd_ckpt_load(const char *path, rd_ckpt_tensor *t, int n, rd_ckpt_meta *meta, MPI_Comm comm) {
  ck_comm c;
  RD_TRY(ck_comm_init(&c, comm));
  ck_quiet q;
  ck_quiet_on(&q);
  uint64_t want_vocab = meta->vocab_hash;
  memset(meta, 0, sizeof *meta);
  hid_t f = -1, dxpl = -1;
  int st = ck_agree(&c, ck_check_tensors(t, n, 1));
  if (st == RD_OK) st = ck_agree(&c, ck_same_list(&c, t, n));
  /* Every rank sees the same file, so everything but the data reads below
   * fails on all ranks alike. */
  if (st == RD_OK) st = ck_open(&c, path, &f);
  if (st == RD_OK) st = ck_read_meta(f, path, meta);
  if (st == RD_OK && want_vocab && meta->vocab_hash != want_vocab)
    st = rd_err(RD_EINVAL,
                "%s: written for vocabulary hash %016" PRIx64 ", this config's vocabulary has hash %016" PRIx64
                " (another data set or tokenizer)", path, meta->vocab_hash, want_vocab);
  if (st == RD_OK) st = ck_check_extra(f, path, t, n);
  if (st == RD_OK) st = RD_H5_CTX(dxpl = H5Pcreate(H5P_DATASET_XFER), "%s: transfer list", path);
  /* Reads are independent: a checksum failure in one rank's slab must not
   * leave the others waiting inside a collective read. A failed read does
   * not stop the loop, so all ranks still open and close the same datasets. */
  int read_err = RD_OK;
  for (int i = 0; i < n && st == RD_OK; i++) {
    float *buf[3] = {t[i].param, t[i].m, t[i].v};
    static const char *groups[3] = {"params", "adam_m", "adam_v"};
    for (int k = 0; k < 3 && st == RD_OK; k++) {
      if (!buf[k]) continue;
      int s = ck_read_ds(f, path, groups[k], &t[i], buf[k], dxpl);
      if (s == RD_EIO) {
        if (read_err == RD_OK) read_err = s;
      } else {
        st = s;
      }
    }
  }
  if (st == RD_OK) st = read_err;
  if (dxpl >= 0) H5Pclose(dxpl);
  if (f >= 0 && st == RD_OK)
    st = RD_H5_CTX(H5Fclose(f), "cannot close %s", path);
  else if (f >= 0)
    H5Fclose(f);
  st = ck_agree(&c, st);
  if (st < 0) rd_ckpt_meta_free(meta);
  ck_quiet_off(&q);
  return st;
}

/* ---- the newest usable checkpoint --------------------------------------- */

/* The files to try, in order (rank 0 decides, see rd_ckpt_load_latest).
 * Returns the count, 0 when the folder holds no checkpoint, or an error. */
static int ck_candidates(const char *dir, ck_entry **out) {
  ck_entry *e;
  int n;
  *out = NULL;
  RD_TRY(ck_scan(dir, &e, &n));
  char lp[RD_PATH_MAX], *text = NULL;
  int64_t latest = -1;
  RD_TRY(rd_fs_join(lp, sizeof lp, dir, "LATEST"));
  if (rd_fs_exists(lp)) {
    if (rd_fs_read_all(lp, &text, NULL) == RD_OK) {
      text[strcspn(text, " \t\r\n")] = '\0';
      latest = ck_parse_name(text);
    }
    if (latest < 0)
      fprintf(stderr, "rediff: warning: %s does not name a checkpoint (\"%.64s\"); trying the newest file\n",
              lp, text ? text : "");
    free(text);
  }
  if (latest >= 0) {
    /* LATEST is the commit point: a newer file is from a save that never
     * reached it. */
    int k = 0, found = 0;
    for (int i = 0; i < n; i++) {
      if (e[i].step > latest) {
        fprintf(stderr, "rediff: warning: ignoring %s/%s, newer than LATEST (%s/step-%08" PRId64 ".h5)\n",
                dir, e[i].name, dir, latest);
        continue;
      }
      found |= e[i].step == latest;
      e[k++] = e[i];
    }
    if (!found)
      fprintf(stderr, "rediff: warning: LATEST in %s names step-%08" PRId64 ".h5, which does not exist\n",
              dir, latest);
    if (k == 0) {
      free(e);
      return rd_err(RD_EIO, "no usable checkpoint in %s: LATEST names step-%08" PRId64 ".h5, which does not exist",
                    dir, latest);
    }
    n = k;
  }
  *out = e;
  return n;
}

int rd_ckpt_load_latest(const char *dir, rd_ckpt_tensor *t, int n, rd_ckpt_meta *meta,
                        MPI_Comm comm, char *path_out, size_t n_path) {
  ck_comm c;
  RD_TRY(ck_comm_init(&c, comm));
  ck_entry *e = NULL;
  /* One rank lists the folder so all try the same files in the same order. */
  int nc = c.rank == 0 ? ck_candidates(dir, &e) : 0;
  nc = ck_agree(&c, nc);
  if (nc < 0) return nc;
  if (c.size > 1) {
    CK_MPI(MPI_Bcast(&nc, 1, MPI_INT, 0, comm));
    int st = RD_OK;
    if (c.rank != 0 && nc > 0 && !(e = rd_calloc((size_t)nc, sizeof *e, "checkpoint list")))
      st = RD_ENOMEM;
    if ((st = ck_agree(&c, st)) < 0) {
      free(e);
      return st;
    }
    if (nc > 0) CK_MPI(MPI_Bcast(e, nc * (int)sizeof *e, MPI_BYTE, 0, comm));
  }
  if (nc == 0) return 1;
  uint64_t want_vocab = meta->vocab_hash;
  int st = RD_EIO;
  for (int i = 0; i < nc; i++) {
    char path[RD_PATH_MAX];
    st = rd_fs_join(path, sizeof path, dir, e[i].name);
    if (st < 0) break;
    meta->vocab_hash = want_vocab;
    st = rd_ckpt_load(path, t, n, meta, comm);
    if (st == RD_OK) {
      if (path_out && n_path) snprintf(path_out, n_path, "%s", path);
      break;
    }
    if (st != RD_EIO) break;
    if (c.rank == 0)
      fprintf(stderr, "rediff: warning: unusable checkpoint: %s%s\n", rd_err_msg(),
              i + 1 < nc ? "; trying the previous one" : "");
    if (i + 1 == nc) st = rd_err(RD_EIO, "no usable checkpoint in %s (%d tried, see the warnings above)", dir, nc);
  }
  free(e);
  return st;
}

/* ---- inspection --------------------------------------------------------- */

int rd_ckpt_peek(const char *path, rd_ckpt_meta *meta) {
  ck_comm c = {MPI_COMM_SELF, 0, 1};
  ck_quiet q;
  ck_quiet_on(&q);
  hid_t f = -1;
  memset(meta, 0, sizeof *meta);
  int st = ck_open(&c, path, &f);
  if (st == RD_OK) st = ck_read_meta(f, path, meta);
  if (f >= 0) H5Fclose(f);
  if (st < 0) rd_ckpt_meta_free(meta);
  ck_quiet_off(&q);
  return st;
}

typedef struct {
  hid_t f;
  const char *path;
  rd_ckpt_info *v;
  int n, cap, st;
} ck_list_ctx;

static herr_t ck_list_cb(hid_t g, const char *name, const ck_linfo *info, void *data) {
  ck_list_ctx *x = data;
  int st = RD_OK;
  hid_t ds = -1, space = -1;
  if (x->n == x->cap) {
    x->cap = x->cap ? 2 * x->cap : 64;
    rd_ckpt_info *nb = realloc(x->v, (size_t)x->cap * sizeof *nb);
    if (!nb) {
      x->st = rd_err(RD_ENOMEM, "out of memory listing %s", x->path);
      return -1;
    }
    x->v = nb;
  }
  rd_ckpt_info *it = &x->v[x->n];
  memset(it, 0, sizeof *it);
  snprintf(it->name, sizeof it->name, "%s", name);
  hsize_t dims[H5S_MAX_RANK];
  RD_H5_GOTO(ds = H5Dopen2(g, name, H5P_DEFAULT), st, out, "%s: cannot open /params/%s", x->path, name);
  RD_H5_GOTO(space = H5Dget_space(ds), st, out, "%s: /params/%s", x->path, name);
  RD_H5_GOTO(it->ndim = H5Sget_simple_extent_ndims(space), st, out, "%s: /params/%s", x->path, name);
  if (it->ndim > RD_CKPT_MAXDIM) {
    st = rd_err(RD_EIO, "%s: /params/%s has %d dimensions", x->path, name, it->ndim);
    goto out;
  }
  RD_H5_GOTO(H5Sget_simple_extent_dims(space, dims, NULL), st, out, "%s: /params/%s", x->path, name);
  for (int d = 0; d < it->ndim; d++) it->shape[d] = (int64_t)dims[d];
  char mp[CK_NAME_MAX + 16], vp[CK_NAME_MAX + 16];
  snprintf(mp, sizeof mp, "adam_m/%s", name);
  snprintf(vp, sizeof vp, "adam_v/%s", name);
  it->has_moments = H5Lexists(x->f, "adam_m", H5P_DEFAULT) > 0 && H5Lexists(x->f, mp, H5P_DEFAULT) > 0 &&
                    H5Lexists(x->f, "adam_v", H5P_DEFAULT) > 0 && H5Lexists(x->f, vp, H5P_DEFAULT) > 0;
  x->n++;
out:
  if (space >= 0) H5Sclose(space);
  if (ds >= 0) H5Dclose(ds);
  x->st = st;
  return st < 0 ? -1 : 0;
}

int rd_ckpt_list(const char *path, rd_ckpt_info **out, int *n) {
  ck_comm c = {MPI_COMM_SELF, 0, 1};
  ck_quiet q;
  ck_quiet_on(&q);
  ck_list_ctx x = {-1, path, NULL, 0, 0, RD_OK};
  hid_t g = -1;
  *out = NULL;
  *n = 0;
  int st = ck_open(&c, path, &x.f);
  if (st == RD_OK) st = RD_H5_CTX(g = H5Gopen2(x.f, "params", H5P_DEFAULT), "%s: cannot open /params", path);
  /* Name order, so listings are the same on every run. */
  if (st == RD_OK && H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, ck_list_cb, &x) < 0)
    st = x.st < 0 ? x.st : rd_err_wrap(RD_H5_FAILED("H5Literate"), "%s: listing /params", path);
  if (g >= 0) H5Gclose(g);
  if (x.f >= 0) H5Fclose(x.f);
  if (st < 0) {
    free(x.v);
  } else {
    *out = x.v;
    *n = x.n;
  }
  ck_quiet_off(&q);
  return st;
}
