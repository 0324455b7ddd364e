/* Parity with the PyTorch reference (tests/reference/vlm_ref.py): writes the
 * weights, a batch and the C model's logits, loss, gradients and 5 AdamW
 * losses to an HDF5 file in a fresh temporary folder, runs the script on
 * it with /usr/bin/python3 and checks its exit status. */
#include <hdf5.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/core/rng.h"
#include "model/ops.h"
#include "model/vlm.h"
#include "rd_test.h"
#include "tests/unit/model_fixture.h"

/* Every HDF5 call checked: a failure names the call and the place. */
#define H5_TRY(expr)                                                          \
  do {                                                                         \
    rd_test_checks++;                                                          \
    if ((expr) < 0) {                                                          \
      rd_test_fails++;                                                         \
      fprintf(stderr, "%s:%d: HDF5 call failed: %s\n", __FILE__, __LINE__, #expr); \
      return -1;                                                               \
    }                                                                          \
  } while (0)

static int write_ds(hid_t loc, const char *name, hid_t mtype, hid_t ftype, int rank,
                    const hsize_t *dims, const void *data) {
  hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
  H5_TRY(sp);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5_TRY(lcpl);
  H5_TRY(H5Pset_create_intermediate_group(lcpl, 1));
  hid_t ds = H5Dcreate2(loc, name, ftype, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5_TRY(ds);
  H5_TRY(H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  H5_TRY(H5Dclose(ds));
  H5_TRY(H5Pclose(lcpl));
  H5_TRY(H5Sclose(sp));
  return 0;
}

static int attr_int(hid_t loc, const char *obj, const char *name, int v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  H5_TRY(sp);
  hid_t a = H5Acreate_by_name(loc, obj, name, H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT,
                              H5P_DEFAULT);
  H5_TRY(a);
  H5_TRY(H5Awrite(a, H5T_NATIVE_INT, &v));
  H5_TRY(H5Aclose(a));
  H5_TRY(H5Sclose(sp));
  return 0;
}

static int attr_double(hid_t loc, const char *name, double v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  H5_TRY(sp);
  hid_t a = H5Acreate2(loc, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5_TRY(a);
  H5_TRY(H5Awrite(a, H5T_NATIVE_DOUBLE, &v));
  H5_TRY(H5Aclose(a));
  H5_TRY(H5Sclose(sp));
  return 0;
}

/* One dataset per tensor under group/, at its full shape. */
static int write_tensors(hid_t f, const char *group, const rd_vlm *m, const float *buf,
                         int with_attrs) {
  int n;
  const rd_tensor *t = rd_vlm_tensors(m, &n);
  for (int i = 0; i < n; i++) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", group, t[i].name);
    hsize_t dims[2] = {(hsize_t)t[i].shape[0], (hsize_t)t[i].shape[1]};
    if (write_ds(f, path, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, t[i].ndim, dims, buf + t[i].offset))
      return -1;
    if (with_attrs && (attr_int(f, path, "split", t[i].split) || attr_int(f, path, "decay", t[i].decay)))
      return -1;
  }
  return 0;
}

/* The C model against tests/reference/vlm_ref.py on one configuration. */
static void parity_case(int grid_pos) {
  rd_ops_set_threads(1);
  rd_model_cfg c = rd_test_model_cfg();
  c.init_std = 0.2;
  c.image_heads = 1; /* one LM head of two reads the image tokens only */
  c.grid_pos = grid_pos;
  c.cell_classes = grid_pos ? 5 : 0; /* the perception head with grid positions */
  const int V = 12, B = 2, Tp = 3;
  const int32_t prompt[3] = {1, 4, 7};
  /* AdamW run: warmup 2 of 5 steps, clipping that engages, weight decay */
  const double lr = 1e-2, min_frac = 0.1, clip = 0.5;
  const int warmup = 2, total = 5;
  rd_adamw_cfg ac = {0.9f, 0.95f, 1e-8f, 0.1f};

  rd_vlm m;
  CHECK_OK(rd_vlm_init(&m, &c, V, prompt, Tp, B, 0, 11));
  rd_rng r;
  rd_rng_init(&r, 3, RD_RNG_TEST, 0, 0);
  const int L = c.gen_len, S = c.image_size;
  uint8_t images[2 * 16 * 16 * 3];
  int32_t x[2 * 8], y[2 * 8];
  float w[2 * 8];
  for (int i = 0; i < B * S * S * 3; i++) images[i] = (uint8_t)rd_rng_below(&r, 256);
  for (int i = 0; i < B * L; i++) {
    x[i] = (int32_t)rd_rng_below(&r, V);
    y[i] = (int32_t)rd_rng_below(&r, V);
    w[i] = i % 3 == 0 ? 0.0f : (float)(0.5 + rd_rng_uniform(&r)) / L;
  }
  int32_t cells[2 * 4];
  for (int i = 0; i < B * 4; i++) cells[i] = (int32_t)rd_rng_below(&r, 5);
  const float cell_w = 0.3f;
  rd_batch b = {B, images, NULL, x, y, w, c.cell_classes ? cells : NULL, cell_w};

  char dir[] = "/tmp/rd_parity_XXXXXX", path[256];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/parity.h5", dir);
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  CHECK(f >= 0);
  const struct {
    const char *k;
    int v;
  } iattrs[] = {{"d_model", c.d_model}, {"n_layers", c.n_layers}, {"n_heads", c.n_heads},
                {"d_ff", c.d_ff}, {"image_heads", c.image_heads}, {"vision_layers", c.vision_layers}, {"vision_d", c.vision_d},
                {"vision_heads", c.vision_heads}, {"vision_d_ff", c.vision_d_ff},
                {"image_size", c.image_size}, {"patch", c.patch}, {"gen_len", c.gen_len},
                {"grid_pos", c.grid_pos}, {"vocab", V}, {"warmup", warmup}, {"total_steps", total}};
  const struct {
    const char *k;
    double v;
  } dattrs[] = {{"rope_theta", c.rope_theta}, {"norm_eps", c.norm_eps}, {"lr", lr},
                {"min_lr_frac", min_frac}, {"grad_clip", clip}, {"beta1", ac.beta1},
                {"beta2", ac.beta2}, {"adam_eps", ac.eps}, {"weight_decay", ac.weight_decay}};
  for (size_t i = 0; i < sizeof iattrs / sizeof iattrs[0]; i++)
    CHECK(attr_int(f, ".", iattrs[i].k, iattrs[i].v) == 0);
  for (size_t i = 0; i < sizeof dattrs / sizeof dattrs[0]; i++)
    CHECK(attr_double(f, dattrs[i].k, dattrs[i].v) == 0);
  CHECK(write_tensors(f, "params", &m, m.params, 1) == 0);
  hsize_t dp[1] = {Tp}, di[4] = {B, S, S, 3}, dl[2] = {B, L};
  CHECK(write_ds(f, "prompt", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, dp, prompt) == 0);
  CHECK(write_ds(f, "batch/images", H5T_NATIVE_UINT8, H5T_STD_U8LE, 4, di, images) == 0);
  CHECK(write_ds(f, "batch/x", H5T_NATIVE_INT32, H5T_STD_I32LE, 2, dl, x) == 0);
  CHECK(write_ds(f, "batch/y", H5T_NATIVE_INT32, H5T_STD_I32LE, 2, dl, y) == 0);
  CHECK(write_ds(f, "batch/w", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, dl, w) == 0);
  if (c.cell_classes) {
    hsize_t dc[2] = {B, 4};
    CHECK(write_ds(f, "batch/cells", H5T_NATIVE_INT32, H5T_STD_I32LE, 2, dc, cells) == 0);
    CHECK(attr_double(f, "cell_w", cell_w) == 0);
  }

  float loss;
  rd_vlm_zero_grad(&m);
  CHECK_OK(rd_vlm_forward(&m, &b, &loss));
  CHECK_OK(rd_vlm_backward(&m));
  hsize_t dlog[3] = {B, L, m.Vp};
  double dloss = m.loss;
  /* -inf padding columns are not compared; write the real ones and zeros */
  float *lg = malloc(sizeof(float) * B * L * m.Vp);
  memcpy(lg, rd_vlm_logits(&m), sizeof(float) * B * L * m.Vp);
  for (int i = 0; i < B * L; i++)
    for (int v = V; v < m.Vp; v++) lg[i * m.Vp + v] = 0.0f;
  CHECK(write_ds(f, "c/logits", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 3, dlog, lg) == 0);
  CHECK(write_ds(f, "c/loss", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, NULL, &dloss) == 0);
  double dcell = m.cell_loss;
  if (c.cell_classes) CHECK(write_ds(f, "c/cell_loss", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, NULL, &dcell) == 0);
  CHECK(write_tensors(f, "c/grad", &m, m.grads, 0) == 0);
  free(lg);

  double losses[5];
  int clipped = 0;
  for (int step = 1; step <= 5; step++) {
    rd_vlm_zero_grad(&m);
    CHECK_OK(rd_vlm_forward(&m, &b, &loss));
    CHECK_OK(rd_vlm_backward(&m));
    losses[step - 1] = m.loss + m.cell_loss;
    double gn;
    CHECK_OK(rd_vlm_grad_norm(&m, &gn));
    float scale = rd_clip_scale(gn, clip);
    clipped += scale < 1.0f;
    float lr_t = rd_lr_schedule(step, (float)lr, warmup, total, (float)min_frac);
    CHECK_OK(rd_vlm_adamw_step(&m, &ac, step, lr_t, scale));
  }
  CHECK_MSG(clipped > 0, "clipping never engaged; the parity run would not test it");
  CHECK(losses[4] < losses[0]);
  hsize_t d5[1] = {5};
  CHECK(write_ds(f, "c/losses_adamw", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, d5, losses) == 0);
  CHECK(H5Fclose(f) >= 0);

  char cmd[1024];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/reference/vlm_ref.py %s 2>&1",
           rd_test_srcdir(), path);
  fflush(stdout);
  int st = system(cmd);
  CHECK_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "the PyTorch reference disagrees or failed to run (status %d)", st);
  unlink(path);
  rmdir(dir);
  rd_vlm_free(&m);
}

/* Image tokens at RoPE positions 0..Np-1 (model.grid_pos false). */
static void pytorch_parity_sequence(void) { parity_case(0); }
/* Grid-cell embeddings on the image tokens, image heads unrotated. */
static void pytorch_parity_grid(void) { parity_case(1); }

RD_TEST_MAIN("parity", RD_CASE(pytorch_parity_sequence), RD_CASE(pytorch_parity_grid))
