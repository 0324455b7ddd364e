/* Checkpoints on one process (MPI_COMM_SELF): bitwise round trips, pruning,
 * model mismatches named, and fallback past truncated, corrupted, incomplete
 * and interrupted saves. The multi-rank slabs are tests/mpi/ckpt_slabs.sh. */
#include <dirent.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "io/ckpt.h"
#include "io/core/fs.h"
#include "io/core/rng.h"
#include "rd_test.h"

/* A small model: a replicated 2-D, a 1-D, and a tensor big enough for
 * several chunks. */
#define NT 4
static const char *names[NT] = {"emb", "lm.0.attn.wqkv", "norm", "big"};
static const int ndims[NT] = {2, 2, 1, 2};
static const int64_t shapes[NT][2] = {{7, 5}, {12, 8}, {5, 0}, {300, 1000}};

typedef struct {
  rd_ckpt_tensor t[NT + 1];
  float *buf[NT + 1][3];
  int n;
} model;

static int64_t numel(const rd_ckpt_tensor *t) {
  int64_t k = 1;
  for (int d = 0; d < t->ndim; d++) k *= t->shape[d];
  return k;
}

/* Values depend on the step so a fallback shows which file was read; they
 * use all mantissa bits, and norm holds a NaN, an Inf and -0 as well. */
static void fill(model *mo, uint64_t step) {
  for (int i = 0; i < mo->n; i++)
    for (int k = 0; k < 3; k++) {
      if (!mo->buf[i][k]) continue;
      rd_rng r;
      rd_rng_init(&r, step, RD_RNG_TEST, (uint64_t)i, (uint64_t)k);
      for (int64_t j = 0; j < numel(&mo->t[i]); j++) mo->buf[i][k][j] = (float)rd_rng_normal(&r);
    }
  mo->buf[2][0][0] = NAN;
  mo->buf[2][0][1] = -INFINITY;
  mo->buf[2][0][2] = -0.0f;
}

static void model_init(model *mo, int moments) {
  memset(mo, 0, sizeof *mo);
  mo->n = NT;
  for (int i = 0; i < NT; i++) {
    rd_ckpt_tensor *t = &mo->t[i];
    t->name = names[i];
    t->ndim = ndims[i];
    for (int d = 0; d < t->ndim; d++) t->shape[d] = shapes[i][d];
    t->split_axis = -1;
    for (int k = 0; k < (moments ? 3 : 1); k++) mo->buf[i][k] = calloc((size_t)numel(t), sizeof(float));
    t->param = mo->buf[i][0];
    t->m = mo->buf[i][1];
    t->v = mo->buf[i][2];
  }
}

static void model_free(model *mo) {
  for (int i = 0; i < NT + 1; i++)
    for (int k = 0; k < 3; k++) free(mo->buf[i][k]);
}

static int same_data(const model *a, const model *b) {
  for (int i = 0; i < a->n; i++)
    for (int k = 0; k < 3; k++)
      if (a->buf[i][k] && b->buf[i][k] &&
          memcmp(a->buf[i][k], b->buf[i][k], (size_t)numel(&a->t[i]) * sizeof(float)) != 0)
        return 0;
  return 1;
}

static const char *yaml = "model:\n  d_model: 128\n  name: \"a \\\"quoted\\\" one\"\n";

static rd_ckpt_meta meta_at(int64_t step) {
  rd_ckpt_meta m = {.round = 3, .step = step, .epoch = 2, .cursor = 12345,
                    .seed = 0xdeadbeefcafef00dull, .n_rng = 4, .bad_steps = 2, .loss = 1.25,
                    .vocab_hash = 0x0123456789abcdefull, .config_hash = 0xfedcba9876543210ull,
                    .config_yaml = yaml};
  snprintf(m.stage, sizeof m.stage, "stage2");
  for (int i = 0; i < 4; i++) m.rng[i] = 0x80000000u + (uint32_t)i * 77u;
  return m;
}

static char root[256];
static int ndirs;

static void newdir(char *dir, size_t n) {
  char name[32];
  snprintf(name, sizeof name, "d%d", ndirs++);
  CHECK_OK(rd_fs_join(dir, n, root, name));
  CHECK_OK(rd_fs_mkdirs(dir));
}

static void rmtree(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[RD_PATH_MAX];
    if (rd_fs_join(p, sizeof p, dir, e->d_name) != 0) continue;
    if (rd_fs_isdir(p)) rmtree(p);
    else unlink(p);
  }
  if (d) closedir(d);
  rmdir(dir);
}

static int save(const char *dir, model *mo, int64_t step, int keep) {
  rd_ckpt_meta m = meta_at(step);
  fill(mo, (uint64_t)step);
  return rd_ckpt_save(dir, mo->t, mo->n, &m, keep, MPI_COMM_SELF, NULL, 0);
}

static void test_roundtrip(void) {
  char dir[RD_PATH_MAX], path[RD_PATH_MAX], want[RD_PATH_MAX];
  newdir(dir, sizeof dir);
  model a, b;
  model_init(&a, 1);
  model_init(&b, 1);
  fill(&a, 500);
  rd_ckpt_meta m = meta_at(500), got = {0};
  CHECK_OK(rd_ckpt_save(dir, a.t, a.n, &m, 3, MPI_COMM_SELF, path, sizeof path));
  CHECK_OK(rd_fs_join(want, sizeof want, dir, "step-00000500.h5"));
  CHECK(strcmp(path, want) == 0);
  CHECK_OK(rd_ckpt_load(path, b.t, b.n, &got, MPI_COMM_SELF));
  CHECK(same_data(&a, &b));
  CHECK(strcmp(got.stage, "stage2") == 0);
  CHECK(got.round == 3 && got.step == 500 && got.epoch == 2 && got.cursor == 12345);
  CHECK(got.seed == m.seed && got.n_rng == 4 && memcmp(got.rng, m.rng, sizeof m.rng) == 0);
  CHECK(got.bad_steps == 2 && got.loss == 1.25);
  CHECK(got.vocab_hash == m.vocab_hash && got.config_hash == m.config_hash);
  CHECK(got.config_yaml && strcmp(got.config_yaml, yaml) == 0);
  rd_ckpt_meta_free(&got);

  /* The vocabulary check passes with the right hash. */
  got.vocab_hash = m.vocab_hash;
  CHECK_OK(rd_ckpt_load(path, b.t, b.n, &got, MPI_COMM_SELF));
  rd_ckpt_meta_free(&got);

  /* Inference: parameters only. */
  model c;
  model_init(&c, 0);
  CHECK_OK(rd_ckpt_load(path, c.t, c.n, &got, MPI_COMM_SELF));
  CHECK(same_data(&a, &c));
  rd_ckpt_meta_free(&got);

  /* A parameters-only model saves a file without moments; a trainer
   * wanting them is told which tensor lacks them. */
  char dir2[RD_PATH_MAX], path2[RD_PATH_MAX];
  newdir(dir2, sizeof dir2);
  CHECK_OK(rd_ckpt_save(dir2, c.t, c.n, &m, 0, MPI_COMM_SELF, path2, sizeof path2));
  CHECK_ERR(rd_ckpt_load(path2, b.t, b.n, &got, MPI_COMM_SELF), "no AdamW state for tensor emb");

  CHECK_OK(rd_ckpt_peek(path, &got));
  CHECK(got.step == 500 && strcmp(got.config_yaml, yaml) == 0 && got.rng[3] == m.rng[3]);
  rd_ckpt_meta_free(&got);

  rd_ckpt_info *info = NULL;
  int n = 0;
  CHECK_OK(rd_ckpt_list(path, &info, &n));
  CHECK(n == NT);
  if (n == NT) {
    CHECK(strcmp(info[0].name, "big") == 0 && info[0].shape[0] == 300 && info[0].shape[1] == 1000);
    CHECK(strcmp(info[2].name, "lm.0.attn.wqkv") == 0 && info[2].ndim == 2 && info[2].has_moments);
    CHECK(strcmp(info[3].name, "norm") == 0 && info[3].ndim == 1 && info[3].shape[0] == 5);
  }
  free(info);
  CHECK_OK(rd_ckpt_list(path2, &info, &n));
  CHECK(n == NT && !info[0].has_moments);
  free(info);
  model_free(&a);
  model_free(&b);
  model_free(&c);
}

static int count_ckpts(const char *dir) {
  int n = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) n += strncmp(e->d_name, "step-", 5) == 0;
  if (d) closedir(d);
  return n;
}

static int has_file(const char *dir, const char *name) {
  char p[RD_PATH_MAX];
  return rd_fs_join(p, sizeof p, dir, name) == 0 && rd_fs_exists(p);
}

static void read_latest(const char *dir, char *out, size_t n) {
  char p[RD_PATH_MAX], *text = NULL;
  CHECK_OK(rd_fs_join(p, sizeof p, dir, "LATEST"));
  out[0] = '\0';
  if (rd_fs_read_all(p, &text, NULL) == 0) snprintf(out, n, "%s", text);
  free(text);
}

static void test_keep(void) {
  char dir[RD_PATH_MAX], latest[64];
  newdir(dir, sizeof dir);
  model a;
  model_init(&a, 1);
  for (int s = 100; s <= 500; s += 100) CHECK_OK(save(dir, &a, s, 2));
  CHECK(count_ckpts(dir) == 2);
  CHECK(has_file(dir, "step-00000400.h5") && has_file(dir, "step-00000500.h5"));
  read_latest(dir, latest, sizeof latest);
  CHECK(strcmp(latest, "step-00000500.h5\n") == 0);
  /* keep = 1 never deletes the file just written. */
  CHECK_OK(save(dir, &a, 600, 1));
  CHECK(count_ckpts(dir) == 1 && has_file(dir, "step-00000600.h5"));
  /* keep = 0 keeps everything. */
  CHECK_OK(save(dir, &a, 700, 0));
  CHECK_OK(save(dir, &a, 800, 0));
  CHECK(count_ckpts(dir) == 3);
  model_free(&a);
}

static void test_mismatch(void) {
  char dir[RD_PATH_MAX], path[RD_PATH_MAX];
  newdir(dir, sizeof dir);
  model a;
  model_init(&a, 1);
  CHECK_OK(save(dir, &a, 500, 0));
  CHECK_OK(rd_fs_join(path, sizeof path, dir, "step-00000500.h5"));
  rd_ckpt_meta got = {0};

  a.t[1].shape[0] = 6;
  CHECK_ERR(rd_ckpt_load(path, a.t, a.n, &got, MPI_COMM_SELF),
            "step-00000500.h5: tensor lm.0.attn.wqkv has shape [12, 8], the model wants [6, 8]");
  /* A mismatch is the config's fault: no fallback to older files. */
  CHECK(rd_ckpt_load_latest(dir, a.t, a.n, &got, MPI_COMM_SELF, NULL, 0) == RD_EINVAL);
  a.t[1].shape[0] = 12;

  model b;
  model_init(&b, 1);
  b.t[4] = b.t[2];
  b.t[4].name = "lm.9.mlp.up";
  b.n = 5;
  CHECK_ERR(rd_ckpt_load(path, b.t, b.n, &got, MPI_COMM_SELF), "has no tensor lm.9.mlp.up");
  b.t[2] = b.t[3];
  b.n = 3;
  CHECK_ERR(rd_ckpt_load(path, b.t, b.n, &got, MPI_COMM_SELF), "holds tensor norm that the model does not have");

  got.vocab_hash = 0x1111222233334444ull;
  CHECK_ERR(rd_ckpt_load(path, a.t, a.n, &got, MPI_COMM_SELF),
            "vocabulary hash 0123456789abcdef, this config's vocabulary has hash 1111222233334444");
  CHECK(got.config_yaml == NULL);

  /* The step must agree with the file name and be in range. */
  char renamed[RD_PATH_MAX];
  CHECK_OK(rd_fs_join(renamed, sizeof renamed, dir, "step-00000600.h5"));
  char *bytes = NULL;
  size_t nb = 0;
  CHECK_OK(rd_fs_read_all(path, &bytes, &nb));
  CHECK_OK(rd_fs_write_atomic(renamed, bytes, nb));
  free(bytes);
  got.vocab_hash = 0;
  CHECK_ERR(rd_ckpt_load(renamed, a.t, a.n, &got, MPI_COMM_SELF),
            "step-00000600.h5: the file holds step 500, its name says 600");
  hid_t g = H5Fopen(renamed, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t at = g >= 0 ? H5Aopen(g, "step", H5P_DEFAULT) : -1;
  int64_t huge = (int64_t)1 << 62;
  CHECK(at >= 0 && H5Awrite(at, H5T_NATIVE_INT64, &huge) >= 0);
  H5Aclose(at);
  H5Fclose(g);
  CHECK_ERR(rd_ckpt_load(renamed, a.t, a.n, &got, MPI_COMM_SELF), "step 4611686018427387904 is outside [0, ");
  unlink(renamed);

  /* A checkpoint that links outside itself is refused before any read. */
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  CHECK(f >= 0 && H5Lcreate_external("/etc/hostname", "/x", f, "more", H5P_DEFAULT, H5P_DEFAULT) >= 0);
  H5Fclose(f);
  got.vocab_hash = 0;
  CHECK_ERR(rd_ckpt_load(path, a.t, a.n, &got, MPI_COMM_SELF),
            "step-00000500.h5: /more is an external link to another file; rediff reads only data inside the file");

  /* A bad descriptor is named before anything is written. */
  a.t[0].split_axis = 0;
  a.t[0].slab_offset = 0;
  a.t[0].slab_count = 3;
  CHECK_ERR(save(dir, &a, 600, 0), "tensor emb: one rank holds only [0, +3) of axis 0");
  CHECK(!has_file(dir, "step-00000600.h5"));
  a.t[0].slab_count = 9;
  CHECK_ERR(save(dir, &a, 600, 0), "tensor emb: slab [0, +9) is outside axis 0 of size 7");
  a.t[0].split_axis = -1;
  model_free(&a);
  model_free(&b);
}

/* dir holds checkpoints at steps 100 and 200 of model a. */
static void two_ckpts(char *dir, size_t n, model *a, char *newest, size_t nn) {
  newdir(dir, n);
  CHECK_OK(save(dir, a, 100, 0));
  CHECK_OK(save(dir, a, 200, 0));
  CHECK_OK(rd_fs_join(newest, nn, dir, "step-00000200.h5"));
}

/* Loads the newest usable checkpoint of dir and checks it is step 100. */
static void expect_fallback(const char *dir) {
  model want, got;
  model_init(&want, 1);
  model_init(&got, 1);
  fill(&want, 100);
  rd_ckpt_meta m = {0};
  char path[RD_PATH_MAX] = "";
  CHECK_OK(rd_ckpt_load_latest(dir, got.t, got.n, &m, MPI_COMM_SELF, path, sizeof path));
  CHECK_MSG(m.step == 100, "loaded step %lld", (long long)m.step);
  CHECK(strstr(path, "step-00000100.h5") != NULL);
  CHECK(same_data(&want, &got));
  rd_ckpt_meta_free(&m);
  model_free(&want);
  model_free(&got);
}

static void test_truncated(void) {
  char dir[RD_PATH_MAX], newest[RD_PATH_MAX];
  model a;
  model_init(&a, 1);
  two_ckpts(dir, sizeof dir, &a, newest, sizeof newest);
  char *data = NULL;
  size_t n = 0;
  CHECK_OK(rd_fs_read_all(newest, &data, &n));
  CHECK(n > 1000000);
  CHECK_OK(rd_fs_write_atomic(newest, data, n / 2));
  free(data);
  rd_ckpt_meta m = {0};
  CHECK(rd_ckpt_load(newest, a.t, a.n, &m, MPI_COMM_SELF) == RD_EIO);
  expect_fallback(dir);

  /* With every file unusable it says so. */
  char oldest[RD_PATH_MAX];
  CHECK_OK(rd_fs_join(oldest, sizeof oldest, dir, "step-00000100.h5"));
  CHECK_OK(rd_fs_write_atomic(oldest, "not hdf5", 8));
  CHECK_ERR(rd_ckpt_load_latest(dir, a.t, a.n, &m, MPI_COMM_SELF, NULL, 0), "no usable checkpoint in");
  model_free(&a);
}

/* The file offset and size of the first chunk of /params/big. */
static int chunk_place(const char *path, haddr_t *addr, hsize_t *size) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "/params/big", H5P_DEFAULT);
  hid_t space = H5Dget_space(d);
  hsize_t off[2];
  unsigned mask = 0;
  int s = H5Dget_chunk_info(d, space, 0, off, &mask, addr, size);
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
  return s < 0 ? -1 : 0;
}

static void test_corrupted(void) {
  char dir[RD_PATH_MAX], newest[RD_PATH_MAX];
  model a;
  model_init(&a, 1);
  two_ckpts(dir, sizeof dir, &a, newest, sizeof newest);
  haddr_t addr = 0;
  hsize_t size = 0;
  CHECK_OK(chunk_place(newest, &addr, &size));
  /* The chunk is the data plus the 4-byte checksum: flip bytes in its
   * middle, which are data. */
  CHECK(size > 1000);
  char *data = NULL;
  size_t n = 0;
  CHECK_OK(rd_fs_read_all(newest, &data, &n));
  CHECK(addr + size <= n);
  if (addr + size <= n) {
    for (hsize_t i = 0; i < 4; i++) data[addr + size / 2 + i] ^= 0x5a;
    CHECK_OK(rd_fs_write_atomic(newest, data, n));
  }
  free(data);
  rd_ckpt_meta m = {0};
  CHECK_ERR(rd_ckpt_load(newest, a.t, a.n, &m, MPI_COMM_SELF), "cannot read /params/big");
  CHECK_MSG(strstr(rd_err_msg(), "Fletcher32 checksum") != NULL, "%s", rd_err_msg());
  expect_fallback(dir);
  model_free(&a);
}

static void test_incomplete(void) {
  char dir[RD_PATH_MAX], newest[RD_PATH_MAX];
  model a;
  model_init(&a, 1);
  two_ckpts(dir, sizeof dir, &a, newest, sizeof newest);
  hid_t f = H5Fopen(newest, H5F_ACC_RDWR, H5P_DEFAULT);
  CHECK(f >= 0 && H5Adelete(f, "complete") >= 0);
  H5Fclose(f);
  rd_ckpt_meta m = {0};
  CHECK_ERR(rd_ckpt_peek(newest, &m), "incomplete checkpoint");
  expect_fallback(dir);
  model_free(&a);
}

static void test_interrupted(void) {
  char dir[RD_PATH_MAX], newest[RD_PATH_MAX], tmp[RD_PATH_MAX];
  model a;
  model_init(&a, 1);
  two_ckpts(dir, sizeof dir, &a, newest, sizeof newest);
  /* A save killed before its rename: a temporary, LATEST unchanged. And a
   * save killed between rename and LATEST: a newer file LATEST does not name. */
  CHECK_OK(rd_fs_join(tmp, sizeof tmp, dir, ".step-00000300.h5.tmp.99999"));
  CHECK_OK(rd_fs_write_atomic(tmp, "half a file", 11));
  char p100[RD_PATH_MAX], p400[RD_PATH_MAX], *data = NULL;
  size_t n = 0;
  CHECK_OK(rd_fs_join(p100, sizeof p100, dir, "step-00000100.h5"));
  CHECK_OK(rd_fs_join(p400, sizeof p400, dir, "step-00000400.h5"));
  CHECK_OK(rd_fs_read_all(p100, &data, &n));
  CHECK_OK(rd_fs_write_atomic(p400, data, n));
  free(data);
  rd_ckpt_meta m = {0};
  CHECK(rd_ckpt_load_latest(dir, a.t, a.n, &m, MPI_COMM_SELF, NULL, 0) == 0);
  CHECK(m.step == 200);
  rd_ckpt_meta_free(&m);
  /* The next save clears the temporary. */
  CHECK_OK(save(dir, &a, 300, 5));
  CHECK(!rd_fs_exists(tmp));
  CHECK(has_file(dir, "step-00000400.h5"));
  model_free(&a);
}

static void test_empty(void) {
  char dir[RD_PATH_MAX], missing[RD_PATH_MAX], latest[RD_PATH_MAX];
  newdir(dir, sizeof dir);
  model a;
  model_init(&a, 1);
  rd_ckpt_meta m = {0};
  CHECK(rd_ckpt_load_latest(dir, a.t, a.n, &m, MPI_COMM_SELF, NULL, 0) == 1);
  CHECK_OK(rd_fs_join(missing, sizeof missing, dir, "none"));
  CHECK(rd_ckpt_load_latest(missing, a.t, a.n, &m, MPI_COMM_SELF, NULL, 0) == 1);
  /* A stray temporary alone is still no checkpoint. */
  char tmp[RD_PATH_MAX];
  CHECK_OK(rd_fs_join(tmp, sizeof tmp, dir, ".step-00000100.h5.tmp.4242"));
  CHECK_OK(rd_fs_write_atomic(tmp, "x", 1));
  CHECK(rd_ckpt_load_latest(dir, a.t, a.n, &m, MPI_COMM_SELF, NULL, 0) == 1);
  /* LATEST naming a file that is gone is an error, not a fresh start. */
  CHECK_OK(rd_fs_join(latest, sizeof latest, dir, "LATEST"));
  CHECK_OK(rd_fs_write_atomic(latest, "step-00000100.h5\n", 17));
  CHECK_ERR(rd_ckpt_load_latest(dir, a.t, a.n, &m, MPI_COMM_SELF, NULL, 0), "no usable checkpoint in");
  model_free(&a);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  const char *base = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/rd_ckpt_XXXXXX", base && base[0] ? base : "/tmp");
  if (!mkdtemp(root)) {
    perror("mkdtemp");
    return 1;
  }
  static const rd_test_case cases[] = {
      RD_CASE(test_roundtrip), RD_CASE(test_keep),      RD_CASE(test_mismatch),
      RD_CASE(test_truncated), RD_CASE(test_corrupted), RD_CASE(test_incomplete),
      RD_CASE(test_interrupted), RD_CASE(test_empty),
  };
  int rc = rd_test_run("ckpt", cases, (int)(sizeof cases / sizeof cases[0]));
  rmtree(root);
  MPI_Finalize();
  return rc;
}
