/* Reading a checkpoint (io/ckpt.h): its attributes and meta, each rank's
 * slab of every tensor, rd_ckpt_load, and rd_ckpt_load_latest, which falls
 * back to older files when the newest is unusable. */
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
#include "io/h5file.h"

/* ---- attributes --------------------------------------------------------- */

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

int ck_read_meta(hid_t f, const char *path, rd_ckpt_meta *m) {
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
  /* The step indexes logs, schedules and RNG streams; one from a file must
   * be in range and agree with the name the checkpoint was saved under. */
  if (m->step < 0 || m->step > RD_CKPT_MAX_STEP)
    return rd_err(RD_EINVAL, "%s: step %lld is outside [0, %lld]", path, (long long)m->step,
                  (long long)RD_CKPT_MAX_STEP);
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  long long named;
  char tail[8];
  if (sscanf(base, "step-%lld.h%7s", &named, tail) == 2 && strcmp(tail, "5") == 0 && named != m->step)
    return rd_err(RD_EINVAL, "%s: the file holds step %lld, its name says %lld", path, (long long)m->step, named);
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

/* ---- tensors ------------------------------------------------------------ */

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

int ck_open(const ck_comm *c, const char *path, hid_t *f) {
  int st = RD_OK;
  hid_t fapl = -1;
  *f = -1;
  st = rd_fs_require(path, RD_EIO);
  if (st < 0) return rd_err_wrap(st, "%s", path);
  RD_H5_GOTO(fapl = ck_fapl(c), st, out, "%s: file access list", path);
  RD_H5_GOTO(*f = H5Fopen(path, H5F_ACC_RDONLY, fapl), st, out,
             "%s: cannot open as HDF5 (truncated or not a checkpoint)", path);
  st = rd_h5_check_contained(*f, path);
  if (st < 0) {
    H5Fclose(*f);
    *f = -1;
  }
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
