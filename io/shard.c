#include "io/shard.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"
#include "io/fs.h"
#include "io/h5check.h"
#include "io/vocab.h"

/* ---- the datasets of the schema, described once */

enum { DS_IMAGES, DS_FEATURES, DS_CAPTIONS, DS_CAPLEN, DS_HALLUC, DS_SPAN, DS_SCENES, DS_SID, DS_N };

static const char *const ds_name[DS_N] = {"/images",  "/features",    "/captions", "/caption_len",
                                          "/halluc",  "/halluc_span", "/scenes",   "/sample_id"};

/* One row (every dimension after N) of a dataset. */
typedef struct {
  int present;
  int rank;             /* of the row */
  hsize_t dims[3];      /* [rank] */
  const char *what[3];  /* the attribute each dim must match, for messages */
  size_t elem;          /* bytes per element */
  int is_float;
} ds_row;

static ds_row row_of(const rd_shard_info *in, int k) {
  ds_row r;
  memset(&r, 0, sizeof r);
  r.elem = 4;
  switch (k) {
  case DS_IMAGES:
    r = (ds_row){in->n_patches <= 0, 3, {(hsize_t)in->image_size, (hsize_t)in->image_size, 3},
                 {"image_size", "image_size", "RGB channels"}, 1, 0};
    break;
  case DS_FEATURES:
    r = (ds_row){in->n_patches > 0, 2, {(hsize_t)in->n_patches, (hsize_t)in->feat_dim},
                 {"patches", "feature size"}, 4, 1};
    break;
  case DS_CAPTIONS:
  case DS_HALLUC:
    r = (ds_row){k == DS_CAPTIONS || in->has_halluc, 1, {(hsize_t)in->gen_len}, {"gen_len"}, 4, 0};
    break;
  case DS_SPAN: r = (ds_row){in->has_halluc, 1, {2}, {"(start, length)"}, 4, 0}; break;
  case DS_SCENES:
    r = (ds_row){in->scene_k > 0, 2, {(hsize_t)in->scene_k, (hsize_t)in->scene_f},
                 {"objects", "fields"}, 4, 0};
    break;
  case DS_CAPLEN: r = (ds_row){1, 0, {0}, {NULL}, 4, 0}; break;
  case DS_SID: r = (ds_row){1, 0, {0}, {NULL}, 8, 0}; break;
  }
  return r;
}

static size_t row_elems(const ds_row *r) {
  size_t n = 1;
  for (int d = 0; d < r->rank; d++) n *= (size_t)r->dims[d];
  return n;
}

static hid_t mem_type(int k) {
  switch (k) {
  case DS_IMAGES: return H5T_NATIVE_UINT8;
  case DS_FEATURES: return H5T_NATIVE_FLOAT;
  case DS_SID: return H5T_NATIVE_INT64;
  default: return H5T_NATIVE_INT32;
  }
}

/* The type stored in the file: fixed little-endian, whatever the machine. */
static hid_t file_type(int k) {
  switch (k) {
  case DS_IMAGES: return H5T_STD_U8LE;
  case DS_FEATURES: return H5T_IEEE_F32LE;
  case DS_SID: return H5T_STD_I64LE;
  default: return H5T_STD_I32LE;
  }
}

static void *batch_col(const rd_shard_batch *b, int k) {
  switch (k) {
  case DS_IMAGES: return b->images;
  case DS_FEATURES: return b->features;
  case DS_CAPTIONS: return b->captions;
  case DS_CAPLEN: return b->caption_len;
  case DS_HALLUC: return b->halluc;
  case DS_SPAN: return b->halluc_span;
  case DS_SCENES: return b->scenes;
  default: return b->sample_id;
  }
}

static int check_shape(const rd_shard_info *in, const char *where) {
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

/* Same arrays and row shapes (n_samples, hash and names may differ). */
static int same_shape(const rd_shard_info *a, const rd_shard_info *b) {
  for (int k = 0; k < DS_N; k++) {
    ds_row ra = row_of(a, k), rb = row_of(b, k);
    if (ra.present != rb.present) return 0;
    if (ra.present && memcmp(ra.dims, rb.dims, sizeof ra.dims) != 0) return 0;
  }
  return 1;
}

int rd_shard_batch_init(rd_shard_batch *b, const rd_shard_info *info, int64_t cap) {
  memset(b, 0, sizeof *b);
  RD_TRY(check_shape(info, "shard batch"));
  if (cap < 1) return rd_err(RD_EINVAL, "shard batch of %" PRId64 " samples", cap);
  b->cap = cap;
  b->info = *info;
  void **cols[DS_N] = {(void **)&b->images,  (void **)&b->features,    (void **)&b->captions,
                       (void **)&b->caption_len, (void **)&b->halluc, (void **)&b->halluc_span,
                       (void **)&b->scenes,  (void **)&b->sample_id};
  for (int k = 0; k < DS_N; k++) {
    ds_row r = row_of(info, k);
    if (!r.present) continue;
    *cols[k] = rd_calloc((size_t)cap * row_elems(&r), r.elem, ds_name[k]);
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

/* Reads or writes rows [begin, begin+count) of dataset k from/to mem. */
static int rows_io(hid_t ds, int k, const ds_row *r, hsize_t begin, hsize_t count, void *mem,
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

static int valid_split(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= 32) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return 0;
  return 1;
}

/* ---- writing */

struct rd_shard_writer {
  char path[RD_PATH_MAX], tmp[RD_PATH_MAX];
  rd_shard_info info;
  hid_t file, ds[DS_N];
  rd_shard_batch buf; /* samples not yet written */
  int64_t n_buf, n_done;
};

/* HDF5's default chunk cache is 1 MiB per dataset; a chunk larger than that
 * would be read (and inflated) again for every sample taken from it. */
#define RD_SHARD_CHUNK_BYTES (1 << 20)

static int create_dataset(rd_shard_writer *w, int k, int chunk, int deflate) {
  ds_row r = row_of(&w->info, k);
  size_t row_bytes = row_elems(&r) * r.elem;
  hsize_t rows = (hsize_t)chunk;
  if (rows * row_bytes > RD_SHARD_CHUNK_BYTES) rows = RD_SHARD_CHUNK_BYTES / row_bytes;
  if (rows < 1) rows = 1;
  hsize_t dims[4] = {0}, maxdims[4] = {H5S_UNLIMITED}, cdims[4] = {rows};
  for (int d = 0; d < r.rank; d++) dims[d + 1] = maxdims[d + 1] = cdims[d + 1] = r.dims[d];
  hid_t space = -1, dcpl = -1;
  int rc = RD_H5(space = H5Screate_simple(r.rank + 1, dims, maxdims));
  if (rc == RD_OK) rc = RD_H5(dcpl = H5Pcreate(H5P_DATASET_CREATE));
  if (rc == RD_OK) rc = RD_H5(H5Pset_chunk(dcpl, r.rank + 1, cdims));
  /* Shuffling the bytes of multi-byte ints and floats groups their (mostly
   * zero) high bytes, which deflate then squeezes; for uint8 it does nothing. */
  if (rc == RD_OK && deflate > 0 && r.elem > 1) rc = RD_H5(H5Pset_shuffle(dcpl));
  if (rc == RD_OK && deflate > 0) rc = RD_H5(H5Pset_deflate(dcpl, (unsigned)deflate));
  if (rc == RD_OK)
    rc = RD_H5(w->ds[k] = H5Dcreate2(w->file, ds_name[k], file_type(k), space, H5P_DEFAULT, dcpl,
                                     H5P_DEFAULT));
  if (dcpl >= 0) H5Pclose(dcpl);
  if (space >= 0) H5Sclose(space);
  return rc < 0 ? rd_err_wrap(rc, "%s: dataset %s", w->path, ds_name[k]) : RD_OK;
}

static void writer_release(rd_shard_writer *w, int remove_tmp) {
  for (int k = 0; k < DS_N; k++)
    if (w->ds[k] >= 0) H5Dclose(w->ds[k]);
  if (w->file >= 0) H5Fclose(w->file);
  H5Eclear2(H5E_DEFAULT);
  if (remove_tmp) rd_fs_discard(w->tmp);
  rd_shard_batch_free(&w->buf);
  free(w);
}

int rd_shard_writer_open(rd_shard_writer **out, const char *path, const rd_shard_info *info,
                         int chunk, int deflate) {
  *out = NULL;
  RD_TRY(check_shape(info, path));
  if (!valid_split(info->split))
    return rd_err(RD_EINVAL, "%s: split \"%s\"; use a short [a-z0-9_] name such as train or eval",
                  path, info->split);
  if (info->vocab_hash == 0)
    return rd_err(RD_EINVAL, "%s: vocab_hash 0; pass the hash of the vocabulary of the ids", path);
  if (chunk == 0) chunk = RD_SHARD_CHUNK;
  if (chunk < 1) return rd_err(RD_EINVAL, "%s: chunk of %d samples; must be >= 1", path, chunk);
  if (deflate < 0 || deflate > 9)
    return rd_err(RD_EINVAL, "%s: deflate level %d; must be 0 (none) to 9", path, deflate);
  if (strlen(path) >= RD_PATH_MAX) return rd_err(RD_EINVAL, "path too long: %s", path);
  rd_shard_writer *w = rd_calloc(1, sizeof *w, "shard writer");
  if (!w) return RD_ENOMEM;
  w->file = -1;
  for (int k = 0; k < DS_N; k++) w->ds[k] = -1;
  snprintf(w->path, sizeof w->path, "%s", path);
  w->info = *info;
  w->info.n_samples = 0;
  int rc = rd_shard_batch_init(&w->buf, info, chunk);
  if (rc == RD_OK) rc = rd_fs_mkparent(path);
  if (rc == RD_OK) rc = rd_fs_tmpname(path, w->tmp, sizeof w->tmp);
  if (rc == RD_OK) {
    rd_h5_quiet();
    if (deflate > 0 && H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0)
      rc = rd_err(RD_EINVAL, "%s: this HDF5 library has no deflate filter; use level 0", path);
  }
  if (rc == RD_OK) {
    rc = RD_H5(w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    if (rc < 0) rc = rd_err_wrap(rc, "cannot create %s", w->tmp);
  }
  for (int k = 0; k < DS_N && rc == RD_OK; k++)
    if (row_of(info, k).present) rc = create_dataset(w, k, chunk, deflate);
  if (rc < 0) {
    writer_release(w, 1);
    return rc;
  }
  *out = w;
  return RD_OK;
}

static int writer_flush(rd_shard_writer *w) {
  if (w->n_buf == 0) return RD_OK;
  for (int k = 0; k < DS_N; k++) {
    ds_row r = row_of(&w->info, k);
    if (!r.present) continue;
    hsize_t dims[4] = {(hsize_t)(w->n_done + w->n_buf)};
    for (int d = 0; d < r.rank; d++) dims[d + 1] = r.dims[d];
    int rc = RD_H5(H5Dset_extent(w->ds[k], dims));
    if (rc == RD_OK) rc = rows_io(w->ds[k], k, &r, (hsize_t)w->n_done, (hsize_t)w->n_buf,
                                  batch_col(&w->buf, k), 1);
    if (rc < 0) return rd_err_wrap(rc, "%s: dataset %s", w->path, ds_name[k]);
  }
  w->n_done += w->n_buf;
  w->n_buf = 0;
  return RD_OK;
}

int rd_shard_writer_append(rd_shard_writer *w, const rd_shard_sample *s) {
  const rd_shard_info *in = &w->info;
  int64_t idx = w->n_done + w->n_buf;
  const char *missing = !s->caption ? "caption"
                        : in->n_patches > 0 ? (!s->features ? "features" : NULL)
                                            : (!s->image ? "image" : NULL);
  if (!missing && in->has_halluc && !s->halluc) missing = "halluc";
  if (!missing && in->scene_k > 0 && !s->scene) missing = "scene";
  if (missing)
    return rd_err(RD_EINVAL, "%s: sample %" PRId64 " has no %s", w->path, idx, missing);
  if (s->caption_len < 0 || s->caption_len > in->gen_len)
    return rd_err(RD_EINVAL, "%s: sample %" PRId64 ": caption_len %d outside [0, %d]", w->path,
                  idx, (int)s->caption_len, in->gen_len);
  if (in->has_halluc && (s->halluc_span[0] < 0 || s->halluc_span[1] < 0 ||
                         s->halluc_span[0] + s->halluc_span[1] > in->gen_len))
    return rd_err(RD_EINVAL, "%s: sample %" PRId64 ": halluc_span (%d, %d) outside [0, %d]",
                  w->path, idx, (int)s->halluc_span[0], (int)s->halluc_span[1], in->gen_len);
  rd_shard_batch *b = &w->buf;
  int64_t i = w->n_buf;
  size_t L = (size_t)in->gen_len;
  if (b->images) {
    size_t n = (size_t)in->image_size * (size_t)in->image_size * 3;
    memcpy(b->images + (size_t)i * n, s->image, n);
  }
  if (b->features) {
    size_t n = (size_t)in->n_patches * (size_t)in->feat_dim;
    memcpy(b->features + (size_t)i * n, s->features, n * sizeof(float));
  }
  memcpy(b->captions + (size_t)i * L, s->caption, L * sizeof(int32_t));
  b->caption_len[i] = s->caption_len;
  if (b->halluc) {
    memcpy(b->halluc + (size_t)i * L, s->halluc, L * sizeof(int32_t));
    b->halluc_span[2 * i] = s->halluc_span[0];
    b->halluc_span[2 * i + 1] = s->halluc_span[1];
  }
  if (b->scenes) {
    size_t n = (size_t)in->scene_k * (size_t)in->scene_f;
    memcpy(b->scenes + (size_t)i * n, s->scene, n * sizeof(int32_t));
  }
  b->sample_id[i] = s->sample_id;
  w->n_buf++;
  return w->n_buf == b->cap ? writer_flush(w) : RD_OK;
}

static int write_attr(hid_t file, const char *name, hid_t ftype, hid_t mtype, const void *v) {
  hid_t space = -1, a = -1;
  int rc = RD_H5(space = H5Screate(H5S_SCALAR));
  if (rc == RD_OK) rc = RD_H5(a = H5Acreate2(file, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT));
  if (rc == RD_OK) rc = RD_H5(H5Awrite(a, mtype, v));
  if (a >= 0) H5Aclose(a);
  if (space >= 0) H5Sclose(space);
  return rc < 0 ? rd_err_wrap(rc, "attribute %s", name) : RD_OK;
}

/* A fixed-length, NUL-terminated ASCII string: h5py reads it as bytes,
 * h5dump prints it as "text". */
static int write_str_attr(hid_t file, const char *name, const char *s) {
  hid_t t = -1;
  int rc = RD_H5(t = H5Tcopy(H5T_C_S1));
  if (rc == RD_OK) rc = RD_H5(H5Tset_size(t, strlen(s) + 1));
  if (rc == RD_OK) rc = RD_H5(H5Tset_strpad(t, H5T_STR_NULLTERM));
  if (rc == RD_OK) rc = write_attr(file, name, t, t, s);
  if (t >= 0) H5Tclose(t);
  return rc < 0 ? rd_err_wrap(rc, "attribute %s", name) : RD_OK;
}

static int write_attrs(rd_shard_writer *w) {
  const rd_shard_info *in = &w->info;
  int32_t version = RD_SHARD_SCHEMA_VERSION, image_size = in->image_size, gen_len = in->gen_len;
  int64_t n = w->n_done;
  char hex[17];
  rd_vocab_hash_hex(in->vocab_hash, hex);
  RD_TRY(write_attr(w->file, "schema_version", H5T_STD_I32LE, H5T_NATIVE_INT32, &version));
  RD_TRY(write_str_attr(w->file, "vocab_hash", hex));
  RD_TRY(write_attr(w->file, "image_size", H5T_STD_I32LE, H5T_NATIVE_INT32, &image_size));
  RD_TRY(write_attr(w->file, "gen_len", H5T_STD_I32LE, H5T_NATIVE_INT32, &gen_len));
  RD_TRY(write_attr(w->file, "n_samples", H5T_STD_I64LE, H5T_NATIVE_INT64, &n));
  RD_TRY(write_str_attr(w->file, "split", in->split));
  RD_TRY(write_str_attr(w->file, "created_by", in->created_by));
  return RD_OK;
}

int rd_shard_writer_close(rd_shard_writer *w) {
  int rc = writer_flush(w);
  if (rc == RD_OK) {
    rc = write_attrs(w);
    if (rc < 0) rc = rd_err_wrap(rc, "%s", w->path);
  }
  for (int k = 0; k < DS_N; k++) {
    if (w->ds[k] < 0) continue;
    int c = RD_H5(H5Dclose(w->ds[k]));
    w->ds[k] = -1;
    if (rc == RD_OK && c < 0) rc = rd_err_wrap(c, "%s: dataset %s", w->path, ds_name[k]);
  }
  if (w->file >= 0) {
    /* Closing writes the metadata; a full disk shows here. */
    int c = RD_H5(H5Fclose(w->file));
    w->file = -1;
    if (rc == RD_OK && c < 0) rc = rd_err_wrap(c, "%s", w->path);
  }
  if (rc == RD_OK) rc = rd_fs_commit(w->tmp, w->path);
  writer_release(w, rc < 0);
  return rc;
}

void rd_shard_writer_abort(rd_shard_writer *w) {
  if (w) writer_release(w, 1);
}

/* ---- reading */

struct rd_shard {
  char path[RD_PATH_MAX];
  rd_shard_info info;
  hid_t file, ds[DS_N];
};

const rd_shard_info *rd_shard_get_info(const rd_shard *s) { return &s->info; }
const char *rd_shard_path(const rd_shard *s) { return s->path; }

void rd_shard_close(rd_shard *s) {
  if (!s) return;
  for (int k = 0; k < DS_N; k++)
    if (s->ds[k] >= 0) H5Dclose(s->ds[k]);
  if (s->file >= 0) H5Fclose(s->file);
  H5Eclear2(H5E_DEFAULT);
  free(s);
}

static int attr_open(hid_t file, const char *name, hid_t *a) {
  htri_t has = H5Aexists(file, name);
  RD_TRY(RD_H5(has));
  if (!has) return rd_err(RD_EINVAL, "attribute %s is missing (not a rediff shard?)", name);
  return RD_H5(*a = H5Aopen(file, name, H5P_DEFAULT));
}

static int read_int_attr(hid_t file, const char *name, int64_t *v) {
  hid_t a = -1, t = -1, sp = -1;
  int rc = attr_open(file, name, &a);
  if (rc == RD_OK) rc = RD_H5(t = H5Aget_type(a));
  if (rc == RD_OK) rc = RD_H5(sp = H5Aget_space(a));
  if (rc == RD_OK && (H5Tget_class(t) != H5T_INTEGER || H5Sget_simple_extent_npoints(sp) != 1))
    rc = rd_err(RD_EINVAL, "attribute %s is not one integer", name);
  if (rc == RD_OK) rc = RD_H5(H5Aread(a, H5T_NATIVE_INT64, v));
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return rc;
}

/* Reads a fixed-length or (as h5py writes by default) variable-length string. */
static int read_str_attr(hid_t file, const char *name, char *out, size_t n) {
  hid_t a = -1, t = -1, mt = -1, sp = -1;
  int rc = attr_open(file, name, &a);
  if (rc == RD_OK) rc = RD_H5(t = H5Aget_type(a));
  if (rc == RD_OK) rc = RD_H5(sp = H5Aget_space(a));
  if (rc == RD_OK && (H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1))
    rc = rd_err(RD_EINVAL, "attribute %s is not one string", name);
  if (rc == RD_OK) rc = RD_H5(mt = H5Tcopy(t));
  if (rc == RD_OK && H5Tis_variable_str(t) > 0) {
    char *s = NULL;
    rc = RD_H5(H5Aread(a, mt, &s));
    if (rc == RD_OK) snprintf(out, n, "%s", s ? s : "");
    if (s) H5free_memory(s);
  } else if (rc == RD_OK) {
    size_t size = H5Tget_size(t);
    char *buf = rd_calloc(size + 1, 1, "string attribute");
    if (!buf) rc = RD_ENOMEM;
    if (rc == RD_OK) rc = RD_H5(H5Aread(a, mt, buf));
    if (rc == RD_OK) snprintf(out, n, "%s", buf);
    free(buf);
  }
  if (mt >= 0) H5Tclose(mt);
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return rc;
}

static int read_attrs(rd_shard *s, uint64_t expect_hash) {
  rd_shard_info *in = &s->info;
  int64_t version, image_size, gen_len, n;
  RD_TRY(read_int_attr(s->file, "schema_version", &version));
  if (version != RD_SHARD_SCHEMA_VERSION)
    return rd_err(RD_EINVAL, "attribute schema_version is %" PRId64 "; this build reads version %d",
                  version, RD_SHARD_SCHEMA_VERSION);
  char hex[64];
  RD_TRY(read_str_attr(s->file, "vocab_hash", hex, sizeof hex));
  if (rd_vocab_hash_parse(hex, &in->vocab_hash) < 0)
    return rd_err(RD_EINVAL, "attribute vocab_hash \"%s\" is not 16 hex digits", hex);
  if (expect_hash && in->vocab_hash != expect_hash) {
    char want[17];
    rd_vocab_hash_hex(expect_hash, want);
    return rd_err(RD_EINVAL,
                  "attribute vocab_hash is %s but the vocabulary in use hashes to %s "
                  "(shard made with another vocab.txt?)",
                  hex, want);
  }
  RD_TRY(read_int_attr(s->file, "image_size", &image_size));
  RD_TRY(read_int_attr(s->file, "gen_len", &gen_len));
  RD_TRY(read_int_attr(s->file, "n_samples", &n));
  if (gen_len < 1 || gen_len > 1 << 20) return rd_err(RD_EINVAL, "attribute gen_len is %" PRId64, gen_len);
  if (image_size < 0 || image_size > 1 << 16)
    return rd_err(RD_EINVAL, "attribute image_size is %" PRId64, image_size);
  if (n < 0) return rd_err(RD_EINVAL, "attribute n_samples is %" PRId64, n);
  in->image_size = (int)image_size;
  in->gen_len = (int)gen_len;
  in->n_samples = n;
  RD_TRY(read_str_attr(s->file, "split", in->split, sizeof in->split));
  RD_TRY(read_str_attr(s->file, "created_by", in->created_by, sizeof in->created_by));
  return RD_OK;
}

static int ds_exists(hid_t file, int k, int *has) {
  htri_t e = H5Lexists(file, ds_name[k] + 1, H5P_DEFAULT);
  RD_TRY(RD_H5(e));
  *has = e > 0;
  return RD_OK;
}

/* Which optional datasets there are; the shapes they take from the file. */
static int find_datasets(rd_shard *s, int has[DS_N]) {
  for (int k = 0; k < DS_N; k++) RD_TRY(ds_exists(s->file, k, &has[k]));
  if (has[DS_IMAGES] && has[DS_FEATURES])
    return rd_err(RD_EINVAL, "has both /images and /features; a shard holds one of them");
  if (!has[DS_IMAGES] && !has[DS_FEATURES])
    return rd_err(RD_EINVAL, "dataset /images is missing (and there is no /features)");
  const int required[] = {DS_CAPTIONS, DS_CAPLEN, DS_SID};
  for (int i = 0; i < 3; i++)
    if (!has[required[i]]) return rd_err(RD_EINVAL, "dataset %s is missing", ds_name[required[i]]);
  if (has[DS_HALLUC] != has[DS_SPAN])
    return rd_err(RD_EINVAL, "dataset %s is missing (it comes with %s)",
                  ds_name[has[DS_HALLUC] ? DS_SPAN : DS_HALLUC],
                  ds_name[has[DS_HALLUC] ? DS_HALLUC : DS_SPAN]);
  s->info.has_halluc = has[DS_HALLUC];
  return RD_OK;
}

/* The dimensions of dataset k: rank + 1 of them, or an error. */
static int ds_dims(rd_shard *s, int k, int want_rank, hsize_t dims[4]) {
  hid_t sp = -1;
  int rc = RD_H5(sp = H5Dget_space(s->ds[k]));
  int rank = rc == RD_OK ? H5Sget_simple_extent_ndims(sp) : -1;
  if (rc == RD_OK && rank != want_rank + 1)
    rc = rd_err(RD_EINVAL, "has %d dimensions, expected %d", rank,
                want_rank + 1);
  if (rc == RD_OK) rc = RD_H5(H5Sget_simple_extent_dims(sp, dims, NULL));
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

static int check_dataset_(rd_shard *s, int k) {
  RD_TRY(RD_H5(s->ds[k] = H5Dopen2(s->file, ds_name[k], H5P_DEFAULT)));
  rd_shard_info *in = &s->info;
  hsize_t dims[4] = {0};
  int want_rank = row_of(in, k).rank;
  if (k == DS_FEATURES || k == DS_SCENES) want_rank = 2;
  RD_TRY(ds_dims(s, k, want_rank, dims));
  /* The two shapes the attributes do not give come from the datasets. */
  if (k == DS_FEATURES || k == DS_SCENES) {
    if (dims[1] < 1 || dims[2] < 1 || dims[1] > INT32_MAX || dims[2] > INT32_MAX)
      return rd_err(RD_EINVAL, "row shape %llux%llu",
                    (unsigned long long)dims[1], (unsigned long long)dims[2]);
    if (k == DS_FEATURES) in->n_patches = (int)dims[1], in->feat_dim = (int)dims[2];
    if (k == DS_SCENES) in->scene_k = (int)dims[1], in->scene_f = (int)dims[2];
  }
  ds_row r = row_of(in, k);
  if (dims[0] != (hsize_t)in->n_samples)
    return rd_err(RD_EINVAL, "has %llu rows, the shard says n_samples %" PRId64,
                  (unsigned long long)dims[0], in->n_samples);
  for (int d = 0; d < r.rank; d++) {
    if (dims[d + 1] == r.dims[d]) continue;
    if (r.rank == 1)
      return rd_err(RD_EINVAL, "has %llu columns, the shard says %s %llu",
                    (unsigned long long)dims[1], r.what[0], (unsigned long long)r.dims[0]);
    return rd_err(RD_EINVAL, "dimension %d is %llu, the shard says %s %llu",
                  d + 1, (unsigned long long)dims[d + 1], r.what[d], (unsigned long long)r.dims[d]);
  }
  hid_t t = -1;
  RD_TRY(RD_H5(t = H5Dget_type(s->ds[k])));
  H5T_class_t cls = H5Tget_class(t);
  H5Tclose(t);
  if (cls != (r.is_float ? H5T_FLOAT : H5T_INTEGER))
    return rd_err(RD_EINVAL, "holds %s, expected %s",
                  cls == H5T_FLOAT ? "floats" : cls == H5T_INTEGER ? "integers" : "another type",
                  r.is_float ? "float32" : "integers");
  return RD_OK;
}

static int check_dataset(rd_shard *s, int k) {
  int rc = check_dataset_(s, k);
  return rc < 0 ? rd_err_wrap(rc, "dataset %s", ds_name[k]) : RD_OK;
}

/* Caption lengths and hallucination spans index the captions: a bad one
 * would read out of bounds later, so all are checked here (N ints, cheap). */
static int check_lengths(rd_shard *s) {
  const rd_shard_info *in = &s->info;
  int64_t n = in->n_samples;
  if (n == 0) return RD_OK;
  ds_row rl = row_of(in, DS_CAPLEN), rs = row_of(in, DS_SPAN);
  int32_t *len = rd_calloc((size_t)n, sizeof *len, "caption lengths");
  int32_t *span = in->has_halluc ? rd_calloc((size_t)n * 2, sizeof *span, "halluc spans") : NULL;
  int rc = (!len || (in->has_halluc && !span)) ? RD_ENOMEM : RD_OK;
  if (rc == RD_OK) {
    rc = rows_io(s->ds[DS_CAPLEN], DS_CAPLEN, &rl, 0, (hsize_t)n, len, 0);
    if (rc < 0) rc = rd_err_wrap(rc, "dataset /caption_len");
  }
  for (int64_t i = 0; i < n && rc == RD_OK; i++)
    if (len[i] < 0 || len[i] > in->gen_len)
      rc = rd_err(RD_EINVAL, "dataset /caption_len: sample %" PRId64 " has length %d, outside [0, %d]",
                  i, (int)len[i], in->gen_len);
  if (rc == RD_OK && span) {
    rc = rows_io(s->ds[DS_SPAN], DS_SPAN, &rs, 0, (hsize_t)n, span, 0);
    if (rc < 0) rc = rd_err_wrap(rc, "dataset /halluc_span");
  }
  for (int64_t i = 0; span && i < n && rc == RD_OK; i++) {
    int32_t a = span[2 * i], l = span[2 * i + 1];
    if (a < 0 || l < 0 || (int64_t)a + l > in->gen_len)
      rc = rd_err(RD_EINVAL, "dataset /halluc_span: sample %" PRId64 " has (%d, %d), outside [0, %d]",
                  i, (int)a, (int)l, in->gen_len);
  }
  free(len);
  free(span);
  return rc;
}

static int shard_open(rd_shard *s, const char *path, uint64_t expect_hash) {
  if (!rd_fs_exists(path)) return rd_err(RD_EINVAL, "no such file");
  rd_h5_quiet();
  s->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (s->file < 0) {
    char inner[512];
    rd_h5_inner_msg(inner, sizeof inner);
    return rd_err(RD_EINVAL, "not a readable HDF5 file (truncated or corrupt?): %s", inner);
  }
  RD_TRY(read_attrs(s, expect_hash));
  int has[DS_N];
  RD_TRY(find_datasets(s, has));
  for (int k = 0; k < DS_N; k++)
    if (has[k]) RD_TRY(check_dataset(s, k));
  return check_lengths(s);
}

int rd_shard_open(rd_shard **out, const char *path, uint64_t expect_hash) {
  *out = NULL;
  if (strlen(path) >= RD_PATH_MAX) return rd_err(RD_EINVAL, "path too long: %s", path);
  rd_shard *s = rd_calloc(1, sizeof *s, "shard");
  if (!s) return RD_ENOMEM;
  s->file = -1;
  for (int k = 0; k < DS_N; k++) s->ds[k] = -1;
  snprintf(s->path, sizeof s->path, "%s", path);
  int rc = shard_open(s, path, expect_hash);
  if (rc < 0) {
    rd_shard_close(s);
    return rd_err_wrap(rc, "%s", path);
  }
  *out = s;
  return RD_OK;
}

int rd_shard_read_block(rd_shard *s, int64_t begin, int64_t count, rd_shard_batch *b,
                        int64_t slot) {
  const rd_shard_info *in = &s->info;
  if (begin < 0 || count < 0 || begin > in->n_samples - count)
    return rd_err(RD_EINVAL, "%s: samples %" PRId64 "..%" PRId64 " outside its %" PRId64 " samples",
                  s->path, begin, begin + count - 1, in->n_samples);
  if (slot < 0 || slot > b->cap - count)
    return rd_err(RD_EINVAL, "%s: %" PRId64 " samples at slot %" PRId64 " overflow a batch of %" PRId64,
                  s->path, count, slot, b->cap);
  if (!same_shape(in, &b->info))
    return rd_err(RD_EINVAL, "%s: the batch was made for another shape of shard", s->path);
  if (count == 0) return RD_OK;
  for (int k = 0; k < DS_N; k++) {
    ds_row r = row_of(in, k);
    if (!r.present) continue;
    char *mem = (char *)batch_col(b, k) + (size_t)slot * row_elems(&r) * r.elem;
    int rc = rows_io(s->ds[k], k, &r, (hsize_t)begin, (hsize_t)count, mem, 0);
    if (rc < 0) return rd_err_wrap(rc, "%s: dataset %s", s->path, ds_name[k]);
  }
  return RD_OK;
}

int rd_shard_read(rd_shard *s, int64_t i, rd_shard_batch *b, int64_t slot) {
  return rd_shard_read_block(s, i, 1, b, slot);
}

/* ---- shard sets */

int rd_shard_name(char *out, size_t n, const char *dir, const char *split, int index) {
  int len = snprintf(out, n, "%s/%s-%05d.h5", dir, split, index);
  if (len < 0 || (size_t)len >= n) return rd_err(RD_EINVAL, "path too long: %s/%s-...", dir, split);
  return RD_OK;
}

static int by_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* The indices of the files <split>-<digits>.h5 in dir, sorted. */
static int list_shards(const char *dir, const char *split, int **idx, int *n) {
  *idx = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return rd_err(RD_EINVAL, "cannot read the folder %s: %s", dir, strerror(errno));
  size_t sl = strlen(split);
  int cap = 0, rc = RD_OK;
  struct dirent *e;
  while (rc == RD_OK && (e = readdir(d)) != NULL) {
    const char *name = e->d_name;
    if (strncmp(name, split, sl) != 0 || name[sl] != '-') continue;
    const char *p = name + sl + 1;
    size_t digits = strspn(p, "0123456789");
    if (digits < 5 || digits > 9 || strcmp(p + digits, ".h5") != 0) continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 64;
      int *grown = realloc(*idx, (size_t)cap * sizeof *grown);
      if (!grown) {
        rc = rd_err(RD_ENOMEM, "out of memory listing %s", dir);
        break;
      }
      *idx = grown;
    }
    (*idx)[(*n)++] = atoi(p);
  }
  closedir(d);
  if (rc == RD_OK) qsort(*idx, (size_t)*n, sizeof **idx, by_int);
  return rc;
}

void rd_shardset_close(rd_shardset *set) {
  for (int i = 0; i < set->n_shards; i++) rd_shard_close(set->shards[i]);
  free(set->shards);
  free(set->offset);
  memset(set, 0, sizeof *set);
}

static int shardset_open(rd_shardset *set, const char *dir, const char *split, uint64_t expect_hash) {
  int *idx, n;
  RD_TRY(list_shards(dir, split, &idx, &n));
  int rc = RD_OK;
  if (n == 0) rc = rd_err(RD_EINVAL, "%s: no shards %s-00000.h5, ... (was `rediff data synth` run?)", dir, split);
  for (int i = 0; i < n && rc == RD_OK; i++)
    if (idx[i] != i)
      rc = rd_err(RD_EINVAL, "%s: %s-%05d.h5 is missing (but %s-%05d.h5 is there)", dir, split, i,
                  split, idx[i]);
  free(idx);
  RD_TRY(rc);
  set->shards = rd_calloc((size_t)n, sizeof *set->shards, "shard set");
  set->offset = rd_calloc((size_t)n + 1, sizeof *set->offset, "shard set");
  if (!set->shards || !set->offset) return RD_ENOMEM;
  char path[RD_PATH_MAX];
  for (int i = 0; i < n; i++) {
    RD_TRY(rd_shard_name(path, sizeof path, dir, split, i));
    RD_TRY(rd_shard_open(&set->shards[i], path, expect_hash));
    set->n_shards = i + 1;
    const rd_shard_info *in = rd_shard_get_info(set->shards[i]), *first = &set->info;
    if (strcmp(in->split, split) != 0)
      return rd_err(RD_EINVAL, "%s: attribute split is \"%s\", the file name says \"%s\"", path,
                    in->split, split);
    if (i == 0) {
      set->info = *in;
    } else if (!same_shape(in, first) || in->vocab_hash != first->vocab_hash) {
      char a[17], b[17];
      rd_vocab_hash_hex(in->vocab_hash, a);
      rd_vocab_hash_hex(first->vocab_hash, b);
      return rd_err(RD_EINVAL,
                    "%s: differs from %s-00000.h5 (image_size %d/%d, features %dx%d/%dx%d, gen_len "
                    "%d/%d, halluc %d/%d, scenes %dx%d/%dx%d, vocab_hash %s/%s)",
                    path, split, in->image_size, first->image_size, in->n_patches, in->feat_dim,
                    first->n_patches, first->feat_dim, in->gen_len, first->gen_len, in->has_halluc,
                    first->has_halluc, in->scene_k, in->scene_f, first->scene_k, first->scene_f, a, b);
    }
    set->offset[i + 1] = set->offset[i] + in->n_samples;
  }
  set->n_total = set->offset[n];
  set->info.n_samples = set->n_total;
  return RD_OK;
}

int rd_shardset_open(rd_shardset *set, const char *dir, const char *split, uint64_t expect_hash) {
  memset(set, 0, sizeof *set);
  if (!valid_split(split)) return rd_err(RD_EINVAL, "split \"%s\" is not a short [a-z0-9_] name", split);
  int rc = shardset_open(set, dir, split, expect_hash);
  if (rc < 0) rd_shardset_close(set);
  return rc;
}

/* The shard holding global index gi (binary search over the offsets). */
static int shard_of(const rd_shardset *set, int64_t gi) {
  int lo = 0, hi = set->n_shards - 1;
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (set->offset[mid] <= gi) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

int rd_shardset_read_range(rd_shardset *set, int64_t begin, int64_t count, rd_shard_batch *b,
                           int64_t slot) {
  if (begin < 0 || count < 0 || begin > set->n_total - count)
    return rd_err(RD_EINVAL, "samples %" PRId64 "..%" PRId64 " outside the %" PRId64
                  " samples of the shard set", begin, begin + count - 1, set->n_total);
  while (count > 0) {
    int i = shard_of(set, begin);
    int64_t local = begin - set->offset[i];
    int64_t take = set->offset[i + 1] - begin;
    if (take > count) take = count;
    RD_TRY(rd_shard_read_block(set->shards[i], local, take, b, slot));
    begin += take;
    slot += take;
    count -= take;
  }
  return RD_OK;
}

int rd_shardset_read(rd_shardset *set, int64_t gi, rd_shard_batch *b, int64_t slot) {
  return rd_shardset_read_range(set, gi, 1, b, slot);
}

int rd_shardset_slice(int64_t n_total, int dp_rank, int dp_size, int64_t *begin, int64_t *count) {
  if (dp_size < 1 || dp_rank < 0 || dp_rank >= dp_size || n_total < 0)
    return rd_err(RD_EINVAL, "data-parallel rank %d of %d over %" PRId64 " samples", dp_rank,
                  dp_size, n_total);
  int64_t base = n_total / dp_size, extra = n_total % dp_size;
  *begin = dp_rank * base + (dp_rank < extra ? dp_rank : extra);
  *count = base + (dp_rank < extra);
  return RD_OK;
}
