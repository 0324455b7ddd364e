/* Word-level alignment, and the reference expert built on it: for data
 * without scene graphs, the draft is aligned to the ground-truth caption and
 * every run of differing words becomes one edit. */
#include <stdlib.h>

#include "io/core/err.h"
#include "stages/expert/expert.h"

/* d[(n+1) x (m+1)]: d[i][j] = distance of a[i..n) to b[j..m) (suffixes, so
 * the traceback walks forward and finds edits in draft order). */
static int *suffix_table(const int32_t *a, int n, const int32_t *b, int m) {
  const int W = m + 1;
  int *d = rd_malloc(sizeof(int) * (size_t)(n + 1) * (size_t)W, "an alignment table");
  if (!d) return NULL;
  for (int i = n; i >= 0; i--)
    for (int j = m; j >= 0; j--) {
      int v;
      if (i == n) v = m - j;
      else if (j == m) v = n - i;
      else {
        v = d[(i + 1) * W + j + 1] + (a[i] != b[j]);
        int del = d[(i + 1) * W + j] + 1, ins = d[i * W + j + 1] + 1;
        if (del < v) v = del;
        if (ins < v) v = ins;
      }
      d[i * W + j] = v;
    }
  return d;
}

int rd_expert_distance(const int32_t *a, int n, const int32_t *b, int m) {
  /* Two rows suffice for the distance alone; candidates are short. */
  int stack[2][RD_WORDS_MAX + 1];
  if (m > RD_WORDS_MAX) {
    int *d = suffix_table(a, n, b, m);
    if (!d) return RD_ENOMEM;
    int v = d[0];
    free(d);
    return v;
  }
  int *prev = stack[0], *cur = stack[1];
  for (int j = 0; j <= m; j++) prev[j] = j;
  for (int i = 1; i <= n; i++) {
    cur[0] = i;
    for (int j = 1; j <= m; j++) {
      int v = prev[j - 1] + (a[i - 1] != b[j - 1]);
      if (prev[j] + 1 < v) v = prev[j] + 1;
      if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
      cur[j] = v;
    }
    int *t = prev;
    prev = cur;
    cur = t;
  }
  return prev[m];
}

int rd_expert_align(const int32_t *a, int n, const int32_t *b, int m, int a_base, int kind,
                    rd_expert_out *o) {
  if (n < 0 || m < 0) return rd_err(RD_EINVAL, "align: lengths %d, %d", n, m);
  int *d = suffix_table(a, n, b, m);
  if (!d) return RD_ENOMEM;
  const int W = m + 1, dist = d[0];
  int i = 0, j = 0, run_i = -1, run_j = -1, s = RD_OK;
  while (s == RD_OK && (i < n || j < m)) {
    int v = d[i * W + j];
    int match = i < n && j < m && a[i] == b[j] && d[(i + 1) * W + j + 1] == v;
    if (match) {
      if (run_i >= 0) s = rd_expert_push(o, a_base + run_i, i - run_i, b + run_j, j - run_j, kind);
      run_i = -1;
      i++, j++;
      continue;
    }
    if (run_i < 0) run_i = i, run_j = j;
    if (i < n && j < m && d[(i + 1) * W + j + 1] + 1 == v) i++, j++; /* substitution */
    else if (i < n && d[(i + 1) * W + j] + 1 == v) i++;              /* deletion */
    else j++;                                                        /* insertion */
  }
  if (s == RD_OK && run_i >= 0) s = rd_expert_push(o, a_base + run_i, n - run_i, b + run_j, m - run_j, kind);
  free(d);
  return s < 0 ? s : dist;
}

int rd_expert_reference(const int32_t *draft, int n, const int32_t *ref, int m, rd_expert_out *o) {
  rd_expert_out_clear(o);
  if (n == 0) {
    o->verdict = RD_VERDICT_DROP;
    o->reason = RD_DROP_EMPTY;
    return RD_OK;
  }
  int d = rd_expert_align(draft, n, ref, m, 0, RD_EDIT_TEXT, o);
  if (d < 0) return d;
  o->verdict = o->n_edits ? RD_VERDICT_EDITS : RD_VERDICT_RIGHT;
  return RD_OK;
}
