/* The key table of the YAML configuration of a run.
 *
 * One table of keys (rd_cfg_keys below) says, for every key, its dotted name,
 * type, place in rd_config, default, range and meaning. The loader and --set
 * overrides (io/config_load.c), rd_config_validate (io/config_check.c), the
 * emitter and the Markdown reference (io/config_emit.c) all walk it, so adding
 * a key is one line here plus its field in io/config.h. */
#include "io/config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "io/config_internal.h"
#include "io/core/err.h"

/* ---------------------------------------------------------------- the table */

/* clang-format off */
#define FIELD(f) .off = offsetof(rd_config, f), .size = sizeof(((rd_config *)0)->f)
#define BIG RD_CFG_NO_MAX
#define INT(n, f, d, l, h, m) {.name = n, .kind = RD_CFG_KIND_INT, FIELD(f), .def = d, .lo = l, .hi = h, .doc = m}
#define U64(n, f, d, m) {.name = n, .kind = RD_CFG_KIND_U64, FIELD(f), .def = d, .doc = m}
#define FLT(n, f, d, l, h, o, m)                                                                  \
  {.name = n, .kind = RD_CFG_KIND_FLOAT, FIELD(f), .def = d, .lo = l, .hi = h, .open = o, .doc = m}
#define BOOL(n, f, d, m) {.name = n, .kind = RD_CFG_KIND_BOOL, FIELD(f), .def = d, .doc = m}
#define STR(n, f, d, minlen, m) {.name = n, .kind = RD_CFG_KIND_STR, FIELD(f), .def = d, .lo = minlen, .doc = m}
#define ENUM(n, f, d, c, m) {.name = n, .kind = RD_CFG_KIND_STR, FIELD(f), .def = d, .lo = 1, .choices = c, .doc = m}
#define INTS(n, f, d, mn, mx, l, h, m)                                                            \
  {.name = n, .kind = RD_CFG_KIND_INTS, FIELD(f), .def = d, .lo = l, .hi = h, .min_n = mn, .max_n = mx, .doc = m}
#define STRS(n, f, d, mn, mx, c, m)                                                               \
  {.name = n, .kind = RD_CFG_KIND_STRS, FIELD(f), .def = d, .lo = 1, .min_n = mn, .max_n = mx, .choices = c, .doc = m}

static const char *const rd_modes[] = {"refine", "remask", NULL};
static const char *const rd_expert_kinds[] = {"scene", "reference", "command", NULL};
static const char *const rd_length_policies[] = {"drop", "remask", NULL};
static const char *const rd_devices[] = {"cpu", "cuda", NULL};
static const char *const rd_precisions[] = {"fp32", "bf16", NULL};
static const char *const rd_launchers[] = {"srun", "mpirun", NULL};

const rd_cfg_key rd_cfg_keys[] = {
    STR("run_dir", run_dir, "runs/tiny", 1, "folder of every output of the run (--run-dir overrides it)"),

    INT("model.d_model", model.d_model, "128", 8, 65536, "width of the language model"),
    INT("model.n_layers", model.n_layers, "4", 1, 1024, "language-model blocks"),
    INT("model.n_heads", model.n_heads, "4", 1, 1024, "attention heads of the language model"),
    INT("model.image_heads", model.image_heads, "2", 0, 1024, "LM heads per layer that attend to the image tokens only (0: none)"),
    INT("model.d_ff", model.d_ff, "384", 1, 1 << 20, "SwiGLU hidden size of the language model"),
    INT("model.vision_layers", model.vision_layers, "0", 0, 1024, "transformer blocks in the vision tower (0: none)"),
    INT("model.vision_d", model.vision_d, "128", 8, 65536, "width of the vision tower"),
    INT("model.vision_heads", model.vision_heads, "4", 1, 1024, "attention heads of the vision tower"),
    INT("model.vision_d_ff", model.vision_d_ff, "256", 1, 1 << 20, "SwiGLU hidden size of the vision tower"),
    INT("model.image_size", model.image_size, "48", 8, 4096, "height = width of the images, in pixels"),
    INT("model.patch", model.patch, "16", 1, 1024, "side of the square patches; divides image_size"),
    INT("model.gen_len", model.gen_len, "64", 8, 65536, "response length L in tokens, EOS-padded"),
    FLT("model.rope_theta", model.rope_theta, "10000", 1, 1e9, 0, "base of the rotary position embedding"),
    FLT("model.norm_eps", model.norm_eps, "1e-5", 0, 0.1, RD_CFG_LO_OPEN, "RMSNorm epsilon"),
    FLT("model.init_std", model.init_std, "0.02", 0, 1, RD_CFG_LO_OPEN, "standard deviation of the weight init"),
    BOOL("model.vision_fan_in", model.vision_fan_in, "true", "vision tower and projector matrices start at std 1 / sqrt(fan-in), not init_std"),
    BOOL("model.grid_pos", model.grid_pos, "true", "image tokens are RMS-normed, carry a learned embedding of their grid cell and no rotary position; image heads rotate nothing"),
    INT("model.cell_classes", model.cell_classes, "37", 0, 65536, "classes of the perception head on the image tokens (ShapesCap: 37, empty or shape x colour x size; 0: no head)"),
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
    FLT("train.lr", train.lr, "1e-3", 0, 1, RD_CFG_LO_OPEN, "peak learning rate"),
    INT("train.warmup", train.warmup, "100", 0, BIG, "linear warmup steps"),
    FLT("train.min_lr_frac", train.min_lr_frac, "0.1", 0, 1, 0, "cosine decay ends at lr x min_lr_frac"),
    FLT("train.weight_decay", train.weight_decay, "0.01", 0, 1, 0, "AdamW decoupled weight decay"),
    FLT("train.beta1", train.beta1, "0.9", 0, 1, RD_CFG_HI_OPEN, "AdamW first-moment decay"),
    FLT("train.beta2", train.beta2, "0.99", 0, 1, RD_CFG_HI_OPEN, "AdamW second-moment decay"),
    FLT("train.adam_eps", train.adam_eps, "1e-8", 0, 1, RD_CFG_LO_OPEN, "AdamW epsilon"),
    FLT("train.grad_clip", train.grad_clip, "1.0", 0, 1e9, 0, "global gradient-norm clip, 0 = off"),
    U64("train.seed", train.seed, "1", "seed of init, data order and noise"),
    INT("train.ckpt_every", train.ckpt_every, "250", 1, BIG, "steps between checkpoints"),
    INT("train.keep", train.keep, "2", 1, 1000, "checkpoints kept per stage"),
    INT("train.eval_every", train.eval_every, "250", 1, BIG, "steps between held-out losses"),
    INT("train.eval_batches", train.eval_batches, "4", 1, 1 << 20, "held-out batches per evaluation (loss and probe)"),
    INT("train.log_every", train.log_every, "50", 1, BIG, "steps between log lines when not on a terminal"),
    INT("train.threads", train.threads, "1", 1, 1024, "OpenMP / OpenBLAS threads per rank"),
    INT("train.max_bad_steps", train.max_bad_steps, "10", 1, 1 << 20, "non-finite steps in a row before the run stops"),

    INT("base.steps", base.steps, "1500", 0, BIG, "optimizer steps of mask-prediction training"),
    FLT("base.perception", base.perception, "1.0", 0, 1e6, 0, "weight of the perception loss (each image token's grid cell, from the shard's scenes; 0: off)"),

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
    FLT("expert.timeout_s", expert.timeout_s, "30", 0, 86400, RD_CFG_LO_OPEN, "seconds to wait for one reply"),
    INT("expert.retries", expert.retries, "2", 0, 100, "attempts after a failed reply"),
    ENUM("expert.length_policy", expert.length_policy, "remask", rd_length_policies, "edits that change the length"),

    INT("stage2.steps", stage2.steps, "300", 0, BIG, "optimizer steps per round"),
    INT("stage2.rounds", stage2.rounds, "1", 1, 100, "draft -> expert -> stage2 rounds"),
    FLT("stage2.stage1_mix", stage2.stage1_mix, "0.25", 0, 1, 0, "share of each batch that is stage1 data"),

    INTS("eval.tokens_per_step", eval.tokens_per_step, "[1, 4, 8]", 1, RD_CFG_LIST, 1, 65536, "decoding speeds measured"),
    STRS("eval.modes", eval.modes, "[refine, remask]", 1, 2, rd_modes, "decoding modes measured"),
    INT("eval.n_samples", eval.n_samples, "500", 2, BIG, "held-out samples decoded per setting, each also with another sample's image"),
    INT("eval.batch", eval.batch, "50", 1, 65536, "captions decoded together"),
    INT("eval.bootstrap", eval.bootstrap, "1000", 10, 1000000, "bootstrap resamples of the 95% intervals over images"),
    STRS("eval.models", eval.models, "[mask:remask, stage1:refine, stage2:refine]", 1, RD_CFG_LIST, NULL, "models compared, each name (in every mode of eval.modes) or name:mode (base, mask, stage1, stage2: its last round, stage2_rR: round R); a missing one is skipped"),
    INT("eval.block", eval.block, "16", 0, 65536, "semi-autoregressive block length of eval and draft decoding (0: one block)"),
    FLT("eval.temperature", eval.temperature, "0", 0, 100, 0, "temperature of eval and draft decoding (0: argmax, > 0: Gumbel-max)"),
    FLT("eval.refine_tau", eval.refine_tau, "0", 0, 1, 0, "refine: revise a token only where its confidence >= tau"),
    FLT("eval.refine_frac", eval.refine_frac, "1", 0, 1, RD_CFG_LO_OPEN, "refine: revise only this most confident fraction"),

    INT("parallel.ranks", parallel.ranks, "2", 1, 1 << 20, "MPI ranks per stage (rediff pipeline)"),
    INT("parallel.tp", parallel.tp, "1", 1, 1024, "tensor-parallel size; dp = ranks / tp"),

    ENUM("runtime.device", runtime.device, "cpu", rd_devices, "where the model runs (cuda needs a build with a CUDA backend; this version has none)"),
    ENUM("runtime.precision", runtime.precision, "fp32", rd_precisions, "storage precision (bf16 needs device cuda)"),

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
const int rd_cfg_n_keys = (int)(sizeof rd_cfg_keys / sizeof rd_cfg_keys[0]);
_Static_assert(sizeof rd_cfg_keys / sizeof rd_cfg_keys[0] <= RD_CFG_MAX_KEYS,
               "more keys than RD_CFG_MAX_KEYS of io/config_internal.h");

const rd_cfg_section rd_cfg_sections[] = {
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
const int rd_cfg_n_sections = (int)(sizeof rd_cfg_sections / sizeof rd_cfg_sections[0]);

/* ------------------------------------------------------------------ lookups */

const rd_cfg_key *rd_cfg_find_key(const char *name) {
  for (int i = 0; i < rd_cfg_n_keys; i++)
    if (strcmp(rd_cfg_keys[i].name, name) == 0) return &rd_cfg_keys[i];
  return NULL;
}

int rd_cfg_is_section(const char *name) {
  for (int i = 0; i < rd_cfg_n_sections; i++)
    if (strcmp(rd_cfg_sections[i].name, name) == 0) return 1;
  return 0;
}

const char *rd_cfg_leaf(const char *name) {
  const char *dot = strchr(name, '.');
  return dot ? dot + 1 : name;
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

void rd_cfg_suggest(const char *name, int top, char *out, size_t n) {
  out[0] = '\0';
  const char *best = NULL;
  size_t best_d = SIZE_MAX, limit = strlen(top ? name : rd_cfg_leaf(name)) / 3 + 1;
  for (int i = 0; i < rd_cfg_n_keys + rd_cfg_n_sections; i++) {
    const char *cand = i < rd_cfg_n_keys ? rd_cfg_keys[i].name : rd_cfg_sections[i - rd_cfg_n_keys].name;
    if (top && i < rd_cfg_n_keys && strchr(cand, '.')) continue;
    if (!top && i >= rd_cfg_n_keys) continue;
    size_t d = edit_distance(name, cand);
    if (d < best_d) best_d = d, best = cand;
  }
  const char *want = top ? name : rd_cfg_leaf(name);
  size_t len = 0;
  for (int i = 0; i < rd_cfg_n_keys; i++) {
    if (!strchr(rd_cfg_keys[i].name, '.') || strcmp(rd_cfg_leaf(rd_cfg_keys[i].name), want) != 0) continue;
    int w = snprintf(out + len, n - len, "%s'%s'", len ? " or " : " (did you mean ", rd_cfg_keys[i].name);
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

/* ------------------------------------------------------- what values may be */

void rd_cfg_range_words(const rd_cfg_key *k, char *out, size_t n) {
  const char *lo_op = (k->open & RD_CFG_LO_OPEN) ? ">" : ">=";
  const char *hi_op = (k->open & RD_CFG_HI_OPEN) ? "<" : "<=";
  if (k->hi >= RD_CFG_NO_MAX && k->kind != RD_CFG_KIND_FLOAT)
    snprintf(out, n, "%s %.15g", lo_op, k->lo);
  else
    snprintf(out, n, "%s %.15g and %s %.15g", lo_op, k->lo, hi_op, k->hi);
}

int rd_cfg_in_range(const rd_cfg_key *k, double x) {
  if ((k->open & RD_CFG_LO_OPEN) ? !(x > k->lo) : !(x >= k->lo)) return 0;
  if ((k->open & RD_CFG_HI_OPEN) ? !(x < k->hi) : !(x <= k->hi)) return 0;
  return 1;
}

int rd_cfg_choice_ok(const char *const *choices, const char *v) {
  for (int i = 0; choices[i]; i++)
    if (strcmp(choices[i], v) == 0) return 1;
  return 0;
}

void rd_cfg_choice_words(const char *const *choices, char *out, size_t n) {
  size_t len = 0;
  out[0] = '\0';
  for (int i = 0; choices[i] && len < n; i++) {
    int w = snprintf(out + len, n - len, "%s%s", i ? ", " : "", choices[i]);
    if (w < 0) break;
    len += (size_t)w;
  }
}

int rd_cfg_check_string(const rd_cfg_key *k, const char *name, const char *v, size_t len, size_t cap) {
  if (strlen(v) != len) return rd_err(RD_EINVAL, "%s contains a NUL byte", name);
  if (len >= cap) return rd_err(RD_EINVAL, "%s is too long (%zu bytes; at most %zu)", name, len, cap - 1);
  if (strpbrk(v, "\n\r")) return rd_err(RD_EINVAL, "%s must be one line", name);
  if (k->choices && !rd_cfg_choice_ok(k->choices, v)) {
    char words[128];
    rd_cfg_choice_words(k->choices, words, sizeof words);
    return rd_err(RD_EINVAL, "%s must be one of %s; got '%s'", name, words, v);
  }
  if ((double)len < k->lo) return rd_err(RD_EINVAL, "%s must not be empty", name);
  return RD_OK;
}

