/* Drafts and revisions files: whole-file HDF5 writers and checking readers. */
#include "io/drafts.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/h5attr.h"
#include "io/h5check.h"
#include "io/h5file.h"
#include "io/vocab.h"

static const char *const edit_kind_names[RD_EDIT_KINDS] = {
    "count", "object", "relation", "shape_count", "syntax", "repeat", "text"};

const char *rd_edit_kind_name(int kind) {
  return kind >= 0 && kind < RD_EDIT_KINDS ? edit_kind_names[kind] : "?";
}

/* Grows *p (elem bytes each) to hold at least need elements. */
static int grow(void **p, int64_t *cap, int64_t need, size_t elem, int64_t n_old, const char *what) {
  if (need <= *cap) return RD_OK;
  int64_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  void *q = realloc(*p, (size_t)c * elem);
  if (!q) return rd_err(RD_ENOMEM, "out of memory growing %s to %" PRId64 " rows", what, c);
  memset((char *)q + (size_t)n_old * elem, 0, (size_t)(c - n_old) * elem);
  *p = q;
  *cap = c;
  return RD_OK;
}

/* ---- HDF5 helpers */

static int hash_attr(hid_t f, uint64_t expect, uint64_t *hash) {
  char hex[64];
  RD_TRY(rd_h5_attr_read_str(f, "vocab_hash", hex, sizeof hex));
  if (rd_vocab_hash_parse(hex, hash) < 0) return rd_err(RD_EINVAL, "attribute vocab_hash \"%s\" is not 16 hex digits", hex);
  if (expect && *hash != expect) {
    char want[17];
    rd_vocab_hash_hex(expect, want);
    return rd_err(RD_EINVAL, "attribute vocab_hash is %s but the vocabulary in use hashes to %s", hex, want);
  }
  return RD_OK;
}

/* A contiguous dataset of rows x cols (cols 0: one dimension). */
static int write_ds(hid_t f, const char *name, hid_t ftype, hid_t mtype, int64_t rows, int cols, const void *data) {
  hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
  hid_t sp = -1, d = -1;
  int rc = RD_H5(sp = H5Screate_simple(cols ? 2 : 1, dims, NULL));
  if (rc == RD_OK) rc = RD_H5(d = H5Dcreate2(f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (rc == RD_OK && rows > 0) rc = RD_H5(H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  if (d >= 0) H5Dclose(d);
  if (sp >= 0) H5Sclose(sp);
  return rc < 0 ? rd_err_wrap(rc, "dataset %s", name) : RD_OK;
}

/* Reads a dataset that must have the shape rows x cols (cols 0: 1-D) into a
 * new buffer; rows < 0 takes the row count from the file. */
static int read_ds(hid_t f, const char *name, hid_t mtype, size_t elem, int64_t *rows, int cols, void **out) {
  hid_t d = -1, sp = -1;
  hsize_t dims[2] = {0, 0};
  int want = cols ? 2 : 1;
  htri_t has = H5Lexists(f, name + 1, H5P_DEFAULT);
  int rc = RD_H5(has);
  if (rc == RD_OK && !has) rc = rd_err(RD_EINVAL, "dataset %s is missing", name);
  if (rc == RD_OK) rc = RD_H5(d = H5Dopen2(f, name, H5P_DEFAULT));
  if (rc == RD_OK) rc = RD_H5(sp = H5Dget_space(d));
  if (rc == RD_OK && H5Sget_simple_extent_ndims(sp) != want)
    rc = rd_err(RD_EINVAL, "dataset %s has %d dimensions, expected %d", name, H5Sget_simple_extent_ndims(sp), want);
  if (rc == RD_OK) H5Sget_simple_extent_dims(sp, dims, NULL);
  if (rc == RD_OK && *rows >= 0 && dims[0] != (hsize_t)*rows)
    rc = rd_err(RD_EINVAL, "dataset %s has %llu rows, expected %" PRId64, name, (unsigned long long)dims[0], *rows);
  if (rc == RD_OK && cols && dims[1] != (hsize_t)cols)
    rc = rd_err(RD_EINVAL, "dataset %s has %llu columns, expected %d", name, (unsigned long long)dims[1], cols);
  if (rc == RD_OK) {
    *rows = (int64_t)dims[0];
    size_t n = (size_t)dims[0] * (size_t)(cols ? cols : 1);
    *out = rd_calloc(n ? n : 1, elem, name);
    if (!*out) rc = RD_ENOMEM;
    if (rc == RD_OK && n) rc = RD_H5(H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out));
  }
  if (sp >= 0) H5Sclose(sp);
  if (d >= 0) H5Dclose(d);
  return rc < 0 ? rd_err_wrap(rc, "dataset %s", name) : RD_OK;
}

static int open_read(const char *path, hid_t *f) {
  rd_h5_quiet();
  int st = rd_fs_require(path, RD_EINVAL);
  if (st < 0) return rd_err_wrap(st, "%s", path);
  int rc = RD_H5(*f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT));
  if (rc < 0) return rd_err_wrap(rc, "%s: not a readable HDF5 file", path);
  rc = rd_h5_check_contained(*f, path);
  if (rc < 0) {
    H5Fclose(*f);
    *f = -1;
  }
  return rc;
}

/* Creates the temporary file of path; finish() closes and commits it. */
static int open_write(const char *path, char *tmp, size_t n, hid_t *f) {
  rd_h5_quiet();
  RD_TRY(rd_fs_mkparent(path));
  RD_TRY(rd_fs_tmpname(path, tmp, n));
  int rc = RD_H5(*f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  return rc < 0 ? rd_err_wrap(rc, "%s", tmp) : RD_OK;
}

static int finish(hid_t f, int rc, const char *tmp, const char *path) {
  if (f >= 0) {
    int c = RD_H5(H5Fclose(f));
    if (rc == RD_OK) rc = c;
  }
  if (rc == RD_OK) rc = rd_fs_commit(tmp, path);
  if (rc < 0) {
    rd_fs_discard(tmp);
    return rd_err_wrap(rc, "%s", path);
  }
  return RD_OK;
}

/* ---- drafts */

int rd_drafts_init(rd_drafts *d, int gen_len, uint64_t vocab_hash, int round, int rank) {
  memset(d, 0, sizeof *d);
  if (gen_len < 1) return rd_err(RD_EINVAL, "drafts: gen_len %d", gen_len);
  d->gen_len = gen_len;
  d->vocab_hash = vocab_hash;
  d->round = round;
  d->rank = rank;
  return RD_OK;
}

void rd_drafts_free(rd_drafts *d) {
  free(d->sample_id);
  free(d->steps);
  free(d->tokens);
  free(d->margin);
  memset(d, 0, sizeof *d);
}

int rd_drafts_append(rd_drafts *d, int64_t sample_id, int steps, const int32_t *tokens, float margin) {
  int64_t cap = d->cap, L = d->gen_len;
  RD_TRY(grow((void **)&d->sample_id, &cap, d->n + 1, sizeof(int64_t), d->n, "drafts"));
  cap = d->cap;
  RD_TRY(grow((void **)&d->steps, &cap, d->n + 1, sizeof(int32_t), d->n, "drafts"));
  cap = d->cap;
  RD_TRY(grow((void **)&d->margin, &cap, d->n + 1, sizeof(float), d->n, "drafts"));
  cap = d->cap;
  RD_TRY(grow((void **)&d->tokens, &cap, d->n + 1, sizeof(int32_t) * (size_t)L, d->n, "drafts"));
  d->cap = cap;
  int32_t *row = d->tokens + d->n * L;
  int eos = 0;
  for (int64_t i = 0; i < L; i++) {
    eos |= tokens[i] == RD_TOK_EOS;
    row[i] = eos ? RD_TOK_EOS : tokens[i];
  }
  d->sample_id[d->n] = sample_id;
  d->steps[d->n] = steps;
  d->margin[d->n] = margin;
  d->n++;
  return RD_OK;
}

int rd_drafts_write(const rd_drafts *d, const char *path) {
  char tmp[RD_PATH_MAX], hex[17];
  hid_t f = -1;
  RD_TRY(open_write(path, tmp, sizeof tmp, &f));
  rd_vocab_hash_hex(d->vocab_hash, hex);
  int rc = rd_h5_attr_write_i32(f, "schema_version", RD_DRAFTS_SCHEMA_VERSION);
  if (rc == RD_OK) rc = rd_h5_attr_write_str(f, "vocab_hash", hex);
  if (rc == RD_OK) rc = rd_h5_attr_write_i32(f, "gen_len", d->gen_len);
  if (rc == RD_OK) rc = rd_h5_attr_write_i32(f, "round", d->round);
  if (rc == RD_OK) rc = rd_h5_attr_write_i32(f, "rank", d->rank);
  if (rc == RD_OK) rc = write_ds(f, "/sample_id", H5T_STD_I64LE, H5T_NATIVE_INT64, d->n, 0, d->sample_id);
  if (rc == RD_OK) rc = write_ds(f, "/steps", H5T_STD_I32LE, H5T_NATIVE_INT32, d->n, 0, d->steps);
  if (rc == RD_OK) rc = write_ds(f, "/tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, d->n, d->gen_len, d->tokens);
  if (rc == RD_OK && d->margin)
    rc = write_ds(f, "/margin", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, d->n, 0, d->margin);
  return finish(f, rc, tmp, path);
}

static int drafts_check(const rd_drafts *d, int vocab_size) {
  for (int64_t r = 0; r < d->n; r++) {
    if (d->steps[r] < 1) return rd_err(RD_EINVAL, "dataset /steps: row %" PRId64 " is %d, expected >= 1", r, d->steps[r]);
    const int32_t *t = d->tokens + r * d->gen_len;
    int eos = 0;
    for (int i = 0; i < d->gen_len; i++) {
      if (t[i] < 0 || (vocab_size && t[i] >= vocab_size))
        return rd_err(RD_EINVAL, "dataset /tokens: row %" PRId64 " position %d holds %d, outside the vocabulary of %d",
                      r, i, t[i], vocab_size);
      if (eos && t[i] != RD_TOK_EOS)
        return rd_err(RD_EINVAL, "dataset /tokens: row %" PRId64 " has token %d at position %d after its first [EOS]",
                      r, t[i], i);
      eos |= t[i] == RD_TOK_EOS;
    }
  }
  return RD_OK;
}

int rd_drafts_read(const char *path, uint64_t expect_hash, int vocab_size, rd_drafts *d) {
  memset(d, 0, sizeof *d);
  hid_t f = -1;
  RD_TRY(open_read(path, &f));
  int64_t version = 0, L = 0, round = 0, rank = 0, n = -1;
  int rc = rd_h5_attr_read_i64(f, "schema_version", &version);
  if (rc == RD_OK && version != RD_DRAFTS_SCHEMA_VERSION)
    rc = rd_err(RD_EINVAL, "attribute schema_version is %" PRId64 ", this build reads %d", version, RD_DRAFTS_SCHEMA_VERSION);
  if (rc == RD_OK) rc = hash_attr(f, expect_hash, &d->vocab_hash);
  if (rc == RD_OK) rc = rd_h5_attr_read_i64(f, "gen_len", &L);
  if (rc == RD_OK && (L < 1 || L > 1 << 20)) rc = rd_err(RD_EINVAL, "attribute gen_len is %" PRId64, L);
  if (rc == RD_OK) rc = rd_h5_attr_read_i64(f, "round", &round);
  if (rc == RD_OK) rc = rd_h5_attr_read_i64(f, "rank", &rank);
  d->gen_len = (int)L;
  d->round = (int)round;
  d->rank = (int)rank;
  if (rc == RD_OK) rc = read_ds(f, "/sample_id", H5T_NATIVE_INT64, sizeof(int64_t), &n, 0, (void **)&d->sample_id);
  if (rc == RD_OK) rc = read_ds(f, "/steps", H5T_NATIVE_INT32, sizeof(int32_t), &n, 0, (void **)&d->steps);
  if (rc == RD_OK) rc = read_ds(f, "/tokens", H5T_NATIVE_INT32, sizeof(int32_t), &n, (int)L, (void **)&d->tokens);
  d->n = d->cap = n < 0 ? 0 : n;
  if (rc == RD_OK) rc = drafts_check(d, vocab_size);
  H5Fclose(f);
  if (rc < 0) {
    rd_drafts_free(d);
    return rd_err_wrap(rc, "%s", path);
  }
  return RD_OK;
}

/* ---- revisions */

int rd_revisions_init(rd_revisions *r, int gen_len, uint64_t vocab_hash, int round, const char *expert,
                      const char *length_policy) {
  memset(r, 0, sizeof *r);
  if (gen_len < 1) return rd_err(RD_EINVAL, "revisions: gen_len %d", gen_len);
  r->gen_len = gen_len;
  r->vocab_hash = vocab_hash;
  r->round = round;
  snprintf(r->expert, sizeof r->expert, "%s", expert);
  snprintf(r->length_policy, sizeof r->length_policy, "%s", length_policy);
  return RD_OK;
}

void rd_revisions_free(rd_revisions *r) {
  free(r->sample_id);
  free(r->steps);
  free(r->right);
  free(r->original);
  free(r->draft);
  free(r->refined);
  free(r->mistake);
  free(r->edits);
  free(r->edit_kind);
  memset(r, 0, sizeof *r);
}

int rd_revisions_append(rd_revisions *r, int64_t sample_id, int steps, int right, const int32_t *original,
                        const int32_t *draft, const int32_t *refined, const uint8_t *mistake) {
  const size_t L = (size_t)r->gen_len;
  int64_t need = r->n + 1, c;
#define RD_GROW(field, elem) \
  c = r->cap;                \
  RD_TRY(grow((void **)&r->field, &c, need, (elem), r->n, "revisions"))
  RD_GROW(sample_id, sizeof(int64_t));
  RD_GROW(steps, sizeof(int32_t));
  RD_GROW(right, 1);
  RD_GROW(original, sizeof(int32_t) * L);
  RD_GROW(draft, sizeof(int32_t) * L);
  RD_GROW(refined, sizeof(int32_t) * L);
  RD_GROW(mistake, L);
#undef RD_GROW
  r->cap = c;
  int64_t i = r->n++;
  r->sample_id[i] = sample_id;
  r->steps[i] = steps;
  r->right[i] = (uint8_t)(right != 0);
  memcpy(r->original + i * (int64_t)L, original, L * sizeof(int32_t));
  memcpy(r->draft + i * (int64_t)L, draft, L * sizeof(int32_t));
  memcpy(r->refined + i * (int64_t)L, refined, L * sizeof(int32_t));
  memcpy(r->mistake + i * (int64_t)L, mistake, L);
  return RD_OK;
}

int rd_revisions_add_edit(rd_revisions *r, const int32_t edit[5], int kind) {
  if (kind < 0 || kind >= RD_EDIT_KINDS) return rd_err(RD_EINVAL, "revisions: edit kind %d", kind);
  int64_t c = r->edit_cap;
  RD_TRY(grow((void **)&r->edits, &c, r->n_edits + 1, 5 * sizeof(int32_t), r->n_edits, "edits"));
  c = r->edit_cap;
  RD_TRY(grow((void **)&r->edit_kind, &c, r->n_edits + 1, 1, r->n_edits, "edits"));
  r->edit_cap = c;
  memcpy(r->edits + r->n_edits * 5, edit, 5 * sizeof(int32_t));
  r->edit_kind[r->n_edits++] = (uint8_t)kind;
  return RD_OK;
}

/* The edit kinds as an HDF5 enum, so h5dump and h5py show the names. */
static int kind_type(hid_t *t) {
  RD_TRY(RD_H5(*t = H5Tenum_create(H5T_NATIVE_UINT8)));
  for (uint8_t k = 0; k < RD_EDIT_KINDS; k++) RD_TRY(RD_H5(H5Tenum_insert(*t, edit_kind_names[k], &k)));
  return RD_OK;
}

int rd_revisions_write(const rd_revisions *r, const char *path) {
  char tmp[RD_PATH_MAX], hex[17];
  hid_t f = -1, kt = -1;
  const int L = r->gen_len;
  RD_TRY(open_write(path, tmp, sizeof tmp, &f));
  rd_vocab_hash_hex(r->vocab_hash, hex);
  int rc = rd_h5_attr_write_i32(f, "schema_version", RD_REVISIONS_SCHEMA_VERSION);
  if (rc == RD_OK) rc = rd_h5_attr_write_str(f, "vocab_hash", hex);
  if (rc == RD_OK) rc = rd_h5_attr_write_i32(f, "gen_len", L);
  if (rc == RD_OK) rc = rd_h5_attr_write_i32(f, "round", r->round);
  if (rc == RD_OK) rc = rd_h5_attr_write_str(f, "expert", r->expert);
  if (rc == RD_OK) rc = rd_h5_attr_write_str(f, "length_policy", r->length_policy);
  if (rc == RD_OK) rc = write_ds(f, "/sample_id", H5T_STD_I64LE, H5T_NATIVE_INT64, r->n, 0, r->sample_id);
  if (rc == RD_OK) rc = write_ds(f, "/steps", H5T_STD_I32LE, H5T_NATIVE_INT32, r->n, 0, r->steps);
  if (rc == RD_OK) rc = write_ds(f, "/right", H5T_STD_U8LE, H5T_NATIVE_UINT8, r->n, 0, r->right);
  if (rc == RD_OK) rc = write_ds(f, "/original", H5T_STD_I32LE, H5T_NATIVE_INT32, r->n, L, r->original);
  if (rc == RD_OK) rc = write_ds(f, "/draft", H5T_STD_I32LE, H5T_NATIVE_INT32, r->n, L, r->draft);
  if (rc == RD_OK) rc = write_ds(f, "/refined", H5T_STD_I32LE, H5T_NATIVE_INT32, r->n, L, r->refined);
  if (rc == RD_OK) rc = write_ds(f, "/mistake", H5T_STD_U8LE, H5T_NATIVE_UINT8, r->n, L, r->mistake);
  if (rc == RD_OK) rc = write_ds(f, "/edits", H5T_STD_I32LE, H5T_NATIVE_INT32, r->n_edits, 5, r->edits);
  if (rc == RD_OK) rc = kind_type(&kt);
  if (rc == RD_OK) rc = write_ds(f, "/edit_kind", kt, kt, r->n_edits, 0, r->edit_kind);
  if (kt >= 0) H5Tclose(kt);
  return finish(f, rc, tmp, path);
}

int rd_revisions_read(const char *path, uint64_t expect_hash, rd_revisions *r) {
  memset(r, 0, sizeof *r);
  hid_t f = -1, kt = -1;
  RD_TRY(open_read(path, &f));
  int64_t version = 0, L = 0, round = 0, n = -1, e = -1;
  int rc = rd_h5_attr_read_i64(f, "schema_version", &version);
  if (rc == RD_OK && version != RD_REVISIONS_SCHEMA_VERSION)
    rc = rd_err(RD_EINVAL, "attribute schema_version is %" PRId64 ", this build reads %d", version,
                RD_REVISIONS_SCHEMA_VERSION);
  if (rc == RD_OK) rc = hash_attr(f, expect_hash, &r->vocab_hash);
  if (rc == RD_OK) rc = rd_h5_attr_read_i64(f, "gen_len", &L);
  if (rc == RD_OK && (L < 1 || L > 1 << 20)) rc = rd_err(RD_EINVAL, "attribute gen_len is %" PRId64, L);
  if (rc == RD_OK) rc = rd_h5_attr_read_i64(f, "round", &round);
  if (rc == RD_OK) rc = rd_h5_attr_read_str(f, "expert", r->expert, sizeof r->expert);
  if (rc == RD_OK) rc = rd_h5_attr_read_str(f, "length_policy", r->length_policy, sizeof r->length_policy);
  r->gen_len = (int)L;
  r->round = (int)round;
#define RD_READ(name, mt, elem, rows, cols, field) \
  if (rc == RD_OK) rc = read_ds(f, name, mt, elem, rows, cols, (void **)&r->field)
  RD_READ("/sample_id", H5T_NATIVE_INT64, sizeof(int64_t), &n, 0, sample_id);
  RD_READ("/steps", H5T_NATIVE_INT32, sizeof(int32_t), &n, 0, steps);
  RD_READ("/right", H5T_NATIVE_UINT8, 1, &n, 0, right);
  RD_READ("/original", H5T_NATIVE_INT32, sizeof(int32_t), &n, (int)L, original);
  RD_READ("/draft", H5T_NATIVE_INT32, sizeof(int32_t), &n, (int)L, draft);
  RD_READ("/refined", H5T_NATIVE_INT32, sizeof(int32_t), &n, (int)L, refined);
  RD_READ("/mistake", H5T_NATIVE_UINT8, 1, &n, (int)L, mistake);
  RD_READ("/edits", H5T_NATIVE_INT32, sizeof(int32_t), &e, 5, edits);
  if (rc == RD_OK) rc = kind_type(&kt);
  if (rc == RD_OK) rc = read_ds(f, "/edit_kind", kt, 1, &e, 0, (void **)&r->edit_kind);
#undef RD_READ
  r->n = r->cap = n < 0 ? 0 : n;
  r->n_edits = r->edit_cap = e < 0 ? 0 : e;
  for (int64_t i = 0; rc == RD_OK && i < r->n_edits; i++) {
    const int32_t *ed = r->edits + 5 * i;
    if (ed[0] < 0 || ed[0] >= r->n || ed[1] < 0 || ed[2] < 0 || ed[1] + ed[2] > L || ed[3] < 0 || ed[4] < 0 ||
        ed[3] + ed[4] > L)
      rc = rd_err(RD_EINVAL, "dataset /edits: row %" PRId64 " {%d, %d, %d, %d, %d} is out of range", i, ed[0], ed[1],
                  ed[2], ed[3], ed[4]);
  }
  if (kt >= 0) H5Tclose(kt);
  H5Fclose(f);
  if (rc < 0) {
    rd_revisions_free(r);
    return rd_err_wrap(rc, "%s", path);
  }
  return RD_OK;
}
