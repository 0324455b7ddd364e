/* What a gather did, counted: drafts read, judged right, revised and dropped
 * (by reason), edits by kind and by length change, all per step count. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"
#include "stages/expert.h"

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

int rd_expert_counts_json(const rd_expert_counts *c, int round, const char *expert, const char *policy, char **json,
                          size_t *n) {
  size_t cap = 2048 + 160 * (size_t)c->n_steps;
  char *s = rd_malloc(cap, "the counts JSON");
  if (!s) return RD_ENOMEM;
  size_t k = 0;
#define OUT(...) k += (size_t)snprintf(s + k, k < cap ? cap - k : 0, __VA_ARGS__)
  OUT("{\"round\": %d, \"expert\": \"%s\", \"length_policy\": \"%s\"", round, expert, policy);
  for (int j = 0; j < RD_COUNT_COLS; j++) OUT(", \"%s\": %" PRId64, col_names[j], c->total[j]);
  OUT(", \"rows\": %" PRId64 ", \"rows_with_mistakes\": %" PRId64 ", \"mistake_tokens\": %" PRId64,
      c->total[RD_COUNT_RIGHT] + c->total[RD_COUNT_REVISED], c->rows_with_mistakes, c->mistake_tokens);
  OUT(",\n \"dropped_by_reason\": {");
  for (int r = 1; r < RD_DROP_REASONS; r++) OUT("%s\"%s\": %" PRId64, r > 1 ? ", " : "", rd_drop_reason_name(r), c->dropped_by[r]);
  OUT("},\n \"edits_by_kind\": {");
  for (int e = 0; e < RD_EDIT_KINDS; e++) OUT("%s\"%s\": %" PRId64, e ? ", " : "", rd_edit_kind_name(e), c->edits_by_kind[e]);
  OUT("},\n \"edits_by_length\": {\"same\": %" PRId64 ", \"longer\": %" PRId64 ", \"shorter\": %" PRId64 "},\n \"by_steps\": [",
      c->same, c->longer, c->shorter);
  for (int i = 0; i < c->n_steps; i++) {
    OUT("%s{\"steps\": %d", i ? ",\n  " : "\n  ", c->steps[i]);
    for (int j = 0; j < RD_COUNT_COLS; j++) OUT(", \"%s\": %" PRId64, col_names[j], c->by_steps[i][j]);
    OUT("}");
  }
  OUT("]}\n");
#undef OUT
  if (k >= cap) {
    free(s);
    return rd_err(RD_ESTATE, "counts JSON longer than its buffer");
  }
  *json = s;
  *n = k;
  return RD_OK;
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
