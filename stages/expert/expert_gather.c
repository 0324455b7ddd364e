/* `rediff expert --round R`: the revision gather step.
 *
 * Every rank reads the round's draft files (drafts/r<R>/rank<k>.h5: small),
 * orders all rows by (sample_id, steps, tokens) -- an order that depends on
 * the drafts alone, not on how many files or ranks there are -- and takes a
 * contiguous slice. It asks the expert about each draft of its slice against
 * the ground truth of the training shards, applies the answer under the
 * length policy and packs the outcome into one record. Rank 0 gathers the
 * records (in rank order, hence already in row order), writes
 * revisions/r<R>.h5 and the counts revisions/r<R>.json, and the done marker
 * done/expert.r<R>. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/core/strbuf.h"
#include "io/drafts.h"
#include "io/png.h"
#include "io/shard.h"
#include "mpi/coll.h"
#include "stages/commands.h"
#include "stages/expert/expert.h"
#include "stages/run/rundir.h"
#include "stages/run/stage.h"

enum { ST_RIGHT, ST_REVISED, ST_DROPPED };

/* ---- the round's drafts, in the gather's order */

typedef struct {
  rd_drafts *files;
  int n_files;
  int64_t n;        /* rows over all files */
  int64_t *order;   /* [n] row -> (file << 40 | row in file), sorted */
  int L;
} draft_set;

static int64_t pack_ref(int file, int64_t row) { return ((int64_t)file << 40) | row; }
static const rd_drafts *ref_file(const draft_set *d, int64_t ref) { return &d->files[ref >> 40]; }
static int64_t ref_row(int64_t ref) { return ref & ((INT64_C(1) << 40) - 1); }

static const draft_set *sort_ctx; /* qsort has no context argument; set only around the sort */

static int by_row(const void *pa, const void *pb) {
  int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
  const rd_drafts *fa = ref_file(sort_ctx, a), *fb = ref_file(sort_ctx, b);
  int64_t ra = ref_row(a), rb = ref_row(b);
  if (fa->sample_id[ra] != fb->sample_id[rb]) return fa->sample_id[ra] < fb->sample_id[rb] ? -1 : 1;
  if (fa->steps[ra] != fb->steps[rb]) return fa->steps[ra] < fb->steps[rb] ? -1 : 1;
  return memcmp(fa->tokens + ra * fa->gen_len, fb->tokens + rb * fb->gen_len, sizeof(int32_t) * (size_t)fa->gen_len);
}

static void drafts_free(draft_set *d) {
  for (int i = 0; i < d->n_files; i++) rd_drafts_free(&d->files[i]);
  free(d->files);
  free(d->order);
  memset(d, 0, sizeof *d);
}

static int drafts_load(const rd_stage_env *env, int round, draft_set *d) {
  memset(d, 0, sizeof *d);
  d->L = env->cfg.model.gen_len;
  char dir[RD_PATH_MAX], rel[64], path[RD_PATH_MAX];
  snprintf(rel, sizeof rel, "drafts/r%d", round);
  RD_TRY(rd_run_path(dir, sizeof dir, env->cfg.run_dir, rel));
  for (;;) {
    char name[32];
    snprintf(name, sizeof name, "rank%d.h5", d->n_files);
    RD_TRY(rd_fs_join(path, sizeof path, dir, name));
    if (!rd_fs_exists(path)) break;
    rd_drafts *f = realloc(d->files, sizeof(rd_drafts) * (size_t)(d->n_files + 1));
    if (!f) return rd_err(RD_ENOMEM, "out of memory listing draft files");
    d->files = f;
    RD_TRY(rd_drafts_read(path, env->vocab.hash, rd_vocab_size(&env->vocab), &d->files[d->n_files]));
    d->n_files++;
    const rd_drafts *got = &d->files[d->n_files - 1];
    if (got->gen_len != d->L)
      return rd_err(RD_EINVAL, "%s: gen_len %d, the config's model.gen_len is %d", path, got->gen_len, d->L);
    if (got->round != round) return rd_err(RD_EINVAL, "%s: attribute round is %d, expected %d", path, got->round, round);
    d->n += got->n;
  }
  if (d->n_files == 0)
    return rd_err(RD_EINVAL, "%s/rank0.h5 is missing: run `rediff draft --round %d` first", dir, round);
  d->order = rd_malloc(sizeof(int64_t) * (size_t)(d->n ? d->n : 1), "the draft order");
  if (!d->order) return RD_ENOMEM;
  int64_t k = 0;
  for (int f = 0; f < d->n_files; f++)
    for (int64_t r = 0; r < d->files[f].n; r++) d->order[k++] = pack_ref(f, r);
  sort_ctx = d;
  qsort(d->order, (size_t)d->n, sizeof(int64_t), by_row);
  sort_ctx = NULL;
  return RD_OK;
}

/* ---- records: one per draft, packed back to back */

/* Packed into an rd_strbuf (io/core/strbuf.h): it holds any bytes. */
static int put(rd_strbuf *b, const void *src, size_t n) {
  int s = rd_strbuf_put(b, src, n);
  return s < 0 ? rd_err(s, "out of memory packing revisions") : s;
}

typedef struct {
  int64_t sample_id;
  int32_t steps, status, reason, n_edits;
} rec_head;

/* ---- one rank's share */

typedef struct {
  const rd_stage_env *env;
  int round, remask;
  rd_expert_kind kind;
  rd_shardset set;
  rd_shard_batch batch;
  rd_expert_proc *proc;
  char image_dir[RD_PATH_MAX];
} worker;

static int ask_command(worker *w, int64_t id, int64_t sid, const int32_t *tok, int n, const int32_t *cap, int cap_len,
                       rd_expert_out *o) {
  char draft[16384], ref[16384], png[RD_PATH_MAX];
  const rd_vocab *v = &w->env->vocab;
  RD_TRY(rd_vocab_decode(v, tok, n, 1, draft, sizeof draft));
  RD_TRY(rd_vocab_decode(v, cap, cap_len, 1, ref, sizeof ref));
  const char *image = NULL;
  const rd_shard_info *in = &w->set.info;
  if (w->batch.images && in->image_size > 0) {
    char name[64];
    snprintf(name, sizeof name, "%" PRId64 ".png", sid);
    RD_TRY(rd_fs_join(png, sizeof png, w->image_dir, name));
    if (!rd_fs_exists(png)) RD_TRY(rd_png_write(png, w->batch.images, in->image_size, in->image_size, 1));
    image = png;
  }
  rd_expert_request req = {id, image, rd_expert_prompt, ref, draft};
  return rd_expert_proc_ask(w->proc, v, &req, tok, n, o);
}

static int judge(worker *w, int64_t id, int64_t sid, const int32_t *tok, rd_expert_out *o) {
  const int L = w->env->cfg.model.gen_len;
  if (sid < 0 || sid >= w->set.n_total)
    return rd_err(RD_EINVAL, "draft of sample_id %" PRId64 ": not a training sample (ids 0..%" PRId64 ")", sid,
                  w->set.n_total - 1);
  RD_TRY(rd_shardset_read(&w->set, sid, &w->batch, 0));
  if (w->batch.sample_id[0] != sid)
    return rd_err(RD_EINVAL, "training sample %" PRId64 " has sample_id %" PRId64 " in its shard", sid,
                  w->batch.sample_id[0]);
  int n = 0;
  while (n < L && tok[n] != RD_TOK_EOS) n++;
  const int32_t *cap = w->batch.captions;
  int cap_len = w->batch.caption_len[0];
  if (w->kind == RD_EXPERT_SCENE) {
    rd_scene scene;
    RD_TRY(rd_scene_unpack(w->batch.scenes, w->set.info.scene_k - 1, &scene));
    return rd_expert_scene(&w->env->vocab, &scene, tok, n, !w->remask, o);
  }
  if (w->kind == RD_EXPERT_REFERENCE) return rd_expert_reference(tok, n, cap, cap_len, o);
  if (n == 0) {
    rd_expert_out_clear(o);
    o->verdict = RD_VERDICT_DROP;
    o->reason = RD_DROP_EMPTY;
    return RD_OK;
  }
  return ask_command(w, id, sid, tok, n, cap, cap_len, o);
}

static int work_slice(worker *w, const draft_set *d, int64_t begin, int64_t count, rd_strbuf *out) {
  const int L = d->L;
  rd_expert_out *o = rd_malloc(sizeof *o, "an expert answer");
  int32_t *x = rd_malloc(sizeof(int32_t) * 2 * (size_t)L, "a revised row"), *y = x ? x + L : NULL;
  uint8_t *mask = rd_malloc((size_t)L, "a mistake row");
  int32_t(*spans)[4] = rd_malloc(sizeof(int32_t[4]) * RD_EXPERT_EDITS_MAX, "edit spans");
  int s = o && x && mask && spans ? RD_OK : RD_ENOMEM;
  for (int64_t r = begin; r < begin + count && s == RD_OK; r++) {
    const rd_drafts *f = ref_file(d, d->order[r]);
    int64_t fr = ref_row(d->order[r]);
    const int32_t *tok = f->tokens + fr * L;
    rec_head h = {f->sample_id[fr], f->steps[fr], ST_DROPPED, RD_DROP_NONE, 0};
    s = judge(w, r, h.sample_id, tok, o);
    if (s < 0) {
      s = rd_err_wrap(s, "draft row of sample_id %" PRId64 ", steps %d", h.sample_id, h.steps);
      break;
    }
    if (o->verdict == RD_VERDICT_DROP) {
      h.reason = o->reason;
    } else {
      int a = rd_expert_apply(tok, L, o, w->remask, x, y, mask, spans);
      if (a < 0) {
        s = a;
        break;
      }
      h.reason = a;
      if (a == RD_DROP_NONE) {
        h.status = o->verdict == RD_VERDICT_RIGHT ? ST_RIGHT : ST_REVISED;
        h.n_edits = o->n_edits;
      }
    }
    s = put(out, &h, sizeof h);
    if (s == RD_OK && h.status != ST_DROPPED) {
      s = put(out, tok, sizeof(int32_t) * (size_t)L);
      if (s == RD_OK) s = put(out, x, sizeof(int32_t) * 2 * (size_t)L);
      if (s == RD_OK) s = put(out, mask, (size_t)L);
      for (int k = 0; k < h.n_edits && s == RD_OK; k++) {
        int32_t e[5] = {spans[k][0], spans[k][1], spans[k][2], spans[k][3], o->e[k].kind};
        s = put(out, e, sizeof e);
      }
    }
  }
  free(o);
  free(x);
  free(mask);
  free(spans);
  return s;
}

static int worker_open(worker *w, const rd_stage_env *env, int round) {
  memset(w, 0, sizeof *w);
  w->env = env;
  w->round = round;
  const rd_expert_cfg *c = &env->cfg.expert;
  w->remask = strcmp(c->length_policy, "remask") == 0;
  RD_TRY(rd_expert_kind_parse(c->kind, &w->kind));
  RD_TRY(rd_stage_open_data(env, "train", &w->set));
  if (w->kind == RD_EXPERT_SCENE && w->set.info.scene_k <= 1)
    return rd_err(RD_EINVAL, "expert.kind scene needs scene graphs (/scenes) in the training shards of %s; "
                             "use expert.kind reference or command for this data",
                  env->data_dir);
  RD_TRY(rd_shard_batch_init(&w->batch, &w->set.info, 1));
  if (w->kind == RD_EXPERT_COMMAND) {
    char rel[64];
    snprintf(rel, sizeof rel, "revisions/r%d.images", round);
    RD_TRY(rd_run_path(w->image_dir, sizeof w->image_dir, env->cfg.run_dir, rel));
    if (w->set.info.image_size > 0 && w->batch.images) RD_TRY(rd_fs_mkdirs(w->image_dir));
    RD_TRY(rd_expert_proc_open(&w->proc, c->command, c->timeout_s, c->retries));
  }
  return RD_OK;
}

static void worker_close(worker *w) {
  rd_expert_proc_close(w->proc);
  rd_shard_batch_free(&w->batch);
  rd_shardset_close(&w->set);
}

/* ---- rank 0: records -> revisions file and counts */

static int merge(const rd_stage_env *env, int round, const rd_coll_records *recs, rd_revisions *rev,
                 rd_expert_counts *cnt) {
  const int L = env->cfg.model.gen_len;
  RD_TRY(rd_revisions_init(rev, L, env->vocab.hash, round, env->cfg.expert.kind, env->cfg.expert.length_policy));
  for (int k = 0; k < recs->n; k++) {
    const unsigned char *p = recs->data + recs->off[k], *end = p + recs->len[k];
    while (p < end) {
      rec_head h;
      memcpy(&h, p, sizeof h);
      p += sizeof h;
      RD_TRY(rd_expert_counts_add(cnt, h.steps, h.status == ST_RIGHT, h.status == ST_DROPPED ? h.reason : -1));
      if (h.status == ST_DROPPED) continue;
      const size_t row = sizeof(int32_t) * (size_t)L;
      const int32_t *orig = (const int32_t *)(const void *)p, *x = orig + L, *y = x + L;
      const uint8_t *mask = p + 3 * row;
      RD_TRY(rd_revisions_append(rev, h.sample_id, h.steps, h.status == ST_RIGHT, orig, x, y, mask));
      for (int i = 0; i < L; i++) cnt->mistake_tokens += mask[i];
      cnt->rows_with_mistakes += memchr(mask, 1, (size_t)L) != NULL;
      p += 3 * row + (size_t)L;
      for (int e = 0; e < h.n_edits; e++, p += 5 * sizeof(int32_t)) {
        int32_t v[5];
        memcpy(v, p, sizeof v);
        int32_t ed[5] = {(int32_t)(rev->n - 1), v[0], v[1], v[2], v[3]};
        RD_TRY(rd_revisions_add_edit(rev, ed, v[4]));
        rd_expert_counts_edit(cnt, h.steps, v[4], v[3] - v[1]);
      }
    }
  }
  return RD_OK;
}

static int write_outputs(const rd_stage_env *env, int round, const rd_revisions *rev, const rd_expert_counts *cnt) {
  char path[RD_PATH_MAX], rel[64];
  snprintf(rel, sizeof rel, "revisions/r%d.h5", round);
  RD_TRY(rd_run_path(path, sizeof path, env->cfg.run_dir, rel));
  RD_TRY(rd_revisions_write(rev, path));
  char *json = NULL;
  size_t n = 0;
  RD_TRY(rd_expert_counts_json(cnt, round, env->cfg.expert.kind, env->cfg.expert.length_policy, &json, &n));
  snprintf(rel, sizeof rel, "revisions/r%d.json", round);
  int s = rd_run_path(path, sizeof path, env->cfg.run_dir, rel);
  if (s == RD_OK) s = rd_fs_write_atomic(path, json, n);
  free(json);
  return s;
}

static int gather(rd_stage_env *env, int round) {
  draft_set d;
  worker w;
  memset(&w, 0, sizeof w); /* worker_close is safe on what worker_open left */
  int s = rd_stage_agree(env, drafts_load(env, round, &d));
  if (s == RD_OK) s = rd_stage_agree(env, worker_open(&w, env, round));
  rd_strbuf out = RD_STRBUF_INIT;
  int64_t begin = 0, count = 0;
  if (s == RD_OK) s = rd_shardset_slice(d.n, env->grid.rank, env->grid.size, &begin, &count);
  if (s == RD_OK) s = rd_stage_agree(env, work_slice(&w, &d, begin, count, &out));
  worker_close(&w);
  rd_coll_records recs = {0};
  if (s == RD_OK) s = rd_coll_gather_records(&env->grid.world, out.p, out.n, 0, &recs);
  rd_strbuf_free(&out);
  int ws2 = RD_OK;
  if (s == RD_OK && env->is_root) {
    rd_revisions rev;
    rd_expert_counts cnt;
    rd_expert_counts_init(&cnt);
    ws2 = merge(env, round, &recs, &rev, &cnt);
    if (ws2 == RD_OK) ws2 = write_outputs(env, round, &rev, &cnt);
    if (ws2 == RD_OK) rd_expert_counts_print(&cnt, round, stdout);
    rd_revisions_free(&rev);
    rd_expert_counts_free(&cnt);
  }
  rd_coll_records_free(&recs);
  drafts_free(&d);
  if (s == RD_OK) s = rd_stage_agree(env, ws2);
  /* The PNGs shown to a command expert are scratch, whether the gather
   * worked or not (every rank is past its slice once the statuses agree). */
  if (w.kind == RD_EXPERT_COMMAND && env->is_root && w.image_dir[0]) rd_fs_rmtree(w.image_dir);
  if (s == RD_OK && env->is_root) s = rd_done_write(env->cfg.run_dir, "expert", round, rd_config_hash(&env->cfg));
  return s == RD_OK ? rd_stage_agree(env, RD_OK) : s;
}

int rd_cmd_expert(const rd_cli *cli) {
  static const char *const known[] = {"round", NULL};
  RD_TRY(rd_cli_check_opts(cli, known));
  if (cli->n_args) return rd_err(RD_EUSAGE, "'expert' takes no arguments (usage: rediff expert --round R)");
  long round;
  RD_TRY(rd_cli_opt_int(cli, "round", 0, &round));
  if (round < 1 || round > 1000) return rd_err(RD_EUSAGE, "usage: rediff expert --round R (R >= 1)");
  rd_stage_env env;
  int s = rd_stage_begin(&env, cli);
  if (s == RD_OK && rd_done_exists(env.cfg.run_dir, "expert", (int)round)) {
    if (env.is_root) printf("expert: round %ld done already (%s/done/expert.r%ld)\n", round, env.cfg.run_dir, round);
  } else {
    if (s == RD_OK) s = rd_stage_agree(&env, rd_stage_vocab(&env));
    if (s == RD_OK) s = gather(&env, (int)round);
  }
  rd_stage_end(&env);
  return s;
}
