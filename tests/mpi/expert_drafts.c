/* Writes draft files for the expert e2e test (tests/e2e/expert_gather.sh):
 * the first N training captions of RUN_DIR, each corrupted three ways as
 * drafts at steps 16, 8 and 4 (plus a second step-4 draft for every tenth
 * sample), spread over F files RUN_DIR/drafts/r<R>/rank<k>.h5 in an order
 * that depends on F, so the gather's output must not.
 *
 *   expert_drafts RUN_DIR FILES ROUND N */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "../unit/expert_fixture.h"
#include "io/core/fs.h"
#include "io/drafts.h"
#include "io/shard.h"

static int run(const char *run_dir, int n_files, int round, int n) {
  char path[RD_PATH_MAX + 64], data[RD_PATH_MAX];
  rd_vocab v;
  snprintf(data, sizeof data, "%s/data", run_dir);
  snprintf(path, sizeof path, "%s/vocab.txt", data);
  RD_TRY(rd_vocab_load(&v, path));
  rd_shardset set;
  RD_TRY(rd_shardset_open(&set, data, "train", v.hash));
  rd_shard_batch b;
  RD_TRY(rd_shard_batch_init(&b, &set.info, 1));
  const int L = set.info.gen_len;
  rd_drafts *f = calloc((size_t)n_files, sizeof *f);
  for (int k = 0; k < n_files; k++) RD_TRY(rd_drafts_init(&f[k], L, v.hash, round, k));
  int32_t row[1024];
  static const int steps[3] = {16, 8, 4};
  int64_t written = 0;
  for (int64_t i = 0; i < n && i < set.n_total; i++) {
    RD_TRY(rd_shardset_read(&set, i, &b, 0));
    rd_scene sc;
    RD_TRY(rd_scene_unpack(b.scenes, set.info.scene_k - 1, &sc));
    for (int k = 0; k < 3 + (i % 10 == 0); k++) {
      int how = (int)((i * 3 + k) % FX_KINDS);
      RD_TRY(fx_corrupt(&v, &sc, b.captions, b.caption_len[0], 5, i, how, row, L));
      int file = (int)((i * 7 + k * 3) % n_files);
      RD_TRY(rd_drafts_append(&f[file], i, steps[k < 3 ? k : 2], row, 1.0f));
      written++;
    }
  }
  for (int k = 0; k < n_files; k++) {
    snprintf(path, sizeof path, "%s/drafts/r%d/rank%d.h5", run_dir, round, k);
    RD_TRY(rd_drafts_write(&f[k], path));
    rd_drafts_free(&f[k]);
  }
  printf("expert_drafts: %" PRId64 " drafts in %d files\n", written, n_files);
  free(f);
  rd_shard_batch_free(&b);
  rd_shardset_close(&set);
  rd_vocab_free(&v);
  return RD_OK;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: expert_drafts RUN_DIR FILES ROUND N\n");
    return 2;
  }
  if (run(argv[1], atoi(argv[2]), atoi(argv[3]), atoi(argv[4])) < 0) {
    fprintf(stderr, "expert_drafts: %s\n", rd_err_msg());
    return 1;
  }
  return 0;
}
