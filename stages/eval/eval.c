/* `rediff eval`: caption quality against decoding speed (the paper's Table 2
 * shape) for every model of eval.models, every mode of eval.modes and every
 * tokens-per-step of eval.tokens_per_step, on the first eval.n_samples
 * held-out samples. Each dp rank decodes a slice; fact counts are summed,
 * the tokens gathered to rank 0 for the corpus text metrics, so the numbers
 * do not depend on the number of ranks. Writes RUN_DIR/eval/results.json,
 * results.md and quality_vs_speed.png (docs/metrics.md). */
#include <inttypes.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/core/clock.h"
#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/core/json.h"
#include "io/metrics.h"
#include "io/plot.h"
#include "io/shard.h"
#include "mpi/coll.h"
#include "stages/commands.h"
#include "stages/eval/evalset.h"
#include "stages/run/infer.h"
#include "stages/run/rundir.h"
#include "stages/eval/score.h"

enum { MAX_ROWS = RD_CFG_LIST * 2 * RD_CFG_LIST };

typedef struct {
  char model[64], mode[16];
  int tps, steps, n;
  rd_score sc, blind;   /* with the images, and with each image another sample's */
  rd_score_ci ci, ci_blind;
  double captions_per_s, forward_per_s;
  float min_margin; /* the closest decision of any caption (rd_decode_margin) */
} row;

typedef struct {
  char model[64];
  rd_probe_counts image, blind;
} probe_row;

typedef struct {
  rd_stage_env *env;
  rd_shardset set;
  int64_t n, begin, count; /* samples scored; this rank's slice */
  int L;                   /* gen_len */
  rd_vlm m;
  rd_evalset es;           /* this rank's slice and its image-ablated copy */
  int32_t *tokens;         /* [count, L] this rank's decoded captions */
  float *margin;           /* [count] their decision margins */
  rd_score_counts *per;    /* [count] their counts */
  int32_t *refs, *all;     /* rank 0: [n, L] reference captions, gathered tokens */
  rd_score_counts *all_per; /* rank 0: [n] gathered counts */
  row rows[MAX_ROWS];
  int n_rows;
  probe_row probes[RD_CFG_LIST];
  int n_probes;
  char skipped[RD_CFG_LIST][64];
  int n_skipped;
} eval_ctx;

/* eval.models entry "name" or "name:mode" -> row name and checkpoint
 * folder, and the one mode to measure (-1: every mode of eval.modes). */
static int resolve_model(const rd_config *cfg, const char *entry, char *out, size_t n, int *mode) {
  int r = 0;
  char tail, name[64];
  const char *colon = strchr(entry, ':');
  size_t len = colon ? (size_t)(colon - entry) : strlen(entry);
  if (len >= sizeof name) return rd_err(RD_EINVAL, "eval.models: unknown model '%s'", entry);
  memcpy(name, entry, len);
  name[len] = 0;
  *mode = -1;
  if (colon) {
    rd_decode_mode m;
    if (rd_decode_mode_parse(colon + 1, &m) != RD_OK)
      return rd_err(RD_EINVAL, "eval.models: '%s': unknown mode '%s' (refine, remask)", entry, colon + 1);
    *mode = (int)m;
  }
  if (strcmp(name, "stage2") == 0) snprintf(out, n, "stage2_r%d", cfg->stage2.rounds);
  else if (!strcmp(name, "base") || !strcmp(name, "mask") || !strcmp(name, "stage1") ||
           (sscanf(name, "stage2_r%d%c", &r, &tail) == 1 && r >= 1))
    snprintf(out, n, "%s", name);
  else
    return rd_err(RD_EINVAL, "eval.models: unknown model '%s' (base, mask, stage1, stage2, stage2_r<R>)", name);
  return RD_OK;
}

/* Gathers this rank's per-caption counts to rank 0's all_per, in sample
 * order (the slices are contiguous in rank order). */
static int gather_counts(eval_ctx *c) {
  rd_coll_records rec;
  RD_TRY(rd_coll_gather_records(&c->env->grid.dp, c->per, (size_t)c->count * sizeof *c->per, 0, &rec));
  size_t at = 0;
  /* Every dp rank 0 receives (one per tensor-parallel rank); only world
   * rank 0 keeps them. */
  for (int i = 0; i < rec.n && c->env->is_root; i++) {
    memcpy((char *)c->all_per + at, rec.data + rec.off[i], rec.len[i]);
    at += rec.len[i];
  }
  rd_coll_records_free(&rec);
  return RD_OK;
}

/* Rank 0: the fact rates of the gathered counts and their intervals. */
static int rates_of_all(const eval_ctx *c, rd_score *sc, rd_score_ci *ci) {
  rd_score_counts sum = {0};
  for (int64_t i = 0; i < c->n; i++)
    for (int f = 0; f < RD_SCORE_NCOUNTS; f++) ((int64_t *)&sum)[f] += ((const int64_t *)&c->all_per[i])[f];
  rd_score_rates(&sum, sc);
  return rd_score_bootstrap(c->all_per, c->n, c->env->cfg.eval.bootstrap, 0.95, c->env->cfg.train.seed, ci);
}

/* Decodes this rank's slice with one setting, with the images and with the
 * ablated ones; sums, gathers and scores. */
static int run_setting(eval_ctx *c, const char *model, rd_decode_mode mode, int tps) {
  const rd_config *cfg = &c->env->cfg;
  const int L = c->L;
  rd_infer_decoder d = {&c->m, {0}};
  rd_infer_decode_opts(cfg, mode, (L + tps - 1) / tps, &d.o);
  int64_t passes = 0;
  row r;
  memset(&r, 0, sizeof r);
  MPI_Barrier(c->env->grid.world.mpi);
  double t0 = rd_clock_now();
  int s = rd_decode_check(&d.o, L);
  if (s == RD_OK) s = rd_evalset_caption(&c->es, 0, cfg->eval.batch, rd_infer_caption, &d, c->tokens, c->margin, &passes);
  if (s == RD_OK) s = rd_evalset_score(&c->es, &c->env->vocab, c->tokens, c->per);
  RD_TRY(rd_stage_agree(c->env, s));
  /* Over dp: the ranks of one tensor-parallel replica decode the same
   * samples, and world rank 0 is dp rank 0 of its replica. */
  float neg_margin = -INFINITY; /* minus the smallest margin, for the max reduction */
  for (int64_t i = 0; i < c->count; i++) neg_margin = fmaxf(neg_margin, -c->margin[i]);
  RD_TRY(rd_coll_allreduce_sum_i64(&c->env->grid.dp, &passes, 1));
  RD_TRY(rd_coll_allreduce_max_f32(&c->env->grid.dp, &neg_margin, 1));
  double dt = rd_clock_now() - t0;
  rd_coll_records rec;
  RD_TRY(rd_coll_gather_records(&c->env->grid.dp, c->tokens, (size_t)c->count * L * sizeof(int32_t), 0, &rec));
  RD_TRY(gather_counts(c));
  if (c->env->is_root) {
    size_t at = 0;
    for (int i = 0; i < rec.n; i++) {
      memcpy((char *)c->all + at, rec.data + rec.off[i], rec.len[i]);
      at += rec.len[i];
    }
    s = rates_of_all(c, &r.sc, &r.ci);
    if (s == RD_OK) s = rd_score_text(c->all, c->refs, (int)c->n, L, RD_TOK_EOS, &r.sc);
  }
  rd_coll_records_free(&rec);
  RD_TRY(rd_stage_agree(c->env, s));

  /* The blind control: the same captions asked of another sample's image. */
  s = rd_evalset_caption(&c->es, 1, cfg->eval.batch, rd_infer_caption, &d, c->tokens, c->margin, NULL);
  if (s == RD_OK) s = rd_evalset_score(&c->es, &c->env->vocab, c->tokens, c->per);
  RD_TRY(rd_stage_agree(c->env, s));
  RD_TRY(gather_counts(c));
  if (c->env->is_root) s = rates_of_all(c, &r.blind, &r.ci_blind);
  RD_TRY(rd_stage_agree(c->env, s));

  if (c->env->is_root) {
    snprintf(r.model, sizeof r.model, "%s", model);
    snprintf(r.mode, sizeof r.mode, "%s", rd_decode_mode_name(mode));
    r.tps = tps, r.steps = d.o.steps, r.n = (int)c->n;
    r.captions_per_s = dt > 0 ? (double)c->n / dt : 0;
    r.forward_per_s = dt > 0 ? (double)passes / dt : 0;
    r.min_margin = -neg_margin;
    c->rows[c->n_rows++] = r;
    fprintf(stderr,
            "eval: %s %s %d tok/step (%d steps): F1 %.3f [%.3f, %.3f] blind %.3f | factuality %.3f coverage %.3f "
            "syntax %.3f repetition %.3f BLEU-4 %.3f CIDEr %.3f | %" PRId64 " captions in %.2f s, %.1f captions/s, "
            "%.1f forward passes/s\n",
            model, r.mode, tps, d.o.steps, r.sc.f1, r.ci.f1_lo, r.ci.f1_hi, r.blind.f1, r.sc.factuality,
            r.sc.coverage, r.sc.syntax, r.sc.repetition, r.sc.bleu4, r.sc.cider, c->n, dt, r.captions_per_s,
            r.forward_per_s);
  }
  return RD_OK;
}

/* The perception probe of the loaded model, with the images and ablated. */
static int run_probe(eval_ctx *c, const char *model) {
  probe_row p;
  memset(&p, 0, sizeof p);
  snprintf(p.model, sizeof p.model, "%s", model);
  int s = rd_evalset_probe(&c->es, &c->env->vocab, 0, c->env->cfg.eval.batch, rd_infer_predict, &c->m, &p.image);
  if (s == RD_OK)
    s = rd_evalset_probe(&c->es, &c->env->vocab, 1, c->env->cfg.eval.batch, rd_infer_predict, &c->m, &p.blind);
  RD_TRY(rd_stage_agree(c->env, s));
  RD_TRY(rd_coll_allreduce_sum_i64(&c->env->grid.dp, (int64_t *)&p.image, RD_PROBE_NCOUNTS));
  RD_TRY(rd_coll_allreduce_sum_i64(&c->env->grid.dp, (int64_t *)&p.blind, RD_PROBE_NCOUNTS));
  if (c->env->is_root) {
    c->probes[c->n_probes++] = p;
    fprintf(stderr, "eval: %s probe (teacher-forced accuracy, image / other image):", model);
    for (int k = 0; k < RD_PROBE_KINDS; k++)
      fprintf(stderr, " %s %.3f / %.3f", rd_probe_kind_name(k), rd_probe_accuracy(&p.image, k),
              rd_probe_accuracy(&p.blind, k));
    fputc('\n', stderr);
  }
  return RD_OK;
}

/* The numbers of results.json keep the digits they have always had (%.6f
 * for scores, %.3f for speeds, %.3g for the margin): rows compared between
 * runs then differ only where a score does. Not finite: null. */
#define F6(x) rd_json_fixed((x), 6)
#define F3(x) rd_json_fixed((x), 3)
#define RD_RESULTS_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

/* A probe accuracy per kind: null where nothing was asked. */
static int json_acc(const rd_probe_counts *pc, const char *path, json_t **out) {
  RD_TRY(rd_json_pack(out, path, "{}"));
  int s = RD_OK;
  for (int k = 0; k < RD_PROBE_KINDS && s == RD_OK; k++)
    s = rd_json_add(*out, rd_probe_kind_name(k), path, "o", F6(rd_probe_accuracy(pc, k)));
  if (s < 0) json_decref(*out), *out = NULL;
  return s;
}

static int json_row(const row *r, const char *path, json_t **out) {
  return rd_json_pack(
      out, path,
      "{s:s, s:s, s:i, s:i, s:i, s:o, s:[oo], s:o, s:[oo], s:o, s:o, s:o, s:o, s:o, s:[oo], s:o, s:[oo], s:o, s:o, "
      "s:o, s:o, s:o, s:o}",
      "model", r->model, "mode", r->mode, "tokens_per_step", r->tps, "steps", r->steps, "n_samples", r->n, "f1",
      F6(r->sc.f1), "f1_ci", F6(r->ci.f1_lo), F6(r->ci.f1_hi), "f1_blind", F6(r->blind.f1), "f1_blind_ci",
      F6(r->ci_blind.f1_lo), F6(r->ci_blind.f1_hi), "factuality", F6(r->sc.factuality), "coverage",
      F6(r->sc.coverage), "factuality_blind", F6(r->blind.factuality), "coverage_blind", F6(r->blind.coverage),
      "syntax", F6(r->sc.syntax), "syntax_ci", F6(r->ci.syntax_lo), F6(r->ci.syntax_hi), "syntax_blind",
      F6(r->blind.syntax), "syntax_blind_ci", F6(r->ci_blind.syntax_lo), F6(r->ci_blind.syntax_hi), "repetition",
      F6(r->sc.repetition), "bleu4", F6(r->sc.bleu4), "cider", F6(r->sc.cider), "captions_per_s",
      F3(r->captions_per_s), "forward_passes_per_s", F3(r->forward_per_s), "min_margin",
      rd_json_sig(isfinite(r->min_margin) ? r->min_margin : 1e30, 3));
}

static int write_json(const eval_ctx *c, const char *path) {
  json_t *skipped = NULL, *rows = NULL, *probes = NULL, *root = NULL;
  int s = rd_json_pack(&skipped, path, "[]");
  if (s == RD_OK) s = rd_json_pack(&rows, path, "[]");
  if (s == RD_OK) s = rd_json_pack(&probes, path, "[]");
  for (int i = 0; i < c->n_skipped && s == RD_OK; i++) s = rd_json_add(skipped, NULL, path, "s", c->skipped[i]);
  for (int i = 0; i < c->n_rows && s == RD_OK; i++) {
    json_t *r;
    s = json_row(&c->rows[i], path, &r);
    if (s == RD_OK) s = rd_json_add(rows, NULL, path, "o", r);
  }
  for (int i = 0; i < c->n_probes && s == RD_OK; i++) {
    json_t *image = NULL, *blind = NULL;
    s = json_acc(&c->probes[i].image, path, &image);
    if (s == RD_OK) s = json_acc(&c->probes[i].blind, path, &blind);
    if (s == RD_OK)
      s = rd_json_add(probes, NULL, path, "{s:s, s:o, s:o}", "model", c->probes[i].model, "image", image, "blind",
                      blind);
    else json_decref(image);
  }
  char interval[96];
  snprintf(interval, sizeof interval, "95%% percentile bootstrap over images, %d resamples",
           c->env->cfg.eval.bootstrap);
  /* The pack takes the three arrays, also when it fails. */
  if (s == RD_OK)
    s = rd_json_pack(&root, path, "{s:I, s:i, s:s, s:s, s:o, s:o, s:o}", "n_samples", (json_int_t)c->n, "gen_len", c->L,
                     "blind", "another sample's image", "interval", interval, "skipped", skipped, "rows", rows,
                     "probe", probes);
  else
    json_decref(skipped), json_decref(rows), json_decref(probes);
  if (s == RD_OK) s = rd_json_write_atomic(path, root, RD_RESULTS_FLAGS);
  json_decref(root);
  return s;
}

/* One line per (model, mode, tokens per step). */
static char *markdown(const eval_ctx *c) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  if (!f) return NULL;
  fprintf(f, "# Caption quality against decoding speed\n\n"
             "%" PRId64 " held-out samples, %d tokens each. Blind: the same samples with each image replaced by "
             "another sample's image (what the model earns without reading its own image). Brackets: 95%% "
             "bootstrap interval over images (%d resamples).\n\n"
             "| model | mode | tokens/step | F1 | F1 blind | syntax | syntax blind | factuality | coverage | "
             "repetition | BLEU-4 | CIDEr |\n|---|---|---:|---|---|---|---|---:|---:|---:|---:|---:|\n",
          c->n, c->L, c->env->cfg.eval.bootstrap);
  for (int i = 0; i < c->n_rows; i++) {
    const row *r = &c->rows[i];
    fprintf(f,
            "| %s | %s | %d | %.3f [%.3f, %.3f] | %.3f [%.3f, %.3f] | %.3f [%.3f, %.3f] | %.3f | %.3f | %.3f | "
            "%.3f | %.3f | %.3f |\n",
            r->model, r->mode, r->tps, r->sc.f1, r->ci.f1_lo, r->ci.f1_hi, r->blind.f1, r->ci_blind.f1_lo,
            r->ci_blind.f1_hi, r->sc.syntax, r->ci.syntax_lo, r->ci.syntax_hi, r->blind.syntax, r->sc.factuality,
            r->sc.coverage, r->sc.repetition, r->sc.bleu4, r->sc.cider);
  }
  if (c->n_probes) {
    fprintf(f, "\nPerception probe: teacher-forced accuracy of each kind of attribute word of the reference "
               "captions (the sentences holding words of that kind given with those words masked, the rest of the "
               "caption masked), with the image / with another sample's image; docs/metrics.md, \"The probe\".\n\n| model |");
    for (int k = 0; k < RD_PROBE_KINDS; k++) fprintf(f, " %s |", rd_probe_kind_name(k));
    fprintf(f, "\n|---|");
    for (int k = 0; k < RD_PROBE_KINDS; k++) fprintf(f, "---|");
    fputc('\n', f);
    for (int i = 0; i < c->n_probes; i++) {
      fprintf(f, "| %s |", c->probes[i].model);
      for (int k = 0; k < RD_PROBE_KINDS; k++)
        fprintf(f, " %.3f / %.3f |", rd_probe_accuracy(&c->probes[i].image, k),
                rd_probe_accuracy(&c->probes[i].blind, k));
      fputc('\n', f);
    }
  }
  for (int i = 0; i < c->n_skipped; i++)
    fprintf(f, "%s%s", i ? ", " : "\nNot evaluated (no checkpoint): ", c->skipped[i]);
  fprintf(f, "%s\nCIDEr-D is on a 0 .. 10 scale; the others 0 .. 1 (docs/metrics.md).\n", c->n_skipped ? "." : "");
  fclose(f);
  return buf;
}

static int write_plot(const eval_ctx *c, const char *path) {
  static const uint8_t colours[6][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                        {148, 103, 189}, {140, 86, 75}};
  const rd_cfg_ints *tps = &c->env->cfg.eval.tokens_per_step;
  const int nx = tps->n, ns = c->n_rows / nx;
  double x[RD_CFG_LIST], *y = calloc((size_t)2 * ns * nx + 1, sizeof *y);
  int order[RD_CFG_LIST];
  char (*labels)[96] = calloc((size_t)ns + 1, sizeof *labels);
  rd_plot_series *ser = calloc((size_t)2 * ns + 1, sizeof *ser);
  if (!y || !labels || !ser) {
    free(y), free(labels), free(ser);
    return rd_err(RD_ENOMEM, "out of memory drawing %s", path);
  }
  for (int t = 0; t < nx; t++) order[t] = t; /* x increasing */
  for (int a = 1; a < nx; a++)
    for (int b = a; b > 0 && tps->v[order[b]] < tps->v[order[b - 1]]; b--) {
      int tmp = order[b];
      order[b] = order[b - 1], order[b - 1] = tmp;
    }
  int model_idx = -1;
  for (int si = 0; si < ns; si++) {
    const row *r0 = &c->rows[si * nx];
    if (si == 0 || strcmp(r0->model, c->rows[(si - 1) * nx].model) != 0) model_idx++;
    snprintf(labels[si], sizeof labels[si], "%s %s", r0->model, r0->mode);
    for (int p = 0; p < 2; p++) {
      rd_plot_series *se = &ser[p * ns + si];
      double *ys = y + ((size_t)p * ns + si) * nx;
      for (int t = 0; t < nx; t++) ys[t] = p ? r0[order[t]].sc.syntax : r0[order[t]].sc.f1;
      se->label = labels[si];
      se->y = ys;
      memcpy(se->rgb, colours[model_idx % 6], 3);
      se->dashed = strcmp(r0->mode, "remask") == 0;
    }
  }
  for (int t = 0; t < nx; t++) x[t] = tps->v[order[t]];
  rd_plot_panel pan[2] = {{"F1", "tokens per step", x, nx, 1, 0, 1, ser, ns},
                          {"syntax", "tokens per step", x, nx, 1, 0, 1, ser + ns, ns}};
  int s = rd_plot_write(path, pan, 2, 3);
  free(y), free(labels), free(ser);
  return s;
}

static int write_outputs(eval_ctx *c) {
  char dir[RD_PATH_MAX], json[RD_PATH_MAX], mdp[RD_PATH_MAX], png[RD_PATH_MAX];
  RD_TRY(rd_run_path(dir, sizeof dir, c->env->cfg.run_dir, "eval"));
  RD_TRY(rd_fs_mkdirs(dir));
  RD_TRY(rd_fs_join(json, sizeof json, dir, "results.json"));
  RD_TRY(rd_fs_join(mdp, sizeof mdp, dir, "results.md"));
  RD_TRY(rd_fs_join(png, sizeof png, dir, "quality_vs_speed.png"));
  char *md = markdown(c);
  if (!md) return rd_err(RD_ENOMEM, "out of memory writing results.md");
  int s = write_json(c, json);
  if (s == RD_OK) s = rd_fs_write_atomic(mdp, md, strlen(md));
  if (s == RD_OK) s = write_plot(c, png);
  if (s == RD_OK) {
    fputs(md, stdout);
    fprintf(stderr, "eval: wrote %s/results.json, results.md, quality_vs_speed.png\n", dir);
  } else {
    /* Each file is written atomically, but the three are one result: a
     * failure on the second or third (a full disk) takes the others away
     * rather than leave a results.json without its table. */
    unlink(json);
    unlink(mdp);
    unlink(png);
  }
  free(md);
  return s;
}

/* Rank 0: the reference captions of the scored samples. */
static int read_refs(eval_ctx *c) {
  const int batch = c->env->cfg.eval.batch;
  rd_shard_batch sb;
  RD_TRY(rd_shard_batch_init(&sb, &c->set.info, batch));
  int s = RD_OK;
  for (int64_t off = 0; off < c->n && s == RD_OK; off += batch) {
    int nb = (int)(c->n - off < batch ? c->n - off : batch);
    s = rd_shardset_read_range(&c->set, off, nb, &sb, 0);
    if (s == RD_OK) memcpy(c->refs + off * c->L, sb.captions, (size_t)nb * c->L * sizeof(int32_t));
  }
  rd_shard_batch_free(&sb);
  return s;
}

static int setup(eval_ctx *c) {
  rd_stage_env *env = c->env;
  const rd_config *cfg = &env->cfg;
  RD_TRY(rd_stage_agree(env, rd_stage_vocab(env)));
  RD_TRY(rd_stage_open_data(env, "eval", &c->set));
  const rd_shard_info *info = &c->set.info;
  c->L = cfg->model.gen_len;
  c->n = cfg->eval.n_samples;
  int s = RD_OK;
  if (c->n > c->set.n_total)
    s = rd_err(RD_EINVAL, "eval.n_samples = %" PRId64 ", but %s holds %" PRId64 " eval samples", c->n, env->data_dir,
               c->set.n_total);
  else if (info->scene_k <= 0)
    s = rd_err(RD_EINVAL, "the eval shards in %s have no /scenes: eval scores ShapesCap captions", env->data_dir);
  else if (info->gen_len != c->L)
    s = rd_err(RD_EINVAL, "the eval shards have gen_len %d, model.gen_len is %d", info->gen_len, c->L);
  RD_TRY(rd_stage_agree(env, s));
  RD_TRY(rd_shardset_slice(c->n, env->grid.dp_rank, env->grid.dp_size, &c->begin, &c->count));
  const int batch = cfg->eval.batch;
  s = rd_evalset_load(&c->es, &c->set, c->n, c->begin, c->count);
  size_t cnt = (size_t)(c->count ? c->count : 1);
  c->tokens = rd_malloc(cnt * c->L * sizeof(int32_t), "the decoded captions");
  c->margin = rd_malloc(cnt * sizeof(float), "the decoding margins");
  c->per = rd_malloc(cnt * sizeof *c->per, "the caption counts");
  if (env->is_root) {
    c->refs = rd_malloc((size_t)c->n * c->L * sizeof(int32_t), "the reference captions");
    c->all = rd_malloc((size_t)c->n * c->L * sizeof(int32_t), "the gathered captions");
    c->all_per = rd_malloc((size_t)c->n * sizeof *c->all_per, "the gathered counts");
  }
  if (s == RD_OK && (!c->tokens || !c->margin || !c->per || (env->is_root && (!c->refs || !c->all || !c->all_per))))
    s = RD_ENOMEM;
  if (s == RD_OK && env->is_root) s = read_refs(c);
  int mb = (int)(c->count < batch ? (c->count ? c->count : 1) : batch);
  if (s == RD_OK) s = rd_infer_init(&c->m, env, mb, info->n_patches > 0 ? info->feat_dim : 0);
  return rd_stage_agree(env, s);
}

static int run(eval_ctx *c) {
  rd_stage_env *env = c->env;
  const rd_config *cfg = &env->cfg;
  char names[RD_CFG_LIST][64];
  int only[RD_CFG_LIST];
  for (int i = 0; i < cfg->eval.models.n; i++)
    RD_TRY(resolve_model(cfg, cfg->eval.models.v[i], names[i], sizeof names[i], &only[i]));
  RD_TRY(setup(c));
  int n_models = 0; /* evaluated, the same on every rank */
  for (int i = 0; i < cfg->eval.models.n; i++) {
    char rel[128], dir[RD_PATH_MAX], loaded[RD_PATH_MAX];
    long long step = 0;
    snprintf(rel, sizeof rel, "ckpt/%s", names[i]);
    RD_TRY(rd_run_path(dir, sizeof dir, cfg->run_dir, rel));
    int s = rd_fs_isdir(dir) ? rd_infer_load(&c->m, env, dir, loaded, sizeof loaded, &step) : 1;
    RD_TRY(rd_stage_agree(env, s < 0 ? s : RD_OK));
    if (s == 1) {
      if (env->is_root) fprintf(stderr, "eval: model %s: no checkpoint in %s, skipped\n", names[i], dir);
      snprintf(c->skipped[c->n_skipped++], sizeof c->skipped[0], "%s", names[i]);
      continue;
    }
    if (env->is_root) fprintf(stderr, "eval: model %s: %s (step %lld)\n", names[i], loaded, step);
    n_models++;
    RD_TRY(run_probe(c, names[i]));
    for (int k = 0; k < (only[i] >= 0 ? 1 : cfg->eval.modes.n); k++) {
      rd_decode_mode mode = (rd_decode_mode)only[i];
      if (only[i] < 0) RD_TRY(rd_decode_mode_parse(cfg->eval.modes.v[k], &mode));
      for (int t = 0; t < cfg->eval.tokens_per_step.n; t++)
        RD_TRY(run_setting(c, names[i], mode, cfg->eval.tokens_per_step.v[t]));
    }
  }
  if (n_models == 0) return rd_err(RD_EINVAL, "none of eval.models has a checkpoint under %s/ckpt", cfg->run_dir);
  int s = env->is_root ? write_outputs(c) : RD_OK;
  if (s == RD_OK && env->is_root) s = rd_done_write(cfg->run_dir, "eval", 0, rd_config_hash(cfg));
  return rd_stage_agree(env, s);
}

int rd_cmd_eval(const rd_cli *cli) {
  RD_TRY(rd_cli_check_opts(cli, NULL));
  if (cli->n_args) return rd_err(RD_EUSAGE, "'eval' takes no arguments");
  rd_stage_env env;
  eval_ctx *c = rd_calloc(1, sizeof *c, "the eval state");
  if (!c) return RD_ENOMEM;
  c->env = &env;
  int s = rd_stage_begin(&env, cli);
  if (s == RD_OK && rd_done_exists(env.cfg.run_dir, "eval", 0)) {
    if (env.is_root) printf("eval: done already (%s/done/eval)\n", env.cfg.run_dir);
  } else if (s == RD_OK) {
    s = run(c);
  }
  if (c->m.params) rd_vlm_free(&c->m);
  rd_evalset_free(&c->es);
  if (c->set.shards) rd_shardset_close(&c->set);
  free(c->tokens), free(c->margin), free(c->per), free(c->refs), free(c->all), free(c->all_per);
  free(c);
  rd_stage_end(&env);
  return s;
}
