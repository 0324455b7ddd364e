/* The word-level vocabulary of rediff.
 *
 * Captions are sequences of words (the grammar's output split on spaces), so
 * a token is a word. Four special tokens sit at fixed ids; the words follow,
 * most frequent first with ties in byte order, so the same training captions
 * always give the same ids on every machine. The vocabulary is stored as
 * vocab.txt (one token per line in id order, docs/formats.md) and identified
 * by a 64-bit FNV-1a hash that every shard and checkpoint records, so a model
 * is never fed ids from another vocabulary. */
#ifndef RD_IO_VOCAB_H
#define RD_IO_VOCAB_H

#include <stddef.h>
#include <stdint.h>

enum {
  RD_TOK_MASK = 0, /* the diffusion mask, "[MASK]" */
  RD_TOK_EOS = 1,  /* end of caption and padding, "[EOS]" */
  RD_TOK_BOS = 2,  /* "[BOS]" */
  RD_TOK_UNK = 3,  /* a word not in the vocabulary, "[UNK]" */
  RD_TOK_NSPECIAL = 4,
};

/* Longest word (bytes) accepted by the builder and the loader. */
#define RD_VOCAB_WORD_MAX 256

typedef struct rd_vocab {
  int n;             /* tokens, specials included */
  char **tokens;     /* [n] id -> NUL-terminated token */
  uint64_t hash;     /* rd_vocab_hash of the tokens */
  int32_t *slots;    /* [n_slots] open-addressing table word -> id, -1 empty */
  size_t n_slots;    /* a power of two, at least 2 n */
} rd_vocab;

/* Counters of rd_vocab_encode, summed over calls so a stage can report
 * "312 of 20000 captions truncated" once at the end. */
typedef struct {
  int64_t n_captions;
  int64_t n_words;     /* words seen, before truncation */
  int64_t n_unk;       /* words mapped to [UNK] */
  int64_t n_truncated; /* captions longer than L */
} rd_vocab_stats;

/* Counts words of training captions; finish turns the counts into ids. */
typedef struct rd_vocab_builder {
  char **words;     /* [n] distinct words in order of first sight */
  int64_t *counts;  /* [n] */
  int n, cap;
  int32_t *slots;   /* [n_slots] word -> index, -1 empty */
  size_t n_slots;
} rd_vocab_builder;

void rd_vocab_builder_init(rd_vocab_builder *b);
void rd_vocab_builder_free(rd_vocab_builder *b);
/* Counts the n words of one caption. A word must be non-empty, at most
 * RD_VOCAB_WORD_MAX bytes, free of whitespace and not a special token. */
int rd_vocab_builder_add(rd_vocab_builder *b, const char *const *words, int n);
/* Makes the vocabulary: specials, then words by count descending, ties by
 * strcmp. The n_extra words of extra (e.g. the prompt's words) are included
 * even if never counted; those come last, in byte order. The builder is
 * left unchanged and may be freed afterwards. */
int rd_vocab_builder_finish(const rd_vocab_builder *b, const char *const *extra, int n_extra,
                            rd_vocab *v);

/* Writes vocab.txt atomically: one token per line in id order. */
int rd_vocab_write(const rd_vocab *v, const char *path);
/* Loads and validates vocab.txt; an error names the file and line (an empty
 * line, a duplicate, a special token not at its id, whitespace in a token). */
int rd_vocab_load(rd_vocab *v, const char *path);
/* Makes a vocabulary from tokens in id order (the specials first), with the
 * same validation as the loader; where names the source in messages. */
int rd_vocab_from_tokens(rd_vocab *v, const char *const *tokens, int n, const char *where);
void rd_vocab_free(rd_vocab *v);

int rd_vocab_size(const rd_vocab *v);
/* The size rounded up to a multiple (vocab-parallel LM head: every tensor
 * rank holds size/tp rows); the padding ids are never produced by encode.
 * Returns RD_EINVAL for multiple < 1. */
int rd_vocab_padded_size(const rd_vocab *v, int multiple);

/* FNV-1a 64 over every token followed by '\n', in id order: the hash of the
 * bytes of vocab.txt as rd_vocab_write writes it. */
uint64_t rd_vocab_hash(const rd_vocab *v);
/* The hash as 16 lower-case hex digits (out has room for 17 bytes). */
void rd_vocab_hash_hex(uint64_t hash, char out[17]);
/* Parses 16 hex digits; anything else is RD_EINVAL. */
int rd_vocab_hash_parse(const char *s, uint64_t *hash);

/* The id of word, or -1 when absent. */
int rd_vocab_id(const rd_vocab *v, const char *word);
/* The token of id, or NULL when id is out of range. */
const char *rd_vocab_token(const rd_vocab *v, int id);

/* Encodes n_words words into ids[L]: word ids (unknown -> [UNK]), then [EOS]
 * up to L. A caption longer than L is cut to L words. *len (may be NULL)
 * gets the caption length min(n_words, L); stats (may be NULL) is added to. */
int rd_vocab_encode(const rd_vocab *v, const char *const *words, int n_words, int32_t *ids,
                    int L, int *len, rd_vocab_stats *stats);
/* Like rd_vocab_encode on text split at whitespace. */
int rd_vocab_encode_text(const rd_vocab *v, const char *text, int32_t *ids, int L, int *len,
                         rd_vocab_stats *stats);
/* The tokens of ids[n] as pointers into the vocabulary (words has room for n),
 * stopping before the first [EOS] if stop_at_eos. An id outside the
 * vocabulary is RD_EINVAL naming its position. */
int rd_vocab_decode_words(const rd_vocab *v, const int32_t *ids, int n, int stop_at_eos,
                          const char **words, int *n_words);
/* The tokens of ids[n] joined by single spaces into out[out_n] ("[MASK]" for
 * a mask); RD_EINVAL when out is too small. */
int rd_vocab_decode(const rd_vocab *v, const int32_t *ids, int n, int stop_at_eos, char *out,
                    size_t out_n);

#endif
