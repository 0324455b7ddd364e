/* `rediff data synth | info | show`: ShapesCap shards and a look inside them. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/shapes.h"
#include "io/core/clock.h"
#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/png.h"
#include "io/shard.h"
#include "io/vocab.h"
#include "stages/commands.h"
#include "stages/run/rundir.h"

/* Eval samples take ids from here on, so the eval set does not change when
 * data.n_train does. */
#define RD_EVAL_ID_BASE (INT64_C(1) << 32)
#define RD_PROMPT_WORDS 64

static void shapes_params(const rd_config *cfg, rd_shapes_params *p) {
  rd_shapes_params_default(p);
  p->image_size = cfg->model.image_size;
  p->min_objects = cfg->data.min_objects;
  p->max_objects = cfg->data.max_objects;
  p->max_relations = cfg->data.max_relations;
  p->jitter = cfg->data.jitter;
  /* One position is left for [EOS], so every caption ends visibly. */
  p->max_words = cfg->model.gen_len - 1 < RD_WORDS_MAX ? cfg->model.gen_len - 1 : RD_WORDS_MAX;
}

/* Splits the prompt into words (pointers into buf). */
static int prompt_words(const char *prompt, char *buf, size_t n, const char **words, int *n_words) {
  if (strlen(prompt) >= n) return rd_err(RD_EINVAL, "data.prompt is too long");
  strcpy(buf, prompt);
  *n_words = 0;
  for (char *save = NULL, *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
    if (*n_words >= RD_PROMPT_WORDS) return rd_err(RD_EINVAL, "data.prompt has more than %d words", RD_PROMPT_WORDS);
    words[(*n_words)++] = w;
  }
  return RD_OK;
}

/* The vocabulary is built from the training captions (and the prompt), as a
 * real corpus's would be; captions are deterministic, so this pass only
 * writes them, without rendering. */
static int build_vocab(const rd_config *cfg, const rd_shapes_params *p, rd_vocab *v) {
  rd_vocab_builder b;
  rd_vocab_builder_init(&b);
  int s = RD_OK;
  for (int64_t i = 0; i < cfg->data.n_train && s == RD_OK; i++) {
    rd_scene scene;
    rd_words words;
    s = rd_scene_sample(&scene, p, cfg->data.seed, i);
    if (s == RD_OK) s = rd_caption_write(&scene, p, cfg->data.seed, i, &words, NULL);
    if (s == RD_OK) s = rd_vocab_builder_add(&b, words.w, words.n);
  }
  char buf[1024];
  const char *extra[RD_PROMPT_WORDS];
  int n_extra = 0;
  if (s == RD_OK) s = prompt_words(cfg->data.prompt, buf, sizeof buf, extra, &n_extra);
  if (s == RD_OK) s = rd_vocab_builder_finish(&b, extra, n_extra, v);
  rd_vocab_builder_free(&b);
  return s;
}

typedef struct {
  int64_t n;
  int64_t min_len, max_len, sum_len;
  rd_vocab_stats stats;
} synth_stats;

/* Writes one split as shards of cfg->data.shard_size samples into dir. */
static int write_split(const rd_config *cfg, const rd_shapes_params *p, const rd_vocab *v, const char *dir,
                       const char *split, int64_t n, int64_t id_base, synth_stats *st) {
  const int L = cfg->model.gen_len, K = p->max_objects + 1, H = p->image_size;
  rd_shard_info info;
  memset(&info, 0, sizeof info);
  info.image_size = H;
  info.gen_len = L;
  info.has_halluc = 1;
  info.scene_k = K;
  info.scene_f = RD_SCENE_FIELDS;
  info.vocab_hash = rd_vocab_hash(v);
  snprintf(info.split, sizeof info.split, "%s", split);
  snprintf(info.created_by, sizeof info.created_by, "rediff data synth");

  uint8_t *img = rd_malloc((size_t)H * H * 3, "an image");
  int32_t *cap = rd_malloc(sizeof(int32_t) * (size_t)L * 2 + sizeof(int32_t) * (size_t)K * RD_SCENE_FIELDS,
                           "a sample");
  if (!img || !cap) {
    free(img);
    free(cap);
    return RD_ENOMEM;
  }
  int32_t *hal = cap + L, *packed = cap + 2 * L;
  int s = RD_OK;
  rd_shard_writer *w = NULL;
  for (int64_t i = 0; i < n && s == RD_OK; i++) {
    if (i % cfg->data.shard_size == 0) {
      if (w) s = rd_shard_writer_close(w);
      w = NULL;
      char path[RD_PATH_MAX];
      if (s == RD_OK) s = rd_shard_name(path, sizeof path, dir, split, (int)(i / cfg->data.shard_size));
      if (s == RD_OK) s = rd_shard_writer_open(&w, path, &info, 0, cfg->data.compress);
      if (s != RD_OK) break;
    }
    int64_t id = id_base + i;
    rd_scene scene;
    rd_words words, hwords;
    rd_facts stated;
    rd_shard_sample smp;
    memset(&smp, 0, sizeof smp);
    int len = 0, hlen = 0;
    s = rd_scene_sample(&scene, p, cfg->data.seed, id);
    if (s == RD_OK) s = rd_scene_render(&scene, p, img);
    if (s == RD_OK) s = rd_caption_write(&scene, p, cfg->data.seed, id, &words, &stated);
    if (s == RD_OK)
      s = rd_halluc_make(&scene, &words, &stated, cfg->data.seed, id, &hwords, &smp.halluc_span[0],
                         &smp.halluc_span[1]);
    if (s == RD_OK) s = rd_vocab_encode(v, words.w, words.n, cap, L, &len, &st->stats);
    if (s == RD_OK) s = rd_vocab_encode(v, hwords.w, hwords.n, hal, L, &hlen, NULL);
    if (s == RD_OK) s = rd_scene_pack(&scene, packed, p->max_objects);
    if (s != RD_OK) {
      rd_err_wrap(s, "%s sample %" PRId64, split, id);
      break;
    }
    smp.image = img;
    smp.caption = cap;
    smp.caption_len = len;
    smp.halluc = hal;
    smp.scene = packed;
    smp.sample_id = id;
    s = rd_shard_writer_append(w, &smp);
    st->n++;
    st->sum_len += len;
    if (len < st->min_len) st->min_len = len;
    if (len > st->max_len) st->max_len = len;
  }
  if (w) {
    if (s == RD_OK) s = rd_shard_writer_close(w);
    else rd_shard_writer_abort(w);
  }
  free(img);
  free(cap);
  return s;
}

int rd_cmd_data_synth(const rd_cli *cli) {
  RD_TRY(rd_cli_check_opts(cli, NULL));
  if (cli->n_args) return rd_err(RD_EUSAGE, "'data synth' takes no arguments");
  rd_config cfg;
  RD_TRY(rd_cli_config(cli, &cfg));
  if (rd_done_exists(cfg.run_dir, "data", 0)) {
    printf("data: done already (%s/done/data)\n", cfg.run_dir);
    return RD_OK;
  }
  rd_shapes_params p;
  shapes_params(&cfg, &p);
  RD_TRY(rd_shapes_params_check(&p));

  double t0 = rd_clock_now();
  rd_vocab v;
  RD_TRY(build_vocab(&cfg, &p, &v));

  /* The whole folder is written under a temporary name and renamed into
   * place, so a killed synth never leaves a mix of old and new shards. */
  char final_dir[RD_PATH_MAX], tmp_dir[RD_PATH_MAX], path[RD_PATH_MAX];
  int s = rd_run_path(final_dir, sizeof final_dir, cfg.run_dir, "data");
  if (s == RD_OK) s = rd_fs_tmpname(final_dir, tmp_dir, sizeof tmp_dir);
  if (s == RD_OK) s = rd_fs_rmtree(tmp_dir);
  if (s == RD_OK) s = rd_fs_mkdirs(tmp_dir);
  if (s == RD_OK) s = rd_fs_join(path, sizeof path, tmp_dir, "vocab.txt");
  if (s == RD_OK) s = rd_vocab_write(&v, path);
  synth_stats tr = {0, INT64_MAX, 0, 0, {0}}, ev = {0, INT64_MAX, 0, 0, {0}};
  if (s == RD_OK) s = write_split(&cfg, &p, &v, tmp_dir, "train", cfg.data.n_train, 0, &tr);
  if (s == RD_OK) s = write_split(&cfg, &p, &v, tmp_dir, "eval", cfg.data.n_eval, RD_EVAL_ID_BASE, &ev);
  if (s == RD_OK) s = rd_fs_replace_dir(tmp_dir, final_dir);
  if (s != RD_OK) {
    rd_fs_rmtree(tmp_dir);
    rd_vocab_free(&v);
    return s;
  }
  double dt = rd_clock_now() - t0;
  char hex[17];
  rd_vocab_hash_hex(rd_vocab_hash(&v), hex);
  int64_t n = tr.n + ev.n;
  printf("data: %" PRId64 " train + %" PRId64 " eval samples in %.2f s (%.0f samples/s) -> %s\n", tr.n, ev.n,
         dt, (double)n / dt, final_dir);
  printf("data: vocabulary %d tokens, hash %s\n", rd_vocab_size(&v), hex);
  printf("data: train caption length min %" PRId64 " mean %.1f max %" PRId64 " tokens (gen_len %d), %" PRId64
         " truncated, %" PRId64 " unknown words\n",
         tr.min_len, (double)tr.sum_len / (double)(tr.n ? tr.n : 1), tr.max_len, cfg.model.gen_len,
         tr.stats.n_truncated + ev.stats.n_truncated, tr.stats.n_unk + ev.stats.n_unk);
  rd_vocab_free(&v);
  return rd_done_write(cfg.run_dir, "data", 0, rd_config_hash(&cfg));
}

/* ---- inspection */

/* vocab.txt beside the shard (or --vocab), checked against the shard's hash. */
static int shard_vocab(const rd_cli *cli, const char *shard_path, uint64_t hash, rd_vocab *v) {
  char path[RD_PATH_MAX];
  const char *opt = rd_cli_opt(cli, "vocab");
  if (opt) {
    snprintf(path, sizeof path, "%s", opt);
  } else {
    const char *slash = strrchr(shard_path, '/');
    if (slash) snprintf(path, sizeof path, "%.*s/vocab.txt", (int)(slash - shard_path), shard_path);
    else snprintf(path, sizeof path, "vocab.txt");
  }
  if (!rd_fs_exists(path)) return 1;
  RD_TRY(rd_vocab_load(v, path));
  if (rd_vocab_hash(v) != hash) {
    char a[17], b[17];
    rd_vocab_hash_hex(rd_vocab_hash(v), a);
    rd_vocab_hash_hex(hash, b);
    rd_vocab_free(v);
    return rd_err(RD_EINVAL, "%s has hash %s, but %s was written with vocabulary %s", path, a, shard_path, b);
  }
  return RD_OK;
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

static void print_tokens(const char *label, const int32_t *ids, int n, const rd_vocab *v, int have_vocab) {
  printf("%s ids:", label);
  for (int i = 0; i < n; i++) printf(" %d", ids[i]);
  printf("\n");
  if (have_vocab) {
    char text[4096];
    if (rd_vocab_decode(v, ids, n, 1, text, sizeof text) == RD_OK) printf("%s: %s\n", label, text);
  }
}

static int print_sample(rd_shard *sh, const rd_shard_info *info, int64_t index, const rd_vocab *v,
                        int have_vocab, rd_shard_batch *b) {
  RD_TRY(rd_shard_read(sh, index, b, 0));
  const int L = info->gen_len;
  printf("sample %" PRId64 ": sample_id %" PRId64 ", caption_len %d\n", index, b->sample_id[0],
         b->caption_len[0]);
  print_tokens("caption", b->captions, L, v, have_vocab);
  if (b->halluc) {
    printf("halluc span: start %d, length %d\n", b->halluc_span[0], b->halluc_span[1]);
    print_tokens("halluc", b->halluc, L, v, have_vocab);
  }
  if (b->images) {
    size_t bytes = (size_t)info->image_size * info->image_size * 3;
    uint64_t sum = 0;
    for (size_t i = 0; i < bytes; i++) sum += b->images[i];
    printf("image: %d x %d x 3 uint8, byte sum %" PRIu64 ", fnv1a64 %016" PRIx64 "\n", info->image_size,
           info->image_size, sum, fnv1a(b->images, bytes));
  }
  return RD_OK;
}

int rd_cmd_data_info(const rd_cli *cli) {
  static const char *const known[] = {"index", "vocab", NULL};
  RD_TRY(rd_cli_check_opts(cli, known));
  if (cli->n_args != 1) return rd_err(RD_EUSAGE, "usage: rediff data info FILE [--index I] [--vocab vocab.txt]");
  long index;
  RD_TRY(rd_cli_opt_int(cli, "index", -1, &index));
  const char *path = cli->args[0];
  rd_shard *sh;
  RD_TRY(rd_shard_open(&sh, path, 0));
  const rd_shard_info *info = rd_shard_get_info(sh);
  rd_vocab v;
  int have_vocab = 0;
  int s = shard_vocab(cli, path, info->vocab_hash, &v);
  if (s < 0) {
    rd_shard_close(sh);
    return s;
  }
  have_vocab = s == RD_OK;
  char hex[17];
  rd_vocab_hash_hex(info->vocab_hash, hex);
  printf("file: %s\n", path);
  printf("schema_version: %d\nsplit: %s\ncreated_by: %s\n", RD_SHARD_SCHEMA_VERSION, info->split, info->created_by);
  printf("samples: %" PRId64 "\n", info->n_samples);
  if (info->n_patches > 0)
    printf("features: float32 [%" PRId64 ", %d, %d]\n", info->n_samples, info->n_patches, info->feat_dim);
  else
    printf("images: uint8 [%" PRId64 ", %d, %d, 3]\n", info->n_samples, info->image_size, info->image_size);
  printf("captions: int32 [%" PRId64 ", %d]\n", info->n_samples, info->gen_len);
  printf("halluc: %s\n", info->has_halluc ? "yes" : "no");
  if (info->scene_k > 0) printf("scenes: int32 [%" PRId64 ", %d, %d]\n", info->n_samples, info->scene_k, info->scene_f);
  printf("vocab_hash: %s (%s)\n", hex, have_vocab ? "vocab.txt matches" : "no vocab.txt beside the file");

  rd_shard_batch b;
  s = rd_shard_batch_init(&b, info, info->n_samples > 0 ? info->n_samples : 1);
  if (s == RD_OK && info->n_samples > 0) {
    s = rd_shard_read_block(sh, 0, info->n_samples, &b, 0);
    if (s == RD_OK) {
      int64_t mn = INT64_MAX, mx = 0, sum = 0;
      for (int64_t i = 0; i < info->n_samples; i++) {
        int64_t l = b.caption_len[i];
        mn = l < mn ? l : mn;
        mx = l > mx ? l : mx;
        sum += l;
      }
      printf("caption_len: min %" PRId64 ", mean %.1f, max %" PRId64 "\n", mn, (double)sum / (double)info->n_samples,
             mx);
      printf("sample_id: %" PRId64 " .. %" PRId64 "\n", b.sample_id[0], b.sample_id[info->n_samples - 1]);
    }
  }
  if (s == RD_OK && index >= 0) {
    if (index >= info->n_samples)
      s = rd_err(RD_EUSAGE, "--index %ld is past the %" PRId64 " samples of %s", index, info->n_samples, path);
    else
      s = print_sample(sh, info, index, &v, have_vocab, &b);
  }
  rd_shard_batch_free(&b);
  if (have_vocab) rd_vocab_free(&v);
  rd_shard_close(sh);
  return s;
}

int rd_cmd_data_show(const rd_cli *cli) {
  static const char *const known[] = {"index", "png", "scale", "vocab", NULL};
  RD_TRY(rd_cli_check_opts(cli, known));
  const char *png = rd_cli_opt(cli, "png");
  long index, scale;
  RD_TRY(rd_cli_opt_int(cli, "index", -1, &index));
  RD_TRY(rd_cli_opt_int(cli, "scale", 8, &scale));
  if (cli->n_args != 1 || index < 0 || !png || !*png)
    return rd_err(RD_EUSAGE, "usage: rediff data show FILE --index I --png OUT [--scale S]");
  if (scale < 1 || scale > 64) return rd_err(RD_EUSAGE, "--scale must be 1..64, got %ld", scale);
  const char *path = cli->args[0];
  rd_shard *sh;
  RD_TRY(rd_shard_open(&sh, path, 0));
  const rd_shard_info *info = rd_shard_get_info(sh);
  int s = RD_OK;
  if (info->n_patches > 0) s = rd_err(RD_EINVAL, "%s holds precomputed features, not images", path);
  else if (index >= info->n_samples)
    s = rd_err(RD_EUSAGE, "--index %ld is past the %" PRId64 " samples of %s", index, info->n_samples, path);
  rd_vocab v;
  int have_vocab = 0;
  if (s == RD_OK) {
    s = shard_vocab(cli, path, info->vocab_hash, &v);
    have_vocab = s == RD_OK;
    if (s > 0) s = RD_OK;
  }
  rd_shard_batch b;
  memset(&b, 0, sizeof b);
  if (s == RD_OK) s = rd_shard_batch_init(&b, info, 1);
  if (s == RD_OK) s = print_sample(sh, info, index, &v, have_vocab, &b);
  if (s == RD_OK && b.scenes) {
    rd_scene scene;
    s = rd_scene_unpack(b.scenes, info->scene_k - 1, &scene);
    if (s == RD_OK) {
      rd_facts facts;
      rd_scene_facts(&scene, RD_FACT_BIT(RD_FACT_COUNT) | RD_FACT_BIT(RD_FACT_OBJECT), &facts);
      for (int i = 0; i < facts.n; i++) {
        char text[256];
        rd_fact_format(&facts.f[i], text, sizeof text);
        printf("scene: %s\n", text);
      }
    } else {
      rd_err_wrap(s, "%s: dataset /scenes, sample %ld", path, index);
    }
  }
  if (s == RD_OK) s = rd_png_write(png, b.images, info->image_size, info->image_size, (int)scale);
  if (s == RD_OK) printf("png: %s (%d x %d)\n", png, info->image_size * (int)scale, info->image_size * (int)scale);
  rd_shard_batch_free(&b);
  if (have_vocab) rd_vocab_free(&v);
  rd_shard_close(sh);
  return s;
}
