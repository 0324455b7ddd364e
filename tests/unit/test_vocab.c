/* The vocabulary: deterministic ids, vocab.txt round trip and validation,
 * the hash, encode/decode with [UNK], padding and truncation. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/core/fs.h"
#include "io/vocab.h"
#include "rd_test.h"

static const char *const caps[][8] = {
    {"a", "red", "circle", "left", NULL},
    {"a", "blue", "square", "top", NULL},
    {"two", "red", "circles", NULL},
    {"a", "red", "square", NULL},
};

static int count_words(const char *const *c) {
  int n = 0;
  while (n < 8 && c[n]) n++;
  return n;
}

static void build(rd_vocab *v, int reverse, const char *const *extra, int n_extra) {
  rd_vocab_builder b;
  rd_vocab_builder_init(&b);
  int n = (int)(sizeof caps / sizeof caps[0]);
  for (int i = 0; i < n; i++) {
    const char *const *c = caps[reverse ? n - 1 - i : i];
    CHECK_OK(rd_vocab_builder_add(&b, c, count_words(c)));
  }
  CHECK_OK(rd_vocab_builder_finish(&b, extra, n_extra, v));
  rd_vocab_builder_free(&b);
}

static char tmpdir[64];

static void make_tmpdir(void) {
  if (tmpdir[0]) return;
  strcpy(tmpdir, "/tmp/rd_vocab_XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    exit(1);
  }
}

static void ids_are_deterministic(void) {
  const char *extra[] = {"describe", "the", "image", "red"};
  rd_vocab a, b;
  build(&a, 0, extra, 4);
  build(&b, 1, extra, 4); /* captions in another order: same counts, same ids */
  CHECK(a.n == b.n);
  CHECK(a.hash == b.hash);
  for (int i = 0; i < a.n && i < b.n; i++) CHECK(strcmp(a.tokens[i], b.tokens[i]) == 0);
  /* specials, then a(3) red(3), then count 2 alphabetically, then count 1,
   * then the extra words never seen, alphabetically. */
  const char *want[] = {"[MASK]", "[EOS]", "[BOS]", "[UNK]", "a", "red", "square",
                        "blue", "circle", "circles", "left", "top", "two",
                        "describe", "image", "the"};
  int nw = (int)(sizeof want / sizeof want[0]);
  CHECK(a.n == nw);
  for (int i = 0; i < nw && i < a.n; i++)
    CHECK_MSG(strcmp(a.tokens[i], want[i]) == 0, "id %d: %s, want %s", i, a.tokens[i], want[i]);
  CHECK(rd_vocab_id(&a, "red") == 5);
  CHECK(rd_vocab_id(&a, "[EOS]") == RD_TOK_EOS);
  CHECK(rd_vocab_id(&a, "purple") == -1);
  CHECK(strcmp(rd_vocab_token(&a, RD_TOK_MASK), "[MASK]") == 0);
  CHECK(rd_vocab_token(&a, a.n) == NULL);
  CHECK(rd_vocab_size(&a) == 16);
  CHECK(rd_vocab_padded_size(&a, 1) == 16);
  CHECK(rd_vocab_padded_size(&a, 8) == 16);
  CHECK(rd_vocab_padded_size(&a, 3) == 18);
  CHECK(rd_vocab_padded_size(&a, 64) == 64);
  CHECK_ERR(rd_vocab_padded_size(&a, 0), "multiple 0");
  rd_vocab_free(&a);
  rd_vocab_free(&b);
}

static void builder_rejects_bad_words(void) {
  rd_vocab_builder b;
  rd_vocab_builder_init(&b);
  const char *space[] = {"red circle"}, *empty[] = {""}, *special[] = {"[EOS]"};
  CHECK_ERR(rd_vocab_builder_add(&b, space, 1), "whitespace");
  CHECK_ERR(rd_vocab_builder_add(&b, empty, 1), "empty");
  CHECK_ERR(rd_vocab_builder_add(&b, special, 1), "special token");
  rd_vocab_builder_free(&b);
}

/* FNV-1a 64 of "[MASK]\n[EOS]\n[BOS]\n[UNK]\n", computed independently:
 * /usr/bin/python3 -c 'h=0xcbf29ce484222325
 *   for c in b"[MASK]\n[EOS]\n[BOS]\n[UNK]\n": h=((h^c)*0x100000001b3)%2**64
 *   print("%016x"%h)' */
static void hash_is_fnv1a_of_the_file(void) {
  const char *sp[] = {"[MASK]", "[EOS]", "[BOS]", "[UNK]"};
  rd_vocab v;
  CHECK_OK(rd_vocab_from_tokens(&v, sp, 4, "specials"));
  char hex[17];
  rd_vocab_hash_hex(v.hash, hex);
  CHECK_MSG(strcmp(hex, "6243505b1c904b58") == 0, "hash %s", hex);
  uint64_t back = 0;
  CHECK_OK(rd_vocab_hash_parse(hex, &back));
  CHECK(back == v.hash);
  CHECK_ERR(rd_vocab_hash_parse("9d1bd74e0bd3e6c", &back), "16 hex digits");
  CHECK_ERR(rd_vocab_hash_parse("9d1bd74e0bd3e6czz", &back), "16 hex digits");
  rd_vocab_free(&v);
  /* One token more or a changed order is another hash. */
  const char *t1[] = {"[MASK]", "[EOS]", "[BOS]", "[UNK]", "a", "b"};
  const char *t2[] = {"[MASK]", "[EOS]", "[BOS]", "[UNK]", "b", "a"};
  const char *t3[] = {"[MASK]", "[EOS]", "[BOS]", "[UNK]", "ab"};
  rd_vocab v1, v2, v3;
  CHECK_OK(rd_vocab_from_tokens(&v1, t1, 6, "t1"));
  CHECK_OK(rd_vocab_from_tokens(&v2, t2, 6, "t2"));
  CHECK_OK(rd_vocab_from_tokens(&v3, t3, 5, "t3"));
  CHECK(v1.hash != v2.hash);
  CHECK(v1.hash != v3.hash); /* the separator keeps "a","b" apart from "ab" */
  rd_vocab_free(&v1);
  rd_vocab_free(&v2);
  rd_vocab_free(&v3);
}

static void write_then_load(void) {
  make_tmpdir();
  char path[256];
  snprintf(path, sizeof path, "%s/vocab.txt", tmpdir);
  rd_vocab a, b;
  build(&a, 0, NULL, 0);
  CHECK_OK(rd_vocab_write(&a, path));
  CHECK_OK(rd_vocab_load(&b, path));
  CHECK(a.n == b.n);
  CHECK(a.hash == b.hash);
  for (int i = 0; i < a.n && i < b.n; i++) CHECK(strcmp(a.tokens[i], b.tokens[i]) == 0);
  for (int i = 0; i < a.n; i++) CHECK(rd_vocab_id(&b, a.tokens[i]) == i);
  /* The hash is the FNV-1a of the file's bytes. */
  char *text;
  size_t n;
  CHECK_OK(rd_fs_read_all(path, &text, &n));
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)text[i]) * 0x100000001b3ULL;
  CHECK(h == a.hash);
  CHECK(strncmp(text, "[MASK]\n[EOS]\n[BOS]\n[UNK]\na\n", 26) == 0);
  free(text);
  rd_vocab_free(&a);
  rd_vocab_free(&b);
}

static void bad_files_name_file_and_line(void) {
  make_tmpdir();
  char path[256];
  snprintf(path, sizeof path, "%s/bad.txt", tmpdir);
  struct {
    const char *text, *want;
  } cases[] = {
      {"[MASK]\n[EOS]\n[BOS]\n[UNK]\nred\nblue\nred\n", "bad.txt:7: duplicate token \"red\" (first on line 5)"},
      {"[MASK]\n[EOS]\n[BOS]\n[UNK]\nred\n\nblue\n", "bad.txt:6: empty line"},
      {"[MASK]\n[BOS]\n[EOS]\n[UNK]\n", "bad.txt:2: expected the special token [EOS] (id 1), found \"[BOS]\""},
      {"red\n[MASK]\n[EOS]\n[BOS]\n[UNK]\n", "bad.txt:1: expected the special token [MASK]"},
      {"[MASK]\n[EOS]\n[BOS]\n[UNK]\nred\r\nblue\r\n", "bad.txt:5: token \"red\r\" ends in a carriage return"},
      {"[MASK]\n[EOS]\n[BOS]\n[UNK]\nred circle\n", "bad.txt:5: token \"red circle\" contains whitespace"},
      {"[MASK]\n[EOS]\n[BOS]\n[UNK]\nred\n[MASK]\n", "bad.txt:6: duplicate token \"[MASK]\" (first on line 1)"},
      {"[MASK]\n[EOS]\n", "bad.txt: 2 tokens"},
      {"", "bad.txt: 0 tokens"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CHECK_OK(rd_fs_write_atomic(path, cases[i].text, strlen(cases[i].text)));
    rd_vocab v;
    CHECK_ERR(rd_vocab_load(&v, path), cases[i].want);
  }
  /* No final newline is fine. */
  const char *ok = "[MASK]\n[EOS]\n[BOS]\n[UNK]\nred";
  CHECK_OK(rd_fs_write_atomic(path, ok, strlen(ok)));
  rd_vocab v;
  CHECK_OK(rd_vocab_load(&v, path));
  CHECK(v.n == 5 && rd_vocab_id(&v, "red") == 4);
  rd_vocab_free(&v);
  snprintf(path, sizeof path, "%s/missing.txt", tmpdir);
  CHECK_ERR(rd_vocab_load(&v, path), "missing.txt");
}

static void encode_decode(void) {
  rd_vocab v;
  build(&v, 0, NULL, 0);
  rd_vocab_stats st = {0};
  const char *words[] = {"a", "purple", "circle", "left", "of", "a", "red", "square"};
  int32_t ids[12];
  int len = -1;
  CHECK_OK(rd_vocab_encode(&v, words, 8, ids, 12, &len, &st));
  CHECK(len == 8);
  CHECK(ids[0] == rd_vocab_id(&v, "a") && ids[2] == rd_vocab_id(&v, "circle"));
  CHECK(ids[1] == RD_TOK_UNK && ids[4] == RD_TOK_UNK);
  for (int i = 8; i < 12; i++) CHECK(ids[i] == RD_TOK_EOS);
  CHECK(st.n_unk == 2 && st.n_truncated == 0 && st.n_captions == 1 && st.n_words == 8);
  char text[256];
  CHECK_OK(rd_vocab_decode(&v, ids, 12, 1, text, sizeof text));
  CHECK_MSG(strcmp(text, "a [UNK] circle left [UNK] a red square") == 0, "%s", text);
  CHECK_OK(rd_vocab_decode(&v, ids, 10, 0, text, sizeof text));
  CHECK_MSG(strcmp(text, "a [UNK] circle left [UNK] a red square [EOS] [EOS]") == 0, "%s", text);
  ids[2] = RD_TOK_MASK;
  CHECK_OK(rd_vocab_decode(&v, ids, 12, 1, text, sizeof text));
  CHECK_MSG(strcmp(text, "a [UNK] [MASK] left [UNK] a red square") == 0, "%s", text);
  CHECK_ERR(rd_vocab_decode(&v, ids, 12, 1, text, 10), "longer than 9 bytes");
  ids[3] = 999;
  CHECK_ERR(rd_vocab_decode(&v, ids, 12, 1, text, sizeof text), "token id 999 at position 3");

  /* Known words round-trip exactly, through words and through text. */
  const char *known[] = {"two", "red", "circles", "top", "left"};
  CHECK_OK(rd_vocab_encode(&v, known, 5, ids, 12, &len, &st));
  const char *back[12];
  int nb = 0;
  CHECK_OK(rd_vocab_decode_words(&v, ids, 12, 1, back, &nb));
  CHECK(nb == 5);
  for (int i = 0; i < nb && i < 5; i++) CHECK(strcmp(back[i], known[i]) == 0);
  int32_t ids2[12];
  CHECK_OK(rd_vocab_encode_text(&v, "  two red\tcircles top   left \n", ids2, 12, &len, &st));
  CHECK(len == 5 && memcmp(ids, ids2, sizeof ids) == 0);

  /* Truncation: 8 words into 5 slots, counted; unknown words past the cut
   * are not counted as [UNK]. */
  memset(&st, 0, sizeof st);
  CHECK_OK(rd_vocab_encode(&v, words, 8, ids, 5, &len, &st));
  CHECK(len == 5 && st.n_truncated == 1 && st.n_unk == 2 && st.n_words == 8);
  CHECK_OK(rd_vocab_encode_text(&v, "a a a a a a purple", ids, 5, &len, &st));
  CHECK(len == 5 && st.n_truncated == 2 && st.n_unk == 2);
  CHECK(ids[4] == rd_vocab_id(&v, "a"));
  /* Exactly L words: no EOS, not truncated. */
  CHECK_OK(rd_vocab_encode_text(&v, "a b c d e", ids, 5, &len, &st));
  CHECK(len == 5 && st.n_truncated == 2 && st.n_unk == 6);
  CHECK_OK(rd_vocab_encode_text(&v, "", ids, 5, &len, &st));
  CHECK(len == 0 && ids[0] == RD_TOK_EOS && ids[4] == RD_TOK_EOS);
  CHECK_ERR(rd_vocab_encode(&v, words, 8, ids, 0, &len, &st), "caption length 0");
  rd_vocab_free(&v);
}

static void cleanup(void) {
  if (!tmpdir[0]) return;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  CHECK(system(cmd) == 0);
}

RD_TEST_MAIN("vocab", RD_CASE(ids_are_deterministic), RD_CASE(builder_rejects_bad_words),
             RD_CASE(hash_is_fnv1a_of_the_file), RD_CASE(write_then_load),
             RD_CASE(bad_files_name_file_and_line), RD_CASE(encode_decode), RD_CASE(cleanup))
