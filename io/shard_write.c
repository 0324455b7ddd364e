/* Writing a shard (io/shard.h): samples are buffered and written a chunk at
 * a time into a temporary file, renamed into place only when complete. */
#include "io/shard.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/h5attr.h"
#include "io/h5check.h"
#include "io/shard_internal.h"
#include "io/vocab.h"

struct rd_shard_writer {
  char path[RD_PATH_MAX], tmp[RD_PATH_MAX];
  rd_shard_info info;
  hid_t file, ds[RD_DS_N];
  rd_shard_batch buf; /* samples not yet written */
  int64_t n_buf, n_done;
};

/* HDF5's default chunk cache is 1 MiB per dataset; a chunk larger than that
 * would be read (and inflated) again for every sample taken from it. */
#define RD_SHARD_CHUNK_BYTES (1 << 20)

static int create_dataset(rd_shard_writer *w, int k, int chunk, int deflate) {
  rd_shard_row r = rd_shard_row_of(&w->info, k);
  size_t row_bytes = rd_shard_row_elems(&r) * r.elem;
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
    rc = RD_H5(w->ds[k] = H5Dcreate2(w->file, rd_shard_ds_name[k], rd_shard_file_type(k), space, H5P_DEFAULT, dcpl,
                                     H5P_DEFAULT));
  if (dcpl >= 0) H5Pclose(dcpl);
  if (space >= 0) H5Sclose(space);
  return rc < 0 ? rd_err_wrap(rc, "%s: dataset %s", w->path, rd_shard_ds_name[k]) : RD_OK;
}

static void writer_release(rd_shard_writer *w, int remove_tmp) {
  for (int k = 0; k < RD_DS_N; k++)
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
  RD_TRY(rd_shard_check_shape(info, path));
  if (!rd_shard_valid_split(info->split))
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
  for (int k = 0; k < RD_DS_N; k++) w->ds[k] = -1;
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
  for (int k = 0; k < RD_DS_N && rc == RD_OK; k++)
    if (rd_shard_row_of(info, k).present) rc = create_dataset(w, k, chunk, deflate);
  if (rc < 0) {
    writer_release(w, 1);
    return rc;
  }
  *out = w;
  return RD_OK;
}

static int writer_flush(rd_shard_writer *w) {
  if (w->n_buf == 0) return RD_OK;
  for (int k = 0; k < RD_DS_N; k++) {
    rd_shard_row r = rd_shard_row_of(&w->info, k);
    if (!r.present) continue;
    hsize_t dims[4] = {(hsize_t)(w->n_done + w->n_buf)};
    for (int d = 0; d < r.rank; d++) dims[d + 1] = r.dims[d];
    int rc = RD_H5(H5Dset_extent(w->ds[k], dims));
    if (rc == RD_OK) rc = rd_shard_rows_io(w->ds[k], k, &r, (hsize_t)w->n_done, (hsize_t)w->n_buf,
                                  rd_shard_batch_col(&w->buf, k), 1);
    if (rc < 0) return rd_err_wrap(rc, "%s: dataset %s", w->path, rd_shard_ds_name[k]);
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

static int write_attrs(rd_shard_writer *w) {
  const rd_shard_info *in = &w->info;
  char hex[17];
  rd_vocab_hash_hex(in->vocab_hash, hex);
  RD_TRY(rd_h5_attr_write_i32(w->file, "schema_version", RD_SHARD_SCHEMA_VERSION));
  RD_TRY(rd_h5_attr_write_str(w->file, "vocab_hash", hex));
  RD_TRY(rd_h5_attr_write_i32(w->file, "image_size", in->image_size));
  RD_TRY(rd_h5_attr_write_i32(w->file, "gen_len", in->gen_len));
  RD_TRY(rd_h5_attr_write_i64(w->file, "n_samples", w->n_done));
  RD_TRY(rd_h5_attr_write_str(w->file, "split", in->split));
  RD_TRY(rd_h5_attr_write_str(w->file, "created_by", in->created_by));
  return RD_OK;
}

int rd_shard_writer_close(rd_shard_writer *w) {
  int rc = writer_flush(w);
  if (rc == RD_OK) {
    rc = write_attrs(w);
    if (rc < 0) rc = rd_err_wrap(rc, "%s", w->path);
  }
  for (int k = 0; k < RD_DS_N; k++) {
    if (w->ds[k] < 0) continue;
    int c = RD_H5(H5Dclose(w->ds[k]));
    w->ds[k] = -1;
    if (rc == RD_OK && c < 0) rc = rd_err_wrap(c, "%s: dataset %s", w->path, rd_shard_ds_name[k]);
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
