#include "io/vocab.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/core/hash.h"

static const char *const rd_specials[RD_TOK_NSPECIAL] = {"[MASK]", "[EOS]", "[BOS]", "[UNK]"};


static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* ---- word -> index table (open addressing, linear probing) shared by the
 * vocabulary and the builder; keys live in the caller's array of strings. */

static size_t table_find(const int32_t *slots, size_t n_slots, char *const *keys, const char *w,
                         size_t len) {
  size_t i = (size_t)rd_hash_bytes(RD_HASH_INIT, w, len) & (n_slots - 1);
  while (slots[i] >= 0) {
    const char *k = keys[slots[i]];
    if (strncmp(k, w, len) == 0 && k[len] == '\0') return i;
    i = (i + 1) & (n_slots - 1);
  }
  return i; /* the empty slot where w would go */
}

static int table_rebuild(int32_t **slots, size_t *n_slots, char *const *keys, int n,
                         size_t want) {
  size_t ns = 16;
  while (ns < want) ns *= 2;
  int32_t *s = rd_malloc(ns * sizeof *s, "vocabulary table");
  if (!s) return RD_ENOMEM;
  for (size_t i = 0; i < ns; i++) s[i] = -1;
  for (int id = 0; id < n; id++) s[table_find(s, ns, keys, keys[id], strlen(keys[id]))] = id;
  free(*slots);
  *slots = s;
  *n_slots = ns;
  return RD_OK;
}

/* Why a token is unusable, or NULL. */
static const char *word_problem(const char *w) {
  size_t n = strlen(w);
  if (n == 0) return "empty";
  if (n > RD_VOCAB_WORD_MAX) return "longer than 256 bytes";
  for (size_t i = 0; i < n; i++)
    if (is_space(w[i])) return w[i] == '\r' ? "contains a carriage return (Windows line ends?)"
                                            : "contains whitespace";
  return NULL;
}

/* ---- the builder */

void rd_vocab_builder_init(rd_vocab_builder *b) { memset(b, 0, sizeof *b); }

void rd_vocab_builder_free(rd_vocab_builder *b) {
  for (int i = 0; i < b->n; i++) free(b->words[i]);
  free(b->words);
  free(b->counts);
  free(b->slots);
  memset(b, 0, sizeof *b);
}

static int builder_count(rd_vocab_builder *b, const char *w, int64_t add) {
  const char *why = word_problem(w);
  if (why) return rd_err(RD_EINVAL, "vocabulary word \"%.40s\" is %s", w, why);
  for (int s = 0; s < RD_TOK_NSPECIAL; s++)
    if (strcmp(w, rd_specials[s]) == 0)
      return rd_err(RD_EINVAL, "caption word \"%s\" is a special token", w);
  size_t len = strlen(w);
  if ((size_t)b->n * 2 >= b->n_slots)
    RD_TRY(table_rebuild(&b->slots, &b->n_slots, b->words, b->n, (size_t)b->n * 4 + 16));
  size_t i = table_find(b->slots, b->n_slots, b->words, w, len);
  if (b->slots[i] >= 0) {
    b->counts[b->slots[i]] += add;
    return RD_OK;
  }
  if (b->n == b->cap) {
    int cap = b->cap ? b->cap * 2 : 64;
    char **words = realloc(b->words, (size_t)cap * sizeof *words);
    if (!words) return rd_err(RD_ENOMEM, "out of memory growing the vocabulary");
    b->words = words;
    int64_t *counts = realloc(b->counts, (size_t)cap * sizeof *counts);
    if (!counts) return rd_err(RD_ENOMEM, "out of memory growing the vocabulary");
    b->counts = counts;
    b->cap = cap;
  }
  char *copy = rd_malloc(len + 1, "vocabulary word");
  if (!copy) return RD_ENOMEM;
  memcpy(copy, w, len + 1);
  b->words[b->n] = copy;
  b->counts[b->n] = add;
  b->slots[i] = b->n++;
  return RD_OK;
}

int rd_vocab_builder_add(rd_vocab_builder *b, const char *const *words, int n) {
  for (int i = 0; i < n; i++) RD_TRY(builder_count(b, words[i], 1));
  return RD_OK;
}

typedef struct {
  const char *word;
  int64_t count;
} word_count;

static int by_count_then_bytes(const void *pa, const void *pb) {
  const word_count *a = pa, *b = pb;
  if (a->count != b->count) return a->count > b->count ? -1 : 1;
  return strcmp(a->word, b->word);
}

int rd_vocab_builder_finish(const rd_vocab_builder *b, const char *const *extra, int n_extra,
                            rd_vocab *v) {
  /* Extra words join a private copy of the counts with count 0, so they sort
   * after every counted word and the builder stays reusable. */
  rd_vocab_builder all;
  rd_vocab_builder_init(&all);
  int rc = RD_OK;
  for (int i = 0; i < b->n && rc == RD_OK; i++) rc = builder_count(&all, b->words[i], b->counts[i]);
  for (int i = 0; i < n_extra && rc == RD_OK; i++) {
    int is_special = 0;
    for (int s = 0; s < RD_TOK_NSPECIAL; s++) is_special |= strcmp(extra[i], rd_specials[s]) == 0;
    if (!is_special) rc = builder_count(&all, extra[i], 0);
  }
  word_count *wc = NULL;
  const char **tokens = NULL;
  if (rc == RD_OK) {
    wc = rd_calloc((size_t)all.n, sizeof *wc, "vocabulary sort");
    tokens = rd_calloc((size_t)all.n + RD_TOK_NSPECIAL, sizeof *tokens, "vocabulary tokens");
    if (!wc || !tokens) rc = RD_ENOMEM;
  }
  if (rc == RD_OK) {
    for (int i = 0; i < all.n; i++) wc[i] = (word_count){all.words[i], all.counts[i]};
    qsort(wc, (size_t)all.n, sizeof *wc, by_count_then_bytes);
    for (int s = 0; s < RD_TOK_NSPECIAL; s++) tokens[s] = rd_specials[s];
    for (int i = 0; i < all.n; i++) tokens[RD_TOK_NSPECIAL + i] = wc[i].word;
    rc = rd_vocab_from_tokens(v, tokens, all.n + RD_TOK_NSPECIAL, "built vocabulary");
  }
  free(wc);
  free(tokens);
  rd_vocab_builder_free(&all);
  return rc;
}

/* ---- the vocabulary */

void rd_vocab_free(rd_vocab *v) {
  if (v->tokens)
    for (int i = 0; i < v->n; i++) free(v->tokens[i]);
  free(v->tokens);
  free(v->slots);
  memset(v, 0, sizeof *v);
}

/* Adds token as the next id; line > 0 names the line of a file in messages. */
static int vocab_push(rd_vocab *v, const char *tok, size_t len, const char *where, int line) {
  char place[RD_PATH_MAX + 32];
  if (line > 0)
    snprintf(place, sizeof place, "%s:%d", where, line);
  else
    snprintf(place, sizeof place, "%s: token %d", where, v->n);
  if (len == 0) return rd_err(RD_EINVAL, "%s: empty line (every line holds one token)", place);
  if (len > RD_VOCAB_WORD_MAX)
    return rd_err(RD_EINVAL, "%s: token longer than %d bytes", place, RD_VOCAB_WORD_MAX);
  int id = v->n;
  if (id < RD_TOK_NSPECIAL &&
      (strlen(rd_specials[id]) != len || strncmp(tok, rd_specials[id], len) != 0))
    return rd_err(RD_EINVAL, "%s: expected the special token %s (id %d), found \"%.*s\"", place,
                  rd_specials[id], id, (int)len, tok);
  for (size_t i = 0; i < len; i++)
    if (is_space(tok[i]) || tok[i] == '\0')
      return rd_err(RD_EINVAL, "%s: token \"%.*s\" %s", place, (int)len, tok,
                    tok[i] == '\r' ? "ends in a carriage return (Windows line ends?)"
                    : tok[i] == '\0' ? "contains a NUL byte"
                                     : "contains whitespace");
  size_t at = table_find(v->slots, v->n_slots, v->tokens, tok, len);
  if (v->slots[at] >= 0) {
    int first = v->slots[at];
    if (line > 0)
      return rd_err(RD_EINVAL, "%s: duplicate token \"%.*s\" (first on line %d)", place,
                    (int)len, tok, first + 1);
    return rd_err(RD_EINVAL, "%s: duplicate token \"%.*s\" (first as id %d)", place, (int)len,
                  tok, first);
  }
  char *copy = rd_malloc(len + 1, "vocabulary token");
  if (!copy) return RD_ENOMEM;
  memcpy(copy, tok, len);
  copy[len] = '\0';
  v->tokens[id] = copy;
  v->slots[at] = id;
  v->n++;
  return RD_OK;
}

static int vocab_alloc(rd_vocab *v, int n) {
  memset(v, 0, sizeof *v);
  v->tokens = rd_calloc((size_t)n, sizeof *v->tokens, "vocabulary tokens");
  if (!v->tokens) return RD_ENOMEM;
  return table_rebuild(&v->slots, &v->n_slots, v->tokens, 0, (size_t)n * 2 + 2);
}

static int vocab_finish(rd_vocab *v, const char *where) {
  if (v->n < RD_TOK_NSPECIAL)
    return rd_err(RD_EINVAL, "%s: %d tokens; a vocabulary starts with [MASK] [EOS] [BOS] [UNK]",
                  where, v->n);
  v->hash = rd_vocab_hash(v);
  return RD_OK;
}

int rd_vocab_from_tokens(rd_vocab *v, const char *const *tokens, int n, const char *where) {
  int rc = vocab_alloc(v, n > 0 ? n : 1);
  for (int i = 0; i < n && rc == RD_OK; i++) rc = vocab_push(v, tokens[i], strlen(tokens[i]), where, 0);
  if (rc == RD_OK) rc = vocab_finish(v, where);
  if (rc < 0) rd_vocab_free(v);
  return rc;
}

int rd_vocab_load(rd_vocab *v, const char *path) {
  memset(v, 0, sizeof *v);
  char *text;
  size_t size;
  RD_TRY(rd_fs_read_all(path, &text, &size));
  int lines = 0;
  for (size_t i = 0; i < size; i++) lines += text[i] == '\n';
  int rc = vocab_alloc(v, lines + 1);
  size_t pos = 0;
  int line = 0;
  while (rc == RD_OK && pos < size) {
    const char *nl = memchr(text + pos, '\n', size - pos);
    size_t end = nl ? (size_t)(nl - text) : size;
    rc = vocab_push(v, text + pos, end - pos, path, ++line);
    pos = end + 1;
  }
  if (rc == RD_OK) rc = vocab_finish(v, path);
  free(text);
  if (rc < 0) rd_vocab_free(v);
  return rc;
}

int rd_vocab_write(const rd_vocab *v, const char *path) {
  size_t size = 0;
  for (int i = 0; i < v->n; i++) size += strlen(v->tokens[i]) + 1;
  char *buf = rd_malloc(size, "vocab.txt");
  if (!buf) return RD_ENOMEM;
  size_t at = 0;
  for (int i = 0; i < v->n; i++) {
    size_t len = strlen(v->tokens[i]);
    memcpy(buf + at, v->tokens[i], len);
    buf[at + len] = '\n';
    at += len + 1;
  }
  int rc = rd_fs_write_atomic(path, buf, size);
  free(buf);
  return rc;
}

int rd_vocab_size(const rd_vocab *v) { return v->n; }

int rd_vocab_padded_size(const rd_vocab *v, int multiple) {
  if (multiple < 1) return rd_err(RD_EINVAL, "vocabulary padding multiple %d; must be >= 1", multiple);
  return (v->n + multiple - 1) / multiple * multiple;
}

uint64_t rd_vocab_hash(const rd_vocab *v) {
  uint64_t h = RD_HASH_INIT;
  for (int i = 0; i < v->n; i++) {
    h = rd_hash_bytes(h, v->tokens[i], strlen(v->tokens[i]));
    h = rd_hash_bytes(h, "\n", 1);
  }
  return h;
}

void rd_vocab_hash_hex(uint64_t hash, char out[17]) { snprintf(out, 17, "%016" PRIx64, hash); }

int rd_vocab_hash_parse(const char *s, uint64_t *hash) {
  uint64_t h = 0;
  int i = 0;
  for (; s[i] && i < 17; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9' ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) break;
    h = h << 4 | (uint64_t)d;
  }
  if (i != 16 || s[i] != '\0')
    return rd_err(RD_EINVAL, "vocabulary hash \"%.40s\" is not 16 hex digits", s);
  *hash = h;
  return RD_OK;
}

static int lookup(const rd_vocab *v, const char *w, size_t len) {
  int32_t id = v->slots[table_find(v->slots, v->n_slots, v->tokens, w, len)];
  return id >= 0 ? id : -1;
}

int rd_vocab_id(const rd_vocab *v, const char *word) { return lookup(v, word, strlen(word)); }

const char *rd_vocab_token(const rd_vocab *v, int id) {
  return id >= 0 && id < v->n ? v->tokens[id] : NULL;
}

/* Encodes one word at position i of ids[L]; counts it. */
static void encode_one(const rd_vocab *v, const char *w, size_t len, int32_t *ids, int L, int i,
                       rd_vocab_stats *st) {
  if (i >= L) return;
  int id = lookup(v, w, len);
  if (id < 0) {
    id = RD_TOK_UNK;
    if (st) st->n_unk++;
  }
  ids[i] = id;
}

static int encode_end(int32_t *ids, int L, int n_words, int *len, rd_vocab_stats *st) {
  int n = n_words < L ? n_words : L;
  for (int i = n; i < L; i++) ids[i] = RD_TOK_EOS;
  if (len) *len = n;
  if (st) {
    st->n_captions++;
    st->n_words += n_words;
    st->n_truncated += n_words > L;
  }
  return RD_OK;
}

int rd_vocab_encode(const rd_vocab *v, const char *const *words, int n_words, int32_t *ids,
                    int L, int *len, rd_vocab_stats *stats) {
  if (L < 1) return rd_err(RD_EINVAL, "caption length %d; must be >= 1", L);
  if (n_words < 0) return rd_err(RD_EINVAL, "negative word count %d", n_words);
  for (int i = 0; i < n_words && i < L; i++) encode_one(v, words[i], strlen(words[i]), ids, L, i, stats);
  /* Unknown words past the cut are not counted: they never reach the model. */
  return encode_end(ids, L, n_words, len, stats);
}

int rd_vocab_encode_text(const rd_vocab *v, const char *text, int32_t *ids, int L, int *len,
                         rd_vocab_stats *stats) {
  if (L < 1) return rd_err(RD_EINVAL, "caption length %d; must be >= 1", L);
  int n = 0;
  const char *p = text;
  while (*p) {
    while (*p && is_space(*p)) p++;
    if (!*p) break;
    const char *start = p;
    while (*p && !is_space(*p)) p++;
    encode_one(v, start, (size_t)(p - start), ids, L, n, stats);
    n++;
  }
  return encode_end(ids, L, n, len, stats);
}

int rd_vocab_decode_words(const rd_vocab *v, const int32_t *ids, int n, int stop_at_eos,
                          const char **words, int *n_words) {
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= v->n)
      return rd_err(RD_EINVAL, "token id %d at position %d is outside the vocabulary of %d tokens",
                    (int)ids[i], i, v->n);
    if (stop_at_eos && ids[i] == RD_TOK_EOS) break;
    words[k++] = v->tokens[ids[i]];
  }
  *n_words = k;
  return RD_OK;
}

int rd_vocab_decode(const rd_vocab *v, const int32_t *ids, int n, int stop_at_eos, char *out,
                    size_t out_n) {
  if (out_n == 0) return rd_err(RD_EINVAL, "no room to decode a caption");
  out[0] = '\0';
  size_t at = 0;
  for (int i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= v->n)
      return rd_err(RD_EINVAL, "token id %d at position %d is outside the vocabulary of %d tokens",
                    (int)ids[i], i, v->n);
    if (stop_at_eos && ids[i] == RD_TOK_EOS) break;
    const char *t = v->tokens[ids[i]];
    size_t len = strlen(t), sep = at > 0;
    if (at + sep + len + 1 > out_n)
      return rd_err(RD_EINVAL, "decoded caption longer than %zu bytes", out_n - 1);
    if (sep) out[at++] = ' ';
    memcpy(out + at, t, len + 1);
    at += len;
  }
  return RD_OK;
}
