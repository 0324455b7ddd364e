/* The YAML config: defaults, configs/tiny.yaml, every error kind with its
 * line and column, --set overrides, emit -> load round trips, and
 * docs/config.md in step with the key table. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/config.h"
#include "io/core/fs.h"
#include "rd_test.h"

static char tmp_dir[64];

/* Writes text to a file of the temporary folder; returns its path. */
static const char *put(const char *name, const char *text) {
  static char path[256];
  if (!tmp_dir[0]) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/rd_test_config_XXXXXX");
    if (!mkdtemp(tmp_dir)) {
      perror("mkdtemp");
      exit(1);
    }
  }
  snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
  return path;
}

/* Equal configs are equal byte for byte (the loader zero-fills), apart from
 * where they were loaded from. */
static int same_config(const rd_config *a, const rd_config *b) {
  rd_config x = *a;
  memcpy(x.source, b->source, sizeof x.source);
  return memcmp(&x, b, sizeof x) == 0;
}

static char *emit_string(const rd_config *cfg) {
  char *text = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&text, &n);
  if (!f || rd_config_emit(cfg, f) != 0 || fclose(f) != 0) {
    fprintf(stderr, "emit failed: %s\n", rd_err_msg());
    exit(1);
  }
  return text;
}

/* Loading text as a file fails with "<file>:<where_msg>". */
#define CHECK_YAML_ERR(text, where_msg)                                                                      \
  do {                                                                                                       \
    char want_[1024];                                                                                        \
    const char *p_ = put("bad.yaml", (text));                                                                \
    snprintf(want_, sizeof want_, "%s:%s", p_, (where_msg));                                                 \
    rd_config c_;                                                                                            \
    CHECK_ERR(rd_config_load(&c_, p_, NULL, 0), want_);                                                      \
  } while (0)

/* Loading the defaults plus one override fails with msg. */
#define CHECK_SET_ERR(assignment, msg)                                                                       \
  do {                                                                                                       \
    const char *sets_[] = {(assignment)};                                                                    \
    rd_config c_;                                                                                            \
    CHECK_ERR(rd_config_load(&c_, NULL, sets_, 1), (msg));                                                   \
  } while (0)

static void test_defaults(void) {
  rd_config c;
  rd_config_defaults(&c);
  CHECK_OK(rd_config_validate(&c));
  CHECK(strcmp(c.run_dir, "runs/tiny") == 0);
  CHECK(c.model.d_model == 128 && c.model.n_layers == 4 && c.model.d_ff == 384);
  CHECK(c.model.image_size == 48 && c.model.patch == 16 && c.model.gen_len == 64);
  CHECK(c.model.rope_theta == 10000.0 && c.model.norm_eps == 1e-5 && c.model.init_std == 0.02);
  CHECK(c.data.n_train == 16000 && c.data.seed == 1);
  CHECK(strcmp(c.data.prompt, "describe the image in detail .") == 0);
  CHECK(c.train.lr == 1e-3 && c.train.beta2 == 0.99 && c.train.adam_eps == 1e-8);
  CHECK(c.stage1.dynamic_rate == 0 && c.stage1.syntax == 1 && c.stage1.halluc_frac == 0.5);
  CHECK(c.draft.step_counts.n == 3 && c.draft.step_counts.v[0] == 64 && c.draft.step_counts.v[2] == 8);
  CHECK(strcmp(c.draft.mode, "refine") == 0 && strcmp(c.expert.kind, "scene") == 0);
  CHECK(c.expert.command[0] == '\0' && c.expert.timeout_s == 30.0);
  CHECK(strcmp(c.expert.length_policy, "remask") == 0);
  CHECK(c.eval.tokens_per_step.n == 3 && c.eval.tokens_per_step.v[2] == 8);
  CHECK(c.eval.n_samples == 500 && c.eval.bootstrap == 1000);
  CHECK(c.eval.models.n == 3 && strcmp(c.eval.models.v[0], "mask:remask") == 0);
  CHECK(c.eval.modes.n == 2 && strcmp(c.eval.modes.v[1], "remask") == 0);
  CHECK(strcmp(c.runtime.device, "cpu") == 0 && strcmp(c.runtime.precision, "fp32") == 0);
  CHECK(strcmp(c.slurm.time, "01:00:00") == 0 && c.slurm.signal_lead_s == 120);
  CHECK(strcmp(c.slurm.launcher, "srun") == 0 && c.slurm.setup.n == 0 && c.slurm.extra.n == 0);
  CHECK(strcmp(c.source, "(defaults)") == 0);

  rd_config d;
  CHECK_OK(rd_config_load(&d, NULL, NULL, 0));
  CHECK(same_config(&c, &d));
}

/* Writes want to the build folder so a stale file is one copy away. */
static void write_expected(const char *name, const char *want) {
  const char *dir = getenv("RD_BINARY_DIR");
  char path[RD_PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir ? dir : tmp_dir, name);
  if (rd_fs_write_atomic(path, want, strlen(want)) == 0) fprintf(stderr, "the expected file is %s\n", path);
}

static void test_tiny_yaml(void) {
  char path[RD_PATH_MAX];
  snprintf(path, sizeof path, "%s/configs/tiny.yaml", rd_test_srcdir());
  rd_config def, c;
  rd_config_defaults(&def);
  CHECK_OK(rd_config_load(&c, path, NULL, 0));
  CHECK(same_config(&c, &def));
  CHECK(strcmp(c.source, path) == 0);

  /* Every key at its default, in table order: the file is the header
   * comment followed by exactly what `rediff config show` prints. */
  char *text;
  size_t n;
  CHECK_OK(rd_fs_read_all(path, &text, &n));
  if (!text) return;
  const char *body = text;
  while (*body == '#' || *body == '\n')
    body = strchr(body, '\n') ? strchr(body, '\n') + 1 : body + strlen(body);
  char *want = emit_string(&def);
  int same = strcmp(body, want) == 0;
  CHECK_MSG(same, "configs/tiny.yaml differs from the defaults of io/config.c");
  if (!same) {
    size_t head = (size_t)(body - text);
    char *full = malloc(head + strlen(want) + 1);
    memcpy(full, text, head);
    strcpy(full + head, want);
    write_expected("tiny.yaml", full);
    free(full);
  }
  free(want);
  free(text);
}

static void test_empty_file(void) {
  rd_config def, c;
  rd_config_defaults(&def);
  CHECK_OK(rd_config_load(&c, put("empty.yaml", ""), NULL, 0));
  CHECK(same_config(&c, &def));
  CHECK_OK(rd_config_load(&c, put("comments.yaml", "# nothing set\n\n# at all\n"), NULL, 0));
  CHECK(same_config(&c, &def));
  CHECK_OK(rd_config_load(&c, put("empty_section.yaml", "model:\n  # d_model: 64\ntrain:\n"), NULL, 0));
  CHECK(same_config(&c, &def));

  rd_config x;
  CHECK_ERR(rd_config_load(&x, "no/such/config.yaml", NULL, 0), "config: cannot open no/such/config.yaml");
}

static void test_values_load(void) {
  const char *path = put("ok.yaml", "run_dir: runs/big   # a comment\n"
                                    "model:\n"
                                    "  d_model: 256\n"
                                    "  norm_eps: 1e-6\n"
                                    "data:\n"
                                    "  seed: 18446744073709551615\n"
                                    "  prompt: 'what: is \"here\"'\n"
                                    "stage1:\n"
                                    "  dynamic_rate: True\n"
                                    "  syntax: false\n"
                                    "eval:\n"
                                    "  tokens_per_step:\n"
                                    "    - 2\n"
                                    "    - 16\n"
                                    "  modes: [remask]\n"
                                    "slurm:\n"
                                    "  setup: [module load mpi, 'export X=1']\n"
                                    "  extra:\n"
                         "  account: ~\n"
                         "  qos: 'null'\n");
  rd_config c;
  CHECK_OK(rd_config_load(&c, path, NULL, 0));
  CHECK(strcmp(c.run_dir, "runs/big") == 0);
  CHECK(c.model.d_model == 256 && c.model.norm_eps == 1e-6 && c.model.n_layers == 4);
  CHECK(c.data.seed == UINT64_MAX);
  CHECK(strcmp(c.data.prompt, "what: is \"here\"") == 0);
  CHECK(c.stage1.dynamic_rate == 1 && c.stage1.syntax == 0);
  CHECK(c.eval.tokens_per_step.n == 2 && c.eval.tokens_per_step.v[1] == 16);
  CHECK(c.eval.modes.n == 1 && strcmp(c.eval.modes.v[0], "remask") == 0);
  CHECK(c.slurm.setup.n == 2 && strcmp(c.slurm.setup.v[1], "export X=1") == 0);
  CHECK(c.slurm.extra.n == 0);
  CHECK(c.slurm.account[0] == '\0' && strcmp(c.slurm.qos, "null") == 0);
}

static void test_unknown_names(void) {
  CHECK_YAML_ERR("model:\n  d_modle: 64\n",
                 "2:3: unknown key 'model.d_modle' (did you mean 'model.d_model'?)");
  CHECK_YAML_ERR("model:\n  n_layers: 2\n  seed: 3\n",
                 "3:3: unknown key 'model.seed' (did you mean 'data.seed' or 'train.seed'?)");
  CHECK_YAML_ERR("model:\n  wibble: 3\n", "2:3: unknown key 'model.wibble'");
  CHECK_YAML_ERR("modle:\n  d_model: 64\n", "1:1: unknown section 'modle' (did you mean 'model'?)");
  CHECK_YAML_ERR("train: {}\noptimizer:\n  lr: 1\n", "2:1: unknown section 'optimizer'");
  CHECK_YAML_ERR("d_model: 64\n", "1:1: unknown key 'd_model' (did you mean 'model.d_model'?)");
  CHECK_YAML_ERR("run_dri: x\n", "1:1: unknown key 'run_dri' (did you mean 'run_dir'?)");
  CHECK_YAML_ERR("model.d_model: 64\n", "1:1: write 'model.d_model' as 'd_model:' under 'model:'");
}

static void test_wrong_type(void) {
  CHECK_YAML_ERR("model:\n  d_model: abc\n", "2:12: model.d_model wants an integer, got 'abc'");
  CHECK_YAML_ERR("model:\n  d_model: 12.5\n", "2:12: model.d_model wants an integer, got '12.5'");
  CHECK_YAML_ERR("model:\n  d_model:\n", "2:11: model.d_model wants an integer, got nothing");
  CHECK_YAML_ERR("train:\n  lr: fast\n", "2:7: train.lr wants a number, got 'fast'");
  CHECK_YAML_ERR("train:\n  lr: .nan\n", "2:7: train.lr wants a number, got '.nan'");
  /* a float is refused where an integer would be: padding, hex */
  CHECK_YAML_ERR("train:\n  lr: \" 0.5\"\n", "2:7: train.lr wants a number, got ' 0.5'");
  CHECK_YAML_ERR("train:\n  batch_size: \" 128\"\n", "2:15: train.batch_size wants an integer, got ' 128'");
  CHECK_YAML_ERR("train:\n  lr: 0x1p-3\n", "2:7: train.lr wants a number, got '0x1p-3'");
  CHECK_YAML_ERR("data:\n  seed: -1\n", "2:9: data.seed wants an unsigned 64-bit integer, got '-1'");
  CHECK_YAML_ERR("stage1:\n  syntax: maybe\n", "2:11: stage1.syntax wants true or false, got 'maybe'");
  CHECK_YAML_ERR("eval:\n  tokens_per_step: [1, x]\n",
                 "2:24: eval.tokens_per_step[1] wants an integer, got 'x'");
  /* a mapping or list where a value is wanted, and the other way round */
  CHECK_YAML_ERR("model:\n  d_model:\n    x: 1\n", "3:5: model.d_model wants an integer, got a mapping");
  CHECK_YAML_ERR("data:\n  prompt: [a, b]\n", "2:11: data.prompt wants a string, got a list");
  CHECK_YAML_ERR("model: 5\n",
                 "1:8: section 'model' wants a mapping of keys (key: value lines), got a value");
  CHECK_YAML_ERR("model: [1]\n",
                 "1:8: section 'model' wants a mapping of keys (key: value lines), got a list");
  CHECK_YAML_ERR("eval:\n  modes: refine\n",
                 "2:10: eval.modes wants a list of strings like [a, b], got 'refine'");
  CHECK_YAML_ERR("eval:\n  modes: {a: 1}\n",
                 "2:10: eval.modes wants a list of strings like [a, b], got a mapping");
  CHECK_YAML_ERR("slurm:\n  setup: [[a]]\n", "2:11: slurm.setup[0] wants a string, got a list");
  CHECK_YAML_ERR("- model\n", "1:1: the top level must be a mapping of sections");
  CHECK_YAML_ERR("[a]: 1\n", "1:1: a key must be a plain name, got a list");
}

static void test_out_of_range(void) {
  CHECK_YAML_ERR("train:\n  lr: 0\n", "2:7: train.lr must be > 0 and <= 1, got 0");
  CHECK_YAML_ERR("train:\n  lr: 2.5\n", "2:7: train.lr must be > 0 and <= 1, got 2.5");
  CHECK_YAML_ERR("train:\n  beta2: 1\n", "2:10: train.beta2 must be >= 0 and < 1, got 1");
  CHECK_YAML_ERR("model:\n  d_model: 4\n", "2:12: model.d_model must be >= 8 and <= 65536, got 4");
  CHECK_YAML_ERR("model:\n  d_model: 99999999999999999999\n",
                 "2:12: model.d_model must be >= 8 and <= 65536, got 99999999999999999999");
  CHECK_YAML_ERR("model:\n  gen_len: 4\n", "2:12: model.gen_len must be >= 8 and <= 65536, got 4");
  CHECK_YAML_ERR("data:\n  n_train: 0\n", "2:12: data.n_train must be >= 1, got 0");
  CHECK_YAML_ERR("stage1:\n  replace_prob: -0.1\n",
                 "2:17: stage1.replace_prob must be >= 0 and <= 1, got -0.1");
  CHECK_YAML_ERR("eval:\n  tokens_per_step: []\n", "2:20: eval.tokens_per_step wants 1 to 16 items, got 0");
  CHECK_YAML_ERR("eval:\n  tokens_per_step: [1, 0]\n",
                 "2:24: eval.tokens_per_step[1] must be >= 1 and <= 65536, got 0");
  CHECK_YAML_ERR("run_dir: ''\n", "1:10: run_dir must not be empty");
  CHECK_YAML_ERR("data:\n  prompt: \"two\\nlines\"\n", "2:11: data.prompt must be one line");
  char long_text[400] = "data:\n  prompt: ";
  memset(long_text + strlen(long_text), 'x', 300);
  CHECK_YAML_ERR(long_text, "2:11: data.prompt is too long (300 bytes; at most 255)");
}

static void test_bad_enum(void) {
  CHECK_YAML_ERR("draft:\n  mode: refin\n", "2:9: draft.mode must be one of refine, remask; got 'refin'");
  CHECK_YAML_ERR("expert:\n  kind: llm\n",
                 "2:9: expert.kind must be one of scene, reference, command; got 'llm'");
  CHECK_YAML_ERR("eval:\n  modes: [refine, fast]\n",
                 "2:19: eval.modes[1] must be one of refine, remask; got 'fast'");
  CHECK_YAML_ERR("draft:\n  mode: [refine]\n", "2:9: draft.mode wants one of refine, remask, got a list");
  CHECK_YAML_ERR("runtime:\n  device: gpu\n", "2:11: runtime.device must be one of cpu, cuda; got 'gpu'");
}

static void test_duplicates(void) {
  CHECK_YAML_ERR("model:\n  d_model: 64\n  d_model: 32\n",
                 "3:3: duplicate key 'model.d_model' (first at line 2)");
  CHECK_YAML_ERR("model:\n  d_model: 64\nmodel:\n  n_layers: 2\n",
                 "3:1: duplicate section 'model' (first at line 1)");
  CHECK_YAML_ERR("run_dir: a\nrun_dir: b\n", "2:1: duplicate key 'run_dir' (first at line 1)");
}

static void test_malformed(void) {
  CHECK_YAML_ERR(
      "model:\n  d_model: 64\n  n_layers 2\n  d_ff: 8\n",
      "4:3: malformed YAML: could not find expected ':' (while scanning a simple key at line 3, column 3)");
  CHECK_YAML_ERR("model:\n d_model: 1\n  n_layers: 2\n",
                 "3:11: malformed YAML: mapping values are not allowed in this context");
  CHECK_YAML_ERR("eval:\n  modes: [refine\n", "3:1: malformed YAML: did not find expected ',' or ']'");
  CHECK_YAML_ERR("model:\n\td_model: 1\n",
                 "2:1: malformed YAML: found character that cannot start any token");
  CHECK_YAML_ERR("model:\n  d_model: 64\n---\nmodel:\n  d_model: 32\n",
                 "4:1: a second YAML document (after '---'); a config is one document");
  rd_config c;
  CHECK_ERR(rd_config_load(&c, put("latin1.yaml", "data:\n  prompt: caf\xe9\n"), NULL, 0),
            "not valid UTF-8 text");
}

/* Hostile files: a FIFO or device is refused without blocking on it, a file
 * over RD_CFG_MAX_BYTES without reading it, deep flow nesting before
 * libyaml's scanner spends quadratic time on it. */
static void test_hostile_files(void) {
  rd_config c;
  char fifo[128];
  snprintf(fifo, sizeof fifo, "%s.fifo", put("x.yaml", ""));
  CHECK(mkfifo(fifo, 0600) == 0);
  CHECK_ERR(rd_config_load(&c, fifo, NULL, 0), "is not a regular file (a FIFO)");
  unlink(fifo);
  CHECK_ERR(rd_config_load(&c, "/dev/zero", NULL, 0), "/dev/zero is not a regular file (a character device)");
  CHECK_ERR(rd_config_load(&c, tmp_dir, NULL, 0), "is not a regular file (a folder)");
  /* UTF-16 (here with its byte order mark) is refused: configs are UTF-8 */
  char p16[256];
  snprintf(p16, sizeof p16, "%s", put("u16.yaml", ""));
  FILE *u16 = fopen(p16, "wb");
  static const unsigned char bom_text[] = {0xff, 0xfe, 'm', 0, ':', 0, '\n', 0};
  CHECK(u16 && fwrite(bom_text, 1, sizeof bom_text, u16) == sizeof bom_text && fclose(u16) == 0);
  CHECK_ERR(rd_config_load(&c, p16, NULL, 0), "a config is UTF-8 text; this file is UTF-16");
  size_t n = RD_CFG_MAX_BYTES + 1;
  char *big = malloc(n + 1);
  memset(big, '#', n);
  big[n] = '\0';
  CHECK_ERR(rd_config_load(&c, put("big.yaml", big), NULL, 0), "is 1048577 bytes, more than the 1048576");
  free(big);
  /* 100 000 levels would take libyaml minutes; the depth check stops at 17 */
  size_t depth = 100000;
  char *deep = malloc(2 * depth + 16);
  strcpy(deep, "eval:\n  modes: ");
  size_t k = strlen(deep);
  for (size_t i = 0; i < depth; i++) deep[k++] = '[';
  for (size_t i = 0; i < depth; i++) deep[k++] = ']';
  deep[k] = '\0';
  CHECK_YAML_ERR(deep, "2:24: nested deeper than 16 levels");
  free(deep);
  const char *sets[] = {"eval.modes=[[[[[[[[[[[[[[[[[[[[remask]]]]]]]]]]]]]]]]]]]]"};
  CHECK_ERR(rd_config_load(&c, NULL, sets, 1), "nested deeper than 16 levels");
}

static void test_required(void) {
  CHECK_YAML_ERR("expert:\n  timeout_s: 5\n  kind: command\n",
                 "3:3: expert.command is required when expert.kind is 'command'");
  rd_config c;
  CHECK_OK(rd_config_load(
      &c, put("cmd.yaml", "expert:\n  kind: command\n  command: python3 judge.py --json\n"), NULL, 0));
  CHECK(strcmp(c.expert.command, "python3 judge.py --json") == 0);
  CHECK_SET_ERR("expert.kind=command",
                "--set expert.kind=command: expert.command is required when expert.kind is 'command'");
  /* the file names the kind, an override gives the command */
  const char *sets[] = {"expert.command=./judge --fast"};
  CHECK_OK(rd_config_load(&c, put("kind.yaml", "expert:\n  kind: command\n"), sets, 1));
  CHECK(strcmp(c.expert.command, "./judge --fast") == 0);
  /* an override that empties it again is the place to blame */
  const char *unset[] = {"expert.command="};
  CHECK_ERR(rd_config_load(&c, put("cmd.yaml", "expert:\n  kind: command\n  command: x\n"), unset, 1),
            "--set expert.command=: expert.command is required when expert.kind is 'command'");
}

/* expr fails with RD_EINVAL and exactly the message want, place included
 * (CHECK_ERR asks only that the message hold it). */
#define CHECK_EXACT_ERR(expr, want)                                                                          \
  do {                                                                                                       \
    rd_err_clear();                                                                                          \
    int s_ = (expr);                                                                                         \
    CHECK_MSG(s_ == RD_EINVAL && strcmp(rd_err_msg(), (want)) == 0, "got %d \"%s\", want RD_EINVAL \"%s\"",   \
              s_, rd_err_msg(), (want));                                                                     \
  } while (0)

/* runtime.device: cuda and runtime.precision: bf16 are refused where no CUDA
 * model backend is compiled (every build of this version), with the place of
 * the key and what to do; a build with one (RD_MODEL_CUDA) takes them. */
static void test_runtime_device(void) {
  char want[1024], path[RD_PATH_MAX];
  rd_config c;
  /* The shipped GPU-cluster example says what it will do, so it loads. */
  snprintf(path, sizeof path, "%s/configs/cluster-gpu.yaml", rd_test_srcdir());
  CHECK_OK(rd_config_load(&c, path, NULL, 0));
  CHECK(strcmp(c.runtime.device, "cpu") == 0 && strcmp(c.runtime.precision, "fp32") == 0);
  char cuda[256], both[256], bf16[256]; /* put's path is overwritten by the next put */
  snprintf(cuda, sizeof cuda, "%s", put("cuda.yaml", "runtime:\n  device: cuda\n"));
  snprintf(both, sizeof both, "%s", put("cuda_bf16.yaml", "runtime:\n  precision: bf16\n  device: cuda\n"));
  snprintf(bf16, sizeof bf16, "%s", put("bf16.yaml", "runtime:\n  precision: bf16\n  device: cpu\n"));
#ifndef RD_MODEL_CUDA
  static const char no_cuda[] = "runtime.device is cuda, but this build of rediff runs the model on the CPU only: "
                                "the CUDA path is not built; set runtime.device: cpu";
  static const char no_bf16[] = "runtime.precision is bf16, but bf16 storage needs runtime.device: cuda, and this "
                                "build of rediff runs the model on the CPU only (fp32); set runtime.precision: fp32";
  snprintf(want, sizeof want, "%s:2:3: %s", cuda, no_cuda);
  CHECK_EXACT_ERR(rd_config_load(&c, cuda, NULL, 0), want);
  /* both keys to change are named at once, at the device's line */
  snprintf(want, sizeof want, "%s:3:3: %s and runtime.precision: fp32", both, no_cuda);
  CHECK_EXACT_ERR(rd_config_load(&c, both, NULL, 0), want);
  /* placed at precision, the key to change, though device comes later */
  snprintf(want, sizeof want, "%s:2:3: %s", bf16, no_bf16);
  CHECK_EXACT_ERR(rd_config_load(&c, bf16, NULL, 0), want);
  const char *set_cuda[] = {"runtime.device=cuda"}, *set_bf16[] = {"runtime.precision=bf16"};
  snprintf(want, sizeof want, "--set runtime.device=cuda: %s", no_cuda);
  CHECK_EXACT_ERR(rd_config_load(&c, NULL, set_cuda, 1), want);
  snprintf(want, sizeof want, "--set runtime.precision=bf16: %s", no_bf16);
  CHECK_EXACT_ERR(rd_config_load(&c, NULL, set_bf16, 1), want);
  /* an override that fixes the file's device is taken */
  const char *fix[] = {"runtime.device=cpu"};
  CHECK_OK(rd_config_load(&c, cuda, fix, 1));
  /* a struct filled by code is held to the same rule */
  rd_config_defaults(&c);
  snprintf(c.runtime.device, sizeof c.runtime.device, "cuda");
  CHECK_EXACT_ERR(rd_config_validate(&c), no_cuda);
#else
  CHECK_OK(rd_config_load(&c, cuda, NULL, 0));
  CHECK_OK(rd_config_load(&c, both, NULL, 0));
  /* either key may change here: placed at the one set last */
  snprintf(want, sizeof want, "%s:3:3: runtime.precision is bf16, but bf16 storage needs runtime.device: cuda",
           bf16);
  CHECK_ERR(rd_config_load(&c, bf16, NULL, 0), want);
#endif
  /* The defaults and the reference need no device: they stay available. */
  rd_config_defaults(&c);
  CHECK_OK(rd_config_validate(&c));
  FILE *devnull = fopen("/dev/null", "w");
  CHECK(devnull != NULL);
  if (devnull) {
    CHECK_OK(rd_config_doc(devnull));
    CHECK_OK(rd_config_emit(&c, devnull));
    fclose(devnull);
  }
}

static void test_cross_key(void) {
  /* eval.models is checked when the config loads, not when eval runs */
  CHECK_YAML_ERR("eval:\n  models: [base, stag1]\n", "2:3: eval.models: unknown model 'stag1'");
  CHECK_SET_ERR("eval.models=[mask:fast]", "eval.models: 'mask:fast': unknown mode 'fast' (refine, remask)");
  CHECK_SET_ERR("eval.models=[stage2_r0]", "unknown model 'stage2_r0'");
  CHECK_YAML_ERR("model:\n  image_size: 48\n  patch: 7\n",
                 "3:3: model.patch (7) must divide model.image_size (48)");
  CHECK_YAML_ERR("model:\n  image_size: 50\n", "2:3: model.patch (16) must divide model.image_size (50)");
  CHECK_YAML_ERR("model:\n  n_heads: 5\n", "2:3: model.n_heads (5) must divide model.d_model (128)");
  CHECK_YAML_ERR("model:\n  image_heads: 5\n",
                 "2:3: model.image_heads (5) must be between 0 and model.n_heads (4)");
  CHECK_YAML_ERR("model:\n  n_heads: 128\n",
                 "2:3: the head size model.d_model / model.n_heads = 1 must be even");
  CHECK_YAML_ERR("model:\n  vision_heads: 3\n",
                 "2:3: model.vision_heads (3) must divide model.vision_d (128)");
  CHECK_YAML_ERR("data:\n  min_objects: 5\n  max_objects: 3\n",
                 "3:3: data.min_objects (5) must be <= data.max_objects (3)");
  CHECK_YAML_ERR("data:\n  max_objects: 10\n", "2:16: data.max_objects must be >= 1 and <= 9, got 10");
  CHECK_YAML_ERR("parallel:\n  ranks: 4\n  tp: 3\n", "3:3: parallel.tp (3) must divide parallel.ranks (4)");
  CHECK_YAML_ERR("parallel:\n  ranks: 3\n  tp: 3\n", "3:3: parallel.tp (3) must divide model.n_heads (4)");
  CHECK_YAML_ERR("parallel:\n  ranks: 8\n  tp: 8\n", "3:3: parallel.tp (8) must divide model.n_heads (4)");
  CHECK_YAML_ERR(
      "train:\n  batch_size: 30\nparallel:\n  ranks: 4\n",
      "4:3: train.batch_size (30) must be a multiple of data-parallel ranks x train.grad_accum (4 x 1)");
  CHECK_YAML_ERR("draft:\n  step_counts: [128, 16]\n",
                 "2:3: draft.step_counts[0] (128) must be <= model.gen_len (64)");
  CHECK_YAML_ERR("eval:\n  tokens_per_step: [1, 2, 2]\n", "2:3: eval.tokens_per_step lists 2 twice");
  CHECK_YAML_ERR("eval:\n  modes: [refine, refine]\n", "2:3: eval.modes lists 'refine' twice");
  CHECK_YAML_ERR("eval:\n  n_samples: 600\n", "2:3: eval.n_samples (600) must be <= data.n_eval (512)");
  CHECK_YAML_ERR("slurm:\n  time: soon\n", "2:3: slurm.time 'soon' is not a Slurm time limit");
  CHECK_YAML_ERR("slurm:\n  time: \"1:30\"\n",
                 "2:3: slurm.signal_lead_s (120) must be less than slurm.time (1:30 = 90 s)");
  rd_config c;
  CHECK_OK(rd_config_load(&c, put("time.yaml", "slurm:\n  time: 2-12:00\n  signal_lead_s: 600\n"), NULL, 0));
  CHECK_OK(rd_config_load(
      &c, put("tp.yaml", "parallel:\n  ranks: 4\n  tp: 2\ntrain:\n  batch_size: 16\n  grad_accum: 8\n"), NULL,
      0));

  /* validate on its own (the struct filled by code) has no place to name */
  rd_config_defaults(&c);
  c.model.patch = 7;
  CHECK_ERR(rd_config_validate(&c), "model.patch (7) must divide model.image_size (48)");
  rd_config_defaults(&c);
  c.train.lr = 0;
  CHECK_ERR(rd_config_validate(&c), "train.lr must be > 0 and <= 1, got 0");
  rd_config_defaults(&c);
  c.run_dir[0] = '\0';
  CHECK_ERR(rd_config_validate(&c), "run_dir must not be empty");
  rd_config_defaults(&c);
  strcpy(c.draft.mode, "fast");
  CHECK_ERR(rd_config_validate(&c), "draft.mode must be one of refine, remask; got 'fast'");
  rd_config_defaults(&c);
  c.eval.modes.n = 0;
  CHECK_ERR(rd_config_validate(&c), "eval.modes wants 1 to 2 items, got 0");
}

static void test_set(void) {
  const char *path = put("base.yaml", "model:\n  d_model: 64\n  n_heads: 2\n");
  const char *sets[] = {"model.d_model=256",
                        "model.d_model=96",
                        "eval.tokens_per_step=[1,8]",
                        "data.prompt=look at it .",
                        "slurm.setup=[module load a, 'b: c']",
                        "expert.command=python3 x.py --flag",
                        "slurm.time=00:30:00",
                        "stage1.syntax=false",
                        "train.lr=3e-4",
                        "run_dir=runs/x"};
  rd_config c;
  CHECK_OK(rd_config_load(&c, path, sets, (int)(sizeof sets / sizeof sets[0])));
  CHECK(c.model.d_model == 96 && c.model.n_heads == 2);
  CHECK(c.eval.tokens_per_step.n == 2 && c.eval.tokens_per_step.v[0] == 1 &&
        c.eval.tokens_per_step.v[1] == 8);
  CHECK(strcmp(c.data.prompt, "look at it .") == 0);
  CHECK(c.slurm.setup.n == 2 && strcmp(c.slurm.setup.v[1], "b: c") == 0);
  CHECK(strcmp(c.expert.command, "python3 x.py --flag") == 0);
  CHECK(strcmp(c.slurm.time, "00:30:00") == 0);
  CHECK(c.stage1.syntax == 0 && c.train.lr == 3e-4 && strcmp(c.run_dir, "runs/x") == 0);

  CHECK_SET_ERR("model.d_model=abc", "--set model.d_model=abc: model.d_model wants an integer, got 'abc'");
  CHECK_SET_ERR("model.d_model=4", "--set model.d_model=4: model.d_model must be >= 8 and <= 65536, got 4");
  CHECK_SET_ERR("model.d_modle=3",
                "--set model.d_modle=3: unknown key 'model.d_modle' (did you mean 'model.d_model'?)");
  CHECK_SET_ERR("modle.d_model=3",
                "--set modle.d_model=3: unknown key 'modle.d_model' (did you mean 'model.d_model'?)");
  CHECK_SET_ERR("model=3", "--set model=3: 'model' is a section; set its keys one at a time");
  CHECK_SET_ERR("d_model", "--set d_model: want key.path=value");
  CHECK_SET_ERR("draft.mode=fast",
                "--set draft.mode=fast: draft.mode must be one of refine, remask; got 'fast'");
  CHECK_SET_ERR("eval.tokens_per_step=[1,", "--set eval.tokens_per_step=[1,: malformed YAML");
  CHECK_SET_ERR("eval.tokens_per_step=4",
                "--set eval.tokens_per_step=4: eval.tokens_per_step wants a list of integers");
  CHECK_SET_ERR("data.prompt=a: b",
                "--set data.prompt=a: b: data.prompt wants a string, got a mapping (quote");
  CHECK_SET_ERR("model.patch=7", "--set model.patch=7: model.patch (7) must divide model.image_size (48)");
  /* a later file value is not the culprit when an override came after it */
  const char *patch[] = {"model.image_size=64", "model.patch=24"};
  CHECK_ERR(rd_config_load(&c, path, patch, 2),
            "--set model.patch=24: model.patch (24) must divide model.image_size (64)");

  rd_config_defaults(&c);
  CHECK_OK(rd_config_set(&c, "train.threads=8"));
  CHECK(c.train.threads == 8);
  CHECK_OK(rd_config_set(&c, "slurm.extra=[]"));
  CHECK_OK(rd_config_set(&c, "data.prompt='quoted: \"yes\"'"));
  CHECK(strcmp(c.data.prompt, "quoted: \"yes\"") == 0);
  CHECK_ERR(rd_config_set(&c, "train.threads=0"),
            "--set train.threads=0: train.threads must be >= 1 and <= 1024, got 0");
}

static void roundtrip(const rd_config *c) {
  char *text = emit_string(c);
  char *yaml = NULL;
  CHECK_OK(rd_config_to_yaml(c, &yaml));
  CHECK(yaml && strcmp(yaml, text) == 0);
  rd_config back;
  CHECK_OK(rd_config_load(&back, put("emitted.yaml", text), NULL, 0));
  CHECK_MSG(same_config(&back, c), "emit -> load changed the config:\n%s", text);
  char *again = emit_string(&back);
  CHECK(strcmp(again, text) == 0);
  CHECK(rd_config_hash(&back) == rd_config_hash(c));
  free(again);
  free(yaml);
  free(text);
}

static void setstr(char *dst, size_t n, const char *src) {
  memset(dst, 0, n);
  snprintf(dst, n, "%s", src);
}
#define SETSTR(field, s) setstr((field), sizeof(field), (s))

static void test_roundtrip(void) {
  rd_config def, c;
  rd_config_defaults(&def);
  roundtrip(&def);

  c = def;
  SETSTR(c.run_dir, "runs/with space/caf\xc3\xa9");
  SETSTR(c.data.prompt, "say \"hi\": now # not a comment, 'single' \\ back\tslash");
  SETSTR(c.expert.kind, "command");
  SETSTR(c.expert.command, "python3 -c 'print(\"a: b\")' --x=[1, 2] {k: v} & | > %s");
  SETSTR(c.expert.length_policy, "drop");
#ifdef RD_MODEL_CUDA
  SETSTR(c.runtime.device, "cuda"); /* refused where no CUDA backend is built */
  SETSTR(c.runtime.precision, "bf16");
#endif
  SETSTR(c.slurm.launcher, "mpirun");
  SETSTR(c.slurm.partition, "-dash");
  SETSTR(c.slurm.account, "null");
  SETSTR(c.slurm.qos, "123");
  SETSTR(c.slurm.time, "2-00:00:00");
  c.slurm.setup.n = 3;
  SETSTR(c.slurm.setup.v[0], "module load openmpi/4.1");
  SETSTR(c.slurm.setup.v[1], "export A=\"b c\"");
  SETSTR(c.slurm.setup.v[2], "[ -d x ] && echo ok, done");
  c.slurm.extra.n = 2;
  SETSTR(c.slurm.extra.v[0], "--constraint=a100");
  SETSTR(c.slurm.extra.v[1], "#weird: yes");
  c.model.d_model = 96;
  c.model.n_heads = 6;
  c.model.rope_theta = 500000.5;
  c.train.lr = 3e-4;
  c.train.weight_decay = 0.1 + 0.2; /* 0.30000000000000004 */
  c.train.beta2 = 0.999999999999;
  c.model.norm_eps = 1.2345678901234567e-7;
  c.data.seed = UINT64_MAX;
  c.train.seed = 0;
  c.stage1.dynamic_rate = 1;
  c.stage1.syntax = 0;
  c.eval.tokens_per_step.n = 2;
  c.eval.tokens_per_step.v[0] = 3;
  c.eval.tokens_per_step.v[1] = 5;
  memset(c.eval.tokens_per_step.v + 2, 0, sizeof c.eval.tokens_per_step.v - 2 * sizeof(int));
  c.eval.modes.n = 1;
  SETSTR(c.eval.modes.v[0], "remask");
  memset(c.eval.modes.v[1], 0, sizeof c.eval.modes.v[1]);
  c.draft.step_counts.n = 1;
  memset(c.draft.step_counts.v + 1, 0, sizeof c.draft.step_counts.v - sizeof(int));
  CHECK_OK(rd_config_validate(&c));
  roundtrip(&c);
  CHECK(rd_config_hash(&c) != rd_config_hash(&def));

  /* equal configs hash equal whatever their source; one change moves it */
  rd_config d = def;
  CHECK(rd_config_hash(&d) == rd_config_hash(&def));
  d.train.lr = 1.0000000000000002e-3;
  CHECK(rd_config_hash(&d) != rd_config_hash(&def));
}

/* The text between the two markers of docs/config.md is what
 * rd_config_doc writes. */
static void test_docs_in_sync(void) {
  static const char begin[] = "<!-- BEGIN generated by `rediff config doc` -->\n";
  static const char end[] = "<!-- END generated -->\n";
  char path[RD_PATH_MAX];
  snprintf(path, sizeof path, "%s/docs/config.md", rd_test_srcdir());
  char *text = NULL;
  size_t n;
  CHECK_OK(rd_fs_read_all(path, &text, &n));
  if (!text) return;
  char *gen = NULL;
  size_t gn = 0;
  FILE *f = open_memstream(&gen, &gn);
  CHECK(f != NULL);
  if (!f) return;
  CHECK_OK(rd_config_doc(f));
  fclose(f);
  char *b = strstr(text, begin);
  char *e = b ? strstr(b, end) : NULL;
  CHECK_MSG(b && e, "docs/config.md lacks the markers %s and %s", begin, end);
  if (b && e) {
    char *body = b + strlen(begin);
    int same = (size_t)(e - body) == strlen(gen) + 1 && strncmp(body, gen, strlen(gen)) == 0 &&
               body[strlen(gen)] == '\n';
    CHECK_MSG(same, "docs/config.md is out of date with the key table of io/config.c");
    if (!same) {
      size_t head = (size_t)(body - text);
      char *full = malloc(head + strlen(gen) + 1 + strlen(e) + 1);
      memcpy(full, text, head);
      strcpy(full + head, gen);
      strcat(full, "\n");
      strcat(full, e);
      write_expected("config.md", full);
      free(full);
    }
  }
  free(gen);
  free(text);
}

/* Last: the temporary folder goes, unless a check failed (it may hold the
 * expected files a failing comparison wrote there). */
static void cleanup(void) {
  if (!tmp_dir[0]) return;
  if (rd_test_fails) {
    printf("kept %s\n", tmp_dir);
    return;
  }
  CHECK_OK(rd_fs_rmtree(tmp_dir));
  CHECK(!rd_fs_exists(tmp_dir));
}

RD_TEST_MAIN("config", RD_CASE(test_defaults), RD_CASE(test_tiny_yaml), RD_CASE(test_empty_file),
             RD_CASE(test_values_load), RD_CASE(test_unknown_names), RD_CASE(test_wrong_type),
             RD_CASE(test_out_of_range), RD_CASE(test_bad_enum), RD_CASE(test_duplicates),
             RD_CASE(test_malformed), RD_CASE(test_hostile_files), RD_CASE(test_required), RD_CASE(test_cross_key), RD_CASE(test_runtime_device), RD_CASE(test_set),
             RD_CASE(test_roundtrip), RD_CASE(test_docs_in_sync), RD_CASE(cleanup))
