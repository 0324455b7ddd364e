/* The scene expert (ShapesCap): exact revisions from the scene graph.
 *
 * The draft is parsed sentence by sentence. A sentence that parses, is true
 * of the scene and states a fact no earlier kept sentence stated is kept as
 * it is. Every other sentence -- false, a repeat, one that does not parse,
 * or words after the last "." -- is rewritten as the sentence of a true fact
 * that the kept sentences do not state, choosing among all such facts, all
 * phrasings and both size words the one fewest word edits away. For a
 * sentence with one wrong colour that is the same sentence with the right
 * colour; for a wrong count, the count word (with "is/are" and the noun's
 * number if they must change); for a wrong relation, the relation word. The
 * edits are then the runs of words where the sentence and its rewrite
 * differ. A sentence is deleted only when every true fact is stated. */
#include <string.h>

#include "io/core/err.h"
#include "stages/expert/expert.h"

_Static_assert((int)RD_EDIT_COUNT == (int)RD_FACT_COUNT && (int)RD_EDIT_SHAPE_COUNT == (int)RD_FACT_SHAPE_COUNT,
               "edit kinds start with the fact kinds");

/* Ids of a written sentence; 0 if a word is missing from the vocabulary
 * (a rare word the training captions never used). */
static int to_ids(const rd_vocab *v, const rd_words *w, int32_t *ids) {
  for (int i = 0; i < w->n; i++) {
    int id = rd_vocab_id(v, w->w[i]);
    if (id < 0) return 0;
    ids[i] = id;
  }
  return 1;
}

typedef struct {
  int found, cost, n;
  int32_t ids[RD_WORDS_MAX];
  rd_fact fact;
} candidate;

/* The true fact not in covered (of the given kind, or any kind for -1) whose
 * sentence is nearest to sent[n]. */
static int nearest(const rd_vocab *v, const rd_facts *all, const rd_facts *covered, const int32_t *sent, int n,
                   int same_len, int kind, candidate *best) {
  best->found = 0;
  for (int f = 0; f < all->n; f++) {
    const rd_fact *fact = &all->f[f];
    if ((kind >= 0 && fact->kind != kind) || rd_facts_contains(covered, fact)) continue;
    int size_vars = fact->kind == RD_FACT_OBJECT ? 2 : 1;
    for (int p = 0; p < rd_phrasings(fact->kind); p++)
      for (int sv = 0; sv < size_vars; sv++) {
        rd_words w;
        int32_t ids[RD_WORDS_MAX];
        w.n = 0;
        RD_TRY(rd_fact_write(fact, p, sv, &w));
        if (!to_ids(v, &w, ids)) continue;
        int cost = rd_expert_distance(sent, n, ids, w.n);
        RD_TRY(cost);
        /* Under length_policy drop a rewrite of another length loses the
         * whole draft, so any same-length rewrite is preferred. */
        if (same_len && w.n != n) cost += 1000;
        if (!best->found || cost < best->cost) {
          best->found = 1;
          best->cost = cost;
          best->n = w.n;
          best->fact = *fact;
          memcpy(best->ids, ids, sizeof(int32_t) * (size_t)w.n);
        }
      }
  }
  return RD_OK;
}

int rd_expert_scene(const rd_vocab *v, const rd_scene *s, const int32_t *draft, int n, int same_len,
                    rd_expert_out *o) {
  rd_expert_out_clear(o);
  if (n == 0) {
    o->verdict = RD_VERDICT_DROP;
    o->reason = RD_DROP_EMPTY;
    return RD_OK;
  }
  if (n > RD_WORDS_MAX) {
    o->verdict = RD_VERDICT_DROP;
    o->reason = RD_DROP_FAILED;
    return RD_OK;
  }
  const char *words[RD_WORDS_MAX];
  for (int i = 0; i < n; i++) {
    words[i] = rd_vocab_token(v, draft[i]);
    if (!words[i]) return rd_err(RD_EINVAL, "scene expert: token %d at position %d is outside the vocabulary", draft[i], i);
  }
  rd_facts facts, covered, all;
  rd_parse_report rep;
  RD_TRY(rd_caption_parse_strings(words, n, &facts, &rep));

  /* Pass 1: the sentences that stay, and the facts they state. */
  int keep[RD_WORDS_MAX], kind[RD_WORDS_MAX];
  covered.n = 0;
  for (int i = 0; i < rep.n_sentences; i++) {
    const rd_sentence *sen = &rep.s[i];
    keep[i] = 0;
    kind[i] = RD_EDIT_SYNTAX;
    if (!sen->parsed || sen->fact < 0) continue;
    const rd_fact *f = &facts.f[sen->fact];
    if (!rd_fact_true(f, s)) {
      kind[i] = f->kind; /* RD_EDIT_COUNT .. SHAPE_COUNT equal RD_FACT_* */
    } else if (rd_facts_contains(&covered, f)) {
      kind[i] = RD_EDIT_REPEAT;
    } else {
      keep[i] = 1;
      RD_TRY(rd_facts_push(&covered, f));
    }
  }

  /* Pass 2: rewrite or delete the others, in order. */
  rd_scene_facts(s, RD_FACT_ALL, &all);
  for (int i = 0; i < rep.n_sentences; i++) {
    if (keep[i]) continue;
    const rd_sentence *sen = &rep.s[i];
    candidate best;
    /* A sentence that parsed keeps its kind when it can: a wrong count
     * sentence gets the right count, not some other true fact that happens
     * to be one word away ("there is one circle"). */
    best.found = 0;
    if (sen->parsed)
      RD_TRY(nearest(v, &all, &covered, draft + sen->start, sen->len, same_len, sen->kind, &best));
    if (!best.found) RD_TRY(nearest(v, &all, &covered, draft + sen->start, sen->len, same_len, -1, &best));
    if (best.found) {
      int d = rd_expert_align(draft + sen->start, sen->len, best.ids, best.n, sen->start, kind[i], o);
      RD_TRY(d);
      RD_TRY(rd_facts_push(&covered, &best.fact));
    } else {
      RD_TRY(rd_expert_push(o, sen->start, sen->len, NULL, 0, kind[i]));
    }
  }
  o->verdict = o->n_edits ? RD_VERDICT_EDITS : RD_VERDICT_RIGHT;
  return RD_OK;
}
