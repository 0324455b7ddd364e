/* Reading one shard (io/shard.h): opening checks everything later reads rely
 * on (schema version, datasets, shapes, vocabulary hash, caption lengths), so
 * every error is found there and names the file and the dataset. */
#include "io/shard.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/h5attr.h"
#include "io/h5check.h"
#include "io/h5file.h"
#include "io/shard_internal.h"
#include "io/vocab.h"

struct rd_shard {
  char path[RD_PATH_MAX];
  rd_shard_info info;
  hid_t file, ds[RD_DS_N];
};

const rd_shard_info *rd_shard_get_info(const rd_shard *s) { return &s->info; }
const char *rd_shard_path(const rd_shard *s) { return s->path; }

void rd_shard_close(rd_shard *s) {
  if (!s) return;
  for (int k = 0; k < RD_DS_N; k++)
    if (s->ds[k] >= 0) H5Dclose(s->ds[k]);
  if (s->file >= 0) H5Fclose(s->file);
  H5Eclear2(H5E_DEFAULT);
  free(s);
}

static int read_attrs(rd_shard *s, uint64_t expect_hash) {
  rd_shard_info *in = &s->info;
  int64_t version, image_size, gen_len, n;
  RD_TRY(rd_h5_attr_read_i64(s->file, "schema_version", &version));
  if (version != RD_SHARD_SCHEMA_VERSION)
    return rd_err(RD_EINVAL, "attribute schema_version is %" PRId64 "; this build reads version %d",
                  version, RD_SHARD_SCHEMA_VERSION);
  char hex[64];
  RD_TRY(rd_h5_attr_read_str(s->file, "vocab_hash", hex, sizeof hex));
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
  RD_TRY(rd_h5_attr_read_i64(s->file, "image_size", &image_size));
  RD_TRY(rd_h5_attr_read_i64(s->file, "gen_len", &gen_len));
  RD_TRY(rd_h5_attr_read_i64(s->file, "n_samples", &n));
  if (gen_len < 1 || gen_len > 1 << 20) return rd_err(RD_EINVAL, "attribute gen_len is %" PRId64, gen_len);
  if (image_size < 0 || image_size > 1 << 16)
    return rd_err(RD_EINVAL, "attribute image_size is %" PRId64, image_size);
  if (n < 0) return rd_err(RD_EINVAL, "attribute n_samples is %" PRId64, n);
  in->image_size = (int)image_size;
  in->gen_len = (int)gen_len;
  in->n_samples = n;
  RD_TRY(rd_h5_attr_read_str(s->file, "split", in->split, sizeof in->split));
  RD_TRY(rd_h5_attr_read_str(s->file, "created_by", in->created_by, sizeof in->created_by));
  return RD_OK;
}

static int ds_exists(hid_t file, int k, int *has) {
  htri_t e = H5Lexists(file, rd_shard_ds_name[k] + 1, H5P_DEFAULT);
  RD_TRY(RD_H5(e));
  *has = e > 0;
  return RD_OK;
}

/* Which optional datasets there are; the shapes they take from the file. */
static int find_datasets(rd_shard *s, int has[RD_DS_N]) {
  for (int k = 0; k < RD_DS_N; k++) RD_TRY(ds_exists(s->file, k, &has[k]));
  if (has[RD_DS_IMAGES] && has[RD_DS_FEATURES])
    return rd_err(RD_EINVAL, "has both /images and /features; a shard holds one of them");
  if (!has[RD_DS_IMAGES] && !has[RD_DS_FEATURES])
    return rd_err(RD_EINVAL, "dataset /images is missing (and there is no /features)");
  const int required[] = {RD_DS_CAPTIONS, RD_DS_CAPLEN, RD_DS_SID};
  for (int i = 0; i < 3; i++)
    if (!has[required[i]]) return rd_err(RD_EINVAL, "dataset %s is missing", rd_shard_ds_name[required[i]]);
  if (has[RD_DS_HALLUC] != has[RD_DS_SPAN])
    return rd_err(RD_EINVAL, "dataset %s is missing (it comes with %s)",
                  rd_shard_ds_name[has[RD_DS_HALLUC] ? RD_DS_SPAN : RD_DS_HALLUC],
                  rd_shard_ds_name[has[RD_DS_HALLUC] ? RD_DS_HALLUC : RD_DS_SPAN]);
  s->info.has_halluc = has[RD_DS_HALLUC];
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

/* Whether every value of the integer type stored fits the integer type want. */
static int int_fits(hid_t stored, hid_t want) {
  size_t ss = H5Tget_size(stored), sw = H5Tget_size(want);
  int us = H5Tget_sign(stored) == H5T_SGN_NONE, uw = H5Tget_sign(want) == H5T_SGN_NONE;
  if (us == uw) return ss <= sw;
  return us && ss < sw; /* unsigned into a wider signed; signed into unsigned never (negatives) */
}

static int check_dataset_(rd_shard *s, int k) {
  RD_TRY(RD_H5(s->ds[k] = H5Dopen2(s->file, rd_shard_ds_name[k], H5P_DEFAULT)));
  rd_shard_info *in = &s->info;
  hsize_t dims[4] = {0};
  int want_rank = rd_shard_row_of(in, k).rank;
  if (k == RD_DS_FEATURES || k == RD_DS_SCENES) want_rank = 2;
  RD_TRY(ds_dims(s, k, want_rank, dims));
  /* The two shapes the attributes do not give come from the datasets. */
  if (k == RD_DS_FEATURES || k == RD_DS_SCENES) {
    if (dims[1] < 1 || dims[2] < 1 || dims[1] > INT32_MAX || dims[2] > INT32_MAX)
      return rd_err(RD_EINVAL, "row shape %llux%llu",
                    (unsigned long long)dims[1], (unsigned long long)dims[2]);
    if (k == RD_DS_FEATURES) in->n_patches = (int)dims[1], in->feat_dim = (int)dims[2];
    if (k == RD_DS_SCENES) in->scene_k = (int)dims[1], in->scene_f = (int)dims[2];
  }
  rd_shard_row r = rd_shard_row_of(in, k);
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
  int fits = cls != H5T_INTEGER || int_fits(t, rd_shard_file_type(k));
  size_t bytes = H5Tget_size(t);
  int is_unsigned = cls == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_NONE;
  H5Tclose(t);
  if (cls != (r.is_float ? H5T_FLOAT : H5T_INTEGER))
    return rd_err(RD_EINVAL, "holds %s, expected %s",
                  cls == H5T_FLOAT ? "floats" : cls == H5T_INTEGER ? "integers" : "another type",
                  r.is_float ? "float32" : "integers");
  /* HDF5 converts on read and clips what does not fit (int16 pixels of 300
   * would become 255): refuse instead of training on changed values. */
  if (!fits)
    return rd_err(RD_EINVAL, "holds %s %zu-byte integers, which %s of rd_shard_write's type cannot hold",
                  is_unsigned ? "unsigned" : "signed", bytes, k == RD_DS_IMAGES ? "the uint8" : "the integers");
  return RD_OK;
}

static int check_dataset(rd_shard *s, int k) {
  int rc = check_dataset_(s, k);
  return rc < 0 ? rd_err_wrap(rc, "dataset %s", rd_shard_ds_name[k]) : RD_OK;
}

/* Caption lengths and hallucination spans index the captions: a bad one
 * would read out of bounds later, so all are checked here (N ints, cheap). */
static int check_lengths(rd_shard *s) {
  const rd_shard_info *in = &s->info;
  int64_t n = in->n_samples;
  if (n == 0) return RD_OK;
  rd_shard_row rl = rd_shard_row_of(in, RD_DS_CAPLEN), rs = rd_shard_row_of(in, RD_DS_SPAN);
  int32_t *len = rd_calloc((size_t)n, sizeof *len, "caption lengths");
  int32_t *span = in->has_halluc ? rd_calloc((size_t)n * 2, sizeof *span, "halluc spans") : NULL;
  int rc = (!len || (in->has_halluc && !span)) ? RD_ENOMEM : RD_OK;
  if (rc == RD_OK) {
    rc = rd_shard_rows_io(s->ds[RD_DS_CAPLEN], RD_DS_CAPLEN, &rl, 0, (hsize_t)n, len, 0);
    if (rc < 0) rc = rd_err_wrap(rc, "dataset /caption_len");
  }
  for (int64_t i = 0; i < n && rc == RD_OK; i++)
    if (len[i] < 0 || len[i] > in->gen_len)
      rc = rd_err(RD_EINVAL, "dataset /caption_len: sample %" PRId64 " has length %d, outside [0, %d]",
                  i, (int)len[i], in->gen_len);
  if (rc == RD_OK && span) {
    rc = rd_shard_rows_io(s->ds[RD_DS_SPAN], RD_DS_SPAN, &rs, 0, (hsize_t)n, span, 0);
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
  RD_TRY(rd_fs_require(path, RD_EINVAL)); /* rd_shard_open adds the path */
  rd_h5_quiet();
  s->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (s->file < 0) {
    char inner[512];
    rd_h5_inner_msg(inner, sizeof inner);
    return rd_err(RD_EINVAL, "not a readable HDF5 file (truncated or corrupt?): %s", inner);
  }
  RD_TRY(rd_h5_check_contained(s->file, NULL)); /* rd_shard_open adds the path */
  RD_TRY(read_attrs(s, expect_hash));
  int has[RD_DS_N];
  RD_TRY(find_datasets(s, has));
  for (int k = 0; k < RD_DS_N; k++)
    if (has[k]) RD_TRY(check_dataset(s, k));
  return check_lengths(s);
}

int rd_shard_open(rd_shard **out, const char *path, uint64_t expect_hash) {
  *out = NULL;
  if (strlen(path) >= RD_PATH_MAX) return rd_err(RD_EINVAL, "path too long: %s", path);
  rd_shard *s = rd_calloc(1, sizeof *s, "shard");
  if (!s) return RD_ENOMEM;
  s->file = -1;
  for (int k = 0; k < RD_DS_N; k++) s->ds[k] = -1;
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
  if (!rd_shard_same_shape(in, &b->info))
    return rd_err(RD_EINVAL, "%s: the batch was made for another shape of shard", s->path);
  if (count == 0) return RD_OK;
  for (int k = 0; k < RD_DS_N; k++) {
    rd_shard_row r = rd_shard_row_of(in, k);
    if (!r.present) continue;
    char *mem = (char *)rd_shard_batch_col(b, k) + (size_t)slot * rd_shard_row_elems(&r) * r.elem;
    int rc = rd_shard_rows_io(s->ds[k], k, &r, (hsize_t)begin, (hsize_t)count, mem, 0);
    if (rc < 0) return rd_err_wrap(rc, "%s: dataset %s", s->path, rd_shard_ds_name[k]);
  }
  return RD_OK;
}

int rd_shard_read(rd_shard *s, int64_t i, rd_shard_batch *b, int64_t slot) {
  return rd_shard_read_block(s, i, 1, b, slot);
}

/* Rows at a time when reading a whole dataset for a check. */
#define CHECK_ROWS 4096

int rd_shard_check_tokens(rd_shard *s, int vocab_size) {
  const rd_shard_info *in = &s->info;
  const int L = in->gen_len;
  const int64_t n = in->n_samples;
  rd_shard_row rc = rd_shard_row_of(in, RD_DS_CAPTIONS), rl = rd_shard_row_of(in, RD_DS_CAPLEN),
               rh = rd_shard_row_of(in, RD_DS_HALLUC);
  int32_t *cap = rd_calloc((size_t)CHECK_ROWS * L, sizeof *cap, "token check");
  int32_t *hal = in->has_halluc ? rd_calloc((size_t)CHECK_ROWS * L, sizeof *hal, "token check") : NULL;
  int32_t *len = rd_calloc(CHECK_ROWS, sizeof *len, "token check");
  int st = !cap || !len || (in->has_halluc && !hal) ? RD_ENOMEM : RD_OK;
  for (int64_t b = 0; b < n && st == RD_OK; b += CHECK_ROWS) {
    hsize_t m = (hsize_t)(n - b < CHECK_ROWS ? n - b : CHECK_ROWS);
    st = rd_shard_rows_io(s->ds[RD_DS_CAPTIONS], RD_DS_CAPTIONS, &rc, (hsize_t)b, m, cap, 0);
    if (st == RD_OK) st = rd_shard_rows_io(s->ds[RD_DS_CAPLEN], RD_DS_CAPLEN, &rl, (hsize_t)b, m, len, 0);
    if (st == RD_OK && hal) st = rd_shard_rows_io(s->ds[RD_DS_HALLUC], RD_DS_HALLUC, &rh, (hsize_t)b, m, hal, 0);
    for (hsize_t i = 0; i < m && st == RD_OK; i++) {
      int64_t row = b + (int64_t)i;
      for (int j = 0; j < L && st == RD_OK; j++) {
        int32_t t = cap[i * L + j];
        /* a caption is words (ids from [UNK] on) for caption_len positions,
         * then [EOS] padding: what every stage and expert assumes */
        if (t < 0 || t >= vocab_size)
          st = rd_err(RD_EINVAL, "%s: dataset /captions: sample %" PRId64 ", position %d: id %d is outside the "
                      "vocabulary's %d tokens", s->path, row, j, (int)t, vocab_size);
        else if (j < len[i] && t < RD_TOK_UNK)
          st = rd_err(RD_EINVAL, "%s: dataset /captions: sample %" PRId64 ", position %d: special token %d "
                      "inside the caption (caption_len %d)", s->path, row, j, (int)t, (int)len[i]);
        else if (j >= len[i] && t != RD_TOK_EOS)
          st = rd_err(RD_EINVAL, "%s: dataset /captions: sample %" PRId64 ", position %d: id %d after "
                      "caption_len %d, where [EOS] padding belongs", s->path, row, j, (int)t, (int)len[i]);
        int32_t h = hal ? hal[i * L + j] : RD_TOK_EOS;
        if (st == RD_OK && (h < 0 || h >= vocab_size || h == RD_TOK_MASK || h == RD_TOK_BOS))
          st = rd_err(RD_EINVAL, "%s: dataset /halluc: sample %" PRId64 ", position %d: id %d is not a word "
                      "or [EOS] of the vocabulary's %d tokens", s->path, row, j, (int)h, vocab_size);
      }
    }
  }
  free(cap);
  free(hal);
  free(len);
  return st;
}

int rd_shard_sample_ids(rd_shard *s, int64_t *ids) {
  rd_shard_row r = rd_shard_row_of(&s->info, RD_DS_SID);
  int st = rd_shard_rows_io(s->ds[RD_DS_SID], RD_DS_SID, &r, 0, (hsize_t)s->info.n_samples, ids, 0);
  return st < 0 ? rd_err_wrap(st, "%s: dataset /sample_id", s->path) : RD_OK;
}
