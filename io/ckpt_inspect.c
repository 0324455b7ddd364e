/* Looking into a checkpoint without a model or MPI: its meta
 * (rd_ckpt_peek) and the tensors it holds (rd_ckpt_list). */
#include "io/ckpt.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/ckpt_internal.h"
#include "io/core/err.h"
#include "io/h5check.h"

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
