/* ShapesCap captions: the grammar that writes them, the parser that reads
 * any word sequence back into facts, and the one-fact hallucination.
 *
 * A caption is a list of words; "." and "," are words. Sentence kinds and
 * their phrasings (docs/shapescap.md lists them all):
 *   count        3 phrasings  "there are three objects ."
 *   object       4 phrasings  "the top left holds a big red circle ."
 *   relation     4 phrasings  "the red circle is left of the blue square ."
 *                             (two word orders, each direct or inverse)
 *   shape count  2 phrasings  "two circles can be seen ."
 * Several phrasings per fact are the point: with one template per sentence a
 * parallel decoder cannot go wrong and the experiment says nothing. */
#ifndef RD_DATA_CAPTION_H
#define RD_DATA_CAPTION_H

#include <stddef.h>
#include <stdint.h>

#include "data/facts.h"
#include "data/scene.h"

typedef struct {
  int n;
  const char *w[RD_WORDS_MAX]; /* static strings (the lexicon's own) */
} rd_words;

/* Phrasings per sentence kind, indexed by RD_FACT_*. */
#define RD_PHRASINGS_COUNT 3
#define RD_PHRASINGS_OBJECT 4
#define RD_PHRASINGS_RELATION 4
#define RD_PHRASINGS_SHAPE_COUNT 2
int rd_phrasings(int kind);

/* Writes the caption of a scene: the count sentence first, then one sentence
 * per object in random order, then up to max_relations relation sentences
 * and shape-count sentences mixed in random order; phrasings drawn per
 * sentence from (seed, RD_RNG_CAPTION, sample_id). Relation and shape-count
 * sentences that would pass p->max_words are left out; if even the count and
 * object sentences would not fit, object sentences take their shortest
 * phrasing. stated (may be NULL) receives the facts, in sentence order. */
int rd_caption_write(const rd_scene *s, const rd_shapes_params *p, uint64_t seed,
                     int64_t sample_id, rd_words *out, rd_facts *stated);

/* Appends the sentence stating f in the given phrasing (0..rd_phrasings-1);
 * size_var 0/1 picks "large"/"big" ("small"/"little"). For the expert's
 * rewrites. RD_EINVAL if f or the phrasing is invalid or out would overflow. */
int rd_fact_write(const rd_fact *f, int phrasing, int size_var, rd_words *out);

/* Word positions inside a parsed sentence, as offsets into the word list. */
enum {
  RD_SLOT_NUM,     /* count word */
  RD_SLOT_BE,      /* "is" / "are" agreeing with the count */
  RD_SLOT_NOUN,    /* "object(s)" or the plural-agreeing shape of a shape count */
  RD_SLOT_SIZE,
  RD_SLOT_COLOUR,  /* object sentence; relation: the subject */
  RD_SLOT_SHAPE,
  RD_SLOT_ROW,
  RD_SLOT_COL,
  RD_SLOT_REL,     /* first relation word ("left" of "left of") */
  RD_SLOT_COLOUR2, /* relation: the other object */
  RD_SLOT_SHAPE2,
  RD_SLOTS
};

typedef struct {
  int start, len;    /* word span, the closing "." included when present */
  int8_t parsed;     /* 1: the words are one of the grammar's sentences */
  int8_t terminated; /* 0: the words ran out before a "." */
  int8_t kind;       /* RD_FACT_* when parsed, else -1 */
  int8_t phrasing;   /* 0..rd_phrasings(kind)-1 when parsed, else -1 */
  int16_t fact;      /* index into the facts out, or -1 */
  int8_t slot[RD_SLOTS]; /* absolute word index of each slot, -1 if none */
} rd_sentence;

typedef struct {
  int n_words;
  int n_unknown;     /* words outside the lexicon (incl. NULL) */
  int n_sentences;   /* spans ending in "." plus a final unterminated one */
  int n_parsed, n_unparsed;
  rd_sentence s[RD_WORDS_MAX];
} rd_parse_report;

/* Reads any words (model output: garbage, repeats, truncation, unknown
 * words) sentence by sentence, split after each ".". A sentence parses when
 * it is exactly one phrasing of the grammar with agreeing number ("there is
 * one object", never "there are one objects"); an empty sentence (".") or an
 * unterminated tail does not. out gets the facts of the parsed sentences in
 * order, duplicates kept; out and rep may be NULL. RD_EINVAL only for n < 0,
 * n > RD_WORDS_MAX or a NULL list with n > 0. */
int rd_caption_parse(const rd_words *w, rd_facts *out, rd_parse_report *rep);
int rd_caption_parse_strings(const char *const *words, int n, rd_facts *out,
                             rd_parse_report *rep);

/* Hallucination (ViCrit style): out is caption with exactly one stated fact
 * turned false and the same word count. The change, drawn from (seed,
 * RD_RNG_HALLUC, sample_id): an object's colour, shape, size or cell, the
 * object count, a shape count, or a relation's direction. *span_start,
 * *span_len are the tight span of changed words. RD_EINVAL if the caption
 * does not fully parse or (when stated is not NULL) its facts differ from
 * stated. */
int rd_halluc_make(const rd_scene *s, const rd_words *caption, const rd_facts *stated,
                   uint64_t seed, int64_t sample_id, rd_words *out, int *span_start,
                   int *span_len);

/* Words joined by single spaces into buf (truncated to n, always
 * terminated); snprintf-style return. */
int rd_words_join(const rd_words *w, char *buf, size_t n);

#endif
