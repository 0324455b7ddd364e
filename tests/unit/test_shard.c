/* Shards: write/read round trips (images and features, compressed or not),
 * shard sets by global index, data-parallel slices, every error naming file
 * and dataset, writers that fail leaving nothing, and h5py reading our files. */
#include <dirent.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/core/fs.h"
#include "io/core/json.h"
#include "io/core/rng.h"
#include "io/h5attr.h"
#include "io/shard.h"
#include "io/vocab.h"
#include "rd_test.h"

#define HASH 0x0123456789abcdefULL

static char tmpdir[64];

static const char *tmp_path(const char *name) {
  static char buf[4][512];
  static int next;
  if (!tmpdir[0]) {
    strcpy(tmpdir, "/tmp/rd_shard_XXXXXX");
    if (!mkdtemp(tmpdir)) {
      perror("mkdtemp");
      exit(1);
    }
  }
  char *p = buf[next++ % 4];
  snprintf(p, 512, "%s/%s", tmpdir, name);
  return p;
}

static rd_shard_info image_info(void) {
  rd_shard_info in;
  memset(&in, 0, sizeof in);
  in.image_size = 12;
  in.gen_len = 16;
  in.has_halluc = 1;
  in.scene_k = 4;
  in.scene_f = 5;
  in.vocab_hash = HASH;
  strcpy(in.split, "train");
  strcpy(in.created_by, "test_shard");
  return in;
}

static rd_shard_info feature_info(void) {
  rd_shard_info in = image_info();
  in.image_size = 0;
  in.n_patches = 9;
  in.feat_dim = 7;
  in.has_halluc = 0;
  in.scene_k = in.scene_f = 0;
  strcpy(in.split, "eval");
  return in;
}

/* The sample of global index gi, a function of gi alone, into slot 0 of b. */
static void make_sample(const rd_shard_info *in, int64_t gi, rd_shard_batch *b) {
  rd_rng r;
  rd_rng_init(&r, 42, RD_RNG_TEST, (uint64_t)gi, in->n_patches);
  int L = in->gen_len;
  if (b->images)
    for (int i = 0; i < in->image_size * in->image_size * 3; i++) b->images[i] = (uint8_t)rd_rng_u32(&r);
  if (b->features)
    for (int i = 0; i < in->n_patches * in->feat_dim; i++) b->features[i] = (float)rd_rng_normal(&r);
  int len = (int)rd_rng_below(&r, (uint32_t)L + 1);
  b->caption_len[0] = len;
  for (int t = 0; t < L; t++) b->captions[t] = t < len ? 4 + (int32_t)rd_rng_below(&r, 500) : RD_TOK_EOS;
  if (b->halluc) {
    int start = (int)rd_rng_below(&r, (uint32_t)len + 1), n = len - start < 2 ? len - start : 2;
    memcpy(b->halluc, b->captions, (size_t)L * sizeof(int32_t));
    for (int t = start; t < start + n; t++) b->halluc[t] = 4 + (int32_t)rd_rng_below(&r, 500);
    b->halluc_span[0] = start;
    b->halluc_span[1] = n;
  }
  if (b->scenes)
    for (int i = 0; i < in->scene_k * in->scene_f; i++) b->scenes[i] = (int32_t)rd_rng_below(&r, 20) - 5;
  b->sample_id[0] = 1000 + 7 * gi;
}

/* Does slot of got hold sample gi? */
static int same_sample(const rd_shard_info *in, const rd_shard_batch *got, int64_t slot, int64_t gi) {
  rd_shard_batch want;
  if (rd_shard_batch_init(&want, in, 1) < 0) return 0;
  make_sample(in, gi, &want);
  rd_shard_sample a, b;
  rd_shard_batch_sample(got, slot, &a);
  rd_shard_batch_sample(&want, 0, &b);
  size_t L = (size_t)in->gen_len * sizeof(int32_t);
  int ok = a.caption_len == b.caption_len && a.sample_id == b.sample_id &&
           memcmp(a.caption, b.caption, L) == 0;
  if (b.image)
    ok &= memcmp(a.image, b.image, (size_t)in->image_size * in->image_size * 3) == 0;
  if (b.features)
    ok &= memcmp(a.features, b.features, (size_t)in->n_patches * in->feat_dim * sizeof(float)) == 0;
  if (b.halluc)
    ok &= memcmp(a.halluc, b.halluc, L) == 0 && a.halluc_span[0] == b.halluc_span[0] &&
          a.halluc_span[1] == b.halluc_span[1];
  if (b.scene) ok &= memcmp(a.scene, b.scene, (size_t)in->scene_k * in->scene_f * 4) == 0;
  rd_shard_batch_free(&want);
  return ok;
}

/* Writes samples first .. first+n-1 as one shard. */
static int write_shard(const char *path, const rd_shard_info *in, int64_t first, int64_t n,
                       int chunk, int deflate) {
  rd_shard_writer *w;
  rd_shard_batch b;
  RD_TRY(rd_shard_batch_init(&b, in, 1));
  int rc = rd_shard_writer_open(&w, path, in, chunk, deflate);
  for (int64_t i = 0; i < n && rc == RD_OK; i++) {
    make_sample(in, first + i, &b);
    rd_shard_sample s;
    rd_shard_batch_sample(&b, 0, &s);
    rc = rd_shard_writer_append(w, &s);
    if (rc < 0) rd_shard_writer_abort(w);
  }
  if (rc == RD_OK) rc = rd_shard_writer_close(w);
  rd_shard_batch_free(&b);
  return rc;
}

/* Three train shards of 128, 100 and 72 samples in tmp/set/, each written
 * with other chunking and compression. */
static const int64_t set_sizes[3] = {128, 100, 72};

static void write_train_set(void) {
  static const int chunk[3] = {64, 32, 0}, deflate[3] = {4, 0, 9};
  rd_shard_info in = image_info();
  int64_t first = 0;
  char path[512];
  for (int i = 0; i < 3; i++) {
    CHECK_OK(rd_shard_name(path, sizeof path, tmp_path("set"), "train", i));
    CHECK_OK(write_shard(path, &in, first, set_sizes[i], chunk[i], deflate[i]));
    first += set_sizes[i];
  }
}

static void round_trip_one_shard(const rd_shard_info *in, int chunk, int deflate) {
  const char *path = tmp_path("one.h5");
  CHECK_OK(write_shard(path, in, 500, 150, chunk, deflate));
  rd_shard *s;
  CHECK_OK(rd_shard_open(&s, path, HASH));
  if (!s) return;
  const rd_shard_info *got = rd_shard_get_info(s);
  CHECK(got->n_samples == 150 && got->gen_len == in->gen_len && got->vocab_hash == HASH);
  CHECK(got->image_size == in->image_size && got->n_patches == in->n_patches &&
        got->feat_dim == in->feat_dim && got->has_halluc == in->has_halluc &&
        got->scene_k == in->scene_k && got->scene_f == in->scene_f);
  CHECK(strcmp(got->split, in->split) == 0 && strcmp(got->created_by, "test_shard") == 0);
  rd_shard_batch b;
  CHECK_OK(rd_shard_batch_init(&b, got, 150));
  /* Random access, out of order. */
  int bad = 0;
  for (int64_t k = 0; k < 150; k++) {
    int64_t i = (k * 37) % 150;
    CHECK_OK(rd_shard_read(s, i, &b, 3));
    bad += !same_sample(in, &b, 3, 500 + i);
  }
  CHECK_MSG(bad == 0, "%d samples differ (chunk %d, deflate %d)", bad, chunk, deflate);
  /* One block read of everything, then an inner block at an offset slot. */
  CHECK_OK(rd_shard_read_block(s, 0, 150, &b, 0));
  bad = 0;
  for (int64_t i = 0; i < 150; i++) bad += !same_sample(in, &b, i, 500 + i);
  CHECK_OK(rd_shard_read_block(s, 60, 70, &b, 10));
  for (int64_t i = 0; i < 70; i++) bad += !same_sample(in, &b, 10 + i, 560 + i);
  CHECK_MSG(bad == 0, "%d block samples differ", bad);
  CHECK_ERR(rd_shard_read(s, 150, &b, 0), "one.h5: samples 150..150 outside its 150 samples");
  CHECK_ERR(rd_shard_read_block(s, 100, 20, &b, 140), "overflow a batch of 150");
  rd_shard_batch_free(&b);
  rd_shard_close(s);
}

static void round_trips(void) {
  rd_shard_info img = image_info(), feat = feature_info();
  round_trip_one_shard(&img, 64, 0);
  round_trip_one_shard(&img, 16, 6);
  round_trip_one_shard(&feat, 0, 0);
  round_trip_one_shard(&feat, 100, 1);
  /* An empty shard is valid. */
  CHECK_OK(write_shard(tmp_path("empty.h5"), &img, 0, 0, 0, 0));
  rd_shard *s;
  CHECK_OK(rd_shard_open(&s, tmp_path("empty.h5"), HASH));
  CHECK(s && rd_shard_get_info(s)->n_samples == 0);
  rd_shard_close(s);
}

static void shard_set_by_global_index(void) {
  write_train_set();
  rd_shardset set;
  CHECK_OK(rd_shardset_open(&set, tmp_path("set"), "train", HASH));
  CHECK(set.n_shards == 3 && set.n_total == 300 && set.info.n_samples == 300);
  rd_shard_batch b;
  CHECK_OK(rd_shard_batch_init(&b, &set.info, 300));
  int bad = 0;
  for (int64_t gi = 299; gi >= 0; gi--) {
    CHECK_OK(rd_shardset_read(&set, gi, &b, gi));
    bad += !same_sample(&set.info, &b, gi, gi);
  }
  CHECK_MSG(bad == 0, "%d samples differ", bad);
  /* A range across all three shards, at a slot offset. */
  CHECK_OK(rd_shardset_read_range(&set, 100, 150, &b, 5));
  bad = 0;
  for (int64_t i = 0; i < 150; i++) bad += !same_sample(&set.info, &b, 5 + i, 100 + i);
  CHECK_MSG(bad == 0, "%d range samples differ", bad);
  CHECK_ERR(rd_shardset_read(&set, 300, &b, 0), "samples 300..300 outside the 300 samples");
  rd_shard_batch_free(&b);
  rd_shardset_close(&set);
  CHECK_ERR(rd_shardset_open(&set, tmp_path("set"), "train", HASH + 1), "train-00000.h5: attribute vocab_hash is 0123456789abcdef but");
  CHECK_ERR(rd_shardset_open(&set, tmp_path("set"), "eval", 0), "no shards eval-00000.h5");
  CHECK_ERR(rd_shardset_open(&set, tmp_path("nowhere"), "train", 0), "cannot read the folder");
  CHECK_ERR(rd_shardset_open(&set, tmp_path("set"), "../x", 0), "split \"../x\"");
}

static void slices_are_disjoint_and_cover(void) {
  int bad = 0;
  for (int64_t n = 0; n <= 300; n += (n < 40 ? 1 : 13)) {
    for (int size = 1; size <= 33; size++) {
      int64_t next = 0, lo = n, hi = 0;
      for (int r = 0; r < size; r++) {
        int64_t begin = -1, count = -1;
        if (rd_shardset_slice(n, r, size, &begin, &count) < 0) bad++;
        bad += begin != next || count < 0; /* contiguous in rank order, so disjoint */
        next = begin + count;
        lo = count < lo ? count : lo;
        hi = count > hi ? count : hi;
      }
      bad += next != n || hi - lo > 1;
    }
  }
  int64_t begin, count;
  CHECK_OK(rd_shardset_slice(1000000007LL, 6, 7, &begin, &count));
  CHECK(begin + count == 1000000007LL && count == 142857143);
  CHECK_MSG(bad == 0, "%d slicing faults", bad);
  CHECK_ERR(rd_shardset_slice(10, 3, 3, &begin, &count), "rank 3 of 3");
  CHECK_ERR(rd_shardset_slice(10, 0, 0, &begin, &count), "rank 0 of 0");
}

/* ---- damaged shards */

static void copy_file(const char *from, const char *to, double fraction) {
  char *data;
  size_t n;
  CHECK_OK(rd_fs_read_all(from, &data, &n));
  CHECK_OK(rd_fs_write_atomic(to, data, (size_t)(n * fraction)));
  free(data);
}

/* A fresh copy of a good shard, opened for editing with HDF5. */
static hid_t edit_copy(const char *name) {
  const char *good = tmp_path("good.h5");
  if (!rd_fs_exists(good)) {
    rd_shard_info in = image_info();
    CHECK_OK(write_shard(good, &in, 0, 100, 32, 3));
  }
  copy_file(good, tmp_path(name), 1.0);
  hid_t f = H5Fopen(tmp_path(name), H5F_ACC_RDWR, H5P_DEFAULT);
  CHECK(f >= 0);
  return f;
}

static void set_int_attr(hid_t f, const char *name, int64_t v) {
  hid_t a = H5Aopen(f, name, H5P_DEFAULT);
  CHECK(a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0);
  H5Aclose(a);
}

static void errors_name_file_and_dataset(void) {
  rd_shard *s = NULL;
  hid_t f;
  edit_copy("ok.h5"); /* makes good.h5 */
  copy_file(tmp_path("good.h5"), tmp_path("half.h5"), 0.5);
  CHECK_ERR(rd_shard_open(&s, tmp_path("half.h5"), 0),
            "half.h5: not a readable HDF5 file (truncated or corrupt?): truncated file");
  CHECK_OK(rd_fs_write_atomic(tmp_path("text.h5"), "hello\n", 6));
  CHECK_ERR(rd_shard_open(&s, tmp_path("text.h5"), 0), "text.h5: not a readable HDF5 file");
  CHECK_ERR(rd_shard_open(&s, tmp_path("absent.h5"), 0), "absent.h5: no such file");
  /* a symbolic link loop is named as such, not as a missing file */
  char loop_a[512], loop_b[512];
  snprintf(loop_a, sizeof loop_a, "%s", tmp_path("loop_a.h5"));
  snprintf(loop_b, sizeof loop_b, "%s", tmp_path("loop_b.h5"));
  CHECK(symlink(loop_b, loop_a) == 0 && symlink(loop_a, loop_b) == 0);
  CHECK_ERR(rd_shard_open(&s, loop_a, 0), "loop_a.h5: cannot open: Too many levels of symbolic links");

  f = edit_copy("nocap.h5");
  CHECK(H5Ldelete(f, "/captions", H5P_DEFAULT) >= 0);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("nocap.h5"), 0), "nocap.h5: dataset /captions is missing");

  f = edit_copy("nospan.h5");
  CHECK(H5Ldelete(f, "/halluc_span", H5P_DEFAULT) >= 0);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("nospan.h5"), 0),
            "nospan.h5: dataset /halluc_span is missing (it comes with /halluc)");

  f = edit_copy("noimg.h5");
  CHECK(H5Ldelete(f, "/images", H5P_DEFAULT) >= 0);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("noimg.h5"), 0), "noimg.h5: dataset /images is missing");

  f = edit_copy("v2.h5");
  set_int_attr(f, "schema_version", 2);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("v2.h5"), 0),
            "v2.h5: attribute schema_version is 2; this build reads version 1");

  f = edit_copy("noversion.h5");
  CHECK(H5Adelete(f, "schema_version") >= 0);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("noversion.h5"), 0),
            "noversion.h5: attribute schema_version is missing");

  CHECK_ERR(rd_shard_open(&s, tmp_path("good.h5"), 0xfeedULL),
            "good.h5: attribute vocab_hash is 0123456789abcdef but the vocabulary in use hashes to 000000000000feed");
  CHECK_OK(rd_shard_open(&s, tmp_path("good.h5"), 0));
  rd_shard_close(s);

  f = edit_copy("genlen.h5");
  set_int_attr(f, "gen_len", 15);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("genlen.h5"), 0),
            "genlen.h5: dataset /captions: has 16 columns, the shard says gen_len 15");

  f = edit_copy("imgsize.h5");
  set_int_attr(f, "image_size", 11);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("imgsize.h5"), 0),
            "imgsize.h5: dataset /images: dimension 1 is 12, the shard says image_size 11");

  f = edit_copy("nsamples.h5");
  set_int_attr(f, "n_samples", 99);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("nsamples.h5"), 0),
            "nsamples.h5: dataset /images: has 100 rows, the shard says n_samples 99");

  /* A dataset one row short of the others. */
  f = edit_copy("short.h5");
  hid_t d = H5Dopen2(f, "/sample_id", H5P_DEFAULT);
  hsize_t dims[1] = {99};
  CHECK(d >= 0 && H5Dset_extent(d, dims) >= 0);
  H5Dclose(d);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("short.h5"), 0),
            "short.h5: dataset /sample_id: has 99 rows, the shard says n_samples 100");

  f = edit_copy("caplen.h5");
  d = H5Dopen2(f, "/caption_len", H5P_DEFAULT);
  int32_t len[100];
  CHECK(d >= 0 && H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, len) >= 0);
  len[3] = 17;
  CHECK(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, len) >= 0);
  H5Dclose(d);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("caplen.h5"), 0),
            "caplen.h5: dataset /caption_len: sample 3 has length 17, outside [0, 16]");

  /* h5py writes string attributes as variable-length strings: accepted. */
  f = edit_copy("vlen.h5");
  CHECK(H5Adelete(f, "split") >= 0);
  hid_t vt = H5Tcopy(H5T_C_S1), vs = H5Screate(H5S_SCALAR);
  H5Tset_size(vt, H5T_VARIABLE);
  hid_t va = H5Acreate2(f, "split", vt, vs, H5P_DEFAULT, H5P_DEFAULT);
  const char *eval = "eval";
  CHECK(va >= 0 && H5Awrite(va, vt, &eval) >= 0);
  H5Aclose(va);
  H5Sclose(vs);
  H5Tclose(vt);
  H5Fclose(f);
  CHECK_OK(rd_shard_open(&s, tmp_path("vlen.h5"), HASH));
  CHECK(s && strcmp(rd_shard_get_info(s)->split, "eval") == 0);
  rd_shard_close(s);

  /* A string attribute with a terminal escape in it is refused, not printed. */
  f = edit_copy("esc.h5");
  CHECK(H5Adelete(f, "created_by") >= 0);
  CHECK_OK(rd_h5_attr_write_str(f, "created_by", "ab\x1b[2Jc"));
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("esc.h5"), 0),
            "esc.h5: attribute created_by holds the control character 0x1b at byte 2");

  /* A dataset of the wrong rank. */
  f = edit_copy("rank.h5");
  CHECK(H5Ldelete(f, "/halluc", H5P_DEFAULT) >= 0);
  hsize_t d1[1] = {100};
  hid_t sp = H5Screate_simple(1, d1, NULL);
  d = H5Dcreate2(f, "/halluc", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  CHECK(d >= 0);
  H5Dclose(d);
  H5Sclose(sp);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("rank.h5"), 0),
            "rank.h5: dataset /halluc: has 1 dimensions, expected 2");
  H5Eclear2(H5E_DEFAULT);
}

static void shard_set_errors(void) {
  /* A gap in the numbering, and a shard of another split under a train name. */
  const char *dir = tmp_path("gap");
  rd_shard_info in = image_info(), ev = feature_info();
  char path[512];
  CHECK_OK(rd_shard_name(path, sizeof path, dir, "train", 0));
  CHECK_OK(write_shard(path, &in, 0, 10, 0, 0));
  CHECK_OK(rd_shard_name(path, sizeof path, dir, "train", 2));
  CHECK_OK(write_shard(path, &in, 10, 10, 0, 0));
  rd_shardset set;
  CHECK_ERR(rd_shardset_open(&set, dir, "train", 0), "train-00001.h5 is missing (but train-00002.h5 is there)");
  CHECK_OK(rd_shard_name(path, sizeof path, dir, "train", 1));
  CHECK_OK(write_shard(path, &ev, 0, 10, 0, 0));
  CHECK_ERR(rd_shardset_open(&set, dir, "train", 0),
            "train-00001.h5: attribute split is \"eval\", the file name says \"train\"");
  strcpy(ev.split, "train");
  CHECK_OK(write_shard(path, &ev, 0, 10, 0, 0));
  CHECK_ERR(rd_shardset_open(&set, dir, "train", 0), "train-00001.h5: differs from train-00000.h5");
  CHECK_OK(write_shard(path, &in, 0, 10, 0, 0));
  CHECK_OK(rd_shardset_open(&set, dir, "train", 0));
  CHECK(set.n_total == 30);
  /* train-00001.h5 repeats the samples of train-00000.h5: their ids too */
  CHECK_ERR(rd_shardset_check(&set, 504, 0, 1), "train-00000.h5: sample_id 1000 appears twice in the train shards");
  CHECK_OK(rd_shardset_check(&set, 504, 1, 2)); /* the part without the id check reads shard 1 only */
  rd_shardset_close(&set);
  CHECK_OK(write_shard(path, &in, 10, 10, 0, 0));
  CHECK_OK(rd_shard_name(path, sizeof path, dir, "train", 2));
  CHECK_OK(write_shard(path, &in, 20, 10, 0, 0));
  CHECK_OK(rd_shardset_open(&set, dir, "train", 0));
  CHECK_OK(rd_shardset_check(&set, 504, 0, 1));
  rd_shardset_close(&set);
}

/* Replaces dataset name of f by one of type t holding values (same shape). */
static void retype(hid_t f, const char *name, hid_t t, const void *values, hid_t mem_type) {
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT), fsp = H5Dget_space(d);
  hsize_t dims[4];
  int rank = H5Sget_simple_extent_dims(fsp, dims, NULL);
  CHECK(d >= 0 && rank > 0);
  H5Sclose(fsp);
  H5Dclose(d);
  hid_t sp = H5Screate_simple(rank, dims, NULL); /* fixed size: a contiguous dataset */
  CHECK(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
  d = H5Dcreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  CHECK(d >= 0 && H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0);
  H5Dclose(d);
  H5Sclose(sp);
}

/* Reads dataset name of f as int32, sets element at to v, writes it back. */
static void poke_int(hid_t f, const char *name, size_t at, int32_t v) {
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  int32_t *buf = calloc(100 * 16, sizeof *buf);
  CHECK(d >= 0 && buf && H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
  buf[at] = v;
  CHECK(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
  H5Dclose(d);
  free(buf);
}

/* A shard may not make rediff read another file: external storage, an
 * external link, a soft link are refused when it is opened. */
static void files_that_point_outside(void) {
  rd_shard *s = NULL;
  hid_t f = edit_copy("ext.h5");
  CHECK(H5Ldelete(f, "/images", H5P_DEFAULT) >= 0);
  hsize_t dims[4] = {100, 12, 12, 3};
  hid_t sp = H5Screate_simple(4, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  CHECK(H5Pset_external(dcpl, "pixels.raw", 0, 100 * 12 * 12 * 3) >= 0);
  hid_t d = H5Dcreate2(f, "/images", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  CHECK(d >= 0);
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(sp);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("ext.h5"), 0),
            "ext.h5: /images is stored in an external file (pixels.raw); rediff reads only data inside the file");
  f = edit_copy("elink.h5");
  CHECK(H5Lcreate_external("/etc/hostname", "/x", f, "extra", H5P_DEFAULT, H5P_DEFAULT) >= 0);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("elink.h5"), 0), "elink.h5: /extra is an external link to another file");
  f = edit_copy("soft.h5");
  CHECK(H5Lcreate_soft("/captions", f, "alias", H5P_DEFAULT, H5P_DEFAULT) >= 0);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("soft.h5"), 0), "soft.h5: /alias is a soft link");
  H5Eclear2(H5E_DEFAULT);
}

/* Token ids, caption_len against the captions, and integer types that
 * would be clipped on read. */
static void token_and_type_checks(void) {
  rd_shard *s = NULL;
  edit_copy("tok_ok.h5");
  CHECK_OK(rd_shard_open(&s, tmp_path("tok_ok.h5"), 0));
  CHECK_OK(rd_shard_check_tokens(s, 504)); /* the samples' words are ids 4 .. 503 */
  CHECK_ERR(rd_shard_check_tokens(s, 300), "is outside the vocabulary's 300 tokens");
  int64_t ids[100];
  CHECK_OK(rd_shard_sample_ids(s, ids));
  CHECK(ids[0] == 1000 && ids[99] == 1000 + 7 * 99);
  rd_shard_close(s);

  /* Sample 0's caption: find its length, then break the padding and a word. */
  rd_shard_info in = image_info();
  rd_shard_batch b;
  CHECK_OK(rd_shard_batch_init(&b, &in, 1));
  int64_t gi = 0;
  do make_sample(&in, gi, &b);
  while (!(b.caption_len[0] > 0 && b.caption_len[0] < 16) && ++gi < 100);
  int len = b.caption_len[0];
  rd_shard_batch_free(&b);
  CHECK(gi < 100);
  hid_t f = edit_copy("tok_pad.h5");
  poke_int(f, "/captions", (size_t)gi * 16 + (size_t)len, 7);
  H5Fclose(f);
  CHECK_OK(rd_shard_open(&s, tmp_path("tok_pad.h5"), 0));
  char want[160];
  snprintf(want, sizeof want, "tok_pad.h5: dataset /captions: sample %d, position %d: id 7 after caption_len %d",
           (int)gi, len, len);
  CHECK_ERR(rd_shard_check_tokens(s, 504), want);
  rd_shard_close(s);
  f = edit_copy("tok_eos.h5");
  poke_int(f, "/captions", (size_t)gi * 16, RD_TOK_EOS);
  H5Fclose(f);
  CHECK_OK(rd_shard_open(&s, tmp_path("tok_eos.h5"), 0));
  CHECK_ERR(rd_shard_check_tokens(s, 504), "position 0: special token 1 inside the caption");
  rd_shard_close(s);
  f = edit_copy("tok_hal.h5");
  poke_int(f, "/halluc", 5, RD_TOK_MASK);
  H5Fclose(f);
  CHECK_OK(rd_shard_open(&s, tmp_path("tok_hal.h5"), 0));
  CHECK_ERR(rd_shard_check_tokens(s, 504), "tok_hal.h5: dataset /halluc: sample 0, position 5: id 0 is not a word");
  rd_shard_close(s);

  /* int16 pixels would be clipped into uint8; int16 captions fit int32 */
  static int16_t px[100 * 12 * 12 * 3];
  for (size_t i = 0; i < sizeof px / sizeof px[0]; i++) px[i] = (int16_t)(i % 300);
  f = edit_copy("img16.h5");
  retype(f, "/images", H5T_STD_I16LE, px, H5T_NATIVE_INT16);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("img16.h5"), 0),
            "img16.h5: dataset /images: holds signed 2-byte integers, which the uint8 of rd_shard_write's type");
  static int16_t caps[100 * 16];
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) caps[i] = RD_TOK_EOS;
  static int32_t zeros[100];
  f = edit_copy("cap16.h5");
  retype(f, "/captions", H5T_STD_I16LE, caps, H5T_NATIVE_INT16);
  retype(f, "/caption_len", H5T_STD_U16LE, zeros, H5T_NATIVE_INT32);
  H5Fclose(f);
  CHECK_OK(rd_shard_open(&s, tmp_path("cap16.h5"), 0));
  CHECK_OK(rd_shard_check_tokens(s, 504));
  rd_shard_close(s);
  static int64_t big[100];
  f = edit_copy("sid_u64.h5");
  retype(f, "/sample_id", H5T_STD_U64LE, big, H5T_NATIVE_INT64);
  H5Fclose(f);
  CHECK_ERR(rd_shard_open(&s, tmp_path("sid_u64.h5"), 0), "dataset /sample_id: holds unsigned 8-byte integers");
  H5Eclear2(H5E_DEFAULT);
}

/* Files in dir whose name starts with prefix. */
static int count_files(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
  closedir(d);
  return n;
}

static void failed_writers_leave_nothing(void) {
  const char *dir = tmp_path("fail");
  char path[512];
  snprintf(path, sizeof path, "%s/train-00000.h5", dir);
  rd_shard_info in = image_info();
  rd_shard_batch b;
  CHECK_OK(rd_shard_batch_init(&b, &in, 1));
  make_sample(&in, 0, &b);
  rd_shard_sample s;
  rd_shard_batch_sample(&b, 0, &s);

  /* Aborted after writing whole chunks. */
  rd_shard_writer *w;
  CHECK_OK(rd_shard_writer_open(&w, path, &in, 8, 1));
  for (int i = 0; i < 20; i++) CHECK_OK(rd_shard_writer_append(w, &s));
  CHECK(count_files(dir, ".train-00000.h5.tmp") == 1);
  rd_shard_writer_abort(w);
  CHECK(!rd_fs_exists(path));
  CHECK(count_files(dir, "") == 2); /* . and .. */

  /* A bad sample: the error names the file and sample; abort cleans up. */
  CHECK_OK(rd_shard_writer_open(&w, path, &in, 8, 0));
  CHECK_OK(rd_shard_writer_append(w, &s));
  s.caption_len = 17;
  CHECK_ERR(rd_shard_writer_append(w, &s), "train-00000.h5: sample 1: caption_len 17 outside [0, 16]");
  s.caption_len = 3;
  s.halluc_span[0] = 15;
  CHECK_ERR(rd_shard_writer_append(w, &s), "sample 1: halluc_span (15, 2) outside [0, 16]");
  s.image = NULL;
  CHECK_ERR(rd_shard_writer_append(w, &s), "sample 1 has no image");
  rd_shard_writer_abort(w);
  CHECK(count_files(dir, "") == 2);

  /* The commit fails (a folder holds the final name): no file stays. */
  snprintf(path, sizeof path, "%s/busy.h5", dir);
  char inner[600];
  snprintf(inner, sizeof inner, "%s/x", path);
  CHECK_OK(rd_fs_mkdirs(inner));
  rd_shard_batch_sample(&b, 0, &s);
  CHECK_OK(rd_shard_writer_open(&w, path, &in, 0, 0));
  CHECK_OK(rd_shard_writer_append(w, &s));
  CHECK_ERR(rd_shard_writer_close(w), "busy.h5");
  CHECK(count_files(dir, ".busy") == 0);
  CHECK(rd_fs_isdir(path));

  /* Bad writer settings. */
  rd_shard_info bad = in;
  bad.gen_len = 0;
  CHECK_ERR(rd_shard_writer_open(&w, path, &bad, 0, 0), "gen_len 0");
  bad = in;
  bad.scene_f = 0;
  CHECK_ERR(rd_shard_writer_open(&w, path, &bad, 0, 0), "scenes of 4 x 0");
  bad = in;
  strcpy(bad.split, "Train set");
  CHECK_ERR(rd_shard_writer_open(&w, path, &bad, 0, 0), "split \"Train set\"");
  CHECK_ERR(rd_shard_writer_open(&w, path, &in, 0, 12), "deflate level 12");
  bad = in;
  bad.vocab_hash = 0;
  CHECK_ERR(rd_shard_writer_open(&w, path, &bad, 0, 0), "vocab_hash 0");
  CHECK(count_files(dir, ".") == 2);
  rd_shard_batch_free(&b);
}

/* ---- h5py and h5dump read our files */

static int run(const char *cmd) {
  int st = system(cmd);
  return st == -1 ? -1 : WEXITSTATUS(st);
}

/* v[n] as a JSON array of integers (NULL when memory ran out: the add of
 * it then fails its CHECK). */
static json_t *json_ints(const int32_t *v, int n) {
  json_t *a = json_array();
  for (int i = 0; a && i < n; i++)
    if (json_array_append_new(a, json_integer(v[i])) < 0) return json_decref(a), NULL;
  return a;
}

/* Writes the shard's content as the JSON tests/reference/check_shard.py
 * compares with; tamper changes one caption token. */
static void write_expected(const char *json, const char *vocab_path, const rd_vocab *v,
                           const rd_shard_info *in, const rd_shard_batch *b, int n,
                           const char *const words[][16], const int *n_words, int tamper) {
  char hex[17];
  rd_vocab_hash_hex(v->hash, hex);
  int L = in->gen_len, img = in->image_size * in->image_size * 3, kf = in->scene_k * in->scene_f;
  json_t *root = NULL;
  CHECK_OK(rd_json_pack(&root, json, "{s:s, s:{s:i, s:s, s:i, s:i, s:i, s:s, s:s}}", "vocab", vocab_path, "attrs",
                        "schema_version", 1, "vocab_hash", hex, "image_size", in->image_size, "gen_len", L,
                        "n_samples", n, "split", in->split, "created_by", in->created_by));
  if (!root) return;
  const char *keys[] = {"captions", "halluc", "caption_len", "halluc_span", "scenes", "images", "sample_id", "words"};
  for (int k = 0; k < 8; k++) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
      json_t *e = NULL;
      if (k == 0) {
        int32_t row[64];
        memcpy(row, b->captions + (size_t)i * L, (size_t)L * 4);
        if (tamper && i == n - 1) row[0] ^= 1;
        e = json_ints(row, L);
      }
      if (k == 1) e = json_ints(b->halluc + (size_t)i * L, L);
      if (k == 2) e = json_integer(b->caption_len[i]);
      if (k == 3) e = json_ints(b->halluc_span + 2 * i, 2);
      if (k == 4) e = json_ints(b->scenes + (size_t)i * kf, kf);
      if (k == 5) {
        e = json_array();
        for (int p = 0; e && p < img; p++)
          CHECK(json_array_append_new(e, json_integer(b->images[(size_t)i * img + p])) == 0);
      }
      if (k == 6) e = json_integer(b->sample_id[i]);
      if (k == 7) {
        e = json_array();
        for (int j = 0; e && j < n_words[i] && j < L; j++)
          CHECK(json_array_append_new(e, json_string(words[i][j])) == 0);
      }
      CHECK(json_array_append_new(a, e) == 0);
    }
    CHECK_OK(rd_json_add(root, keys[k], json, "o", a));
  }
  CHECK_OK(rd_json_write_atomic(json, root, JSON_PRESERVE_ORDER));
  json_decref(root);
}

static void h5py_reads_our_files(void) {
  if (run("/usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null") != 0) {
    printf("SKIP h5py_reads_our_files: /usr/bin/python3 cannot import h5py and numpy\n");
    return;
  }
  /* Captions from a small vocabulary, one of them too long for gen_len. */
  static const char *const words[6][16] = {
      {"a", "red", "circle", "in", "the", "top", "left"},
      {"two", "blue", "squares"},
      {"a", "green", "triangle", "is", "left", "of", "a", "red", "circle", "near", "the", "top",
       "right", "corner", "of", "it"},
      {"nothing"},
      {"a", "blue", "circle", "and", "a", "purple", "star"},
      {"the", "red", "square"},
  };
  int n_words[6] = {7, 3, 16, 1, 7, 3};
  rd_vocab_builder vb;
  rd_vocab_builder_init(&vb);
  for (int i = 0; i < 6; i++)
    if (i != 4) CHECK_OK(rd_vocab_builder_add(&vb, words[i], n_words[i]));
  rd_vocab v;
  CHECK_OK(rd_vocab_builder_finish(&vb, NULL, 0, &v));
  rd_vocab_builder_free(&vb);
  const char *vocab_path = tmp_path("py/vocab.txt");
  CHECK_OK(rd_fs_mkparent(vocab_path));
  CHECK_OK(rd_vocab_write(&v, vocab_path));

  rd_shard_info in = image_info();
  in.gen_len = 12;
  in.vocab_hash = v.hash;
  rd_shard_batch b, one;
  CHECK_OK(rd_shard_batch_init(&b, &in, 6));
  CHECK_OK(rd_shard_batch_init(&one, &in, 1));
  rd_vocab_stats st = {0};
  for (int i = 0; i < 6; i++) {
    make_sample(&in, i, &one); /* the image and scene */
    memcpy(b.images + (size_t)i * 432, one.images, 432);
    memcpy(b.scenes + (size_t)i * 20, one.scenes, 80);
    b.sample_id[i] = 5000 + i;
    int len;
    CHECK_OK(rd_vocab_encode(&v, words[i], n_words[i], b.captions + i * 12, 12, &len, &st));
    b.caption_len[i] = len;
    memcpy(b.halluc + i * 12, b.captions + i * 12, 48);
    b.halluc[i * 12] = RD_TOK_UNK;
    b.halluc_span[2 * i] = 0;
    b.halluc_span[2 * i + 1] = 1;
  }
  /* Caption 4 was left out of the vocabulary: "and purple star" are unknown. */
  CHECK(st.n_truncated == 1 && st.n_unk == 3);
  const char *path = tmp_path("py/train-00000.h5");
  rd_shard_writer *w;
  CHECK_OK(rd_shard_writer_open(&w, path, &in, 4, 5));
  for (int i = 0; i < 6; i++) {
    rd_shard_sample s;
    rd_shard_batch_sample(&b, i, &s);
    CHECK_OK(rd_shard_writer_append(w, &s));
  }
  CHECK_OK(rd_shard_writer_close(w));
  /* The words h5py should find: [UNK] where the vocabulary lacks one. */
  const char *shown[6][16];
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < n_words[i]; j++)
      shown[i][j] = rd_vocab_id(&v, words[i][j]) >= 0 ? words[i][j] : "[UNK]";
  const char *json = tmp_path("py/expected.json"), *bad_json = tmp_path("py/tampered.json");
  write_expected(json, vocab_path, &v, &in, &b, 6, (const char *const(*)[16])shown, n_words, 0);
  write_expected(bad_json, vocab_path, &v, &in, &b, 6, (const char *const(*)[16])shown, n_words, 1);
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/reference/check_shard.py %s %s",
           rd_test_srcdir(), path, json);
  CHECK_MSG(run(cmd) == 0, "%s failed", cmd);
  /* The script can fail: a changed token is caught. */
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/reference/check_shard.py %s %s 2>/dev/null",
           rd_test_srcdir(), path, bad_json);
  CHECK_MSG(run(cmd) == 1, "%s accepted a wrong caption", cmd);
  if (run("command -v h5dump >/dev/null 2>&1") == 0) {
    snprintf(cmd, sizeof cmd, "h5dump -A %s | grep -q 'schema_version'", path);
    CHECK_MSG(run(cmd) == 0, "%s failed", cmd);
  } else {
    printf("SKIP h5dump check: no h5dump on PATH\n");
  }
  rd_shard_batch_free(&b);
  rd_shard_batch_free(&one);
  rd_vocab_free(&v);
}

/* RD_TEST_KEEP=1 keeps the files for a look with h5dump. */
static void cleanup(void) {
  if (getenv("RD_TEST_KEEP")) {
    printf("kept %s\n", tmpdir);
    return;
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  if (tmpdir[0]) CHECK(system(cmd) == 0);
}

RD_TEST_MAIN("shard", RD_CASE(round_trips), RD_CASE(shard_set_by_global_index), RD_CASE(token_and_type_checks), RD_CASE(files_that_point_outside),
             RD_CASE(slices_are_disjoint_and_cover), RD_CASE(errors_name_file_and_dataset),
             RD_CASE(shard_set_errors), RD_CASE(failed_writers_leave_nothing),
             RD_CASE(h5py_reads_our_files), RD_CASE(cleanup))
