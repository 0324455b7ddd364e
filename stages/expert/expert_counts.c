/* What a gather did, counted: drafts read, judged right, revised and dropped
 * (by reason), edits by kind and by length change, all per step count. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/json.h"
#include "stages/expert/expert.h"

void rd_expert_counts_init(rd_expert_counts *c) { memset(c, 0, sizeof *c); }

void rd_expert_counts_free(rd_expert_counts *c) {
  free(c->steps);
  free(c->by_steps);
  memset(c, 0, sizeof *c);
}

static int steps_row(const rd_expert_counts *c, int steps) {
  for (int i = 0; i < c->n_steps; i++)
    if (c->steps[i] == steps) return i;
  return -1;
}

int rd_expert_counts_add(rd_expert_counts *c, int steps, int right, int drop) {
  int i = steps_row(c, steps);
  if (i < 0) {
    int32_t *s = realloc(c->steps, sizeof(int32_t) * (size_t)(c->n_steps + 1));
    if (s) c->steps = s;
    int64_t(*b)[RD_COUNT_COLS] = realloc(c->by_steps, sizeof(*b) * (size_t)(c->n_steps + 1));
    if (b) c->by_steps = b;
    if (!s || !b) return rd_err(RD_ENOMEM, "out of memory counting step counts");
    i = c->n_steps++;
    while (i > 0 && c->steps[i - 1] > steps) { /* keep them ascending */
      c->steps[i] = c->steps[i - 1];
      memcpy(c->by_steps[i], c->by_steps[i - 1], sizeof c->by_steps[i]);
      i--;
    }
    c->steps[i] = steps;
    memset(c->by_steps[i], 0, sizeof c->by_steps[i]);
  }
  int col = drop >= 0 ? RD_COUNT_DROPPED : right ? RD_COUNT_RIGHT : RD_COUNT_REVISED;
  c->total[RD_COUNT_DRAFTS]++;
  c->total[col]++;
  c->by_steps[i][RD_COUNT_DRAFTS]++;
  c->by_steps[i][col]++;
  if (drop >= 0 && drop < RD_DROP_REASONS) c->dropped_by[drop]++;
  return RD_OK;
}

void rd_expert_counts_edit(rd_expert_counts *c, int steps, int kind, int delta) {
  int i = steps_row(c, steps);
  c->total[RD_COUNT_EDITS]++;
  if (i >= 0) c->by_steps[i][RD_COUNT_EDITS]++;
  if (kind >= 0 && kind < RD_EDIT_KINDS) c->edits_by_kind[kind]++;
  if (delta == 0) c->same++;
  else if (delta > 0) c->longer++;
  else c->shorter++;
}

static const char *const col_names[RD_COUNT_COLS] = {"drafts", "right", "revised", "dropped", "edits"};

/* Adds key: {name_k: v[k], ...} for the names of v, from index from. */
static int add_named(json_t *o, const char *key, const char *what, const int64_t *v, int from, int n,
                     const char *(*name)(int)) {
  json_t *m;
  RD_TRY(rd_json_pack(&m, what, "{}"));
  int s = RD_OK;
  for (int k = from; k < n && s == RD_OK; k++) s = rd_json_add(m, name(k), what, "I", (json_int_t)v[k]);
  if (s < 0) return json_decref(m), s;
  return rd_json_add(o, key, what, "o", m);
}

int rd_expert_counts_json(const rd_expert_counts *c, int round, const char *expert, const char *policy, char **json,
                          size_t *n) {
  char what[64];
  snprintf(what, sizeof what, "the counts of round %d", round);
  json_t *o, *steps = NULL;
  RD_TRY(rd_json_pack(&o, what, "{s:i, s:s, s:s}", "round", round, "expert", expert, "length_policy", policy));
  int s = RD_OK;
  for (int j = 0; j < RD_COUNT_COLS && s == RD_OK; j++)
    s = rd_json_add(o, col_names[j], what, "I", (json_int_t)c->total[j]);
  if (s == RD_OK)
    s = rd_json_add(o, "rows", what, "I", (json_int_t)(c->total[RD_COUNT_RIGHT] + c->total[RD_COUNT_REVISED]));
  if (s == RD_OK) s = rd_json_add(o, "rows_with_mistakes", what, "I", (json_int_t)c->rows_with_mistakes);
  if (s == RD_OK) s = rd_json_add(o, "mistake_tokens", what, "I", (json_int_t)c->mistake_tokens);
  /* Reason 0 is RD_DROP_NONE: not a reason to count. */
  if (s == RD_OK) s = add_named(o, "dropped_by_reason", what, c->dropped_by, 1, RD_DROP_REASONS, rd_drop_reason_name);
  if (s == RD_OK) s = add_named(o, "edits_by_kind", what, c->edits_by_kind, 0, RD_EDIT_KINDS, rd_edit_kind_name);
  if (s == RD_OK)
    s = rd_json_add(o, "edits_by_length", what, "{s:I, s:I, s:I}", "same", (json_int_t)c->same, "longer",
                    (json_int_t)c->longer, "shorter", (json_int_t)c->shorter);
  if (s == RD_OK) s = rd_json_pack(&steps, what, "[]");
  for (int i = 0; i < c->n_steps && s == RD_OK; i++) {
    json_t *row = NULL;
    s = rd_json_pack(&row, what, "{s:i}", "steps", (int)c->steps[i]);
    for (int j = 0; j < RD_COUNT_COLS && s == RD_OK; j++)
      s = rd_json_add(row, col_names[j], what, "I", (json_int_t)c->by_steps[i][j]);
    if (s < 0) json_decref(row);
    else s = rd_json_add(steps, NULL, what, "o", row);
  }
  if (s == RD_OK) s = rd_json_add(o, "by_steps", what, "o", steps);
  else json_decref(steps);
  if (s == RD_OK) s = rd_json_dump(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER, what, json, n);
  json_decref(o);
  return s;
}

void rd_expert_counts_print(const rd_expert_counts *c, int round, FILE *out) {
  for (int i = 0; i < c->n_steps; i++)
    fprintf(out, "expert r%d: steps %4d: %6" PRId64 " drafts, %6" PRId64 " right, %6" PRId64 " revised, %6" PRId64
                 " dropped, %7" PRId64 " edits\n",
            round, c->steps[i], c->by_steps[i][0], c->by_steps[i][1], c->by_steps[i][2], c->by_steps[i][3],
            c->by_steps[i][4]);
  fprintf(out, "expert r%d: %" PRId64 " drafts: %" PRId64 " right, %" PRId64 " revised, %" PRId64 " dropped", round,
          c->total[0], c->total[1], c->total[2], c->total[3]);
  for (int r = 1; r < RD_DROP_REASONS; r++)
    if (c->dropped_by[r]) fprintf(out, " (%s %" PRId64 ")", rd_drop_reason_name(r), c->dropped_by[r]);
  fprintf(out, "; %" PRId64 " edits, %" PRId64 " mistake tokens\n", c->total[4], c->mistake_tokens);
}
