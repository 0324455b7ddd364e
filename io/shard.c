/* Shards (io/shard.h): the datasets of the schema, described once for the
 * writer, the reader and the batches; batches of samples in memory. */
#include "io/shard.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/h5check.h"
#include "io/shard_internal.h"

/* ---- the datasets of the schema, described once */

const char *const rd_shard_ds_name[RD_DS_N] = {"/images",  "/features",    "/captions", "/caption_len",
                                                "/halluc",  "/halluc_span", "/scenes",   "/sample_id"};

rd_shard_row rd_shard_row_of(const rd_shard_info *in, int k) {
  rd_shard_row r;
  memset(&r, 0, sizeof r);
  r.elem = 4;
  switch (k) {
  case RD_DS_IMAGES:
    r = (rd_shard_row){in->n_patches <= 0, 3, {(hsize_t)in->image_size, (hsize_t)in->image_size, 3},
                       {"image_size", "image_size", "RGB channels"}, 1, 0};
    break;
  case RD_DS_FEATURES:
    r = (rd_shard_row){in->n_patches > 0, 2, {(hsize_t)in->n_patches, (hsize_t)in->feat_dim},
                       {"patches", "feature size"}, 4, 1};
    break;
  case RD_DS_CAPTIONS:
  case RD_DS_HALLUC:
    r = (rd_shard_row){k == RD_DS_CAPTIONS || in->has_halluc, 1, {(hsize_t)in->gen_len}, {"gen_len"}, 4, 0};
    break;
  case RD_DS_SPAN: r = (rd_shard_row){in->has_halluc, 1, {2}, {"(start, length)"}, 4, 0}; break;
  case RD_DS_SCENES:
    r = (rd_shard_row){in->scene_k > 0, 2, {(hsize_t)in->scene_k, (hsize_t)in->scene_f},
                       {"objects", "fields"}, 4, 0};
    break;
  case RD_DS_CAPLEN: r = (rd_shard_row){1, 0, {0}, {NULL}, 4, 0}; break;
  case RD_DS_SID: r = (rd_shard_row){1, 0, {0}, {NULL}, 8, 0}; break;
  }
  return r;
}

size_t rd_shard_row_elems(const rd_shard_row *r) {
  size_t n = 1;
  for (int d = 0; d < r->rank; d++) n *= (size_t)r->dims[d];
  return n;
}

static hid_t mem_type(int k) {
  switch (k) {
  case RD_DS_IMAGES: return H5T_NATIVE_UINT8;
  case RD_DS_FEATURES: return H5T_NATIVE_FLOAT;
  case RD_DS_SID: return H5T_NATIVE_INT64;
  default: return H5T_NATIVE_INT32;
  }
}

hid_t rd_shard_file_type(int k) {
  switch (k) {
  case RD_DS_IMAGES: return H5T_STD_U8LE;
  case RD_DS_FEATURES: return H5T_IEEE_F32LE;
  case RD_DS_SID: return H5T_STD_I64LE;
  default: return H5T_STD_I32LE;
  }
}

void *rd_shard_batch_col(const rd_shard_batch *b, int k) {
  switch (k) {
  case RD_DS_IMAGES: return b->images;
  case RD_DS_FEATURES: return b->features;
  case RD_DS_CAPTIONS: return b->captions;
  case RD_DS_CAPLEN: return b->caption_len;
  case RD_DS_HALLUC: return b->halluc;
  case RD_DS_SPAN: return b->halluc_span;
  case RD_DS_SCENES: return b->scenes;
  default: return b->sample_id;
  }
}

int rd_shard_check_shape(const rd_shard_info *in, const char *where) {
  if (in->gen_len < 1) return rd_err(RD_EINVAL, "%s: gen_len %d; must be >= 1", where, in->gen_len);
  if (in->n_patches > 0 || in->feat_dim > 0) {
    if (in->n_patches < 1 || in->feat_dim < 1)
      return rd_err(RD_EINVAL, "%s: features of %d patches x %d; both must be >= 1", where,
                    in->n_patches, in->feat_dim);
  } else if (in->image_size < 1) {
    return rd_err(RD_EINVAL, "%s: image_size %d; must be >= 1", where, in->image_size);
  }
  if ((in->scene_k > 0) != (in->scene_f > 0) || in->scene_k < 0 || in->scene_f < 0)
    return rd_err(RD_EINVAL, "%s: scenes of %d x %d; both must be >= 1, or both 0 for none", where,
                  in->scene_k, in->scene_f);
  return RD_OK;
}

int rd_shard_same_shape(const rd_shard_info *a, const rd_shard_info *b) {
  for (int k = 0; k < RD_DS_N; k++) {
    rd_shard_row ra = rd_shard_row_of(a, k), rb = rd_shard_row_of(b, k);
    if (ra.present != rb.present) return 0;
    if (ra.present && memcmp(ra.dims, rb.dims, sizeof ra.dims) != 0) return 0;
  }
  return 1;
}

/* ---- batches */

int rd_shard_batch_init(rd_shard_batch *b, const rd_shard_info *info, int64_t cap) {
  memset(b, 0, sizeof *b);
  RD_TRY(rd_shard_check_shape(info, "shard batch"));
  if (cap < 1) return rd_err(RD_EINVAL, "shard batch of %" PRId64 " samples", cap);
  b->cap = cap;
  b->info = *info;
  void **cols[RD_DS_N] = {(void **)&b->images,  (void **)&b->features,    (void **)&b->captions,
                          (void **)&b->caption_len, (void **)&b->halluc, (void **)&b->halluc_span,
                          (void **)&b->scenes,  (void **)&b->sample_id};
  for (int k = 0; k < RD_DS_N; k++) {
    rd_shard_row r = rd_shard_row_of(info, k);
    if (!r.present) continue;
    *cols[k] = rd_calloc((size_t)cap * rd_shard_row_elems(&r), r.elem, rd_shard_ds_name[k]);
    if (!*cols[k]) {
      rd_shard_batch_free(b);
      return RD_ENOMEM;
    }
  }
  return RD_OK;
}

void rd_shard_batch_free(rd_shard_batch *b) {
  free(b->images);
  free(b->features);
  free(b->captions);
  free(b->caption_len);
  free(b->halluc);
  free(b->halluc_span);
  free(b->scenes);
  free(b->sample_id);
  memset(b, 0, sizeof *b);
}

void rd_shard_batch_sample(const rd_shard_batch *b, int64_t i, rd_shard_sample *s) {
  const rd_shard_info *in = &b->info;
  size_t L = (size_t)in->gen_len;
  memset(s, 0, sizeof *s);
  if (b->images) s->image = b->images + (size_t)i * (size_t)in->image_size * (size_t)in->image_size * 3;
  if (b->features) s->features = b->features + (size_t)i * (size_t)in->n_patches * (size_t)in->feat_dim;
  s->caption = b->captions + (size_t)i * L;
  s->caption_len = b->caption_len[i];
  if (b->halluc) {
    s->halluc = b->halluc + (size_t)i * L;
    s->halluc_span[0] = b->halluc_span[2 * i];
    s->halluc_span[1] = b->halluc_span[2 * i + 1];
  }
  if (b->scenes) s->scene = b->scenes + (size_t)i * (size_t)in->scene_k * (size_t)in->scene_f;
  s->sample_id = b->sample_id[i];
}

/* ---- reading and writing rows */

int rd_shard_rows_io(hid_t ds, int k, const rd_shard_row *r, hsize_t begin, hsize_t count, void *mem,
                     int write) {
  hsize_t start[4] = {begin, 0, 0, 0}, cnt[4] = {count, 0, 0, 0};
  for (int d = 0; d < r->rank; d++) cnt[d + 1] = r->dims[d];
  hid_t fs = -1, ms = -1;
  int rc = RD_H5(fs = H5Dget_space(ds));
  if (rc == RD_OK) rc = RD_H5(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL));
  if (rc == RD_OK) rc = RD_H5(ms = H5Screate_simple(r->rank + 1, cnt, NULL));
  if (rc == RD_OK && write) rc = RD_H5(H5Dwrite(ds, mem_type(k), ms, fs, H5P_DEFAULT, mem));
  if (rc == RD_OK && !write) rc = RD_H5(H5Dread(ds, mem_type(k), ms, fs, H5P_DEFAULT, mem));
  if (ms >= 0) H5Sclose(ms);
  if (fs >= 0) H5Sclose(fs);
  return rc;
}

int rd_shard_valid_split(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= 32) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return 0;
  return 1;
}
