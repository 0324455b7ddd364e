/* Drafts and revisions: the files between the draft, expert and stage2
 * stages of one self-correction round (schemas in docs/formats.md).
 *
 *   drafts/r<R>/rank<k>.h5   what the model wrote: one row per (sample, steps)
 *     /sample_id int64 [N]   /steps int32 [N]   /tokens int32 [N, L]
 *     /margin float32 [N]    how close decoding came to another draft
 *                            (rd_decode_margin); not read back
 *
 *   revisions/r<R>.h5        what the expert made of them, rows sorted by
 *                            (sample_id, steps, original tokens)
 *     /sample_id int64 [M]   /steps int32 [M]   /right uint8 [M]
 *     /original int32 [M, L] the draft as read
 *     /draft    int32 [M, L] the model input (after the length policy)
 *     /refined  int32 [M, L] the targets
 *     /mistake  uint8 [M, L] 1 where the expert corrected: Stage II's loss
 *     /edits    int32 [E, 5] row, draft start, draft length, target start,
 *                            target length
 *     /edit_kind enum  [E]   count, object, relation, shape_count, syntax,
 *                            repeat, text
 *
 * Both are small (rows of gen_len tokens), so they are held in memory whole
 * and written in one go to a temporary name that is renamed when complete.
 * HDF5 here is built without thread safety: one thread at a time. */
#ifndef RD_IO_DRAFTS_H
#define RD_IO_DRAFTS_H

#include <stddef.h>
#include <stdint.h>

#define RD_DRAFTS_SCHEMA_VERSION 1
#define RD_REVISIONS_SCHEMA_VERSION 1

/* ---- drafts */

typedef struct {
  int64_t n;           /* rows */
  int gen_len;         /* L */
  int round, rank;     /* the round and the draft rank that wrote the file */
  uint64_t vocab_hash;
  int64_t *sample_id;  /* [n] */
  int32_t *steps;      /* [n] decoding steps that produced the row */
  int32_t *tokens;     /* [n, L] cut at the first [EOS], [EOS]-padded */
  float *margin;       /* [n] smallest decision margin of each draft; NULL after rd_drafts_read */
  int64_t cap;
} rd_drafts;

int rd_drafts_init(rd_drafts *d, int gen_len, uint64_t vocab_hash, int round, int rank);
void rd_drafts_free(rd_drafts *d);
/* Adds one draft (tokens[L], copied) and its decoding margin. Everything
 * after the first [EOS] is written as [EOS]: decoding output is cut at its
 * first [EOS]. */
int rd_drafts_append(rd_drafts *d, int64_t sample_id, int steps, const int32_t *tokens, float margin);
/* Writes the file atomically (parent folders made). */
int rd_drafts_write(const rd_drafts *d, const char *path);
/* Reads and checks a drafts file: schema version, attributes, shapes, and
 * tokens in [0, vocab_size) with only [EOS] after the first [EOS];
 * expect_hash 0 skips the vocabulary check, vocab_size 0 the range check.
 * Errors name the file, the dataset and the row. */
int rd_drafts_read(const char *path, uint64_t expect_hash, int vocab_size, rd_drafts *d);

/* ---- revisions */

enum {
  RD_EDIT_COUNT,       /* a wrong count sentence (ShapesCap fact kinds first) */
  RD_EDIT_OBJECT,
  RD_EDIT_RELATION,
  RD_EDIT_SHAPE_COUNT,
  RD_EDIT_SYNTAX,      /* a sentence that does not parse, or text after the last one */
  RD_EDIT_REPEAT,      /* a sentence repeating an earlier one's fact */
  RD_EDIT_TEXT,        /* an edit with no fact kind (reference and command experts) */
  RD_EDIT_KINDS
};
/* "count", "object", "relation", "shape_count", "syntax", "repeat", "text". */
const char *rd_edit_kind_name(int kind);

typedef struct {
  int64_t n;           /* rows (revised drafts and drafts judged right) */
  int gen_len;
  int round;
  uint64_t vocab_hash;
  char expert[32];         /* expert.kind */
  char length_policy[32];  /* expert.length_policy */
  int64_t *sample_id;  /* [n] */
  int32_t *steps;      /* [n] */
  uint8_t *right;      /* [n] 1: judged right (no edits, mistake all 0) */
  int32_t *original;   /* [n, L] */
  int32_t *draft;      /* [n, L] */
  int32_t *refined;    /* [n, L] */
  uint8_t *mistake;    /* [n, L] */
  int64_t n_edits;
  int32_t *edits;      /* [n_edits, 5] */
  uint8_t *edit_kind;  /* [n_edits] RD_EDIT_* */
  int64_t cap, edit_cap;
} rd_revisions;

int rd_revisions_init(rd_revisions *r, int gen_len, uint64_t vocab_hash, int round,
                      const char *expert, const char *length_policy);
void rd_revisions_free(rd_revisions *r);
/* Adds one row (arrays of L, copied); returns its index in *row. */
int rd_revisions_append(rd_revisions *r, int64_t sample_id, int steps, int right,
                        const int32_t *original, const int32_t *draft, const int32_t *refined,
                        const uint8_t *mistake);
/* Adds one edit {row, draft start, draft length, target start, target length}. */
int rd_revisions_add_edit(rd_revisions *r, const int32_t edit[5], int kind);
int rd_revisions_write(const rd_revisions *r, const char *path);
int rd_revisions_read(const char *path, uint64_t expect_hash, rd_revisions *r);

#endif
