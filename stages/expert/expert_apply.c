/* Expert kinds by name, and expert answers as data: building an edit list, and applying it to a draft
 * under the length policy to get Stage II's model input, targets and loss
 * positions. */
#include <string.h>

#include "io/core/err.h"
#include "stages/expert/expert.h"

static const char *const drop_names[RD_DROP_REASONS] = {
    "none", "empty", "length", "overflow", "failed", "timeout", "crash", "malformed", "invalid"};

const char *rd_drop_reason_name(int reason) {
  return reason >= 0 && reason < RD_DROP_REASONS ? drop_names[reason] : "?";
}

int rd_expert_kind_parse(const char *name, rd_expert_kind *kind) {
  static const char *const names[] = {[RD_EXPERT_SCENE] = "scene", [RD_EXPERT_REFERENCE] = "reference",
                                      [RD_EXPERT_COMMAND] = "command"};
  for (int k = 0; k < (int)(sizeof names / sizeof names[0]); k++)
    if (strcmp(name, names[k]) == 0) {
      *kind = (rd_expert_kind)k;
      return RD_OK;
    }
  return rd_err(RD_EINVAL, "expert.kind '%s': not scene, reference or command", name);
}

void rd_expert_out_clear(rd_expert_out *o) {
  o->verdict = RD_VERDICT_RIGHT;
  o->reason = RD_DROP_NONE;
  o->n_edits = 0;
  o->n_tgt = 0;
}

int rd_expert_push(rd_expert_out *o, int start, int len, const int32_t *tgt, int t_len, int kind) {
  if (o->n_edits >= RD_EXPERT_EDITS_MAX || o->n_tgt + t_len > RD_EXPERT_TGT_MAX)
    return rd_err(RD_EINVAL, "expert: more than %d edits or %d target words for one draft", RD_EXPERT_EDITS_MAX,
                  RD_EXPERT_TGT_MAX);
  rd_edit *e = &o->e[o->n_edits++];
  e->start = start;
  e->len = len;
  e->t_off = o->n_tgt;
  e->t_len = t_len;
  e->kind = kind;
  if (t_len) memcpy(o->tgt + o->n_tgt, tgt, sizeof(int32_t) * (size_t)t_len);
  o->n_tgt += t_len;
  return RD_OK;
}

int rd_expert_apply(const int32_t *row, int L, const rd_expert_out *o, int remask, int32_t *x, int32_t *y,
                    uint8_t *mask, int32_t (*spans)[4]) {
  int n = 0;
  while (n < L && row[n] != RD_TOK_EOS) n++;
  int grow = 0, changes_len = 0;
  for (int k = 0; k < o->n_edits; k++) {
    const rd_edit *e = &o->e[k];
    int prev_end = k ? o->e[k - 1].start + o->e[k - 1].len : 0;
    if (e->start < prev_end || e->len < 0 || e->start + e->len > n || e->t_len < 0 || e->t_off < 0 ||
        e->t_off + e->t_len > o->n_tgt || (e->len == 0 && e->t_len == 0) ||
        (k && e->start == prev_end && e->len == 0 && o->e[k - 1].len == 0))
      return rd_err(RD_EINVAL, "expert: edit %d {%d, %d -> %d words} is out of order or outside the %d-word draft", k,
                    e->start, e->len, e->t_len, n);
    grow += e->t_len - e->len;
    changes_len |= e->t_len != e->len;
  }
  if (changes_len && !remask) return RD_DROP_LENGTH;
  if (n + grow > L) return RD_DROP_OVERFLOW;
  memset(mask, 0, (size_t)L);
  int pd = 0, p = 0; /* read position in the draft, write position in x and y */
  for (int k = 0; k < o->n_edits; k++) {
    const rd_edit *e = &o->e[k];
    for (; pd < e->start; pd++, p++) x[p] = y[p] = row[pd];
    spans[k][0] = e->start;
    spans[k][1] = e->len;
    spans[k][2] = p;
    spans[k][3] = e->t_len;
    for (int i = 0; i < e->t_len; i++, p++) {
      /* A same-length edit shows the model its own wrong words; a span that
       * changes length has no word-for-word draft, so it is masked. */
      x[p] = e->t_len == e->len ? row[e->start + i] : RD_TOK_MASK;
      y[p] = o->tgt[e->t_off + i];
      mask[p] = 1;
    }
    pd = e->start + e->len;
  }
  for (; pd < n; pd++, p++) x[p] = y[p] = row[pd];
  for (; p < L; p++) x[p] = y[p] = RD_TOK_EOS;
  return RD_DROP_NONE;
}
