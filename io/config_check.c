/* rd_config_validate: every key in its range, and the rules across keys
 * (divisibility for tensor parallel, list contents, Slurm limits, the device
 * and precision this build can run). Each
 * failure names the keys it is about, so io/config_load.c can place the
 * message at the one the user set last. */
#include "io/config.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/config_internal.h"
#include "io/core/err.h"

/* Sets the message and which keys it is about. */
__attribute__((format(printf, 3, 4))) static int bad(rd_cfg_blame *b, const char *keys, const char *fmt,
                                                     ...) {
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
static int check_keys(const rd_config *cfg, rd_cfg_blame *b) {
  for (int i = 0; i < rd_cfg_n_keys; i++) {
    const rd_cfg_key *k = &rd_cfg_keys[i];
    const void *field = (const char *)cfg + k->off;
    char r[96];
    rd_cfg_range_words(k, r, sizeof r);
    b->keys = k->name;
    switch (k->kind) {
    case RD_CFG_KIND_INT:
      if (!rd_cfg_in_range(k, *(const int *)field))
        return bad(b, k->name, "%s must be %s, got %d", k->name, r, *(const int *)field);
      break;
    case RD_CFG_KIND_FLOAT: {
      double x = *(const double *)field;
      if (!isfinite(x) || !rd_cfg_in_range(k, x))
        return bad(b, k->name, "%s must be %s, got %.17g", k->name, r, x);
      break;
    }
    case RD_CFG_KIND_BOOL:
      if (*(const int *)field != 0 && *(const int *)field != 1)
        return bad(b, k->name, "%s must be true or false", k->name);
      break;
    case RD_CFG_KIND_U64: break;
    case RD_CFG_KIND_STR: {
      const char *s = field;
      size_t len = strnlen(s, k->size);
      if (len == k->size) return bad(b, k->name, "%s is not terminated", k->name);
      RD_TRY(rd_cfg_check_string(k, k->name, s, len, k->size));
      break;
    }
    case RD_CFG_KIND_INTS:
    case RD_CFG_KIND_STRS: {
      int n = *(const int *)field; /* both list types start with n */
      if (n < k->min_n || n > k->max_n)
        return bad(b, k->name, "%s wants %d to %d items, got %d", k->name, k->min_n, k->max_n, n);
      for (int j = 0; j < n; j++) {
        char name[96];
        snprintf(name, sizeof name, "%s[%d]", k->name, j);
        if (k->kind == RD_CFG_KIND_INTS) {
          int x = ((const rd_cfg_ints *)field)->v[j];
          if (!rd_cfg_in_range(k, x)) return bad(b, k->name, "%s must be %s, got %d", name, r, x);
        } else {
          const char *s = ((const rd_cfg_strs *)field)->v[j];
          size_t len = strnlen(s, RD_CFG_STR);
          if (len == RD_CFG_STR) return bad(b, k->name, "%s is not terminated", name);
          RD_TRY(rd_cfg_check_string(k, name, s, len, RD_CFG_STR));
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
static int check_slurm(const rd_slurm_cfg *s, rd_cfg_blame *b) {
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

/* Whether this build holds a CUDA model backend. CMakeLists.txt defines
 * RD_MODEL_CUDA where it compiles one (this version has none), so the one
 * switch there decides what runtime.device may say. A constant, not an
 * #ifdef around the check, so both branches keep compiling. */
#ifdef RD_MODEL_CUDA
enum { rd_model_cuda = 1 };
#else
enum { rd_model_cuda = 0 };
#endif

/* runtime.device and runtime.precision against what this build can run.
 * Checked with the config, not when the model starts: every command that
 * reads a config (a stage on every rank, `rediff pipeline`, `rediff submit`
 * before it writes or queues a job) then refuses it before any work, where
 * a device the build lacks would otherwise train fp32 on the CPU unsaid. */
static int check_runtime(const rd_runtime_cfg *r, rd_cfg_blame *b) {
  int cuda = strcmp(r->device, "cuda") == 0, bf16 = strcmp(r->precision, "bf16") == 0;
  if (cuda && !rd_model_cuda)
    return bad(b, "runtime.device",
               "runtime.device is cuda, but this build of rediff runs the model on the CPU only: the CUDA "
               "path is not built; set runtime.device: cpu%s",
               bf16 ? " and runtime.precision: fp32" : "");
  /* Without a CUDA backend only precision can change, so the message is
   * placed at it, not at a device line set later. */
  if (bf16 && !cuda)
    return bad(b, rd_model_cuda ? "runtime.precision runtime.device" : "runtime.precision",
               "runtime.precision is bf16, but bf16 storage needs %s",
               rd_model_cuda ? "runtime.device: cuda (the CPU path computes in fp32); set runtime.device: cuda "
                               "or runtime.precision: fp32"
                             : "runtime.device: cuda, and this build of rediff runs the model on the CPU only "
                               "(fp32); set runtime.precision: fp32");
  return RD_OK;
}

static int check_cross(const rd_config *c, rd_cfg_blame *b) {
  const rd_model_cfg *m = &c->model;
  if (m->image_size % m->patch)
    return bad(b, "model.patch model.image_size", "model.patch (%d) must divide model.image_size (%d)",
               m->patch, m->image_size);
  if (m->d_model % m->n_heads)
    return bad(b, "model.n_heads model.d_model", "model.n_heads (%d) must divide model.d_model (%d)",
               m->n_heads, m->d_model);
  if (m->image_heads > m->n_heads)
    return bad(b, "model.image_heads model.n_heads",
               "model.image_heads (%d) must be between 0 and model.n_heads (%d)", m->image_heads,
               m->n_heads);
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
  /* Checked here, not when eval starts: a typo found after the whole
   * pipeline has trained would cost the run. */
  const rd_cfg_key *modes = rd_cfg_find_key("eval.modes");
  for (int i = 0; i < c->eval.models.n; i++) {
    const char *e = c->eval.models.v[i], *colon = strchr(e, ':');
    size_t len = colon ? (size_t)(colon - e) : strlen(e);
    char name[RD_CFG_STR], tail;
    int r = 0;
    snprintf(name, sizeof name, "%.*s", (int)len, e);
    int known = !strcmp(name, "base") || !strcmp(name, "mask") || !strcmp(name, "stage1") ||
                !strcmp(name, "stage2") || (sscanf(name, "stage2_r%d%c", &r, &tail) == 1 && r >= 1);
    if (!known)
      return bad(b, "eval.models", "eval.models: unknown model '%s' (base, mask, stage1, stage2, stage2_r<R>)",
                 name);
    if (colon && !rd_cfg_choice_ok(modes->choices, colon + 1))
      return bad(b, "eval.models", "eval.models: '%s': unknown mode '%s' (refine, remask)", e, colon + 1);
  }
  if (c->eval.n_samples > c->data.n_eval)
    return bad(b, "eval.n_samples data.n_eval",
               "eval.n_samples (%d) must be <= data.n_eval (%d), the held-out samples", c->eval.n_samples,
               c->data.n_eval);
  if (c->draft.n_samples > c->data.n_train)
    return bad(b, "draft.n_samples data.n_train", "draft.n_samples (%d) must be <= data.n_train (%d)",
               c->draft.n_samples, c->data.n_train);

  if (strcmp(c->expert.kind, "command") == 0 && !c->expert.command[0])
    return bad(b, "expert.kind expert.command", "expert.command is required when expert.kind is 'command'");
  RD_TRY(check_runtime(&c->runtime, b));

  return check_slurm(&c->slurm, b);
}

int rd_cfg_validate(const rd_config *cfg, rd_cfg_blame *b) {
  RD_TRY(check_keys(cfg, b));
  return check_cross(cfg, b);
}

int rd_config_validate(const rd_config *cfg) {
  rd_cfg_blame b = {NULL};
  return rd_cfg_validate(cfg, &b);
}
