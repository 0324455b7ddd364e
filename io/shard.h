/* Shards: the samples of rediff, one HDF5 file per shard, written once and
 * read many times (schema in docs/formats.md).
 *
 *   /images       uint8   [N,H,W,3]   or /features float32 [N,Np,Dv]
 *   /captions     int32   [N,gen_len] token ids, [EOS]-padded
 *   /caption_len  int32   [N]
 *   /halluc       int32   [N,gen_len] optional, the caption with one fact changed
 *   /halluc_span  int32   [N,2]       optional, (start, length) of the change
 *   /scenes       int32   [N,K,F]     optional, stored as given
 *   /sample_id    int64   [N]         global id, stable across stages
 *
 * The writer buffers samples and writes them a chunk at a time into a
 * temporary file that is renamed into place only when complete. The reader
 * checks everything it relies on when it opens a shard (schema version,
 * datasets, shapes, vocabulary hash, caption lengths), so later reads cannot
 * meet a surprise; every error names the file and the dataset. A shard set is
 * the shards <split>-00000.h5, <split>-00001.h5, ... of one folder, read by
 * global index.
 *
 * HDF5 here is built without thread safety: use a shard, a writer or a set
 * from one thread at a time. */
#ifndef RD_IO_SHARD_H
#define RD_IO_SHARD_H

#include <stddef.h>
#include <stdint.h>

#define RD_SHARD_SCHEMA_VERSION 1
#define RD_SHARD_STR 128
/* Samples per HDF5 chunk and per write when the caller passes 0. */
#define RD_SHARD_CHUNK 64

/* What a shard holds. Writers fill it (n_samples is counted for them);
 * readers get it from the file. */
typedef struct rd_shard_info {
  int64_t n_samples;       /* N */
  int image_size;          /* H = W of /images (with /features: of the source images, or 0) */
  int n_patches, feat_dim; /* both > 0: /features [N,Np,Dv] instead of /images */
  int gen_len;             /* L, columns of /captions and /halluc */
  int has_halluc;          /* /halluc and /halluc_span present */
  int scene_k, scene_f;    /* both > 0: /scenes [N,K,F] present */
  uint64_t vocab_hash;     /* rd_vocab_hash of the vocabulary of the ids */
  char split[RD_SHARD_STR];      /* "train" or "eval" (any short [a-z0-9_] name) */
  char created_by[RD_SHARD_STR]; /* free text, e.g. "rediff data synth" */
} rd_shard_info;

/* Storage for count samples of one shape (rd_shard_batch_init allocates the
 * arrays the shape has; the others stay NULL). */
typedef struct rd_shard_batch {
  int64_t cap;            /* samples it holds room for */
  rd_shard_info info;     /* the shape it was made for */
  uint8_t *images;        /* [cap,H,W,3] or NULL */
  float *features;        /* [cap,Np,Dv] or NULL */
  int32_t *captions;      /* [cap,gen_len] */
  int32_t *caption_len;   /* [cap] */
  int32_t *halluc;        /* [cap,gen_len] or NULL */
  int32_t *halluc_span;   /* [cap,2] or NULL */
  int32_t *scenes;        /* [cap,K,F] or NULL */
  int64_t *sample_id;     /* [cap] */
} rd_shard_batch;

/* One sample, as pointers into caller memory (writing) or a batch (reading). */
typedef struct rd_shard_sample {
  const uint8_t *image;   /* [H,W,3], or NULL with features */
  const float *features;  /* [Np,Dv], or NULL with images */
  const int32_t *caption; /* [gen_len] */
  int32_t caption_len;    /* 0 .. gen_len */
  const int32_t *halluc;  /* [gen_len] when has_halluc, else ignored */
  int32_t halluc_span[2]; /* start, length within [0, gen_len] */
  const int32_t *scene;   /* [K,F] when the shard has scenes, else ignored */
  int64_t sample_id;
} rd_shard_sample;

int rd_shard_batch_init(rd_shard_batch *b, const rd_shard_info *info, int64_t cap);
void rd_shard_batch_free(rd_shard_batch *b);
/* Sample i of the batch as a view. */
void rd_shard_batch_sample(const rd_shard_batch *b, int64_t i, rd_shard_sample *s);

/* ---- writing */

typedef struct rd_shard_writer rd_shard_writer;

/* Starts a shard at path (parent folders are made). chunk: samples per HDF5
 * chunk and per write (0 = RD_SHARD_CHUNK); deflate: gzip level 0 (none) to
 * 9, with the shuffle filter on multi-byte datasets. */
int rd_shard_writer_open(rd_shard_writer **w, const char *path, const rd_shard_info *info,
                         int chunk, int deflate);
/* Adds one sample (copied). After an error call rd_shard_writer_abort. */
int rd_shard_writer_append(rd_shard_writer *w, const rd_shard_sample *s);
/* Writes what is buffered and the attributes, closes the file and renames it
 * to its path. Frees w in every case; on failure no file is left. */
int rd_shard_writer_close(rd_shard_writer *w);
/* Drops the shard: the temporary file is removed, w freed. NULL is fine. */
void rd_shard_writer_abort(rd_shard_writer *w);

/* ---- reading one shard */

typedef struct rd_shard rd_shard;

/* Opens and checks a shard; expect_hash 0 skips the vocabulary check. */
int rd_shard_open(rd_shard **s, const char *path, uint64_t expect_hash);
void rd_shard_close(rd_shard *s);
const rd_shard_info *rd_shard_get_info(const rd_shard *s);
const char *rd_shard_path(const rd_shard *s);
/* Reads every caption (and hallucinated caption) and checks its ids: each
 * in [0, vocab_size), words (from [UNK] on) for caption_len positions and
 * [EOS] after them; a hallucinated caption holds words and [EOS] only.
 * Errors name the file, dataset, sample and position. Reads N x gen_len
 * ints in blocks, so opening stays cheap and this is the caller's choice. */
int rd_shard_check_tokens(rd_shard *s, int vocab_size);
/* The /sample_id column, n_samples values, into ids. */
int rd_shard_sample_ids(rd_shard *s, int64_t *ids);
/* Reads samples begin .. begin+count-1 into slots slot .. slot+count-1 of b,
 * which must have been made for the shard's shape. */
int rd_shard_read_block(rd_shard *s, int64_t begin, int64_t count, rd_shard_batch *b,
                        int64_t slot);
/* Reads sample i into slot of b. */
int rd_shard_read(rd_shard *s, int64_t i, rd_shard_batch *b, int64_t slot);

/* ---- shard sets */

typedef struct rd_shardset {
  int n_shards;
  rd_shard **shards;  /* [n_shards] */
  int64_t *offset;    /* [n_shards+1] global index of each shard's first sample */
  int64_t n_total;    /* samples in all shards */
  rd_shard_info info; /* the common shape; n_samples = n_total */
} rd_shardset;

/* "<dir>/<split>-<index, 5 digits>.h5" */
int rd_shard_name(char *out, size_t n, const char *dir, const char *split, int index);
/* Opens <split>-00000.h5, <split>-00001.h5, ... in dir (no gaps allowed);
 * all must share shape, split and vocabulary hash (expect_hash if not 0). */
int rd_shardset_open(rd_shardset *set, const char *dir, const char *split, uint64_t expect_hash);
void rd_shardset_close(rd_shardset *set);
/* rd_shard_check_tokens on the shards i with i % n_parts == part (one part
 * per rank splits the reading), and, on part 0, every sample_id >= 0 and no
 * id twice in the set (drafts, revisions and eval rows are keyed by it). */
int rd_shardset_check(rd_shardset *set, int vocab_size, int part, int n_parts);
/* Reads the sample of global index gi into slot of b. */
int rd_shardset_read(rd_shardset *set, int64_t gi, rd_shard_batch *b, int64_t slot);
/* Reads global samples begin .. begin+count-1 (across shard boundaries) into
 * slots slot .. slot+count-1 of b. */
int rd_shardset_read_range(rd_shardset *set, int64_t begin, int64_t count, rd_shard_batch *b,
                           int64_t slot);
/* The contiguous slice of n_total samples read by data-parallel rank dp_rank
 * of dp_size: slices are disjoint, cover all samples in rank order and
 * differ in size by at most one. */
int rd_shardset_slice(int64_t n_total, int dp_rank, int dp_size, int64_t *begin, int64_t *count);

#endif
