/* ShapesCap: scenes, renderer, caption grammar, parser, hallucinations,
 * facts and the packed scene form. */
#include <stdint.h>
#include <string.h>

#include "data/shapes.h"
#include "io/core/clock.h"
#include "io/core/rng.h"
#include "rd_test.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static rd_shapes_params params(int min_o, int max_o, int max_rel) {
  rd_shapes_params p;
  rd_shapes_params_default(&p);
  p.min_objects = min_o;
  p.max_objects = max_o;
  p.max_relations = max_rel;
  if (max_o > 6) p.max_words = RD_WORDS_MAX;
  return p;
}

static int same_fact_set(const rd_facts *a, const rd_facts *b) {
  for (int i = 0; i < a->n; i++)
    if (!rd_facts_contains(b, &a->f[i])) return 0;
  for (int i = 0; i < b->n; i++)
    if (!rd_facts_contains(a, &b->f[i])) return 0;
  return 1;
}

static void params_checked(void) {
  rd_shapes_params p;
  rd_shapes_params_default(&p);
  CHECK_OK(rd_shapes_params_check(&p));
  CHECK(p.image_size == 48 && p.grid == 3 && p.max_objects == 4 && p.max_words == 63);
  p.grid = 4;
  CHECK_ERR(rd_shapes_params_check(&p), "grid is 4");
  rd_shapes_params_default(&p);
  p.max_objects = 10;
  CHECK_ERR(rd_shapes_params_check(&p), "max_objects (10)");
  rd_shapes_params_default(&p);
  p.image_size = 50;
  CHECK_ERR(rd_shapes_params_check(&p), "image_size 50");
  rd_shapes_params_default(&p);
  p.jitter = 3;
  CHECK_ERR(rd_shapes_params_check(&p), "jitter 3");
  rd_shapes_params_default(&p);
  p.max_objects = 7;
  CHECK_ERR(rd_shapes_params_check(&p), "needs at least 68 words");
  rd_shapes_params_default(&p);
  p.max_words = RD_WORDS_MAX + 1;
  CHECK_ERR(rd_shapes_params_check(&p), "max_words 129");
  rd_shapes_params_default(&p);
  rd_scene s;
  p.min_objects = 0;
  CHECK_ERR(rd_scene_sample(&s, &p, 1, 0), "min_objects (0)");
}

/* The core contract, over many scenes and settings: the parser reads each
 * caption back to exactly its stated facts, all true; every hallucination
 * changes exactly one fact, inside its span. */
static void captions_round_trip_and_hallucinate(void) {
  const int settings[][3] = {{1, 4, 2}, {1, 4, 2}, {1, 1, 0}, {1, 6, 2},
                             {3, 6, 3}, {4, 4, 2}, {2, 5, 1}, {1, 9, 4}};
  const int n_settings = (int)(sizeof settings / sizeof settings[0]);
  const int per_setting = 2000;
  int scenes = 0, bad_parse = 0, bad_set = 0, bad_true = 0, bad_len = 0, bad_cover = 0,
      bad_count = 0, bad_first = 0;
  int h_bad_n = 0, h_bad_outside = 0, h_bad_tight = 0, h_bad_parse = 0, h_bad_false = 0,
      h_kind[RD_FACT_KINDS] = {0}, h_words[8] = {0};
  for (int c = 0; c < n_settings; c++) {
    rd_shapes_params p = params(settings[c][0], settings[c][1], settings[c][2]);
    for (int i = 0; i < per_setting; i++, scenes++) {
      rd_scene s;
      rd_words w, h;
      rd_facts stated, parsed, hparsed;
      rd_parse_report rep, hrep;
      const uint64_t seed = 1000 + (uint64_t)c;
      CHECK_OK(rd_scene_sample(&s, &p, seed, i));
      CHECK_OK(rd_caption_write(&s, &p, seed, i, &w, &stated));
      CHECK_OK(rd_caption_parse(&w, &parsed, &rep));
      bad_len += w.n > p.max_words;
      bad_parse += rep.n_unparsed != 0 || rep.n_parsed != rep.n_sentences || rep.n_unknown != 0;
      bad_set += parsed.n != stated.n || !same_fact_set(&parsed, &stated);
      for (int k = 0; k < stated.n; k++) bad_true += !rd_fact_true(&stated.f[k], &s);
      bad_first += rep.s[0].kind != RD_FACT_COUNT || parsed.f[0].count != s.n;
      /* Every object has its sentence; counts agree with the scene. */
      for (int o = 0; o < s.n; o++) {
        rd_fact f = {.kind = RD_FACT_OBJECT, .size = s.obj[o].size, .colour = s.obj[o].colour,
                     .shape = s.obj[o].shape, .row = s.obj[o].row, .col = s.obj[o].col};
        bad_cover += !rd_facts_contains(&stated, &f);
      }
      for (int k = 0; k < stated.n; k++) {
        const rd_fact *f = &stated.f[k];
        if (f->kind == RD_FACT_SHAPE_COUNT) {
          int n = 0;
          for (int o = 0; o < s.n; o++) n += s.obj[o].shape == f->shape;
          bad_count += n != f->count;
        } else if (f->kind == RD_FACT_COUNT) {
          bad_count += f->count != s.n;
        }
      }

      int a, len;
      CHECK_OK(rd_halluc_make(&s, &w, &stated, seed, i, &h, &a, &len));
      h_bad_n += h.n != w.n;
      h_bad_tight += len < 1 || len > 3 || strcmp(h.w[a], w.w[a]) == 0 ||
                     strcmp(h.w[a + len - 1], w.w[a + len - 1]) == 0;
      for (int k = 0; k < h.n; k++)
        if (k < a || k >= a + len) h_bad_outside += strcmp(h.w[k], w.w[k]) != 0;
      CHECK_OK(rd_caption_parse(&h, &hparsed, &hrep));
      h_bad_parse += hrep.n_unparsed != 0 || hparsed.n != stated.n;
      int n_false = 0, false_kind = -1, false_new = 0;
      for (int k = 0; k < hparsed.n; k++)
        if (!rd_fact_true(&hparsed.f[k], &s)) {
          n_false++;
          false_kind = hparsed.f[k].kind;
          false_new = !rd_facts_contains(&stated, &hparsed.f[k]);
          /* The false fact lies in the sentence holding the span. */
          for (int q = 0; q < hrep.n_sentences; q++)
            if (hrep.s[q].fact == k)
              false_new &= hrep.s[q].start <= a && a + len <= hrep.s[q].start + hrep.s[q].len;
        }
      h_bad_false += n_false != 1 || !false_new;
      if (false_kind >= 0) h_kind[false_kind]++;
      if (len >= 1 && len < 8) h_words[len]++;
    }
  }
  CHECK(scenes >= 10000);
  CHECK_MSG(bad_parse == 0, "%d captions with unparsed sentences", bad_parse);
  CHECK_MSG(bad_set == 0, "%d captions parse to other facts than stated", bad_set);
  CHECK_MSG(bad_true == 0, "%d stated facts false", bad_true);
  CHECK_MSG(bad_len == 0, "%d captions over max_words", bad_len);
  CHECK_MSG(bad_cover == 0, "%d objects without a sentence", bad_cover);
  CHECK_MSG(bad_count == 0, "%d count facts disagree with the scene", bad_count);
  CHECK_MSG(bad_first == 0, "%d captions not opening with the count", bad_first);
  CHECK_MSG(h_bad_n == 0, "%d hallucinations change the word count", h_bad_n);
  CHECK_MSG(h_bad_outside == 0, "%d words changed outside the span", h_bad_outside);
  CHECK_MSG(h_bad_tight == 0, "%d spans not tight", h_bad_tight);
  CHECK_MSG(h_bad_parse == 0, "%d hallucinations do not parse fully", h_bad_parse);
  CHECK_MSG(h_bad_false == 0, "%d hallucinations without exactly one new false fact", h_bad_false);
  /* Every kind of change happens, object attributes most often. */
  for (int k = 0; k < RD_FACT_KINDS; k++)
    CHECK_MSG(h_kind[k] > scenes / 50, "kind %d: %d", k, h_kind[k]);
  printf("  %d scenes; hallucinated kinds count/object/relation/shape count: %d %d %d %d; "
         "span 1/2/3 words: %d %d %d\n",
         scenes, h_kind[0], h_kind[1], h_kind[2], h_kind[3], h_words[1], h_words[2], h_words[3]);
}

/* Hallucinations by kind of change, seen through the facts: colour, shape,
 * size, cell, count, shape count and relation flips all occur. */
static void hallucination_changes_vary(void) {
  rd_shapes_params p = params(2, 4, 2);
  int seen[7] = {0};
  for (int i = 0; i < 3000; i++) {
    rd_scene s;
    rd_words w, h;
    rd_facts st, hp;
    int a, len;
    CHECK_OK(rd_scene_sample(&s, &p, 5, i));
    CHECK_OK(rd_caption_write(&s, &p, 5, i, &w, &st));
    CHECK_OK(rd_halluc_make(&s, &w, &st, 5, i, &h, &a, &len));
    CHECK_OK(rd_caption_parse(&h, &hp, NULL));
    for (int k = 0; k < hp.n; k++) {
      const rd_fact *f = &hp.f[k];
      if (rd_fact_true(f, &s)) continue;
      if (f->kind == RD_FACT_COUNT) seen[4]++;
      if (f->kind == RD_FACT_SHAPE_COUNT) seen[5]++;
      if (f->kind == RD_FACT_RELATION) seen[6]++;
      if (f->kind != RD_FACT_OBJECT) continue;
      int o = rd_scene_find(&s, f->colour, f->shape);
      int at = rd_scene_at(&s, f->row, f->col);
      if (at >= 0 && s.obj[at].colour != f->colour && s.obj[at].shape == f->shape) seen[0]++;
      if (at >= 0 && s.obj[at].shape != f->shape && s.obj[at].colour == f->colour) seen[1]++;
      if (at >= 0 && s.obj[at].shape == f->shape && s.obj[at].colour == f->colour) seen[2]++;
      if (o >= 0 && o != at && s.obj[o].size == f->size) seen[3]++;
    }
  }
  for (int k = 0; k < 7; k++) CHECK_MSG(seen[k] > 100, "change %d seen %d times", k, seen[k]);
}

/* The grammar is multi-modal: every phrasing of every kind occurs often,
 * size synonyms occur, and object sentence order varies. */
static void phrasings_and_orders_vary(void) {
  rd_shapes_params p = params(1, 4, 2);
  int ph[RD_FACT_KINDS][4] = {{0}};
  int syn_big = 0, syn_large = 0, sentences = 0, in_index_order = 0, multi = 0;
  for (int i = 0; i < 4000; i++) {
    rd_scene s;
    rd_words w;
    rd_facts st;
    rd_parse_report rep;
    CHECK_OK(rd_scene_sample(&s, &p, 9, i));
    CHECK_OK(rd_caption_write(&s, &p, 9, i, &w, &st));
    CHECK_OK(rd_caption_parse(&w, NULL, &rep));
    for (int k = 0; k < rep.n_sentences; k++) {
      const rd_sentence *q = &rep.s[k];
      ph[q->kind][q->phrasing]++;
      sentences++;
      if (q->slot[RD_SLOT_SIZE] >= 0) {
        syn_big += strcmp(w.w[q->slot[RD_SLOT_SIZE]], "big") == 0;
        syn_large += strcmp(w.w[q->slot[RD_SLOT_SIZE]], "large") == 0;
      }
    }
    if (s.n >= 3) {
      multi++;
      int last = -1, ordered = 1;
      for (int k = 0; k < st.n; k++)
        if (st.f[k].kind == RD_FACT_OBJECT) {
          int o = rd_scene_at(&s, st.f[k].row, st.f[k].col);
          ordered &= o > last;
          last = o;
        }
      in_index_order += ordered;
    }
  }
  for (int k = 0; k < RD_FACT_KINDS; k++) {
    int total = 0;
    for (int j = 0; j < rd_phrasings(k); j++) total += ph[k][j];
    for (int j = 0; j < rd_phrasings(k); j++)
      CHECK_MSG(ph[k][j] * rd_phrasings(k) * 2 > total, "kind %d phrasing %d: %d of %d", k, j,
                ph[k][j], total);
    printf("  kind %d phrasings:", k);
    for (int j = 0; j < rd_phrasings(k); j++) printf(" %d", ph[k][j]);
    printf("\n");
  }
  CHECK(syn_big > 1000 && syn_large > 1000);
  /* Random order puts 3-4 objects in index order 1/6 to 1/24 of the time. */
  CHECK_MSG(in_index_order * 5 < multi, "%d of %d in index order", in_index_order, multi);

  /* One scene, many caption streams: many distinct captions. */
  rd_scene s;
  CHECK_OK(rd_scene_sample(&s, &p, 3, 17));
  while (s.n < 3) CHECK_OK(rd_scene_sample(&s, &p, 3, s.n * 1000 + 18));
  char first[1024], buf[1024];
  rd_words w;
  int distinct_first_sentence = 0;
  CHECK_OK(rd_caption_write(&s, &p, 3, 0, &w, NULL));
  rd_words_join(&w, first, sizeof first);
  int differ = 0;
  for (int i = 1; i < 50; i++) {
    CHECK_OK(rd_caption_write(&s, &p, 3, i, &w, NULL));
    rd_words_join(&w, buf, sizeof buf);
    differ += strcmp(buf, first) != 0;
    distinct_first_sentence += strncmp(buf, first, 12) != 0;
  }
  CHECK(differ == 49);
  CHECK(distinct_first_sentence > 10);
}

static void deterministic_per_sample(void) {
  rd_shapes_params p = params(1, 4, 2);
  uint8_t img1[48 * 48 * 3], img2[48 * 48 * 3];
  int scene_diff = 0, cap_diff = 0, img_diff = 0;
  for (int i = 0; i < 50; i++) {
    rd_scene a, b, c;
    rd_words wa, wb, wc;
    CHECK_OK(rd_scene_sample(&a, &p, 42, i));
    CHECK_OK(rd_scene_sample(&b, &p, 42, i));
    CHECK_OK(rd_scene_sample(&c, &p, 42, i + 1));
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    scene_diff += memcmp(&a, &c, sizeof a) != 0;
    CHECK_OK(rd_caption_write(&a, &p, 42, i, &wa, NULL));
    CHECK_OK(rd_caption_write(&b, &p, 42, i, &wb, NULL));
    CHECK_OK(rd_caption_write(&c, &p, 42, i + 1, &wc, NULL));
    CHECK(wa.n == wb.n && memcmp(wa.w, wb.w, sizeof(wa.w[0]) * (size_t)wa.n) == 0);
    cap_diff += wa.n != wc.n || memcmp(wa.w, wc.w, sizeof(wa.w[0]) * (size_t)wa.n) != 0;
    CHECK_OK(rd_scene_render(&a, &p, img1));
    CHECK_OK(rd_scene_render(&b, &p, img2));
    CHECK(memcmp(img1, img2, sizeof img1) == 0);
    CHECK_OK(rd_scene_render(&c, &p, img2));
    img_diff += memcmp(img1, img2, sizeof img1) != 0;
  }
  CHECK(scene_diff == 50 && cap_diff == 50 && img_diff == 50);
  /* Another seed is another world. */
  rd_scene a, b;
  CHECK_OK(rd_scene_sample(&a, &p, 1, 0));
  CHECK_OK(rd_scene_sample(&b, &p, 2, 0));
  int d = memcmp(&a, &b, sizeof a) != 0;
  for (int i = 1; i < 5 && !d; i++) {
    CHECK_OK(rd_scene_sample(&a, &p, 1, i));
    CHECK_OK(rd_scene_sample(&b, &p, 2, i));
    d = memcmp(&a, &b, sizeof a) != 0;
  }
  CHECK(d);
}

static void rendered_objects_in_their_cells(void) {
  rd_shapes_params p = params(1, 6, 2);
  p.jitter = 2;
  const int W = 48, cell = 16;
  uint8_t img[48 * 48 * 3], solo[48 * 48 * 3];
  int bad_centre = 0, bad_empty = 0, bad_outside = 0, bad_area = 0;
  long area[RD_SHAPES][RD_SIZES] = {{0}}, nobj[RD_SHAPES][RD_SIZES] = {{0}};
  for (int i = 0; i < 2000; i++) {
    rd_scene s;
    CHECK_OK(rd_scene_sample(&s, &p, 77, i));
    CHECK_OK(rd_scene_render(&s, &p, img));
    const uint8_t bg = rd_background_level(s.background);
    for (int r = 0; r < RD_GRID; r++)
      for (int c = 0; c < RD_GRID; c++) {
        int o = rd_scene_at(&s, r, c);
        if (o < 0) {
          for (int y = r * cell; y < (r + 1) * cell; y++)
            for (int x = c * cell; x < (c + 1) * cell; x++)
              for (int ch = 0; ch < 3; ch++) bad_empty += img[(y * W + x) * 3 + ch] != bg;
          continue;
        }
        const rd_object *ob = &s.obj[o];
        uint8_t rgb[3];
        rd_colour_rgb(ob->colour, rgb);
        int cx = c * cell + cell / 2 + ob->dx, cy = r * cell + cell / 2 + ob->dy;
        bad_centre += memcmp(img + (cy * W + cx) * 3, rgb, 3) != 0;
        /* The cell's own centre pixel too, when unjittered. */
        if (!ob->dx && !ob->dy)
          bad_centre += memcmp(img + ((r * cell + 8) * W + c * cell + 8) * 3, rgb, 3) != 0;
        /* Drawn alone, the object covers only its own cell. */
        rd_scene alone = s;
        alone.n = 1;
        alone.obj[0] = *ob;
        CHECK_OK(rd_scene_render(&alone, &p, solo));
        for (int y = 0; y < W; y++)
          for (int x = 0; x < W; x++)
            if (solo[(y * W + x) * 3] != bg || solo[(y * W + x) * 3 + 2] != bg)
              bad_outside += y / cell != r || x / cell != c;
        long n = 0;
        for (int y = r * cell; y < (r + 1) * cell; y++)
          for (int x = c * cell; x < (c + 1) * cell; x++)
            n += memcmp(img + (y * W + x) * 3, rgb, 3) == 0;
        area[ob->shape][ob->size] += n;
        nobj[ob->shape][ob->size]++;
      }
  }
  CHECK_MSG(bad_centre == 0, "%d object centres without their colour", bad_centre);
  CHECK_MSG(bad_empty == 0, "%d non-background values in empty cells", bad_empty);
  CHECK_MSG(bad_outside == 0, "%d object pixels outside their cell", bad_outside);
  printf("  mean pixels large/small: circle %.0f/%.0f square %.0f/%.0f triangle %.0f/%.0f\n",
         (double)area[0][0] / nobj[0][0], (double)area[0][1] / nobj[0][1],
         (double)area[1][0] / nobj[1][0], (double)area[1][1] / nobj[1][1],
         (double)area[2][0] / nobj[2][0], (double)area[2][1] / nobj[2][1]);
  for (int sh = 0; sh < RD_SHAPES; sh++) {
    double large = (double)area[sh][0] / nobj[sh][0], small = (double)area[sh][1] / nobj[sh][1];
    bad_area += !(large > 2.2 * small && large > 60 && large < 150 && small > 20);
  }
  CHECK(bad_area == 0);
  /* Large shapes differ in pixel count by at least 10 (circle > square > triangle). */
  long mean[RD_SHAPES];
  for (int sh = 0; sh < RD_SHAPES; sh++) mean[sh] = area[sh][0] / nobj[sh][0];
  CHECK(mean[0] > mean[1] + 10 && mean[1] > mean[2] + 10);
}

static void pack_round_trip_and_rejects(void) {
  rd_shapes_params p = params(1, 6, 2);
  int32_t buf[(RD_OBJECTS_MAX + 1) * RD_SCENE_FIELDS];
  for (int i = 0; i < 500; i++) {
    rd_scene s, t;
    CHECK_OK(rd_scene_sample(&s, &p, 8, i));
    CHECK_OK(rd_scene_pack(&s, buf, 6));
    CHECK_OK(rd_scene_unpack(buf, 6, &t));
    CHECK(memcmp(&s, &t, sizeof s) == 0);
  }
  rd_scene s, t;
  p = params(3, 3, 2);
  CHECK_OK(rd_scene_sample(&s, &p, 8, 1));
  CHECK_ERR(rd_scene_pack(&s, buf, 2), "do not fit max_objects 2");
  CHECK_OK(rd_scene_pack(&s, buf, 4));
  CHECK(buf[4 * RD_SCENE_FIELDS] == -1 && buf[0] == 3 && buf[2] == 3);
  int32_t bad[5 * RD_SCENE_FIELDS];
#define CORRUPT(idx, val, msg)                         \
  do {                                                 \
    memcpy(bad, buf, sizeof bad);                      \
    bad[idx] = (val);                                  \
    CHECK_ERR(rd_scene_unpack(bad, 4, &t), msg);       \
  } while (0)
  CORRUPT(0, 0, "object count 0 is outside 1..4");
  CORRUPT(0, 5, "object count 5");
  CORRUPT(1, 4, "background 4");
  CORRUPT(2, 4, "grid 4");
  CORRUPT(5, 1, "reserved field 5");
  CORRUPT(RD_SCENE_FIELDS + 0, 3, "scene row 1 (object 0): shape 3 is outside 0..2");
  CORRUPT(2 * RD_SCENE_FIELDS + 1, -2, "scene row 2 (object 1): colour -2");
  CORRUPT(RD_SCENE_FIELDS + 2, 2, "size 2");
  CORRUPT(3 * RD_SCENE_FIELDS + 3, 3, "row 3 is outside 0..2");
  CORRUPT(RD_SCENE_FIELDS + 5, 9, "dx 9");
  CORRUPT(4 * RD_SCENE_FIELDS + 1, 0, "padding after 3 objects must be -1, colour is 0");
  /* Two objects in one cell; two red circles. */
  memcpy(bad, buf, sizeof bad);
  bad[2 * RD_SCENE_FIELDS + 3] = bad[RD_SCENE_FIELDS + 3];
  bad[2 * RD_SCENE_FIELDS + 4] = bad[RD_SCENE_FIELDS + 4];
  CHECK_ERR(rd_scene_unpack(bad, 4, &t), "already holds object 0");
  memcpy(bad, buf, sizeof bad);
  bad[2 * RD_SCENE_FIELDS + 0] = bad[RD_SCENE_FIELDS + 0];
  bad[2 * RD_SCENE_FIELDS + 1] = bad[RD_SCENE_FIELDS + 1];
  CHECK_ERR(rd_scene_unpack(bad, 4, &t), "repeat object 0");
  CHECK_ERR(rd_scene_unpack(buf, 10, &t), "max_objects 10");
#undef CORRUPT
}

/* Every phrasing the writer can use is read back to its fact and phrasing,
 * with the attribute words where the report says. */
static void every_phrasing_parses(void) {
  rd_fact facts[4] = {
      {.kind = RD_FACT_COUNT, .count = 1},
      {.kind = RD_FACT_OBJECT, .size = RD_SIZE_SMALL, .colour = RD_COLOUR_PURPLE,
       .shape = RD_SHAPE_TRIANGLE, .row = 2, .col = 1},
      {.kind = RD_FACT_RELATION, .rel = RD_REL_LEFT_OF, .colour = RD_COLOUR_RED,
       .shape = RD_SHAPE_CIRCLE, .colour2 = RD_COLOUR_BLUE, .shape2 = RD_SHAPE_SQUARE},
      {.kind = RD_FACT_SHAPE_COUNT, .count = 3, .shape = RD_SHAPE_SQUARE},
  };
  for (int k = 0; k < 4; k++)
    for (int count = 1; count <= 9; count++)
      for (int ph = 0; ph < rd_phrasings(facts[k].kind); ph++)
        for (int var = 0; var < 2; var++)
          for (int rel = 0; rel < RD_RELS; rel++) {
            rd_fact f = facts[k];
            if (f.kind == RD_FACT_COUNT || f.kind == RD_FACT_SHAPE_COUNT) f.count = (int8_t)count;
            if (f.kind == RD_FACT_RELATION) f.rel = (int8_t)rel;
            rd_words w = {0};
            rd_facts out;
            rd_parse_report rep;
            CHECK_OK(rd_fact_write(&f, ph, var, &w));
            CHECK_OK(rd_caption_parse(&w, &out, &rep));
            CHECK(rep.n_sentences == 1 && rep.n_parsed == 1 && out.n == 1);
            CHECK(rd_fact_equal(&out.f[0], &f));
            CHECK(rep.s[0].phrasing == ph && rep.s[0].kind == f.kind && rep.s[0].fact == 0);
            if (f.kind == RD_FACT_OBJECT) {
              CHECK(strcmp(w.w[rep.s[0].slot[RD_SLOT_COLOUR]], "purple") == 0);
              CHECK(strcmp(w.w[rep.s[0].slot[RD_SLOT_ROW]], "bottom") == 0);
              CHECK(strcmp(w.w[rep.s[0].slot[RD_SLOT_COL]], "centre") == 0);
              CHECK(strcmp(w.w[rep.s[0].slot[RD_SLOT_SIZE]], var ? "little" : "small") == 0);
            }
          }
  rd_words w = {0};
  rd_fact bad = {.kind = RD_FACT_OBJECT, .colour = 9};
  CHECK_ERR(rd_fact_write(&bad, 0, 0, &w), "cannot write fact");
  CHECK_ERR(rd_fact_write(&facts[0], 3, 0, &w), "phrasing 3");
}

static int parse_text(const char *text, rd_facts *out, rd_parse_report *rep) {
  static char copy[2048];
  const char *words[RD_WORDS_MAX];
  int n = 0;
  snprintf(copy, sizeof copy, "%s", text);
  for (char *tok = strtok(copy, " "); tok && n < RD_WORDS_MAX; tok = strtok(NULL, " "))
    words[n++] = tok;
  return rd_caption_parse_strings(words, n, out, rep);
}

static void parser_is_strict_and_robust(void) {
  rd_facts out;
  rd_parse_report rep;
  /* Agreement, missing words, repeats, unknown words, no final ".". */
  CHECK_OK(parse_text("there is one object . there are one objects . there is two objects . "
                      "a large red circle is at the top left . a large red red circle is at the "
                      "top left . a large zebra circle is at the top left . . the top left holds",
                      &out, &rep));
  CHECK(rep.n_sentences == 8 && rep.n_parsed == 2 && rep.n_unparsed == 6 && out.n == 2);
  CHECK(rep.n_unknown == 1 && rep.s[7].terminated == 0 && rep.s[6].len == 1 && rep.s[7].len == 4);
  CHECK(rep.s[0].parsed && rep.s[3].parsed && !rep.s[1].parsed && !rep.s[2].parsed);
  CHECK(rep.s[3].fact == 1 && rep.s[1].fact == -1 && rep.s[3].start == 15 && rep.s[3].len == 10);
  /* Relation words are not positions and vice versa. */
  CHECK_OK(parse_text("the red circle is left the blue square . the red circle is left of the "
                      "blue square . above the blue square is the red circle . the red circle is "
                      "right of the red circle .", &out, &rep));
  CHECK(rep.n_parsed == 3 && !rep.s[0].parsed && out.n == 3);
  CHECK(out.f[0].rel == RD_REL_LEFT_OF && out.f[1].rel == RD_REL_ABOVE);
  /* "right of" is stored as the inverse "left of". */
  CHECK(out.f[2].colour == RD_COLOUR_RED && out.f[2].colour2 == RD_COLOUR_RED &&
        out.f[2].rel == RD_REL_LEFT_OF);
  /* Empty input, a lone dot, no dot at all. */
  CHECK_OK(rd_caption_parse_strings(NULL, 0, &out, &rep));
  CHECK(rep.n_sentences == 0 && out.n == 0);
  CHECK_OK(parse_text(".", &out, &rep));
  CHECK(rep.n_sentences == 1 && rep.n_unparsed == 1);
  CHECK_OK(parse_text("there is one object", &out, &rep));
  CHECK(rep.n_sentences == 1 && rep.n_unparsed == 1 && !rep.s[0].terminated);
  const char *nulls[3] = {"there", NULL, "."};
  CHECK_OK(rd_caption_parse_strings(nulls, 3, &out, &rep));
  CHECK(rep.n_unknown == 1 && rep.n_unparsed == 1);
  CHECK_ERR(rd_caption_parse_strings(nulls, RD_WORDS_MAX + 1, &out, &rep), "129 words");
  CHECK_ERR(rd_caption_parse_strings(NULL, 3, &out, &rep), "no word list");
  CHECK_ERR(rd_caption_parse_strings(nulls, -1, &out, &rep), "-1 words");

  /* Garbage: lexicon words, unknown words, repeats, cut captions. */
  const char *lex[128];
  int nlex = rd_shapes_lexicon(lex, 128);
  const char *junk[] = {"[MASK]", "<eos>", "", "zebra", "Red", "left."};
  rd_rng r;
  rd_rng_init(&r, 3, RD_RNG_TEST, 0, 0);
  rd_shapes_params p = params(1, 4, 2);
  int bad = 0, total_parsed = 0;
  for (int it = 0; it < 20000; it++) {
    const char *words[RD_WORDS_MAX];
    int n = (int)rd_rng_below(&r, RD_WORDS_MAX + 1), mode = it % 4;
    if (mode == 0) { /* uniform garbage */
      for (int i = 0; i < n; i++)
        words[i] = rd_rng_below(&r, 10) ? lex[rd_rng_below(&r, (uint32_t)nlex)]
                                        : junk[rd_rng_below(&r, 6)];
    } else { /* a real caption, then damaged */
      rd_scene s;
      rd_words w;
      CHECK_OK(rd_scene_sample(&s, &p, 4, it));
      CHECK_OK(rd_caption_write(&s, &p, 4, it, &w, NULL));
      n = w.n;
      memcpy(words, w.w, sizeof(words[0]) * (size_t)n);
      if (mode == 1) n = (int)rd_rng_below(&r, (uint32_t)n + 1); /* truncated */
      if (mode == 2) /* repeated words, as parallel decoding makes */
        for (int k = 0; k < 4; k++) {
          int i = (int)rd_rng_below(&r, (uint32_t)n - 1);
          words[i + 1] = words[i];
        }
      if (mode == 3) /* a few words swapped for others */
        for (int k = 0; k < 3; k++)
          words[rd_rng_below(&r, (uint32_t)n)] = lex[rd_rng_below(&r, (uint32_t)nlex)];
    }
    CHECK_OK(rd_caption_parse_strings(words, n, &out, &rep));
    int covered = 0, ok = rep.n_parsed + rep.n_unparsed == rep.n_sentences && out.n == rep.n_parsed;
    for (int k = 0; k < rep.n_sentences; k++) {
      ok &= rep.s[k].start == covered && rep.s[k].len >= 1;
      covered += rep.s[k].len;
      ok &= rep.s[k].parsed == (rep.s[k].fact >= 0);
      for (int q = 0; q < RD_SLOTS; q++)
        ok &= rep.s[k].slot[q] < rep.s[k].start + rep.s[k].len;
    }
    ok &= covered == n;
    bad += !ok;
    total_parsed += rep.n_parsed;
  }
  CHECK_MSG(bad == 0, "%d garbage inputs with inconsistent reports", bad);
  CHECK(total_parsed > 10000); /* the damaged captions keep most sentences */
}

static void lexicon_covers_the_grammar(void) {
  const char *lex[128];
  int n = rd_shapes_lexicon(lex, 128);
  CHECK(n >= 50 && n <= 70);
  CHECK(rd_shapes_lexicon(lex, 3) == n);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < i; j++) CHECK(strcmp(lex[i], lex[j]) != 0);
  int used[128] = {0}, outside = 0;
  rd_shapes_params p = params(1, 9, 3);
  for (int i = 0; i < 3000; i++) {
    rd_scene s;
    rd_words w, h;
    int a, len;
    CHECK_OK(rd_scene_sample(&s, &p, 6, i));
    CHECK_OK(rd_caption_write(&s, &p, 6, i, &w, NULL));
    CHECK_OK(rd_halluc_make(&s, &w, NULL, 6, i, &h, &a, &len));
    for (int k = 0; k < w.n + h.n; k++) {
      const char *word = k < w.n ? w.w[k] : h.w[k - w.n];
      int found = -1;
      for (int j = 0; j < n && found < 0; j++)
        if (strcmp(lex[j], word) == 0) found = j;
      if (found < 0) outside++;
      else used[found] = 1;
    }
  }
  CHECK(outside == 0);
  int unused = 0;
  for (int j = 0; j < n; j++) unused += !used[j];
  CHECK_MSG(unused == 0, "%d lexicon words never written", unused);
  printf("  lexicon: %d words\n", n);
  CHECK(strcmp(rd_colour_name(RD_COLOUR_ORANGE), "orange") == 0 && rd_colour_name(6) == NULL);
  CHECK(strcmp(rd_shape_name(RD_SHAPE_TRIANGLE, 1), "triangles") == 0);
  CHECK(strcmp(rd_number_name(9), "nine") == 0 && rd_number_name(0) == NULL);
}

static int has_shape(const rd_scene *s, int shape) {
  for (int i = 0; i < s->n; i++)
    if (s->obj[i].shape == shape) return 1;
  return 0;
}

static void facts_format_and_score(void) {
  char buf[128];
  rd_fact o = {.kind = RD_FACT_OBJECT, .size = RD_SIZE_LARGE, .colour = RD_COLOUR_RED,
               .shape = RD_SHAPE_CIRCLE, .row = 0, .col = 2};
  rd_fact_format(&o, buf, sizeof buf);
  CHECK(strcmp(buf, "object: large red circle at top right") == 0);
  rd_fact rl = {.kind = RD_FACT_RELATION, .rel = RD_REL_ABOVE, .colour = RD_COLOUR_GREEN,
                .shape = RD_SHAPE_SQUARE, .colour2 = RD_COLOUR_BLUE, .shape2 = RD_SHAPE_TRIANGLE};
  rd_fact_format(&rl, buf, sizeof buf);
  CHECK(strcmp(buf, "relation: green square above blue triangle") == 0);
  rd_fact c = {.kind = RD_FACT_SHAPE_COUNT, .count = 2, .shape = RD_SHAPE_SQUARE};
  rd_fact_format(&c, buf, sizeof buf);
  CHECK(strcmp(buf, "shape count: 2 squares") == 0);
  rd_fact junk = {.kind = RD_FACT_OBJECT, .colour = 40, .row = -3};
  CHECK(rd_fact_format(&junk, buf, sizeof buf) > 0 && strstr(buf, "?"));

  /* Scene facts: all true; reference captions score precision 1 and cover
   * count and objects; a hallucinated one loses one true fact. */
  rd_shapes_params p = params(1, 4, 2);
  for (int i = 0; i < 300; i++) {
    rd_scene s;
    rd_words w, h;
    rd_facts st, all, hp;
    int a, len;
    CHECK_OK(rd_scene_sample(&s, &p, 12, i));
    rd_scene_facts(&s, RD_FACT_ALL, &all);
    int bad = 0;
    for (int k = 0; k < all.n; k++) bad += !rd_fact_true(&all.f[k], &s);
    CHECK(bad == 0);
    int pairs_axes = 0;
    for (int x = 0; x < s.n; x++)
      for (int y = 0; y < s.n; y++)
        pairs_axes += (s.obj[x].col < s.obj[y].col) + (s.obj[x].row < s.obj[y].row);
    int present = 0;
    for (int sh = 0; sh < RD_SHAPES; sh++) present += has_shape(&s, sh);
    CHECK(all.n == 1 + s.n + present + pairs_axes);
    CHECK_OK(rd_caption_write(&s, &p, 12, i, &w, &st));
    for (int k = 0; k < st.n; k++) CHECK(rd_facts_contains(&all, &st.f[k]));
    rd_fact_score sc;
    rd_facts_score(&st, &s, RD_FACT_BIT(RD_FACT_COUNT) | RD_FACT_BIT(RD_FACT_OBJECT), &sc);
    CHECK(sc.n_true == sc.n_claimed && sc.n_covered == sc.n_reference && sc.n_reference == 1 + s.n);
    CHECK_OK(rd_halluc_make(&s, &w, &st, 12, i, &h, &a, &len));
    CHECK_OK(rd_caption_parse(&h, &hp, NULL));
    rd_facts_score(&hp, &s, RD_FACT_ALL, &sc);
    CHECK(sc.n_claimed == st.n && sc.n_true == st.n - 1);
  }
  /* Duplicates count once. */
  rd_scene s;
  CHECK_OK(rd_scene_sample(&s, &p, 12, 0));
  rd_facts dup = {0};
  rd_scene_facts(&s, RD_FACT_BIT(RD_FACT_COUNT), &dup);
  dup.f[1] = dup.f[0];
  dup.n = 2;
  rd_fact_score sc;
  rd_facts_score(&dup, &s, RD_FACT_BIT(RD_FACT_COUNT), &sc);
  CHECK(sc.n_claimed == 1 && sc.n_true == 1 && sc.n_covered == 1);
  /* A relation naming an absent object is false. */
  rl.colour = RD_COLOUR_RED;
  rl.shape = RD_SHAPE_CIRCLE;
  rl.colour2 = RD_COLOUR_RED;
  rl.shape2 = RD_SHAPE_CIRCLE;
  CHECK(!rd_fact_true(&rl, &s));
}

static void halluc_rejects_bad_input(void) {
  rd_shapes_params p = params(2, 4, 2);
  rd_scene s;
  rd_words w, h;
  rd_facts st;
  int a, len;
  CHECK_OK(rd_scene_sample(&s, &p, 1, 1));
  CHECK_OK(rd_caption_write(&s, &p, 1, 1, &w, &st));
  rd_words cut = w;
  cut.n -= 1;
  CHECK_ERR(rd_halluc_make(&s, &cut, NULL, 1, 1, &h, &a, &len), "do not parse");
  st.n -= 1;
  CHECK_ERR(rd_halluc_make(&s, &w, &st, 1, 1, &h, &a, &len), "differ from the");
  rd_words empty = {0};
  CHECK_ERR(rd_halluc_make(&s, &empty, NULL, 1, 1, &h, &a, &len), "0 of 0");
  /* Strings from another vocabulary (not the lexicon's pointers) work. */
  char store[RD_WORDS_MAX][16];
  rd_words copy = {.n = w.n};
  for (int i = 0; i < w.n; i++) {
    snprintf(store[i], sizeof store[i], "%s", w.w[i]);
    copy.w[i] = store[i];
  }
  rd_words h2;
  int a2, len2;
  CHECK_OK(rd_halluc_make(&s, &w, NULL, 1, 1, &h, &a, &len));
  CHECK_OK(rd_halluc_make(&s, &copy, NULL, 1, 1, &h2, &a2, &len2));
  CHECK(a == a2 && len == len2 && strcmp(h.w[a], h2.w[a2]) == 0);
}

static void lengths_examples_and_speed(void) {
  rd_shapes_params p;
  rd_shapes_params_default(&p);
  int mn = 1 << 30, mx = 0, hist_rel[3] = {0};
  long sum = 0;
  const int N = 20000;
  for (int i = 0; i < N; i++) {
    rd_scene s;
    rd_words w;
    rd_facts st;
    CHECK_OK(rd_scene_sample(&s, &p, 2024, i));
    CHECK_OK(rd_caption_write(&s, &p, 2024, i, &w, &st));
    mn = w.n < mn ? w.n : mn;
    mx = w.n > mx ? w.n : mx;
    sum += w.n;
    int nr = 0;
    for (int k = 0; k < st.n; k++) nr += st.f[k].kind == RD_FACT_RELATION;
    hist_rel[nr]++;
  }
  printf("  caption words (max_objects 4, max_words %d): min %d mean %.1f max %d; "
         "relations 0/1/2: %d %d %d\n",
         p.max_words, mn, (double)sum / N, mx, hist_rel[0], hist_rel[1], hist_rel[2]);
  CHECK(mx <= p.max_words && (double)sum / N > 30);

  for (int i = 0; i < 3; i++) {
    rd_scene s;
    rd_words w, h;
    rd_facts st;
    int a, len;
    char buf[1024];
    CHECK_OK(rd_scene_sample(&s, &p, 2024, 40 + i));
    CHECK_OK(rd_caption_write(&s, &p, 2024, 40 + i, &w, &st));
    CHECK_OK(rd_halluc_make(&s, &w, &st, 2024, 40 + i, &h, &a, &len));
    rd_words_join(&w, buf, sizeof buf);
    printf("  example %d (%d words): %s\n", i, w.n, buf);
    rd_words_join(&h, buf, sizeof buf);
    printf("  halluc  %d (span %d+%d): %s\n", i, a, len, buf);
  }
  char small[8];
  rd_words two = {.n = 2, .w = {"there", "is"}};
  CHECK(rd_words_join(&two, small, sizeof small) == 8 && strcmp(small, "there i") == 0);

  uint8_t img[48 * 48 * 3];
  const int T = 20000;
  double t0 = rd_clock_now();
  long sink = 0;
  for (int i = 0; i < T; i++) {
    rd_scene s;
    rd_words w, h;
    rd_facts st;
    int a, len;
    rd_scene_sample(&s, &p, 99, i);
    rd_scene_render(&s, &p, img);
    rd_caption_write(&s, &p, 99, i, &w, &st);
    rd_halluc_make(&s, &w, &st, 99, i, &h, &a, &len);
    sink += img[i % sizeof img] + w.n + a;
  }
  double us = (rd_clock_now() - t0) / T * 1e6;
  printf("  per sample (scene + render + caption + hallucination): %.2f us (%ld)\n", us, sink % 7);
  if (!SANITIZED) CHECK_MSG(us < 50, "%.1f us per sample", us);
}

RD_TEST_MAIN("shapes", RD_CASE(params_checked), RD_CASE(captions_round_trip_and_hallucinate),
             RD_CASE(hallucination_changes_vary), RD_CASE(phrasings_and_orders_vary),
             RD_CASE(deterministic_per_sample), RD_CASE(rendered_objects_in_their_cells),
             RD_CASE(pack_round_trip_and_rejects), RD_CASE(every_phrasing_parses),
             RD_CASE(parser_is_strict_and_robust), RD_CASE(lexicon_covers_the_grammar),
             RD_CASE(facts_format_and_score), RD_CASE(halluc_rejects_bad_input),
             RD_CASE(lengths_examples_and_speed))
