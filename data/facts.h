/* Facts: what a ShapesCap sentence claims, checkable against a scene.
 *
 * One sentence states one fact. An object sentence ("a large red circle is at
 * the top left .") is ONE fact holding size, colour, shape and cell: a
 * sentence wrong in any attribute is one wrong fact, never a mix of right
 * and wrong part-facts, so precision counts sentences the way a reader
 * would. The expert that repairs drafts finds the wrong attribute by
 * comparing with the object in the stated cell (rd_scene_at). */
#ifndef RD_DATA_FACTS_H
#define RD_DATA_FACTS_H

#include <stddef.h>
#include <stdint.h>

#include "data/scene.h"

enum {
  RD_FACT_COUNT,       /* count objects in the scene */
  RD_FACT_OBJECT,      /* an object of size, colour, shape at (row, col) */
  RD_FACT_RELATION,    /* the (colour, shape) object is rel of the (colour2, shape2) object */
  RD_FACT_SHAPE_COUNT, /* count objects of shape */
  RD_FACT_KINDS
};
#define RD_FACT_BIT(kind) (1u << (kind))
#define RD_FACT_ALL ((1u << RD_FACT_KINDS) - 1)

/* Relations are stored in one direction only ("B right of A" is "A left of
 * B"), so equal facts compare equal whichever way a sentence put them. */
enum { RD_REL_LEFT_OF, RD_REL_ABOVE, RD_RELS };

typedef struct {
  int8_t kind;
  int8_t count;                       /* COUNT, SHAPE_COUNT: 1..9 */
  int8_t shape, colour, size, row, col; /* OBJECT; RELATION: first object's shape, colour;
                                         SHAPE_COUNT: shape */
  int8_t rel;                         /* RELATION: RD_REL_* */
  int8_t shape2, colour2;             /* RELATION: second object */
} rd_fact;

/* Enough for every fact of a full scene (1 + 9 + 3 + 72) and for any caption. */
#define RD_FACTS_MAX 128
typedef struct {
  int n;
  rd_fact f[RD_FACTS_MAX];
} rd_facts;

/* The relation fact "A rel B" (rel an RD_REL_*), naming the objects by
 * colour and shape as captions do. */
rd_fact rd_fact_relation(const rd_object *A, int rel, const rd_object *B);
/* 1 if the scene makes the fact true, else 0. A relation naming an object
 * the scene lacks (or the same object twice) is false. */
int rd_fact_true(const rd_fact *f, const rd_scene *s);
/* Compares only the fields the kind uses. */
int rd_fact_equal(const rd_fact *a, const rd_fact *b);
int rd_facts_contains(const rd_facts *fs, const rd_fact *f);
/* Appends unless full; returns 0, or RD_EINVAL when full. */
int rd_facts_push(rd_facts *fs, const rd_fact *f);

/* Every true fact of the kinds in the mask (RD_FACT_BIT(k) | ...) that a
 * full description could state: the count, one fact per object, the count
 * of each shape present, and every true relation (both axes of each pair). */
void rd_scene_facts(const rd_scene *s, unsigned kinds, rd_facts *out);

/* Scores claimed facts (duplicates counted once: repetition is measured
 * apart) against the scene. Precision = n_true / n_claimed; recall =
 * n_covered / n_reference over the true facts of recall_kinds (reference
 * captions always cover RD_FACT_BIT(COUNT) | RD_FACT_BIT(OBJECT)). */
typedef struct {
  int n_claimed, n_true;
  int n_reference, n_covered;
} rd_fact_score;
void rd_facts_score(const rd_facts *claimed, const rd_scene *s, unsigned recall_kinds,
                    rd_fact_score *out);

/* "object: large red circle at top left", "relation: red circle left of blue
 * square", "count: 3 objects", "shape count: 2 circles"; snprintf's return. */
int rd_fact_format(const rd_fact *f, char *buf, size_t n);

#endif
