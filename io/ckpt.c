/* What saving and loading a checkpoint share: ranks agreeing on a status,
 * checks of the caller's tensor descriptors, a rank's slab in an HDF5
 * dataspace, and the names of things. io/ckpt_internal.h lists the files of
 * the module.
 *
 * Parallel discipline: HDF5's file, dataset and attribute calls are collective
 * under the MPI-IO driver, so every rank walks the same sequence of them and
 * errors are made common with ck_agree() before the next collective step. */
#include "io/ckpt.h"

#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/ckpt_internal.h"
#include "io/core/err.h"
#include "io/core/hash.h"

/* ---- ranks ------------------------------------------------------------- */

void ck_quiet_on(ck_quiet *q) {
  H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
void ck_quiet_off(ck_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->fn, q->data); }

int ck_comm_init(ck_comm *c, MPI_Comm comm) {
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

int ck_agree(const ck_comm *c, int s) {
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

/* ---- names ------------------------------------------------------------- */

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

int ck_check_tensors(const rd_ckpt_tensor *t, int n, int need_param) {
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

int ck_same_list(const ck_comm *c, const rd_ckpt_tensor *t, int n) {
  if (c->size == 1) return RD_OK;
  /* The hash (io/core/hash.h) of what must be the same on every rank: its minimum
   * and maximum over the ranks differ when any rank's list does. */
  uint64_t h = rd_hash_bytes(RD_HASH_INIT, &n, sizeof n), lo, hi;
  for (int i = 0; i < n; i++) {
    int f[3] = {t[i].ndim, t[i].split_axis, t[i].m != NULL};
    h = rd_hash_bytes(h, t[i].name, strlen(t[i].name) + 1);
    h = rd_hash_bytes(h, f, sizeof f);
    h = rd_hash_bytes(h, t[i].shape, sizeof(int64_t) * (size_t)t[i].ndim);
  }
  CK_MPI(MPI_Allreduce(&h, &lo, 1, MPI_UINT64_T, MPI_MIN, c->comm));
  CK_MPI(MPI_Allreduce(&h, &hi, 1, MPI_UINT64_T, MPI_MAX, c->comm));
  if (lo != hi)
    return rd_err(RD_EINVAL, "checkpoint: ranks disagree on the tensor list (names, shapes, split axes or moments)");
  return RD_OK;
}

/* ---- slabs in HDF5 ------------------------------------------------------ */

hid_t ck_fapl(const ck_comm *c) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0) return fapl;
  if (c->size > 1 && H5Pset_fapl_mpio(fapl, c->comm, MPI_INFO_NULL) < 0) {
    H5Pclose(fapl);
    return -1;
  }
  return fapl;
}

hid_t ck_select(hid_t fspace, const rd_ckpt_tensor *x, int active) {
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
