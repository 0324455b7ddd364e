/* Shard sets (io/shard.h): the shards <split>-00000.h5, <split>-00001.h5, ...
 * of one folder, read by global index. */
#include "io/shard.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/shard_internal.h"
#include "io/vocab.h"

int rd_shard_name(char *out, size_t n, const char *dir, const char *split, int index) {
  int len = snprintf(out, n, "%s/%s-%05d.h5", dir, split, index);
  if (len < 0 || (size_t)len >= n) return rd_err(RD_EINVAL, "path too long: %s/%s-...", dir, split);
  return RD_OK;
}

static int by_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* The indices of the files <split>-<digits>.h5 in dir, sorted. */
static int list_shards(const char *dir, const char *split, int **idx, int *n) {
  *idx = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return rd_err(RD_EINVAL, "cannot read the folder %s: %s", dir, strerror(errno));
  size_t sl = strlen(split);
  int cap = 0, rc = RD_OK;
  struct dirent *e;
  while (rc == RD_OK && (e = readdir(d)) != NULL) {
    const char *name = e->d_name;
    if (strncmp(name, split, sl) != 0 || name[sl] != '-') continue;
    const char *p = name + sl + 1;
    size_t digits = strspn(p, "0123456789");
    if (digits < 5 || digits > 9 || strcmp(p + digits, ".h5") != 0) continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 64;
      int *grown = realloc(*idx, (size_t)cap * sizeof *grown);
      if (!grown) {
        rc = rd_err(RD_ENOMEM, "out of memory listing %s", dir);
        break;
      }
      *idx = grown;
    }
    (*idx)[(*n)++] = atoi(p);
  }
  closedir(d);
  if (rc == RD_OK && *n > 1) qsort(*idx, (size_t)*n, sizeof **idx, by_int); /* *idx is NULL when none */
  return rc;
}

void rd_shardset_close(rd_shardset *set) {
  for (int i = 0; i < set->n_shards; i++) rd_shard_close(set->shards[i]);
  free(set->shards);
  free(set->offset);
  memset(set, 0, sizeof *set);
}

static int shardset_open(rd_shardset *set, const char *dir, const char *split, uint64_t expect_hash) {
  int *idx, n;
  RD_TRY(list_shards(dir, split, &idx, &n));
  int rc = RD_OK;
  if (n == 0) rc = rd_err(RD_EINVAL, "%s: no shards %s-00000.h5, ... (was `rediff data synth` run?)", dir, split);
  for (int i = 0; i < n && rc == RD_OK; i++)
    if (idx[i] != i)
      rc = rd_err(RD_EINVAL, "%s: %s-%05d.h5 is missing (but %s-%05d.h5 is there)", dir, split, i,
                  split, idx[i]);
  free(idx);
  RD_TRY(rc);
  set->shards = rd_calloc((size_t)n, sizeof *set->shards, "shard set");
  set->offset = rd_calloc((size_t)n + 1, sizeof *set->offset, "shard set");
  if (!set->shards || !set->offset) return RD_ENOMEM;
  char path[RD_PATH_MAX];
  for (int i = 0; i < n; i++) {
    RD_TRY(rd_shard_name(path, sizeof path, dir, split, i));
    RD_TRY(rd_shard_open(&set->shards[i], path, expect_hash));
    set->n_shards = i + 1;
    const rd_shard_info *in = rd_shard_get_info(set->shards[i]), *first = &set->info;
    if (strcmp(in->split, split) != 0)
      return rd_err(RD_EINVAL, "%s: attribute split is \"%s\", the file name says \"%s\"", path,
                    in->split, split);
    if (i == 0) {
      set->info = *in;
    } else if (!rd_shard_same_shape(in, first) || in->vocab_hash != first->vocab_hash) {
      char a[17], b[17];
      rd_vocab_hash_hex(in->vocab_hash, a);
      rd_vocab_hash_hex(first->vocab_hash, b);
      return rd_err(RD_EINVAL,
                    "%s: differs from %s-00000.h5 (image_size %d/%d, features %dx%d/%dx%d, gen_len "
                    "%d/%d, halluc %d/%d, scenes %dx%d/%dx%d, vocab_hash %s/%s)",
                    path, split, in->image_size, first->image_size, in->n_patches, in->feat_dim,
                    first->n_patches, first->feat_dim, in->gen_len, first->gen_len, in->has_halluc,
                    first->has_halluc, in->scene_k, in->scene_f, first->scene_k, first->scene_f, a, b);
    }
    set->offset[i + 1] = set->offset[i] + in->n_samples;
  }
  set->n_total = set->offset[n];
  set->info.n_samples = set->n_total;
  return RD_OK;
}

int rd_shardset_open(rd_shardset *set, const char *dir, const char *split, uint64_t expect_hash) {
  memset(set, 0, sizeof *set);
  if (!rd_shard_valid_split(split))
    return rd_err(RD_EINVAL, "split \"%s\" is not a short [a-z0-9_] name", split);
  int rc = shardset_open(set, dir, split, expect_hash);
  if (rc < 0) rd_shardset_close(set);
  return rc;
}

/* The shard holding global index gi (binary search over the offsets). */
static int shard_of(const rd_shardset *set, int64_t gi) {
  int lo = 0, hi = set->n_shards - 1;
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (set->offset[mid] <= gi) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

int rd_shardset_read_range(rd_shardset *set, int64_t begin, int64_t count, rd_shard_batch *b,
                           int64_t slot) {
  if (begin < 0 || count < 0 || begin > set->n_total - count)
    return rd_err(RD_EINVAL, "samples %" PRId64 "..%" PRId64 " outside the %" PRId64
                  " samples of the shard set", begin, begin + count - 1, set->n_total);
  while (count > 0) {
    int i = shard_of(set, begin);
    int64_t local = begin - set->offset[i];
    int64_t take = set->offset[i + 1] - begin;
    if (take > count) take = count;
    RD_TRY(rd_shard_read_block(set->shards[i], local, take, b, slot));
    begin += take;
    slot += take;
    count -= take;
  }
  return RD_OK;
}

int rd_shardset_read(rd_shardset *set, int64_t gi, rd_shard_batch *b, int64_t slot) {
  return rd_shardset_read_range(set, gi, 1, b, slot);
}

int rd_shardset_slice(int64_t n_total, int dp_rank, int dp_size, int64_t *begin, int64_t *count) {
  if (dp_size < 1 || dp_rank < 0 || dp_rank >= dp_size || n_total < 0)
    return rd_err(RD_EINVAL, "data-parallel rank %d of %d over %" PRId64 " samples", dp_rank,
                  dp_size, n_total);
  int64_t base = n_total / dp_size, extra = n_total % dp_size;
  *begin = dp_rank * base + (dp_rank < extra ? dp_rank : extra);
  *count = base + (dp_rank < extra);
  return RD_OK;
}

static int by_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int rd_shardset_check(rd_shardset *set, int vocab_size, int part, int n_parts) {
  for (int i = part; i < set->n_shards; i += n_parts) RD_TRY(rd_shard_check_tokens(set->shards[i], vocab_size));
  if (part != 0 || set->n_total == 0) return RD_OK;
  int64_t *ids = rd_calloc((size_t)set->n_total, sizeof *ids, "sample ids");
  if (!ids) return RD_ENOMEM;
  int st = RD_OK;
  for (int i = 0; i < set->n_shards && st == RD_OK; i++) {
    st = rd_shard_sample_ids(set->shards[i], ids + set->offset[i]);
    for (int64_t j = set->offset[i]; j < set->offset[i + 1] && st == RD_OK; j++)
      if (ids[j] < 0)
        st = rd_err(RD_EINVAL, "%s: dataset /sample_id: sample %" PRId64 " has id %" PRId64 "; ids are >= 0",
                    rd_shard_path(set->shards[i]), j - set->offset[i], ids[j]);
  }
  if (st == RD_OK) {
    qsort(ids, (size_t)set->n_total, sizeof *ids, by_i64);
    for (int64_t j = 1; j < set->n_total && st == RD_OK; j++)
      if (ids[j] == ids[j - 1])
        st = rd_err(RD_EINVAL, "%s: sample_id %" PRId64 " appears twice in the %s shards", rd_shard_path(set->shards[0]),
                    ids[j], set->info.split);
  }
  free(ids);
  return st;
}
