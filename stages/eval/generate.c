/* `rediff generate`: one caption from a trained model, for one image (a PNG
 * or a shard sample), optionally revising a given caption, optionally with
 * the per-step trajectory written out (the paper's Figure 4). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/clock.h"
#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/metrics.h"
#include "io/png.h"
#include "io/shard.h"
#include "stages/commands.h"
#include "stages/run/infer.h"

static const char usage[] =
    "usage: rediff generate --ckpt FILE|DIR (--image PNG | --shard FILE --index I) [--steps S] "
    "[--mode refine|remask] [--caption TEXT] [--trajectory FILE] [--temperature T] [--block N] "
    "[--tau X] [--top-frac F] [--seed N] [--vocab vocab.txt]";

/* A PNG of image_size, or of k times that (what `rediff data show --scale k`
 * writes): each k x k block is one pixel, read at its top-left corner. */
static int read_image(const char *path, int size, uint8_t *out) {
  uint8_t *rgb;
  int h, w;
  RD_TRY(rd_png_read(path, &rgb, &h, &w));
  int k = h / size;
  if (h != w || k < 1 || h != k * size) {
    free(rgb);
    return rd_err(RD_EINVAL, "%s is %d x %d pixels; the model reads %d x %d images (or a multiple, as written by "
                  "`rediff data show --scale K`)", path, w, h, size, size);
  }
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++)
      memcpy(out + ((size_t)y * size + x) * 3, rgb + ((size_t)y * k * w + (size_t)x * k) * 3, 3);
  free(rgb);
  return RD_OK;
}

/* The words of text into ids[L]; "_" or "[MASK]" leave a position masked and
 * every position after the text stays masked. */
static int parse_caption(const rd_vocab *v, const char *text, int32_t *ids, int L) {
  for (int i = 0; i < L; i++) ids[i] = RD_TOK_MASK;
  char *copy = strdup(text), *save = NULL;
  if (!copy) return rd_err(RD_ENOMEM, "out of memory reading --caption");
  int n = 0, s = RD_OK;
  for (char *w = strtok_r(copy, " \t\n", &save); w && s == RD_OK; w = strtok_r(NULL, " \t\n", &save), n++) {
    if (n >= L) {
      s = rd_err(RD_EINVAL, "--caption has more than model.gen_len = %d words", L);
    } else if (strcmp(w, "_") != 0 && strcmp(w, "[MASK]") != 0) {
      int id = rd_vocab_id(v, w);
      if (id < 0) s = rd_err(RD_EINVAL, "--caption: word %d '%s' is not in the vocabulary", n + 1, w);
      ids[n] = id;
    }
  }
  free(copy);
  return s;
}

/* The tokens as text: [MASK] as "_", a run of [EOS] reaching the end as
 * "[EOS]*n". */
static void print_tokens(FILE *f, const rd_vocab *v, const int32_t *x, int L) {
  int end = L;
  while (end > 0 && x[end - 1] == RD_TOK_EOS) end--;
  for (int i = 0; i < end; i++)
    fprintf(f, "%s%s", i ? " " : "", x[i] == RD_TOK_MASK ? "_" : rd_vocab_token(v, x[i]));
  if (end < L) fprintf(f, "%s[EOS]*%d", end ? " " : "", L - end);
}

static int write_trajectory(const char *path, const rd_vocab *v, const rd_decode_opts *o, const int32_t *init,
                            const rd_decode_traj *t, int L) {
  char tmp[RD_PATH_MAX];
  RD_TRY(rd_fs_mkparent(path));
  RD_TRY(rd_fs_tmpname(path, tmp, sizeof tmp));
  FILE *f = fopen(tmp, "w");
  if (!f) return rd_err(RD_EIO, "cannot write %s", tmp);
  int32_t *x = malloc((size_t)L * sizeof *x);
  if (!x) {
    fclose(f);
    rd_fs_discard(tmp);
    return rd_err(RD_ENOMEM, "out of memory writing %s", path);
  }
  memcpy(x, init, (size_t)L * sizeof *x);
  fprintf(f, "# rediff generate trajectory: mode %s, %d steps, %d tokens, block %d, temperature %g\n",
          rd_decode_mode_name(o->mode), o->steps, L, o->block, o->temperature);
  fprintf(f, "# per step: the caption after it ([MASK] as _), the positions unmasked as pos:token,\n"
             "# the earlier tokens revised as pos:old->new (positions count from 0)\n");
  fprintf(f, "start: ");
  print_tokens(f, v, x, L);
  fprintf(f, "\n");
  int e = 0;
  for (int step = 0; step < o->steps; step++) {
    int a = e, nu = 0, nc = 0;
    for (; e < t->n && t->ev[e].step == step; e++) {
      x[t->ev[e].pos] = t->ev[e].new_tok;
      if (t->ev[e].old_tok == RD_TOK_MASK) nu++;
      else nc++;
    }
    fprintf(f, "step %d/%d\n  caption: ", step + 1, o->steps);
    print_tokens(f, v, x, L);
    fprintf(f, "\n  unmasked (%d):", nu);
    for (int i = a; i < e; i++)
      if (t->ev[i].old_tok == RD_TOK_MASK) fprintf(f, " %d:%s", t->ev[i].pos, rd_vocab_token(v, t->ev[i].new_tok));
    fprintf(f, "\n  changed (%d):", nc);
    for (int i = a; i < e; i++)
      if (t->ev[i].old_tok != RD_TOK_MASK)
        fprintf(f, " %d:%s->%s", t->ev[i].pos, rd_vocab_token(v, t->ev[i].old_tok),
                rd_vocab_token(v, t->ev[i].new_tok));
    fprintf(f, "\n");
  }
  free(x);
  if (fclose(f) != 0) {
    rd_fs_discard(tmp);
    return rd_err(RD_EIO, "writing %s failed", tmp);
  }
  return rd_fs_commit(tmp, path);
}

/* The image (or features) and sample id of --shard FILE --index I. */
static int read_shard_sample(const char *path, long index, uint64_t hash, rd_shard_batch *b, rd_shard_info *info) {
  rd_shard *sh;
  RD_TRY(rd_shard_open(&sh, path, hash));
  *info = *rd_shard_get_info(sh);
  int s = RD_OK;
  if (index < 0 || index >= info->n_samples)
    s = rd_err(RD_EUSAGE, "--index %ld is outside the %" PRId64 " samples of %s", index, info->n_samples, path);
  if (s == RD_OK) s = rd_shard_batch_init(b, info, 1);
  if (s == RD_OK) s = rd_shard_read(sh, index, b, 0);
  rd_shard_close(sh);
  return s;
}

static int run(rd_stage_env *env, const rd_cli *cli, const rd_decode_opts *o_in) {
  const char *ckpt = rd_cli_opt(cli, "ckpt"), *image = rd_cli_opt(cli, "image"), *shard = rd_cli_opt(cli, "shard");
  const char *caption = rd_cli_opt(cli, "caption"), *traj_path = rd_cli_opt(cli, "trajectory");
  const char *vocab = rd_cli_opt(cli, "vocab");
  const int L = env->cfg.model.gen_len, H = env->cfg.model.image_size;
  long index;
  RD_TRY(rd_cli_opt_int(cli, "index", -1, &index));
  if (vocab) {
    RD_TRY(rd_vocab_load(&env->vocab, vocab));
    env->has_vocab = 1;
  } else {
    RD_TRY(rd_stage_vocab(env));
  }
  rd_decode_opts o = *o_in;
  if (o.steps == 0) o.steps = L;
  RD_TRY(rd_decode_check(&o, L));

  rd_shard_batch sb;
  memset(&sb, 0, sizeof sb);
  rd_shard_info info;
  memset(&info, 0, sizeof info);
  uint8_t *img = NULL;
  int64_t sample_id = 0;
  int feature_dim = 0, s = RD_OK;
  if (shard) {
    s = read_shard_sample(shard, index, rd_vocab_hash(&env->vocab), &sb, &info);
    if (s == RD_OK && info.gen_len != L)
      s = rd_err(RD_EINVAL, "%s has gen_len %d, the model %d", shard, info.gen_len, L);
    if (s == RD_OK && !sb.features && info.image_size != H)
      s = rd_err(RD_EINVAL, "%s holds %d x %d images, the model reads %d x %d", shard, info.image_size,
                 info.image_size, H, H);
    if (s == RD_OK) sample_id = sb.sample_id[0], feature_dim = sb.features ? info.feat_dim : 0;
  } else {
    img = rd_malloc((size_t)H * H * 3, "the image");
    s = img ? read_image(image, H, img) : RD_ENOMEM;
  }
  int32_t *init = malloc((size_t)L * sizeof *init), *out = malloc((size_t)L * sizeof *out);
  if (s == RD_OK && (!init || !out)) s = rd_err(RD_ENOMEM, "out of memory for the caption");
  if (s == RD_OK) {
    if (caption) s = parse_caption(&env->vocab, caption, init, L);
    else for (int i = 0; i < L; i++) init[i] = RD_TOK_MASK;
  }
  rd_vlm m;
  memset(&m, 0, sizeof m);
  char loaded[RD_PATH_MAX] = "";
  long long step = 0;
  if (s == RD_OK) s = rd_infer_init(&m, env, 1, feature_dim);
  if (s == RD_OK) {
    s = rd_infer_load(&m, env, ckpt, loaded, sizeof loaded, &step);
    if (s == 1) s = rd_err(RD_EINVAL, "%s holds no checkpoint", ckpt);
  }
  rd_decode_traj traj = {0};
  rd_decode_output dout = {out, traj_path ? &traj : NULL, 0, NULL};
  rd_decode_input in = {1, shard ? sb.images : img, shard ? sb.features : NULL, &sample_id, init};
  double t0 = rd_clock_now();
  if (s == RD_OK) s = rd_decode(&m, &o, &in, &dout);
  double dt = rd_clock_now() - t0;
  if (s == RD_OK) {
    char text[8192];
    int n_words = rd_decode_caption_len(out, L, RD_TOK_EOS);
    s = rd_vocab_decode(&env->vocab, out, n_words, 1, text, sizeof text);
    if (s == RD_OK) {
      printf("%s\n", text);
      fprintf(stderr, "generate: %s (step %lld), %s, %d steps, %" PRId64 " forward passes, %.3f s\n", loaded, step,
              rd_decode_mode_name(o.mode), o.steps, dout.forward_passes, dt);
      /* An empty line alone would look like a failure of the command. */
      if (n_words == 0)
        fprintf(stderr, "generate: the caption is empty: its first token is [EOS]%s\n",
                o.mode == RD_DECODE_REFINE
                    ? "; refine decoding re-judges every position, which only a model trained with revision "
                      "(stage1, stage2) can do: try --mode remask for base and mask models"
                    : "");
      if (shard && rd_vocab_decode(&env->vocab, sb.captions, L, 1, text, sizeof text) == RD_OK)
        fprintf(stderr, "reference: %s\n", text);
    }
  }
  if (s == RD_OK && traj_path) {
    s = write_trajectory(traj_path, &env->vocab, &o, init, &traj, L);
    if (s == RD_OK) fprintf(stderr, "trajectory: %s\n", traj_path);
  }
  rd_decode_traj_free(&traj);
  if (m.params) rd_vlm_free(&m);
  free(init);
  free(out);
  free(img);
  if (shard) rd_shard_batch_free(&sb);
  return s;
}

static int parse_double(const rd_cli *cli, const char *name, double def, double *out) {
  const char *v = rd_cli_opt(cli, name);
  *out = def;
  if (!v) return RD_OK;
  char *end;
  *out = strtod(v, &end);
  if (end == v || *end) return rd_err(RD_EUSAGE, "--%s wants a number, got '%s'", name, v);
  return RD_OK;
}

int rd_cmd_generate(const rd_cli *cli) {
  static const char *const known[] = {"ckpt", "image", "shard", "index", "steps", "mode", "caption", "trajectory",
                                      "temperature", "block", "tau", "top-frac", "seed", "vocab", NULL};
  RD_TRY(rd_cli_check_opts(cli, known));
  const int has_image = rd_cli_opt(cli, "image") != NULL, has_shard = rd_cli_opt(cli, "shard") != NULL;
  if (cli->n_args || !rd_cli_opt(cli, "ckpt") || has_image == has_shard ||
      (has_shard && !rd_cli_opt(cli, "index")))
    return rd_err(RD_EUSAGE, "%s", usage);
  long steps, block, seed;
  double temperature, tau, top_frac;
  RD_TRY(rd_cli_opt_int(cli, "steps", 0, &steps));
  RD_TRY(rd_cli_opt_int(cli, "block", 0, &block));
  RD_TRY(rd_cli_opt_int(cli, "seed", 0, &seed));
  RD_TRY(parse_double(cli, "temperature", 0, &temperature));
  RD_TRY(parse_double(cli, "tau", 0, &tau));
  RD_TRY(parse_double(cli, "top-frac", 1, &top_frac));
  if (steps < 0 || block < 0 || seed < 0) return rd_err(RD_EUSAGE, "--steps, --block and --seed must be >= 0");
  rd_decode_mode mode = RD_DECODE_REFINE;
  const char *mode_s = rd_cli_opt(cli, "mode");
  if (mode_s && rd_decode_mode_parse(mode_s, &mode) < 0) return rd_err_wrap(RD_EUSAGE, "--mode");
  rd_stage_env env;
  int s = rd_stage_begin(&env, cli);
  if (s == RD_OK && env.grid.size > 1) s = rd_err(RD_EUSAGE, "generate runs as one process, not under mpirun");
  /* The config's decoding options (those eval and draft use), then what the
   * command line says. */
  rd_decode_opts o;
  if (s == RD_OK) {
    rd_infer_decode_opts(&env.cfg, mode, (int)steps, &o);
    if (rd_cli_opt(cli, "block")) o.block = (int)block;
    if (rd_cli_opt(cli, "seed")) o.seed = (uint64_t)seed;
    if (rd_cli_opt(cli, "temperature")) o.temperature = temperature;
    if (rd_cli_opt(cli, "tau")) o.tau = tau;
    if (rd_cli_opt(cli, "top-frac")) o.top_frac = top_frac;
    s = run(&env, cli, &o);
  }
  rd_stage_end(&env);
  return s;
}
