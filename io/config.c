/* The YAML configuration of a run.
 *
 * One table of keys (rd_keys below) says, for every key, its dotted name,
 * type, place in rd_config, default, range and meaning. The loader, --set
 * overrides, rd_config_validate, the emitter and the Markdown reference all
 * walk it, so adding a key is one line here plus its field in io/config.h.
 *
 * Files are read with libyaml's document API so every node keeps its mark:
 * each error names file:line:column, or the --set override at fault. */
#include "io/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "io/err.h"
#include "io/hash.h"
#include "io/fs.h"

/* ---------------------------------------------------------------- the table */

typedef enum { K_INT, K_U64, K_FLOAT, K_BOOL, K_STR, K_INTS, K_STRS } rd_kind;

/* Which ends of a numeric range are excluded: (lo, hi], [lo, hi), ... */
enum { R_LO_OPEN = 1, R_HI_OPEN = 2 };

/* clang-format off */
typedef struct {
  const char *name;           /* "section.key", or "key" at the top level */
  rd_kind kind;
  size_t off, size;           /* of the field in rd_config */
  const char *def;            /* the default, as YAML text */
  double lo, hi;              /* numbers and list items: the range; strings: lo = min length */
  int open;                   /* R_LO_OPEN | R_HI_OPEN */
  int min_n, max_n;           /* lists: bounds of the item count */
  const char *const *choices; /* strings and string lists: allowed words, NULL-ended */
  const char *doc;
} rd_cfg_key;

#define FIELD(f) .off = offsetof(rd_config, f), .size = sizeof(((rd_config *)0)->f)
#define BIG INT_MAX
#define INT(n, f, d, l, h, m) {.name = n, .kind = K_INT, FIELD(f), .def = d, .lo = l, .hi = h, .doc = m}
#define U64(n, f, d, m) {.name = n, .kind = K_U64, FIELD(f), .def = d, .doc = m}
#define FLT(n, f, d, l, h, o, m)                                                                  \
  {.name = n, .kind = K_FLOAT, FIELD(f), .def = d, .lo = l, .hi = h, .open = o, .doc = m}
#define BOOL(n, f, d, m) {.name = n, .kind = K_BOOL, FIELD(f), .def = d, .doc = m}
#define STR(n, f, d, minlen, m) {.name = n, .kind = K_STR, FIELD(f), .def = d, .lo = minlen, .doc = m}
#define ENUM(n, f, d, c, m) {.name = n, .kind = K_STR, FIELD(f), .def = d, .lo = 1, .choices = c, .doc = m}
#define INTS(n, f, d, mn, mx, l, h, m)                                                            \
  {.name = n, .kind = K_INTS, FIELD(f), .def = d, .lo = l, .hi = h, .min_n = mn, .max_n = mx, .doc = m}
#define STRS(n, f, d, mn, mx, c, m)                                                               \
  {.name = n, .kind = K_STRS, FIELD(f), .def = d, .lo = 1, .min_n = mn, .max_n = mx, .choices = c, .doc = m}

static const char *const rd_modes[] = {"refine", "remask", NULL};
static const char *const rd_expert_kinds[] = {"scene", "reference", "command", NULL};
static const char *const rd_length_policies[] = {"drop", "remask", NULL};
static const char *const rd_devices[] = {"cpu", "cuda", NULL};
static const char *const rd_precisions[] = {"fp32", "bf16", NULL};
static const char *const rd_launchers[] = {"srun", "mpirun", NULL};

static const rd_cfg_key rd_keys[] = {
    STR("run_dir", run_dir, "runs/tiny", 1, "folder of every output of the run (--run-dir overrides it)"),

    INT("model.d_model", model.d_model, "128", 8, 65536, "width of the language model"),
    INT("model.n_layers", model.n_layers, "4", 1, 1024, "language-model blocks"),
    INT("model.n_heads", model.n_heads, "4", 1, 1024, "attention heads of the language model"),
    INT("model.d_ff", model.d_ff, "384", 1, 1 << 20, "SwiGLU hidden size of the language model"),
    INT("model.vision_layers", model.vision_layers, "1", 0, 1024, "transformer blocks in the vision tower (0: none)"),
    INT("model.vision_d", model.vision_d, "128", 8, 65536, "width of the vision tower"),
    INT("model.vision_heads", model.vision_heads, "4", 1, 1024, "attention heads of the vision tower"),
    INT("model.vision_d_ff", model.vision_d_ff, "256", 1, 1 << 20, "SwiGLU hidden size of the vision tower"),
    INT("model.image_size", model.image_size, "48", 8, 4096, "height = width of the images, in pixels"),
    INT("model.patch", model.patch, "16", 1, 1024, "side of the square patches; divides image_size"),
    INT("model.gen_len", model.gen_len, "64", 8, 65536, "response length L in tokens, EOS-padded"),
    FLT("model.rope_theta", model.rope_theta, "10000", 1, 1e9, 0, "base of the rotary position embedding"),
    FLT("model.norm_eps", model.norm_eps, "1e-5", 0, 0.1, R_LO_OPEN, "RMSNorm epsilon"),
    FLT("model.init_std", model.init_std, "0.02", 0, 1, R_LO_OPEN, "standard deviation of the weight init"),
    INT("model.vocab_multiple", model.vocab_multiple, "16", 1, 4096, "vocabulary padded to a multiple of this"),

    INT("data.n_train", data.n_train, "16000", 1, BIG, "training samples"),
    INT("data.n_eval", data.n_eval, "512", 1, BIG, "held-out samples"),
    INT("data.shard_size", data.shard_size, "4096", 1, BIG, "samples per shard file"),
    INT("data.min_objects", data.min_objects, "1", 1, 9, "fewest objects in a scene"),
    INT("data.max_objects", data.max_objects, "4", 1, 9, "most objects in a scene (3 x 3 grid)"),
    INT("data.max_relations", data.max_relations, "2", 0, 16, "relation sentences per caption"),
    INT("data.jitter", data.jitter, "1", 0, 64, "+- pixels of object centre jitter"),
    INT("data.compress", data.compress, "4", 0, 9, "deflate level of shards, 0 = none"),
    U64("data.seed", data.seed, "1", "seed of scenes, phrasings and hallucinations"),
    STR("data.prompt", data.prompt, "describe the image in detail .", 1, "instruction tokens before the response"),

    INT("train.batch_size", train.batch_size, "32", 1, 1 << 20, "global batch: samples per optimizer step"),
    INT("train.grad_accum", train.grad_accum, "1", 1, 65536, "micro-batches per step on each data-parallel rank"),
    FLT("train.lr", train.lr, "1e-3", 0, 1, R_LO_OPEN, "peak learning rate"),
    INT("train.warmup", train.warmup, "100", 0, BIG, "linear warmup steps"),
    FLT("train.min_lr_frac", train.min_lr_frac, "0.1", 0, 1, 0, "cosine decay ends at lr x min_lr_frac"),
    FLT("train.weight_decay", train.weight_decay, "0.01", 0, 1, 0, "AdamW decoupled weight decay"),
    FLT("train.beta1", train.beta1, "0.9", 0, 1, R_HI_OPEN, "AdamW first-moment decay"),
    FLT("train.beta2", train.beta2, "0.99", 0, 1, R_HI_OPEN, "AdamW second-moment decay"),
    FLT("train.adam_eps", train.adam_eps, "1e-8", 0, 1, R_LO_OPEN, "AdamW epsilon"),
    FLT("train.grad_clip", train.grad_clip, "1.0", 0, 1e9, 0, "global gradient-norm clip, 0 = off"),
    U64("train.seed", train.seed, "1", "seed of init, data order and noise"),
    INT("train.ckpt_every", train.ckpt_every, "250", 1, BIG, "steps between checkpoints"),
    INT("train.keep", train.keep, "2", 1, 1000, "checkpoints kept per stage"),
    INT("train.eval_every", train.eval_every, "250", 1, BIG, "steps between held-out losses"),
    INT("train.eval_batches", train.eval_batches, "4", 1, 1 << 20, "held-out batches per evaluation"),
    INT("train.log_every", train.log_every, "50", 1, BIG, "steps between log lines when not on a terminal"),
    INT("train.threads", train.threads, "1", 1, 1024, "OpenMP / OpenBLAS threads per rank"),
    INT("train.max_bad_steps", train.max_bad_steps, "10", 1, 1 << 20, "non-finite steps in a row before the run stops"),

    INT("base.steps", base.steps, "1500", 0, BIG, "optimizer steps of mask-prediction training"),

    INT("stage1.steps", stage1.steps, "400", 0, BIG, "optimizer steps of revision training"),
    FLT("stage1.replace_prob", stage1.replace_prob, "0.1", 0, 1, 0, "syntax-noise probability q"),
    BOOL("stage1.dynamic_rate", stage1.dynamic_rate, "false", "q = t when t < replace_prob"),
    BOOL("stage1.syntax", stage1.syntax, "true", "inject syntax noise"),
    BOOL("stage1.hallucination", stage1.hallucination, "true", "inject hallucinated spans"),
    FLT("stage1.halluc_frac", stage1.halluc_frac, "0.5", 0, 1, 0, "share of samples given their hallucinated caption"),

    INTS("draft.step_counts", draft.step_counts, "[64, 16, 8]", 1, RD_CFG_LIST, 1, 65536, "decoding steps of each draft"),
    INT("draft.n_samples", draft.n_samples, "512", 1, BIG, "training samples drafted per round"),
    ENUM("draft.mode", draft.mode, "refine", rd_modes, "decoding mode of the drafts"),

    ENUM("expert.kind", expert.kind, "scene", rd_expert_kinds, "who revises the drafts"),
    STR("expert.command", expert.command, "\"\"", 0, "program speaking JSON lines (kind: command)"),
    FLT("expert.timeout_s", expert.timeout_s, "30", 0, 86400, R_LO_OPEN, "seconds to wait for one reply"),
    INT("expert.retries", expert.retries, "2", 0, 100, "attempts after a failed reply"),
    ENUM("expert.length_policy", expert.length_policy, "remask", rd_length_policies, "edits that change the length"),

    INT("stage2.steps", stage2.steps, "300", 0, BIG, "optimizer steps per round"),
    INT("stage2.rounds", stage2.rounds, "1", 1, 100, "draft -> expert -> stage2 rounds"),
    FLT("stage2.stage1_mix", stage2.stage1_mix, "0.25", 0, 1, 0, "share of each batch that is stage1 data"),

    INTS("eval.tokens_per_step", eval.tokens_per_step, "[1, 2, 4, 8]", 1, RD_CFG_LIST, 1, 65536, "decoding speeds measured"),
    STRS("eval.modes", eval.modes, "[refine, remask]", 1, 2, rd_modes, "decoding modes measured"),
    INT("eval.n_samples", eval.n_samples, "100", 1, BIG, "held-out samples decoded per setting"),
    INT("eval.batch", eval.batch, "50", 1, 65536, "captions decoded together"),
    STRS("eval.models", eval.models, "[base, mask, stage1, stage2]", 1, RD_CFG_LIST, NULL, "models compared (stage2: its last round; stage2_rR: round R); a missing one is skipped"),
    INT("eval.block", eval.block, "16", 0, 65536, "semi-autoregressive block length of eval and draft decoding (0: one block)"),
    FLT("eval.temperature", eval.temperature, "0", 0, 100, 0, "temperature of eval and draft decoding (0: argmax, > 0: Gumbel-max)"),
    FLT("eval.refine_tau", eval.refine_tau, "0", 0, 1, 0, "refine: revise a token only where its confidence >= tau"),
    FLT("eval.refine_frac", eval.refine_frac, "1", 0, 1, R_LO_OPEN, "refine: revise only this most confident fraction"),

    INT("parallel.ranks", parallel.ranks, "2", 1, 1 << 20, "MPI ranks per stage (rediff pipeline)"),
    INT("parallel.tp", parallel.tp, "1", 1, 1024, "tensor-parallel size; dp = ranks / tp"),

    ENUM("runtime.device", runtime.device, "cpu", rd_devices, "where the model runs"),
    ENUM("runtime.precision", runtime.precision, "fp32", rd_precisions, "storage precision (bf16: cuda only)"),

    STR("slurm.partition", slurm.partition, "\"\"", 0, "--partition (empty: the cluster's default)"),
    STR("slurm.account", slurm.account, "\"\"", 0, "--account (empty: none)"),
    STR("slurm.qos", slurm.qos, "\"\"", 0, "--qos (empty: none)"),
    INT("slurm.nodes", slurm.nodes, "1", 1, 100000, "nodes per job"),
    INT("slurm.tasks_per_node", slurm.tasks_per_node, "2", 1, 1024, "MPI ranks per node"),
    INT("slurm.gpus_per_node", slurm.gpus_per_node, "0", 0, 64, "GPUs per node"),
    INT("slurm.cpus_per_task", slurm.cpus_per_task, "1", 1, 1024, "cores per rank"),
    STR("slurm.time", slurm.time, "\"01:00:00\"", 1, "time limit per job (Slurm's formats)"),
    INT("slurm.signal_lead_s", slurm.signal_lead_s, "120", 0, 86400, "seconds before the limit the job is told to stop"),
    ENUM("slurm.launcher", slurm.launcher, "srun", rd_launchers, "how a job starts its ranks"),
    STRS("slurm.setup", slurm.setup, "[]", 0, RD_CFG_LIST, NULL, "shell lines run before each stage"),
    STRS("slurm.extra", slurm.extra, "[]", 0, RD_CFG_LIST, NULL, "extra #SBATCH lines"),
    INT("slurm.max_requeues", slurm.max_requeues, "20", 0, 10000, "times a stopped job requeues itself to resume"),
    STR("slurm.time_data", slurm.time_data, "\"\"", 0, "time limit of data synth (empty: slurm.time)"),
    STR("slurm.time_base", slurm.time_base, "\"\"", 0, "time limit of base (empty: slurm.time)"),
    STR("slurm.time_stage1", slurm.time_stage1, "\"\"", 0, "time limit of stage1 (empty: slurm.time)"),
    STR("slurm.time_draft", slurm.time_draft, "\"\"", 0, "time limit of each draft round (empty: slurm.time)"),
    STR("slurm.time_expert", slurm.time_expert, "\"\"", 0, "time limit of each expert round (empty: slurm.time)"),
    STR("slurm.time_stage2", slurm.time_stage2, "\"\"", 0, "time limit of each stage2 round (empty: slurm.time)"),
    STR("slurm.time_eval", slurm.time_eval, "\"\"", 0, "time limit of eval (empty: slurm.time)"),
    INT("slurm.ranks_base", slurm.ranks_base, "0", 0, 1 << 20, "MPI ranks of base (0: nodes x tasks_per_node)"),
    INT("slurm.ranks_stage1", slurm.ranks_stage1, "0", 0, 1 << 20, "MPI ranks of stage1 (0: nodes x tasks_per_node)"),
    INT("slurm.ranks_draft", slurm.ranks_draft, "0", 0, 1 << 20, "MPI ranks of draft (0: nodes x tasks_per_node)"),
    INT("slurm.ranks_expert", slurm.ranks_expert, "0", 0, 1 << 20, "MPI ranks of expert (0: nodes x tasks_per_node)"),
    INT("slurm.ranks_stage2", slurm.ranks_stage2, "0", 0, 1 << 20, "MPI ranks of stage2 (0: nodes x tasks_per_node)"),
    INT("slurm.ranks_eval", slurm.ranks_eval, "0", 0, 1 << 20, "MPI ranks of eval (0: nodes x tasks_per_node)"),
};
/* clang-format on */
#define RD_N_KEYS (int)(sizeof rd_keys / sizeof rd_keys[0])

/* One sentence per section, for the emitted YAML and the reference. */
static const struct {
  const char *name, *doc;
} rd_sections[] = {
    {"model", "the shape of the vision-language model"},
    {"data", "ShapesCap, the synthetic captioning data"},
    {"train", "the optimizer and the training loop, shared by every training stage"},
    {"base", "mask-prediction training (the model ReDiff improves)"},
    {"stage1", "foundational revision training"},
    {"draft", "drafts decoded by the current model each round"},
    {"expert", "the revision of the drafts"},
    {"stage2", "online self-correction training on the expert's revisions"},
    {"eval", "caption quality against decoding speed"},
    {"parallel", "the dp x tp grid of ranks"},
    {"runtime", "device and precision"},
    {"slurm", "the batch jobs of `rediff submit`"},
};
#define RD_N_SECTIONS (int)(sizeof rd_sections / sizeof rd_sections[0])

/* ------------------------------------------------------------- small helpers */

/* A growing string: the emitter and the reference are built in memory. */
typedef struct {
  char *p;
  size_t n, cap;
  int oom;
} rd_sb;

static void sb_put(rd_sb *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void sb_str(rd_sb *b, const char *s) { sb_put(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void sb_printf(rd_sb *b, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0)
    b->oom = 1;
  else
    sb_put(b, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static const rd_cfg_key *find_key(const char *name) {
  for (int i = 0; i < RD_N_KEYS; i++)
    if (strcmp(rd_keys[i].name, name) == 0) return &rd_keys[i];
  return NULL;
}

static int is_section(const char *name) {
  for (int i = 0; i < RD_N_SECTIONS; i++)
    if (strcmp(rd_sections[i].name, name) == 0) return 1;
  return 0;
}

/* The part of a key's name after its section. */
static const char *leaf(const char *name) {
  const char *dot = strchr(name, '.');
  return dot ? dot + 1 : name;
}

static int in_section(const rd_cfg_key *k, const char *section) {
  size_t n = strlen(section);
  return strncmp(k->name, section, n) == 0 && k->name[n] == '.';
}

static size_t edit_distance(const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  if (na > 255 || nb > 255) return SIZE_MAX;
  size_t row[256];
  for (size_t j = 0; j <= nb; j++) row[j] = j;
  for (size_t i = 1; i <= na; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= nb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[nb];
}

/* " (did you mean 'x'?)" for an unknown name, or "" when nothing is close.
 * top: the name stands at the top level (sections and top-level keys are the
 * candidates); otherwise it is a dotted key. A name that is a key of another
 * section (model.seed, or d_model at the top) is pointed at that key. */
static void suggest(const char *name, int top, char *out, size_t n) {
  out[0] = '\0';
  const char *best = NULL;
  size_t best_d = SIZE_MAX, limit = strlen(top ? name : leaf(name)) / 3 + 1;
  for (int i = 0; i < RD_N_KEYS + RD_N_SECTIONS; i++) {
    const char *cand = i < RD_N_KEYS ? rd_keys[i].name : rd_sections[i - RD_N_KEYS].name;
    if (top && i < RD_N_KEYS && strchr(cand, '.')) continue;
    if (!top && i >= RD_N_KEYS) continue;
    size_t d = edit_distance(name, cand);
    if (d < best_d) best_d = d, best = cand;
  }
  const char *want = top ? name : leaf(name);
  size_t len = 0;
  for (int i = 0; i < RD_N_KEYS; i++) {
    if (!strchr(rd_keys[i].name, '.') || strcmp(leaf(rd_keys[i].name), want) != 0) continue;
    int w = snprintf(out + len, n - len, "%s'%s'", len ? " or " : " (did you mean ", rd_keys[i].name);
    if (w < 0 || (size_t)w >= n - len) break;
    len += (size_t)w;
  }
  if (len && len + 3 < n) {
    strcat(out, "?)");
    return;
  }
  out[0] = '\0';
  if (best && best_d <= limit) snprintf(out, n, " (did you mean '%s'?)", best);
}

/* ------------------------------------------------------- where values come from */

/* A value's source: a config file (messages give file:line:col of the node)
 * or one assignment (messages give the assignment). */
typedef struct {
  const char *file;
  const char *label; /* "--set" or "default" when file is NULL */
  const char *text;  /* the assignment */
} rd_src;

static void place(char *buf, size_t n, const rd_src *s, yaml_mark_t m) {
  if (s->file)
    snprintf(buf, n, "%s:%zu:%zu", s->file, m.line + 1, m.column + 1);
  else
    snprintf(buf, n, "%s %s", s->label, s->text);
}

__attribute__((format(printf, 3, 4))) static int fail_at(const rd_src *s, yaml_mark_t m, const char *fmt,
                                                         ...) {
  char where[RD_CFG_LONGSTR + 64], msg[RD_CFG_LONGSTR + 512];
  place(where, sizeof where, s, m);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return rd_err(RD_EINVAL, "%s: %s", where, msg);
}

/* Where each key got its value during a load, to place cross-key errors at
 * the value the user set last. */
typedef struct {
  rd_src src;
  yaml_mark_t mark;
  int seq; /* 0: still the default */
} rd_origin;

/* ------------------------------------------------------------------ values */

static const char *want_words(const rd_cfg_key *k) {
  switch (k->kind) {
  case K_INT: return "an integer";
  case K_U64: return "an unsigned 64-bit integer";
  case K_FLOAT: return "a number";
  case K_BOOL: return "true or false";
  case K_STR: return "a string";
  case K_INTS: return "a list of integers like [1, 2]";
  case K_STRS: return "a list of strings like [a, b]";
  }
  return "a value";
}

static const char *node_words(const yaml_node_t *n) {
  return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a value";
}

static int is_null_scalar(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
  const char *v = (const char *)n->data.scalar.value;
  return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0;
}

/* "must be > 0 and <= 1" for a key's range. */
static void range_words(const rd_cfg_key *k, char *out, size_t n) {
  const char *lo_op = (k->open & R_LO_OPEN) ? ">" : ">=", *hi_op = (k->open & R_HI_OPEN) ? "<" : "<=";
  if (k->hi >= BIG && k->kind != K_FLOAT)
    snprintf(out, n, "%s %.15g", lo_op, k->lo);
  else
    snprintf(out, n, "%s %.15g and %s %.15g", lo_op, k->lo, hi_op, k->hi);
}

static int in_range(const rd_cfg_key *k, double x) {
  if ((k->open & R_LO_OPEN) ? !(x > k->lo) : !(x >= k->lo)) return 0;
  if ((k->open & R_HI_OPEN) ? !(x < k->hi) : !(x <= k->hi)) return 0;
  return 1;
}

static int parse_int(const char *s, long long *out) {
  if (!*s) return 0;
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (*end || end == s || (s[0] != '-' && s[0] != '+' && (s[0] < '0' || s[0] > '9'))) return 0;
  *out = errno == ERANGE ? (x < 0 ? LLONG_MIN : LLONG_MAX) : x;
  return 1;
}

static int parse_u64(const char *s, uint64_t *out) {
  if (s[0] < '0' || s[0] > '9') return 0;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (*end || errno == ERANGE) return 0;
  *out = (uint64_t)x;
  return 1;
}

static int parse_float(const char *s, double *out) {
  if (!*s) return 0;
  char *end;
  double x = strtod(s, &end);
  if (*end || !isfinite(x)) return 0;
  *out = x;
  return 1;
}

static int choice_ok(const char *const *choices, const char *v) {
  for (int i = 0; choices[i]; i++)
    if (strcmp(choices[i], v) == 0) return 1;
  return 0;
}

static void choice_words(const char *const *choices, char *out, size_t n) {
  size_t len = 0;
  out[0] = '\0';
  for (int i = 0; choices[i] && len < n; i++) {
    int w = snprintf(out + len, n - len, "%s%s", i ? ", " : "", choices[i]);
    if (w < 0) break;
    len += (size_t)w;
  }
}

/* Checks a string value (from a file or already in the struct). name is the
 * key, or "key[i]" for a list item. Returns 0 or an RD_EINVAL message without
 * a place (callers prefix it). */
static int check_string(const rd_cfg_key *k, const char *name, const char *v, size_t len, size_t cap) {
  if (strlen(v) != len) return rd_err(RD_EINVAL, "%s contains a NUL byte", name);
  if (len >= cap) return rd_err(RD_EINVAL, "%s is too long (%zu bytes; at most %zu)", name, len, cap - 1);
  if (strpbrk(v, "\n\r")) return rd_err(RD_EINVAL, "%s must be one line", name);
  if (k->choices && !choice_ok(k->choices, v)) {
    char words[128];
    choice_words(k->choices, words, sizeof words);
    return rd_err(RD_EINVAL, "%s must be one of %s; got '%s'", name, words, v);
  }
  if ((double)len < k->lo) return rd_err(RD_EINVAL, "%s must not be empty", name);
  return RD_OK;
}

/* Reads one integer scalar for key (or list item) name into *out. */
static int scalar_int(const rd_cfg_key *k, const char *name, const yaml_node_t *n, const rd_src *src,
                      int *out) {
  if (n->type != YAML_SCALAR_NODE)
    return fail_at(src, n->start_mark, "%s wants an integer, got %s", name, node_words(n));
  const char *v = (const char *)n->data.scalar.value;
  long long x;
  if (!parse_int(v, &x))
    return fail_at(src, n->start_mark, "%s wants an integer, got %s%s%s", name, *v ? "'" : "",
                   *v ? v : "nothing", *v ? "'" : "");
  if (!in_range(k, (double)x)) {
    char r[96];
    range_words(k, r, sizeof r);
    return fail_at(src, n->start_mark, "%s must be %s, got %s", name, r, v);
  }
  *out = (int)x;
  return RD_OK;
}

/* Stores the value node n (NULL: an empty scalar) into key k of cfg. */
static int apply(rd_config *cfg, const rd_cfg_key *k, yaml_document_t *doc, yaml_node_t *n,
                 const rd_src *src) {
  yaml_node_t empty;
  memset(&empty, 0, sizeof empty);
  if (!n) {
    empty.type = YAML_SCALAR_NODE;
    empty.data.scalar.value = (yaml_char_t *)"";
    empty.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
    n = &empty;
  }
  void *field = (char *)cfg + k->off;
  const char *quote_hint = src->file ? "" : " (quote a value with ': ' or '#' as YAML: --set 'key=\"...\"')";
  int is_list = k->kind == K_INTS || k->kind == K_STRS;
  if (!is_list && n->type != YAML_SCALAR_NODE) {
    char want[128];
    if (k->choices) {
      char words[96];
      choice_words(k->choices, words, sizeof words);
      snprintf(want, sizeof want, "one of %s", words);
    } else {
      snprintf(want, sizeof want, "%s", want_words(k));
    }
    return fail_at(src, n->start_mark, "%s wants %s, got %s%s", k->name, want, node_words(n),
                   k->kind == K_STR && !k->choices ? quote_hint : "");
  }
  const char *v = n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : "";
  char vq[RD_CFG_LONGSTR + 8]; /* the value quoted for messages, or "nothing" */
  if (*v)
    snprintf(vq, sizeof vq, "'%s'", v);
  else
    snprintf(vq, sizeof vq, "nothing");

  switch (k->kind) {
  case K_INT: return scalar_int(k, k->name, n, src, (int *)field);
  case K_U64: {
    uint64_t x;
    if (!parse_u64(v, &x))
      return fail_at(src, n->start_mark, "%s wants %s, got %s", k->name, want_words(k), vq);
    *(uint64_t *)field = x;
    return RD_OK;
  }
  case K_FLOAT: {
    double x;
    if (!parse_float(v, &x)) return fail_at(src, n->start_mark, "%s wants a number, got %s", k->name, vq);
    if (!in_range(k, x)) {
      char r[96];
      range_words(k, r, sizeof r);
      return fail_at(src, n->start_mark, "%s must be %s, got %s", k->name, r, v);
    }
    *(double *)field = x;
    return RD_OK;
  }
  case K_BOOL:
    if (strcasecmp(v, "true") == 0)
      *(int *)field = 1;
    else if (strcasecmp(v, "false") == 0)
      *(int *)field = 0;
    else
      return fail_at(src, n->start_mark, "%s wants true or false, got %s", k->name, vq);
    return RD_OK;
  case K_STR: {
    size_t len = n->data.scalar.length;
    if (is_null_scalar(n)) v = "", len = 0; /* `key:`, `~`, `null`: empty */
    if (check_string(k, k->name, v, len, k->size) < 0) {
      char msg[RD_CFG_LONGSTR + 256];
      snprintf(msg, sizeof msg, "%s", rd_err_msg());
      return fail_at(src, n->start_mark, "%s", msg);
    }
    memset(field, 0, k->size);
    memcpy(field, v, len);
    return RD_OK;
  }
  case K_INTS:
  case K_STRS: {
    if (is_null_scalar(n))
      n = NULL; /* `key:` with nothing: an empty list */
    else if (n->type != YAML_SEQUENCE_NODE)
      return fail_at(src, n->start_mark, "%s wants %s, got %s", k->name, want_words(k),
                     n->type == YAML_SCALAR_NODE ? vq : node_words(n));
    int count = n ? (int)(n->data.sequence.items.top - n->data.sequence.items.start) : 0;
    if (count < k->min_n || count > k->max_n)
      return fail_at(src, n ? n->start_mark : empty.start_mark, "%s wants %d to %d items, got %d", k->name,
                     k->min_n, k->max_n, count);
    if (k->kind == K_INTS) {
      rd_cfg_ints out = {.n = count};
      for (int i = 0; i < count; i++) {
        yaml_node_t *it = yaml_document_get_node(doc, n->data.sequence.items.start[i]);
        char name[96];
        snprintf(name, sizeof name, "%s[%d]", k->name, i);
        RD_TRY(scalar_int(k, name, it, src, &out.v[i]));
      }
      memcpy(field, &out, sizeof out);
    } else {
      rd_cfg_strs *out = field;
      memset(out, 0, sizeof *out);
      for (int i = 0; i < count; i++) {
        yaml_node_t *it = yaml_document_get_node(doc, n->data.sequence.items.start[i]);
        char name[96];
        snprintf(name, sizeof name, "%s[%d]", k->name, i);
        if (it->type != YAML_SCALAR_NODE)
          return fail_at(src, it->start_mark, "%s wants a string, got %s", name, node_words(it));
        const char *s = (const char *)it->data.scalar.value;
        size_t len = it->data.scalar.length;
        if (is_null_scalar(it)) s = "", len = 0; /* `~`, `null`: empty */
        if (check_string(k, name, s, len, RD_CFG_STR) < 0) {
          char msg[RD_CFG_LONGSTR + 256];
          snprintf(msg, sizeof msg, "%s", rd_err_msg());
          return fail_at(src, it->start_mark, "%s", msg);
        }
        memcpy(out->v[i], s, len);
      }
      out->n = count;
    }
    return RD_OK;
  }
  }
  return rd_err(RD_ESTATE, "config key %s has an unknown type", k->name);
}

/* ------------------------------------------------------------ YAML parsing */

/* Turns libyaml's complaint into a message at its mark. */
static int yaml_problem(const yaml_parser_t *p, const rd_src *src) {
  if (p->error == YAML_MEMORY_ERROR)
    return rd_err_at(RD_ENOMEM, __FILE__, __LINE__, "libyaml ran out of memory");
  const char *problem = p->problem ? p->problem : "unknown problem";
  if (p->error == YAML_READER_ERROR) {
    yaml_mark_t m = {.index = p->problem_offset};
    if (src->file)
      return rd_err(RD_EINVAL, "%s: byte %zu: not valid UTF-8 text: %s", src->file, p->problem_offset,
                    problem);
    return fail_at(src, m, "not valid UTF-8 text: %s", problem);
  }
  if (p->context)
    return fail_at(src, p->problem_mark, "malformed YAML: %s (%s at line %zu, column %zu)", problem,
                   p->context, p->context_mark.line + 1, p->context_mark.column + 1);
  return fail_at(src, p->problem_mark, "malformed YAML: %s", problem);
}

/* Parses text as one YAML document. *doc must be freed by the caller when
 * this returns 0. */
static int parse_doc(const char *text, size_t len, const rd_src *src, yaml_document_t *doc) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p))
    return rd_err_at(RD_ENOMEM, __FILE__, __LINE__, "libyaml: yaml_parser_initialize failed");
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  int s = RD_OK;
  if (!yaml_parser_load(&p, doc)) {
    s = yaml_problem(&p, src);
  } else {
    /* A second document would be silently ignored: say so instead. */
    yaml_document_t next;
    if (!yaml_parser_load(&p, &next)) {
      s = yaml_problem(&p, src);
      yaml_document_delete(doc);
    } else {
      yaml_node_t *root = yaml_document_get_root_node(&next);
      if (root) {
        s = fail_at(src, root->start_mark, "a second YAML document (after '---'); a config is one document");
        yaml_document_delete(doc);
      }
      yaml_document_delete(&next);
    }
  }
  yaml_parser_delete(&p);
  return s;
}

static void note_origin(rd_origin *org, int *seq, const rd_cfg_key *k, const rd_src *src, yaml_mark_t m) {
  if (!org) return;
  rd_origin *o = &org[k - rd_keys];
  o->src = *src;
  o->mark = m;
  o->seq = ++*seq;
}

/* Errors when the key of pair already appeared earlier in map. */
static int check_duplicate(yaml_document_t *doc, yaml_node_t *map, yaml_node_pair_t *pair, const char *what,
                           const rd_src *src) {
  yaml_node_t *key = yaml_document_get_node(doc, pair->key);
  for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pair; q++) {
    yaml_node_t *other = yaml_document_get_node(doc, q->key);
    if (other->type == YAML_SCALAR_NODE &&
        strcmp((char *)other->data.scalar.value, (char *)key->data.scalar.value) == 0)
      return fail_at(src, key->start_mark, "duplicate %s (first at line %zu)", what,
                     other->start_mark.line + 1);
  }
  return RD_OK;
}

static int key_name(yaml_document_t *doc, yaml_node_pair_t *pair, const rd_src *src, const char **name) {
  yaml_node_t *key = yaml_document_get_node(doc, pair->key);
  if (key->type != YAML_SCALAR_NODE)
    return fail_at(src, key->start_mark, "a key must be a plain name, got %s", node_words(key));
  *name = (const char *)key->data.scalar.value;
  return RD_OK;
}

static int load_section(rd_config *cfg, yaml_document_t *doc, const char *section, yaml_node_t *map,
                        const rd_src *src, rd_origin *org, int *seq) {
  if (is_null_scalar(map)) return RD_OK; /* `model:` with every key commented out */
  if (map->type != YAML_MAPPING_NODE)
    return fail_at(src, map->start_mark, "section '%s' wants a mapping of keys (key: value lines), got %s",
                   section, map->type == YAML_SCALAR_NODE ? "a value" : node_words(map));
  for (yaml_node_pair_t *pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
    const char *name = "";
    RD_TRY(key_name(doc, pair, src, &name));
    char full[2 * RD_CFG_STR];
    snprintf(full, sizeof full, "%s.%s", section, name);
    yaml_node_t *key = yaml_document_get_node(doc, pair->key);
    char what[sizeof full + 16];
    snprintf(what, sizeof what, "key '%s'", full);
    RD_TRY(check_duplicate(doc, map, pair, what, src));
    const rd_cfg_key *k = find_key(full);
    if (!k) {
      char hint[256];
      suggest(full, 0, hint, sizeof hint);
      return fail_at(src, key->start_mark, "unknown key '%s'%s", full, hint);
    }
    RD_TRY(apply(cfg, k, doc, yaml_document_get_node(doc, pair->value), src));
    note_origin(org, seq, k, src, key->start_mark);
  }
  return RD_OK;
}

static int load_doc(rd_config *cfg, yaml_document_t *doc, const rd_src *src, rd_origin *org, int *seq) {
  yaml_node_t *root = yaml_document_get_root_node(doc);
  if (!root || is_null_scalar(root)) return RD_OK; /* an empty file: all defaults */
  if (root->type != YAML_MAPPING_NODE)
    return fail_at(src, root->start_mark,
                   "the top level must be a mapping of sections (model:, train:, ...), got %s",
                   root->type == YAML_SCALAR_NODE ? "a value" : node_words(root));
  for (yaml_node_pair_t *pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
    const char *name = "";
    RD_TRY(key_name(doc, pair, src, &name));
    yaml_node_t *key = yaml_document_get_node(doc, pair->key);
    yaml_node_t *value = yaml_document_get_node(doc, pair->value);
    const rd_cfg_key *k = find_key(name);
    if (k && strchr(name, '.'))
      return fail_at(src, key->start_mark, "write '%s' as '%s:' under '%.*s:'", name, leaf(name),
                     (int)(leaf(name) - name - 1), name);
    char what[RD_CFG_STR + 16];
    snprintf(what, sizeof what, "%s '%s'", k ? "key" : "section", name);
    RD_TRY(check_duplicate(doc, root, pair, what, src));
    if (k) {
      RD_TRY(apply(cfg, k, doc, value, src));
      note_origin(org, seq, k, src, key->start_mark);
    } else if (is_section(name)) {
      RD_TRY(load_section(cfg, doc, name, value, src, org, seq));
    } else {
      char hint[256];
      suggest(name, 1, hint, sizeof hint);
      return fail_at(src, key->start_mark, "unknown %s '%s'%s",
                     value->type == YAML_MAPPING_NODE ? "section" : "key", name, hint);
    }
  }
  return RD_OK;
}

/* Applies "key.path=value"; label names the source in messages. */
static int set_one(rd_config *cfg, const char *label, const char *assignment, rd_origin *org, int *seq) {
  rd_src src = {.label = label, .text = assignment};
  yaml_mark_t none = {0};
  const char *eq = strchr(assignment, '=');
  if (!eq || eq == assignment) return fail_at(&src, none, "want key.path=value");
  char name[2 * RD_CFG_STR];
  if ((size_t)(eq - assignment) >= sizeof name) return fail_at(&src, none, "the key is too long");
  memcpy(name, assignment, (size_t)(eq - assignment));
  name[eq - assignment] = '\0';
  const rd_cfg_key *k = find_key(name);
  if (!k) {
    if (is_section(name))
      return fail_at(&src, none, "'%s' is a section; set its keys one at a time (%s.<key>=value)", name,
                     name);
    char hint[256];
    suggest(name, !strchr(name, '.'), hint, sizeof hint);
    return fail_at(&src, none, "unknown key '%s'%s", name, hint);
  }
  yaml_document_t doc;
  RD_TRY(parse_doc(eq + 1, strlen(eq + 1), &src, &doc));
  /* The marks inside the value are not worth showing: the override itself is the place. */
  int s = apply(cfg, k, &doc, yaml_document_get_root_node(&doc), &src);
  yaml_document_delete(&doc);
  if (s == RD_OK) note_origin(org, seq, k, &src, none);
  return s;
}

void rd_config_defaults(rd_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  for (int i = 0; i < RD_N_KEYS; i++) {
    char a[512];
    snprintf(a, sizeof a, "%s=%s", rd_keys[i].name, rd_keys[i].def);
    if (set_one(cfg, "default", a, NULL, NULL) < 0) {
      /* Only a broken table gets here, and tests/unit/test_config.c runs this. */
      fprintf(stderr, "rediff: bad default in io/config.c: %s\n", rd_err_msg());
      abort();
    }
  }
  snprintf(cfg->source, sizeof cfg->source, "(defaults)");
}

int rd_config_set(rd_config *cfg, const char *assignment) {
  return set_one(cfg, "--set", assignment, NULL, NULL);
}

/* -------------------------------------------------------------- validation */

/* The keys a failed check is about, separated by spaces; the loader places
 * the message at whichever of them the user set last. */
typedef struct {
  const char *keys;
} rd_blame;

__attribute__((format(printf, 3, 4))) static int bad(rd_blame *b, const char *keys, const char *fmt, ...) {
  b->keys = keys;
  char msg[RD_CFG_LONGSTR + 256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return rd_err(RD_EINVAL, "%s", msg);
}

/* Every key in its range, type by type: the struct may have been filled by
 * code (--run-dir, tests), not only by the loader. */
static int check_keys(const rd_config *cfg, rd_blame *b) {
  for (int i = 0; i < RD_N_KEYS; i++) {
    const rd_cfg_key *k = &rd_keys[i];
    const void *field = (const char *)cfg + k->off;
    char r[96];
    range_words(k, r, sizeof r);
    b->keys = k->name;
    switch (k->kind) {
    case K_INT:
      if (!in_range(k, *(const int *)field))
        return bad(b, k->name, "%s must be %s, got %d", k->name, r, *(const int *)field);
      break;
    case K_FLOAT: {
      double x = *(const double *)field;
      if (!isfinite(x) || !in_range(k, x)) return bad(b, k->name, "%s must be %s, got %.17g", k->name, r, x);
      break;
    }
    case K_BOOL:
      if (*(const int *)field != 0 && *(const int *)field != 1)
        return bad(b, k->name, "%s must be true or false", k->name);
      break;
    case K_U64: break;
    case K_STR: {
      const char *s = field;
      size_t len = strnlen(s, k->size);
      if (len == k->size) return bad(b, k->name, "%s is not terminated", k->name);
      RD_TRY(check_string(k, k->name, s, len, k->size));
      break;
    }
    case K_INTS:
    case K_STRS: {
      int n = *(const int *)field; /* both list types start with n */
      if (n < k->min_n || n > k->max_n)
        return bad(b, k->name, "%s wants %d to %d items, got %d", k->name, k->min_n, k->max_n, n);
      for (int j = 0; j < n; j++) {
        char name[96];
        snprintf(name, sizeof name, "%s[%d]", k->name, j);
        if (k->kind == K_INTS) {
          int x = ((const rd_cfg_ints *)field)->v[j];
          if (!in_range(k, x)) return bad(b, k->name, "%s must be %s, got %d", name, r, x);
        } else {
          const char *s = ((const rd_cfg_strs *)field)->v[j];
          size_t len = strnlen(s, RD_CFG_STR);
          if (len == RD_CFG_STR) return bad(b, k->name, "%s is not terminated", name);
          RD_TRY(check_string(k, name, s, len, RD_CFG_STR));
        }
      }
      break;
    }
    }
  }
  return RD_OK;
}

/* Seconds of a Slurm time limit ("M", "M:S", "H:M:S", "D-H", "D-H:M",
 * "D-H:M:S"; "UNLIMITED"), or -1 when malformed. */
static long slurm_seconds(const char *t) {
  if (strcasecmp(t, "unlimited") == 0 || strcasecmp(t, "infinite") == 0) return LONG_MAX;
  long days = -1, f[3];
  int nf = 0;
  const char *p = t;
  for (;;) {
    if (*p < '0' || *p > '9') return -1;
    char *end;
    long x = strtol(p, &end, 10);
    if (x > 1000000) return -1;
    p = end;
    if (*p == '-' && days < 0 && nf == 0) {
      days = x;
      p++;
      continue;
    }
    if (nf == 3) return -1;
    f[nf++] = x;
    if (*p == ':') {
      p++;
      continue;
    }
    if (*p) return -1;
    break;
  }
  if (days >= 0) { /* D-H[:M[:S]] */
    long h = f[0], m = nf > 1 ? f[1] : 0, s = nf > 2 ? f[2] : 0;
    return ((days * 24 + h) * 60 + m) * 60 + s;
  }
  if (nf == 1) return f[0] * 60;         /* M */
  if (nf == 2) return f[0] * 60 + f[1];  /* M:S */
  return (f[0] * 60 + f[1]) * 60 + f[2]; /* H:M:S */
}

static int has_duplicate_ints(const rd_cfg_ints *l, int *dup) {
  for (int i = 0; i < l->n; i++)
    for (int j = 0; j < i; j++)
      if (l->v[i] == l->v[j]) return *dup = l->v[i], 1;
  return 0;
}

/* Every job's time limit (slurm.time or a stage's own) must be a Slurm time
 * longer than the stop warning; a stage's own rank count fills one node
 * partly or whole nodes, so the job's shape stays nodes x ranks-per-node. */
static int check_slurm(const rd_slurm_cfg *s, rd_blame *b) {
  static const struct {
    const char *name, *blame; /* blame: the keys a too-short limit points at */
    size_t off;
  } times[] = {
      {"slurm.time", "slurm.signal_lead_s slurm.time", offsetof(rd_slurm_cfg, time)},
      {"slurm.time_data", "slurm.signal_lead_s slurm.time_data", offsetof(rd_slurm_cfg, time_data)},
      {"slurm.time_base", "slurm.signal_lead_s slurm.time_base", offsetof(rd_slurm_cfg, time_base)},
      {"slurm.time_stage1", "slurm.signal_lead_s slurm.time_stage1", offsetof(rd_slurm_cfg, time_stage1)},
      {"slurm.time_draft", "slurm.signal_lead_s slurm.time_draft", offsetof(rd_slurm_cfg, time_draft)},
      {"slurm.time_expert", "slurm.signal_lead_s slurm.time_expert", offsetof(rd_slurm_cfg, time_expert)},
      {"slurm.time_stage2", "slurm.signal_lead_s slurm.time_stage2", offsetof(rd_slurm_cfg, time_stage2)},
      {"slurm.time_eval", "slurm.signal_lead_s slurm.time_eval", offsetof(rd_slurm_cfg, time_eval)},
  };
  for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
    const char *t = (const char *)s + times[i].off;
    if (i > 0 && !t[0]) continue;
    long limit = slurm_seconds(t);
    if (limit < 0)
      return bad(b, times[i].name,
                 "%s '%s' is not a Slurm time limit (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)",
                 times[i].name, t);
    if (s->signal_lead_s >= limit)
      return bad(b, times[i].blame, "slurm.signal_lead_s (%d) must be less than %s (%s = %ld s)",
                 s->signal_lead_s, times[i].name, t, limit);
  }
  static const struct {
    const char *name, *blame;
    size_t off;
  } ranks[] = {
      {"slurm.ranks_base", "slurm.ranks_base slurm.tasks_per_node", offsetof(rd_slurm_cfg, ranks_base)},
      {"slurm.ranks_stage1", "slurm.ranks_stage1 slurm.tasks_per_node", offsetof(rd_slurm_cfg, ranks_stage1)},
      {"slurm.ranks_draft", "slurm.ranks_draft slurm.tasks_per_node", offsetof(rd_slurm_cfg, ranks_draft)},
      {"slurm.ranks_expert", "slurm.ranks_expert slurm.tasks_per_node", offsetof(rd_slurm_cfg, ranks_expert)},
      {"slurm.ranks_stage2", "slurm.ranks_stage2 slurm.tasks_per_node", offsetof(rd_slurm_cfg, ranks_stage2)},
      {"slurm.ranks_eval", "slurm.ranks_eval slurm.tasks_per_node", offsetof(rd_slurm_cfg, ranks_eval)},
  };
  for (size_t i = 0; i < sizeof ranks / sizeof ranks[0]; i++) {
    int r = *(const int *)((const char *)s + ranks[i].off);
    if (r > s->tasks_per_node && r % s->tasks_per_node)
      return bad(b, ranks[i].blame, "%s (%d) must be at most slurm.tasks_per_node (%d) or a multiple of it",
                 ranks[i].name, r, s->tasks_per_node);
  }
  return RD_OK;
}

static int check_cross(const rd_config *c, rd_blame *b) {
  const rd_model_cfg *m = &c->model;
  if (m->image_size % m->patch)
    return bad(b, "model.patch model.image_size", "model.patch (%d) must divide model.image_size (%d)",
               m->patch, m->image_size);
  if (m->d_model % m->n_heads)
    return bad(b, "model.n_heads model.d_model", "model.n_heads (%d) must divide model.d_model (%d)",
               m->n_heads, m->d_model);
  if ((m->d_model / m->n_heads) % 2)
    return bad(
        b, "model.n_heads model.d_model",
        "the head size model.d_model / model.n_heads = %d must be even (rotary embeddings rotate pairs)",
        m->d_model / m->n_heads);
  if (m->vision_d % m->vision_heads)
    return bad(b, "model.vision_heads model.vision_d",
               "model.vision_heads (%d) must divide model.vision_d (%d)", m->vision_heads, m->vision_d);
  if (c->data.min_objects > c->data.max_objects)
    return bad(b, "data.min_objects data.max_objects",
               "data.min_objects (%d) must be <= data.max_objects (%d)", c->data.min_objects,
               c->data.max_objects);

  /* Tensor parallel splits heads, MLP hidden sizes and the vocabulary. */
  const rd_parallel_cfg *p = &c->parallel;
  if (p->ranks % p->tp)
    return bad(b, "parallel.tp parallel.ranks", "parallel.tp (%d) must divide parallel.ranks (%d)", p->tp,
               p->ranks);
  static const struct {
    const char *name, *blame;
    size_t off;
  } split[] = {
      {"model.n_heads", "parallel.tp model.n_heads", offsetof(rd_config, model.n_heads)},
      {"model.d_ff", "parallel.tp model.d_ff", offsetof(rd_config, model.d_ff)},
      {"model.vision_heads", "parallel.tp model.vision_heads", offsetof(rd_config, model.vision_heads)},
      {"model.vision_d_ff", "parallel.tp model.vision_d_ff", offsetof(rd_config, model.vision_d_ff)},
      {"model.vocab_multiple", "parallel.tp model.vocab_multiple", offsetof(rd_config, model.vocab_multiple)},
  };
  for (size_t i = 0; i < sizeof split / sizeof split[0]; i++) {
    int v = *(const int *)((const char *)c + split[i].off);
    if (v % p->tp)
      return bad(b, split[i].blame, "parallel.tp (%d) must divide %s (%d): tensor parallel splits it", p->tp,
                 split[i].name, v);
  }
  int dp = p->ranks / p->tp;
  if (c->train.batch_size % (dp * c->train.grad_accum))
    return bad(b, "train.batch_size train.grad_accum parallel.ranks parallel.tp",
               "train.batch_size (%d) must be a multiple of data-parallel ranks x train.grad_accum (%d x %d)",
               c->train.batch_size, dp, c->train.grad_accum);

  int dup;
  for (int i = 0; i < c->draft.step_counts.n; i++)
    if (c->draft.step_counts.v[i] > m->gen_len)
      return bad(
          b, "draft.step_counts model.gen_len",
          "draft.step_counts[%d] (%d) must be <= model.gen_len (%d): each step unmasks a token at least", i,
          c->draft.step_counts.v[i], m->gen_len);
  if (has_duplicate_ints(&c->draft.step_counts, &dup))
    return bad(b, "draft.step_counts", "draft.step_counts lists %d twice", dup);
  for (int i = 0; i < c->eval.tokens_per_step.n; i++)
    if (c->eval.tokens_per_step.v[i] > m->gen_len)
      return bad(b, "eval.tokens_per_step model.gen_len",
                 "eval.tokens_per_step[%d] (%d) must be <= model.gen_len (%d)", i,
                 c->eval.tokens_per_step.v[i], m->gen_len);
  if (has_duplicate_ints(&c->eval.tokens_per_step, &dup))
    return bad(b, "eval.tokens_per_step", "eval.tokens_per_step lists %d twice", dup);
  for (int i = 0; i < c->eval.modes.n; i++)
    for (int j = 0; j < i; j++)
      if (strcmp(c->eval.modes.v[i], c->eval.modes.v[j]) == 0)
        return bad(b, "eval.modes", "eval.modes lists '%s' twice", c->eval.modes.v[i]);
  if (c->eval.n_samples > c->data.n_eval)
    return bad(b, "eval.n_samples data.n_eval",
               "eval.n_samples (%d) must be <= data.n_eval (%d), the held-out samples", c->eval.n_samples,
               c->data.n_eval);
  if (c->draft.n_samples > c->data.n_train)
    return bad(b, "draft.n_samples data.n_train", "draft.n_samples (%d) must be <= data.n_train (%d)",
               c->draft.n_samples, c->data.n_train);

  if (strcmp(c->expert.kind, "command") == 0 && !c->expert.command[0])
    return bad(b, "expert.kind expert.command", "expert.command is required when expert.kind is 'command'");
  if (strcmp(c->runtime.precision, "bf16") == 0 && strcmp(c->runtime.device, "cuda") != 0)
    return bad(b, "runtime.precision runtime.device",
               "runtime.precision bf16 needs runtime.device cuda (the CPU path computes in fp32)");

  return check_slurm(&c->slurm, b);
}

static int validate(const rd_config *cfg, rd_blame *b) {
  RD_TRY(check_keys(cfg, b));
  return check_cross(cfg, b);
}

int rd_config_validate(const rd_config *cfg) {
  rd_blame b = {NULL};
  return validate(cfg, &b);
}

/* ------------------------------------------------------------------ loading */

int rd_config_load(rd_config *cfg, const char *path, const char *const *overrides, int n_overrides) {
  rd_config_defaults(cfg);
  rd_origin org[RD_N_KEYS];
  memset(org, 0, sizeof org);
  int seq = 0;
  if (path) {
    snprintf(cfg->source, sizeof cfg->source, "%s", path);
    char *text;
    size_t len;
    int s = rd_fs_read_all(path, &text, &len);
    if (s < 0) return rd_err_wrap(s, "config");
    rd_src src = {.file = path};
    yaml_document_t doc;
    s = parse_doc(text, len, &src, &doc);
    if (s == RD_OK) {
      s = load_doc(cfg, &doc, &src, org, &seq);
      yaml_document_delete(&doc);
    }
    free(text);
    RD_TRY(s);
  }
  for (int i = 0; i < n_overrides; i++) RD_TRY(set_one(cfg, "--set", overrides[i], org, &seq));

  rd_blame b = {NULL};
  int s = validate(cfg, &b);
  if (s == RD_OK) return s;
  const rd_origin *last = NULL;
  for (const char *p = b.keys ? b.keys : ""; *p;) {
    size_t len = strcspn(p, " ");
    char name[2 * RD_CFG_STR];
    snprintf(name, sizeof name, "%.*s", (int)len, p);
    p += len + (p[len] == ' ');
    const rd_cfg_key *k = find_key(name);
    const rd_origin *o = k ? &org[k - rd_keys] : NULL;
    if (o && o->seq && (!last || o->seq > last->seq)) last = o;
  }
  if (!last) return s;
  char where[RD_CFG_LONGSTR + 64];
  place(where, sizeof where, &last->src, last->mark);
  return rd_err_wrap(s, "%s", where);
}

/* ---------------------------------------------------------------- emitting */

/* The shortest decimal that reads back to the same double. */
static void fmt_double(char *out, size_t n, double x) {
  /* Whole numbers keep a ".0" so they read as floats to people (and to
   * other YAML readers), not "1e+04". */
  if (x == floor(x) && fabs(x) < 1e15) {
    snprintf(out, n, "%.1f", x);
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(out, n, "%.*g", prec, x);
    if (strtod(out, NULL) == x) return;
  }
}

/* YAML double-quoted: any string reads back unchanged. */
static void sb_quoted(rd_sb *b, const char *s) {
  sb_str(b, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      sb_printf(b, "\\%c", *p);
    else if (*p == '\n')
      sb_str(b, "\\n");
    else if (*p == '\t')
      sb_str(b, "\\t");
    else if (*p < 0x20 || *p == 0x7f)
      sb_printf(b, "\\x%02x", *p);
    else
      sb_put(b, (const char *)p, 1);
  }
  sb_str(b, "\"");
}

static void sb_value(rd_sb *b, const rd_config *cfg, const rd_cfg_key *k) {
  const void *field = (const char *)cfg + k->off;
  char num[40];
  switch (k->kind) {
  case K_INT: sb_printf(b, "%d", *(const int *)field); break;
  case K_U64: sb_printf(b, "%" PRIu64, *(const uint64_t *)field); break;
  case K_FLOAT:
    fmt_double(num, sizeof num, *(const double *)field);
    sb_str(b, num);
    break;
  case K_BOOL: sb_str(b, *(const int *)field ? "true" : "false"); break;
  case K_STR:
    if (k->choices && choice_ok(k->choices, field))
      sb_str(b, field); /* plain words read back as such */
    else
      sb_quoted(b, field);
    break;
  case K_INTS: {
    const rd_cfg_ints *l = field;
    sb_str(b, "[");
    for (int i = 0; i < l->n; i++) sb_printf(b, "%s%d", i ? ", " : "", l->v[i]);
    sb_str(b, "]");
    break;
  }
  case K_STRS: {
    const rd_cfg_strs *l = field;
    sb_str(b, "[");
    for (int i = 0; i < l->n; i++) {
      if (i) sb_str(b, ", ");
      if (k->choices && choice_ok(k->choices, l->v[i]))
        sb_str(b, l->v[i]);
      else
        sb_quoted(b, l->v[i]);
    }
    sb_str(b, "]");
    break;
  }
  }
}

/* Every key, grouped by section in table order. With comments, each line
 * carries its key's meaning (for people); without, the text is what the hash
 * covers, so rewording a meaning does not change a config's identity. */
static int emit_text(const rd_config *cfg, int comments, rd_sb *b) {
  const char *section = "";
  for (int i = 0; i < RD_N_KEYS; i++) {
    const rd_cfg_key *k = &rd_keys[i];
    const char *dot = strchr(k->name, '.');
    size_t slen = dot ? (size_t)(dot - k->name) : 0;
    if (strlen(section) != slen || strncmp(section, k->name, slen) != 0) {
      section = k->name;
      for (int s = 0; s < RD_N_SECTIONS; s++)
        if (strlen(rd_sections[s].name) == slen && strncmp(rd_sections[s].name, k->name, slen) == 0) {
          section = rd_sections[s].name;
          if (comments) sb_printf(b, "\n# %s\n", rd_sections[s].doc);
          sb_printf(b, "%s:\n", section);
        }
    }
    size_t start = b->n;
    sb_printf(b, "%s%s: ", dot ? "  " : "", leaf(k->name));
    sb_value(b, cfg, k);
    if (comments) {
      size_t w = b->n - start;
      sb_printf(b, "%*s# %s", w < 34 ? (int)(34 - w) : 1, "", k->doc);
    }
    sb_str(b, "\n");
  }
  if (b->oom) {
    free(b->p);
    return rd_err(RD_ENOMEM, "out of memory writing the config as YAML");
  }
  return RD_OK;
}

int rd_config_to_yaml(const rd_config *cfg, char **yaml) {
  rd_sb b = {0};
  RD_TRY(emit_text(cfg, 1, &b));
  *yaml = b.p;
  return RD_OK;
}

int rd_config_emit(const rd_config *cfg, FILE *out) {
  char *text;
  RD_TRY(rd_config_to_yaml(cfg, &text));
  size_t n = strlen(text);
  int ok = fwrite(text, 1, n, out) == n && fflush(out) == 0;
  free(text);
  return ok ? RD_OK : rd_err(RD_EIO, "cannot write the config: %s", strerror(errno));
}

uint64_t rd_config_hash(const rd_config *cfg) {
  rd_sb b = {0};
  if (emit_text(cfg, 0, &b) < 0) return 0;
  uint64_t h = rd_hash_bytes(RD_HASH_INIT, b.p, b.n);
  free(b.p);
  return h;
}

/* ------------------------------------------------------- the Markdown reference */

static const char *type_words(const rd_cfg_key *k) {
  switch (k->kind) {
  case K_INT: return "int";
  case K_U64: return "uint64";
  case K_FLOAT: return "float";
  case K_BOOL: return "bool";
  case K_STR: return k->choices ? "enum" : "string";
  case K_INTS: return "list of int";
  case K_STRS: return k->choices ? "list of enum" : "list of string";
  }
  return "?";
}

static void doc_range(rd_sb *b, const rd_cfg_key *k) {
  switch (k->kind) {
  case K_INT:
  case K_FLOAT:
    if (k->hi >= BIG && k->kind == K_INT)
      sb_printf(b, "%s %.15g", (k->open & R_LO_OPEN) ? ">" : ">=", k->lo);
    else
      sb_printf(b, "%s%.15g, %.15g%s", (k->open & R_LO_OPEN) ? "(" : "[", k->lo, k->hi,
                (k->open & R_HI_OPEN) ? ")" : "]");
    break;
  case K_U64: sb_str(b, "0 .. 2^64-1"); break;
  case K_BOOL: sb_str(b, "`true`, `false`"); break;
  case K_STR:
    if (k->choices) {
      for (int i = 0; k->choices[i]; i++) sb_printf(b, "%s`%s`", i ? ", " : "", k->choices[i]);
    } else {
      sb_printf(b, "%s%zu bytes, one line", k->lo > 0 ? "1 to " : "up to ", k->size - 1);
    }
    break;
  case K_INTS: sb_printf(b, "%d to %d items, each [%.15g, %.15g]", k->min_n, k->max_n, k->lo, k->hi); break;
  case K_STRS:
    sb_printf(b, "%d to %d items", k->min_n, k->max_n);
    if (k->choices) {
      sb_str(b, " of ");
      for (int i = 0; k->choices[i]; i++) sb_printf(b, "%s`%s`", i ? ", " : "", k->choices[i]);
    } else {
      sb_printf(b, ", each up to %d bytes, one line", RD_CFG_STR - 1);
    }
    break;
  }
}

/* Markdown table cells: '|' would end the cell. */
static void sb_cell(rd_sb *b, const char *s) {
  for (; *s; s++) {
    if (*s == '|')
      sb_str(b, "\\|");
    else
      sb_put(b, s, 1);
  }
}

int rd_config_doc(FILE *out) {
  rd_config def;
  rd_config_defaults(&def);
  rd_sb b = {0};
  const char *head = "| key | type | default | range | meaning |\n|---|---|---|---|---|\n";
  sb_str(&b, "## Top level\n\n");
  sb_str(&b, head);
  for (int pass = -1; pass < RD_N_SECTIONS; pass++) {
    if (pass >= 0) {
      sb_printf(&b, "\n## %s\n\n%c%s.\n\n", rd_sections[pass].name,
                toupper((unsigned char)rd_sections[pass].doc[0]), rd_sections[pass].doc + 1);
      sb_str(&b, head);
    }
    for (int i = 0; i < RD_N_KEYS; i++) {
      const rd_cfg_key *k = &rd_keys[i];
      if (pass < 0 ? strchr(k->name, '.') != NULL : !in_section(k, rd_sections[pass].name)) continue;
      rd_sb v = {0};
      sb_value(&v, &def, k);
      sb_printf(&b, "| `%s` | %s | `", k->name, type_words(k));
      sb_cell(&b, v.oom ? "?" : v.p);
      sb_str(&b, "` | ");
      doc_range(&b, k);
      sb_str(&b, " | ");
      sb_cell(&b, k->doc);
      sb_str(&b, " |\n");
      free(v.p);
    }
  }
  if (b.oom) {
    free(b.p);
    return rd_err(RD_ENOMEM, "out of memory writing the config reference");
  }
  int ok = fwrite(b.p, 1, b.n, out) == b.n && fflush(out) == 0;
  free(b.p);
  return ok ? RD_OK : rd_err(RD_EIO, "cannot write the config reference: %s", strerror(errno));
}
