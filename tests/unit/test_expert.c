/* The experts (scene, reference), the edit application under both length
 * policies, and the drafts and revisions files. */
#include <stdio.h>
#include <unistd.h>

#include "expert_fixture.h"
#include "io/core/fs.h"
#include "io/drafts.h"
#include "rd_test.h"
#include "stages/expert/expert.h"

#define LL 128

static rd_vocab V;
static rd_shapes_params P;

static void setup(void) {
  static int done;
  if (done) return;
  rd_shapes_params_default(&P);
  if (fx_vocab(&V, &P, 7, 300) != RD_OK) {
    fprintf(stderr, "vocab: %s\n", rd_err_msg());
    exit(1);
  }
  done = 1;
}

/* Three objects: small red circle top left, large blue square middle right,
 * large green triangle bottom centre. */
static void scene3(rd_scene *s) {
  memset(s, 0, sizeof *s);
  s->n = 3;
  s->obj[0] = (rd_object){RD_SHAPE_CIRCLE, RD_COLOUR_RED, RD_SIZE_SMALL, 0, 0, 0, 0};
  s->obj[1] = (rd_object){RD_SHAPE_SQUARE, RD_COLOUR_BLUE, RD_SIZE_LARGE, 1, 2, 0, 0};
  s->obj[2] = (rd_object){RD_SHAPE_TRIANGLE, RD_COLOUR_GREEN, RD_SIZE_LARGE, 2, 1, 0, 0};
}

static void encode(const char *text, int32_t *row) {
  int n;
  CHECK_OK(rd_vocab_encode_text(&V, text, row, LL, &n, NULL));
}

static int content_len(const int32_t *row) {
  int n = 0;
  while (n < LL && row[n] != RD_TOK_EOS) n++;
  return n;
}

/* Runs the scene expert on text; *out gets the refined text (remask policy). */
static void revise(const rd_scene *s, const char *text, rd_expert_out *o, char *out, int32_t *x, uint8_t *mask) {
  int32_t row[LL], y[LL], spans[RD_EXPERT_EDITS_MAX][4];
  encode(text, row);
  CHECK_OK(rd_expert_scene(&V, s, row, content_len(row), 0, o));
  CHECK(rd_expert_apply(row, LL, o, 1, x, y, mask, spans) == RD_DROP_NONE);
  CHECK_OK(rd_vocab_decode(&V, y, LL, 1, out, 2048));
}

static void test_scene_hand_cases(void) {
  setup();
  rd_scene s;
  scene3(&s);
  rd_expert_out o;
  char out[2048];
  int32_t x[LL];
  uint8_t m[LL];
  revise(&s, "there are three objects . a small red circle is at the top left .", &o, out, x, m);
  CHECK(o.verdict == RD_VERDICT_RIGHT && o.n_edits == 0);

  revise(&s, "a big red circle is at the top left .", &o, out, x, m);
  CHECK_MSG(strcmp(out, "a small red circle is at the top left .") == 0, "%s", out);
  CHECK(o.n_edits == 1 && o.e[0].start == 1 && o.e[0].len == 1 && o.e[0].kind == RD_EDIT_OBJECT);
  CHECK(m[1] == 1 && m[0] == 0 && m[2] == 0 && x[1] == rd_vocab_id(&V, "big"));

  revise(&s, "the top left holds a small blue circle .", &o, out, x, m);
  CHECK_MSG(strcmp(out, "the top left holds a small red circle .") == 0, "%s", out);

  revise(&s, "there are four objects .", &o, out, x, m);
  CHECK_MSG(strcmp(out, "there are three objects .") == 0, "%s", out);
  CHECK(o.n_edits == 1 && o.e[0].start == 2 && o.e[0].len == 1 && o.e[0].kind == RD_EDIT_COUNT);

  revise(&s, "there is one object .", &o, out, x, m);
  CHECK_MSG(strcmp(out, "there are three objects .") == 0, "%s", out);
  CHECK(o.n_edits == 1 && o.e[0].start == 1 && o.e[0].len == 3 && o.e[0].t_len == 3);

  revise(&s, "the red circle is right of the blue square .", &o, out, x, m);
  CHECK_MSG(strcmp(out, "the red circle is left of the blue square .") == 0, "%s", out);
  CHECK(o.n_edits == 1 && o.e[0].start == 4 && o.e[0].kind == RD_EDIT_RELATION);

  /* A missing final "." is one inserted word, masked under remask. */
  revise(&s, "there are three objects . a small red circle is at the top left", &o, out, x, m);
  CHECK_MSG(strcmp(out, "there are three objects . a small red circle is at the top left .") == 0, "%s", out);
  CHECK(o.n_edits == 1 && o.e[0].start == 14 && o.e[0].len == 0 && o.e[0].t_len == 1 &&
        o.e[0].kind == RD_EDIT_SYNTAX);
  CHECK(x[14] == RD_TOK_MASK && m[14] == 1 && x[15] == RD_TOK_EOS);

  /* A repeat becomes a fact not yet stated. */
  revise(&s, "a small red circle is at the top left . a small red circle is at the top left .", &o, out, x, m);
  CHECK(o.n_edits >= 1 && o.e[0].start >= 9 && o.e[0].kind == RD_EDIT_REPEAT);
  CHECK_MSG(strncmp(out, "a small red circle is at the top left . ", 40) == 0 && strlen(out) > 41, "%s", out);

  /* With every true fact stated, a repeat is deleted. */
  rd_scene one;
  memset(&one, 0, sizeof one);
  one.n = 1;
  one.obj[0] = (rd_object){RD_SHAPE_CIRCLE, RD_COLOUR_RED, RD_SIZE_SMALL, 0, 0, 0, 0};
  revise(&one, "there is one object . there is one circle . a small red circle is at the top left . there is one circle .",
         &o, out, x, m);
  CHECK_MSG(strcmp(out, "there is one object . there is one circle . a small red circle is at the top left .") == 0,
            "%s", out);
  CHECK(o.n_edits == 1 && o.e[0].start == 20 && o.e[0].len == 5 && o.e[0].t_len == 0);

  /* An empty draft is dropped, not judged. */
  int32_t empty[LL];
  for (int i = 0; i < LL; i++) empty[i] = RD_TOK_EOS;
  CHECK_OK(rd_expert_scene(&V, &s, empty, 0, 0, &o));
  CHECK(o.verdict == RD_VERDICT_DROP && o.reason == RD_DROP_EMPTY);
}

/* Refined parses fully, every fact is true and stated once, and it equals
 * the draft outside the edit spans. */
static void check_refined(const rd_scene *s, const int32_t *row, const rd_expert_out *o, int remask, int *kept,
                          int *same_as_caption, const int32_t *caption) {
  int32_t x[LL], y[LL], spans[RD_EXPERT_EDITS_MAX][4];
  uint8_t mask[LL];
  int r = rd_expert_apply(row, LL, o, remask, x, y, mask, spans);
  CHECK(r >= 0);
  if (r != RD_DROP_NONE) {
    CHECK(!remask && r == RD_DROP_LENGTH);
    return;
  }
  (*kept)++;
  const char *words[LL];
  int n;
  CHECK_OK(rd_vocab_decode_words(&V, y, LL, 1, words, &n));
  rd_facts f;
  rd_parse_report rep;
  CHECK_OK(rd_caption_parse_strings(words, n, &f, &rep));
  CHECK(rep.n_unparsed == 0 && rep.n_sentences > 0);
  for (int i = 0; i < f.n; i++) {
    CHECK(rd_fact_true(&f.f[i], s));
    for (int j = 0; j < i; j++) CHECK(!rd_fact_equal(&f.f[i], &f.f[j]));
  }
  /* Outside the spans y is the draft, shifted by the spans' length changes. */
  int pd = 0, p = 0;
  for (int k = 0; k <= o->n_edits; k++) {
    int end = k < o->n_edits ? spans[k][0] : content_len(row);
    for (; pd < end; pd++, p++) CHECK(y[p] == row[pd] && x[p] == row[pd] && mask[p] == 0);
    if (k == o->n_edits) break;
    for (int i = 0; i < spans[k][3]; i++) CHECK(mask[p + i] == 1);
    CHECK(spans[k][2] == p);
    p += spans[k][3];
    pd += spans[k][1];
  }
  int same = 1;
  for (int i = 0; i < LL; i++) same &= y[i] == caption[i];
  *same_as_caption += same;
}

static void test_scene_corrupted_captions(void) {
  setup();
  int n_drafts = 0, right_ok = 0, kept[2] = {0, 0}, halluc_restored = 0, n_halluc = 0, dummy = 0;
  int by_kind[RD_EDIT_KINDS] = {0};
  for (int64_t id = 0; id < 60; id++) {
    rd_scene s;
    rd_words w;
    CHECK_OK(rd_scene_sample(&s, &P, 11, id));
    CHECK_OK(rd_caption_write(&s, &P, 11, id, &w, NULL));
    int32_t cap[LL];
    int n;
    CHECK_OK(rd_vocab_encode(&V, w.w, w.n, cap, LL, &n, NULL));
    for (int how = 0; how < FX_KINDS; how++) {
      int32_t row[LL];
      CHECK_OK(fx_corrupt(&V, &s, cap, n, 11, id, how, row, LL));
      rd_expert_out o;
      n_drafts++;
      CHECK_OK(rd_expert_scene(&V, &s, row, content_len(row), 0, &o));
      CHECK(o.verdict != RD_VERDICT_DROP);
      if (how == FX_NONE) right_ok += o.verdict == RD_VERDICT_RIGHT && o.n_edits == 0;
      for (int k = 0; k < o.n_edits; k++) by_kind[o.e[k].kind]++;
      int restored = 0;
      check_refined(&s, row, &o, 1, &kept[1], &restored, cap);
      if (how == FX_HALLUC) n_halluc++, halluc_restored += restored;
      if (how == FX_HALLUC) CHECK(o.n_edits == 1 && o.e[0].len == o.e[0].t_len);
      CHECK_OK(rd_expert_scene(&V, &s, row, content_len(row), 1, &o));
      check_refined(&s, row, &o, 0, &kept[0], &dummy, cap);
    }
  }
  printf("  %d drafts: %d of 60 captions judged right, remask kept %d, drop kept %d, hallucinations undone %d of %d\n",
         n_drafts, right_ok, kept[1], kept[0], halluc_restored, n_halluc);
  for (int k = 0; k < RD_EDIT_KINDS; k++) printf("  edits %-12s %d\n", rd_edit_kind_name(k), by_kind[k]);
  CHECK(n_drafts >= 400);
  CHECK(right_ok == 60);
  CHECK(kept[1] == n_drafts);
  CHECK(halluc_restored >= 54); /* the nearest true fact is nearly always the one changed */
  CHECK(by_kind[RD_EDIT_SYNTAX] > 0 && by_kind[RD_EDIT_OBJECT] > 0 && by_kind[RD_EDIT_REPEAT] > 0);
}

static void test_reference_expert(void) {
  setup();
  int32_t a[LL], b[LL];
  encode("there are three objects . a small red circle is at the top left .", a);
  int n = content_len(a);
  rd_expert_out o;
  CHECK_OK(rd_expert_reference(a, n, a, n, &o));
  CHECK(o.verdict == RD_VERDICT_RIGHT && o.n_edits == 0);
  encode("there are three objects . a small blue circle is at the top left .", b);
  CHECK_OK(rd_expert_reference(b, n, a, n, &o));
  CHECK(o.n_edits == 1 && o.e[0].start == 7 && o.e[0].len == 1 && o.e[0].t_len == 1 &&
        o.tgt[o.e[0].t_off] == rd_vocab_id(&V, "red") && o.e[0].kind == RD_EDIT_TEXT);
  /* A repeated word is deleted, a missing one inserted. */
  encode("there are are three objects . a small red circle is at the top left .", b);
  CHECK_OK(rd_expert_reference(b, content_len(b), a, n, &o));
  CHECK(o.n_edits == 1 && o.e[0].len == 1 && o.e[0].t_len == 0 && (o.e[0].start == 1 || o.e[0].start == 2));
  encode("there are objects . a small red circle is at the top left .", b);
  CHECK_OK(rd_expert_reference(b, content_len(b), a, n, &o));
  CHECK(o.n_edits == 1 && o.e[0].start == 2 && o.e[0].len == 0 && o.e[0].t_len == 1 &&
        o.tgt[o.e[0].t_off] == rd_vocab_id(&V, "three"));
  CHECK(rd_expert_distance(b, content_len(b), a, n) == 1);
}

static void test_apply_policies(void) {
  enum { L = 6 };
  int32_t row[L] = {10, 11, 12, 13, RD_TOK_EOS, RD_TOK_EOS}, x[L], y[L], sp[4][4];
  uint8_t m[L];
  rd_expert_out o;
  int32_t t2[2] = {20, 21};
  rd_expert_out_clear(&o);
  CHECK_OK(rd_expert_push(&o, 1, 1, t2, 1, RD_EDIT_TEXT));
  CHECK(rd_expert_apply(row, L, &o, 0, x, y, m, sp) == RD_DROP_NONE);
  int32_t wx[L] = {10, 11, 12, 13, 1, 1}, wy[L] = {10, 20, 12, 13, 1, 1};
  CHECK(memcmp(x, wx, sizeof x) == 0 && memcmp(y, wy, sizeof y) == 0 && m[1] == 1 && m[0] + m[2] + m[3] == 0);
  /* A longer target: dropped under drop; masked and shifted under remask. */
  rd_expert_out_clear(&o);
  CHECK_OK(rd_expert_push(&o, 1, 1, t2, 2, RD_EDIT_TEXT));
  CHECK(rd_expert_apply(row, L, &o, 0, x, y, m, sp) == RD_DROP_LENGTH);
  CHECK(rd_expert_apply(row, L, &o, 1, x, y, m, sp) == RD_DROP_NONE);
  int32_t rx[L] = {10, 0, 0, 12, 13, 1}, ry[L] = {10, 20, 21, 12, 13, 1};
  uint8_t rm[L] = {0, 1, 1, 0, 0, 0};
  CHECK(memcmp(x, rx, sizeof x) == 0 && memcmp(y, ry, sizeof y) == 0 && memcmp(m, rm, sizeof m) == 0);
  CHECK(sp[0][0] == 1 && sp[0][1] == 1 && sp[0][2] == 1 && sp[0][3] == 2);
  /* A deletion shifts left and leaves no loss position. */
  rd_expert_out_clear(&o);
  CHECK_OK(rd_expert_push(&o, 1, 2, NULL, 0, RD_EDIT_TEXT));
  CHECK(rd_expert_apply(row, L, &o, 1, x, y, m, sp) == RD_DROP_NONE);
  int32_t dx[L] = {10, 13, 1, 1, 1, 1};
  CHECK(memcmp(x, dx, sizeof x) == 0 && memcmp(y, dx, sizeof y) == 0 && memchr(m, 1, L) == NULL);
  /* Growing past L. */
  int32_t t4[4] = {20, 21, 22, 23};
  rd_expert_out_clear(&o);
  CHECK_OK(rd_expert_push(&o, 0, 1, t4, 4, RD_EDIT_TEXT));
  CHECK(rd_expert_apply(row, L, &o, 1, x, y, m, sp) == RD_DROP_OVERFLOW);
  /* Overlapping or out-of-range edits are refused. */
  rd_expert_out_clear(&o);
  CHECK_OK(rd_expert_push(&o, 1, 2, t2, 2, RD_EDIT_TEXT));
  CHECK_OK(rd_expert_push(&o, 2, 1, t2, 1, RD_EDIT_TEXT));
  CHECK_ERR(rd_expert_apply(row, L, &o, 1, x, y, m, sp), "out of order");
  rd_expert_out_clear(&o);
  CHECK_OK(rd_expert_push(&o, 3, 2, t2, 2, RD_EDIT_TEXT));
  CHECK_ERR(rd_expert_apply(row, L, &o, 1, x, y, m, sp), "outside the 4-word draft");
}

static void test_drafts_file(void) {
  char dir[] = "/tmp/rd_test_drafts_XXXXXX", path[256];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/drafts/r1/rank0.h5", dir);
  rd_drafts d, e;
  CHECK_OK(rd_drafts_init(&d, 4, 0x1234abcdULL, 1, 0));
  int32_t a[4] = {5, 6, RD_TOK_EOS, 7}, b[4] = {8, 9, 10, 11};
  CHECK_OK(rd_drafts_append(&d, 42, 16, a, 1.0f));
  CHECK_OK(rd_drafts_append(&d, 3, 4, b, 1.0f));
  CHECK_OK(rd_drafts_write(&d, path));
  CHECK_OK(rd_drafts_read(path, 0x1234abcdULL, 20, &e));
  CHECK(e.n == 2 && e.gen_len == 4 && e.round == 1 && e.rank == 0 && e.sample_id[0] == 42 && e.steps[1] == 4);
  CHECK(e.tokens[3] == RD_TOK_EOS && e.tokens[4 + 3] == 11); /* cut after the first [EOS] */
  rd_drafts_free(&e);
  CHECK_ERR(rd_drafts_read(path, 0x99, 20, &e), "vocab_hash");
  CHECK_ERR(rd_drafts_read(path, 0, 10, &e), "row 1 position 2 holds 10");
  d.tokens[3] = 7; /* behind the writer's back */
  CHECK_OK(rd_drafts_write(&d, path));
  CHECK_ERR(rd_drafts_read(path, 0, 0, &e), "after its first [EOS]");
  CHECK_ERR(rd_drafts_read("/nonexistent/x.h5", 0, 0, &e), "no such file");
  rd_drafts_free(&d);

  rd_revisions r, q;
  CHECK_OK(rd_revisions_init(&r, 4, 0x77, 2, "scene", "remask"));
  uint8_t m[4] = {0, 1, 0, 0};
  CHECK_OK(rd_revisions_append(&r, 9, 8, 0, b, b, a, m));
  int32_t ed[5] = {0, 1, 1, 1, 1};
  CHECK_OK(rd_revisions_add_edit(&r, ed, RD_EDIT_REPEAT));
  snprintf(path, sizeof path, "%s/revisions/r2.h5", dir);
  CHECK_OK(rd_revisions_write(&r, path));
  CHECK_OK(rd_revisions_read(path, 0x77, &q));
  CHECK(q.n == 1 && q.n_edits == 1 && q.edit_kind[0] == RD_EDIT_REPEAT && q.edits[4] == 1 && q.mistake[1] == 1 &&
        q.refined[1] == 6 && strcmp(q.expert, "scene") == 0 && q.round == 2);
  rd_revisions_free(&q);
  rd_revisions_free(&r);
  CHECK_OK(rd_fs_rmtree(dir));
}

RD_TEST_MAIN("expert", RD_CASE(test_scene_hand_cases), RD_CASE(test_scene_corrupted_captions),
             RD_CASE(test_reference_expert), RD_CASE(test_apply_policies), RD_CASE(test_drafts_file))
