/* BLEU-4, CIDEr-D and repetition on token ids; definitions in docs/metrics.md.
 *
 * Every metric counts n-grams (n <= 4) in hash maps with open addressing and
 * linear probing, kept at most half full. Per-caption maps are sized up front
 * from the longest caption (L ids hold at most 4L n-grams of orders 1..4) and
 * remember their occupied slots, so clearing one between captions costs the
 * caption's size, not the table's; the corpus-wide document-frequency map
 * grows with the distinct n-grams. The whole corpus is O(total tokens). */
#include "data/textmetrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"

/* One slot is one 32-byte entry, so a probe touches one cache line: the
 * document-frequency table of a large corpus outgrows the caches. */
typedef struct {
  int32_t key[4]; /* the n-gram's ids, unused words 0 */
  int32_t val[2]; /* counters; each metric uses what it needs */
  int32_t n;      /* order of the n-gram, 0 = free slot */
  int32_t pad_;
} ngslot;

typedef struct {
  ngslot *slot;  /* [cap] */
  int32_t *used; /* [nused] occupied slots in insertion order */
  int nused;
  uint32_t mask; /* cap - 1, cap a power of two */
} ngmap;

#define NGMAP_MAX_CAP ((int64_t)1 << 30)

static int ngmap_alloc(ngmap *m, int64_t cap) {
  m->slot = rd_calloc((size_t)cap, sizeof *m->slot, "text metrics n-gram table");
  m->used = rd_malloc((size_t)cap * sizeof *m->used, "text metrics n-gram table");
  m->mask = (uint32_t)(cap - 1);
  return m->slot && m->used ? RD_OK : RD_ENOMEM;
}

/* A map that holds entries n-grams without growing. */
static int ngmap_init(ngmap *m, int64_t entries) {
  memset(m, 0, sizeof *m);
  int64_t cap = 16;
  while (cap < 2 * entries && cap < NGMAP_MAX_CAP) cap *= 2;
  return ngmap_alloc(m, cap);
}

static void ngmap_free(ngmap *m) {
  free(m->slot);
  free(m->used);
  memset(m, 0, sizeof *m);
}

static void ngmap_clear(ngmap *m) {
  for (int i = 0; i < m->nused; i++) m->slot[m->used[i]].n = 0;
  m->nused = 0;
}

static uint32_t ngram_hash(const int32_t *ids, int n) {
  uint64_t h = 0x9e3779b97f4a7c15ull * (uint64_t)n;
  for (int k = 0; k < n; k++) {
    h ^= (uint32_t)ids[k];
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
  }
  return (uint32_t)h;
}

static int ngram_equal(const ngslot *s, const int32_t *ids, int n) {
  if (s->n != n) return 0;
  for (int k = 0; k < n; k++)
    if (s->key[k] != ids[k]) return 0;
  return 1;
}

/* The slot holding ids[0..n), or the free slot where it would go (*found 0). */
static uint32_t ngmap_slot(const ngmap *m, const int32_t *ids, int n, int *found) {
  uint32_t i = ngram_hash(ids, n) & m->mask;
  while (m->slot[i].n) {
    if (ngram_equal(&m->slot[i], ids, n)) {
      *found = 1;
      return i;
    }
    i = (i + 1) & m->mask;
  }
  *found = 0;
  return i;
}

/* The entry of the n-gram, NULL when absent. */
static ngslot *ngmap_find(const ngmap *m, const int32_t *ids, int n) {
  int found;
  uint32_t i = ngmap_slot(m, ids, n, &found);
  return found ? &m->slot[i] : NULL;
}

/* Doubles the table; the used list keeps its order, so walks stay stable. */
static int ngmap_grow(ngmap *m) {
  int64_t cap = 2 * ((int64_t)m->mask + 1);
  if (cap > NGMAP_MAX_CAP)
    return rd_err(RD_EINVAL, "text metrics: more than %lld distinct n-grams", (long long)NGMAP_MAX_CAP / 2);
  ngmap old = *m;
  if (ngmap_alloc(m, cap) != RD_OK) {
    free(m->slot);
    free(m->used);
    *m = old;
    return RD_ENOMEM;
  }
  m->nused = old.nused;
  for (int u = 0; u < old.nused; u++) {
    const ngslot *e = &old.slot[old.used[u]];
    int found;
    uint32_t i = ngmap_slot(m, e->key, e->n, &found);
    m->slot[i] = *e;
    m->used[u] = (int32_t)i;
  }
  free(old.slot);
  free(old.used);
  return RD_OK;
}

/* The entry of the n-gram, inserted with zero counters when absent; NULL
 * when the table had to grow and could not. */
static ngslot *ngmap_get(ngmap *m, const int32_t *ids, int n) {
  int found;
  uint32_t i = ngmap_slot(m, ids, n, &found);
  if (!found && 2 * ((int64_t)m->nused + 1) > (int64_t)m->mask + 1) {
    if (ngmap_grow(m) != RD_OK) return NULL;
    i = ngmap_slot(m, ids, n, &found);
  }
  ngslot *s = &m->slot[i];
  if (!found) {
    memset(s, 0, sizeof *s);
    memcpy(s->key, ids, (size_t)n * sizeof *ids);
    s->n = n;
    m->used[m->nused++] = (int32_t)i;
  }
  return s;
}

/* Adds the caption's n-grams of orders 1..4 to counter col. */
static int ngmap_count(ngmap *m, rd_caption c, int col) {
  for (int n = 1; n <= RD_TEXTMETRICS_MAX_N; n++)
    for (int i = 0; i + n <= c.len; i++) {
      ngslot *s = ngmap_get(m, c.ids + i, n);
      if (!s) return RD_ENOMEM;
      s->val[col]++;
    }
  return RD_OK;
}

/* n-grams of orders 1..4 in a caption of len ids: an upper bound on entries. */
static int64_t ngrams_upto4(int len) {
  int64_t t = 0;
  for (int n = 1; n <= RD_TEXTMETRICS_MAX_N; n++) t += len >= n ? len - n + 1 : 0;
  return t;
}

rd_caption rd_textmetrics_caption(const int32_t *row, int max_len, int32_t eos) {
  int len = 0;
  while (len < max_len && row[len] != eos) len++;
  return (rd_caption){row, len};
}

static int check_caption(rd_caption c, const char *kind, int i) {
  if (c.len < 0 || (c.len > 0 && !c.ids))
    return rd_err(RD_EINVAL, "text metrics: %s %d has length %d%s", kind, i, c.len,
                  c.len > 0 ? " but no ids" : "");
  return RD_OK;
}

/* Validates the corpus; returns the longest caption in *max_len and, per
 * candidate, the most n-grams its references hold together in *max_refgrams. */
static int check_corpus(const rd_caption_corpus *c, int *max_len, int64_t *max_refgrams) {
  *max_len = 0;
  *max_refgrams = 0;
  if (!c || c->n < 0) return rd_err(RD_EINVAL, "text metrics: corpus with %d candidates", c ? c->n : -1);
  if (c->n == 0) return RD_OK;
  if (!c->cand || !c->ref_off || !c->refs)
    return rd_err(RD_EINVAL, "text metrics: corpus of %d candidates without candidates or references", c->n);
  if (c->ref_off[0] != 0)
    return rd_err(RD_EINVAL, "text metrics: ref_off[0] is %d, not 0", c->ref_off[0]);
  for (int i = 0; i < c->n; i++) {
    RD_TRY(check_caption(c->cand[i], "candidate", i));
    if (c->ref_off[i + 1] <= c->ref_off[i])
      return rd_err(RD_EINVAL, "text metrics: candidate %d has no reference (ref_off %d..%d)", i,
                    c->ref_off[i], c->ref_off[i + 1]);
    if (c->cand[i].len > *max_len) *max_len = c->cand[i].len;
    int64_t grams = 0;
    for (int r = c->ref_off[i]; r < c->ref_off[i + 1]; r++) {
      RD_TRY(check_caption(c->refs[r], "reference", r));
      if (c->refs[r].len > *max_len) *max_len = c->refs[r].len;
      grams += ngrams_upto4(c->refs[r].len);
    }
    if (grams > *max_refgrams) *max_refgrams = grams;
  }
  return RD_OK;
}

/* ------------------------------------------------------------------ BLEU-4 */

int rd_textmetrics_bleu4(const rd_caption_corpus *c, rd_bleu *out) {
  int max_len;
  int64_t max_refgrams;
  memset(out, 0, sizeof *out);
  RD_TRY(check_corpus(c, &max_len, &max_refgrams));
  if (c->n == 0) return RD_OK;

  /* hyp: counter 0 = candidate count, 1 = most of it in any one reference. */
  ngmap hyp, ref;
  memset(&ref, 0, sizeof ref);
  int rc = ngmap_init(&hyp, ngrams_upto4(max_len));
  if (rc == RD_OK) rc = ngmap_init(&ref, ngrams_upto4(max_len));
  int64_t match[4] = {0}, total[4] = {0};
  for (int i = 0; i < c->n && rc == RD_OK; i++) {
    rd_caption cand = c->cand[i];
    ngmap_clear(&hyp);
    rc = ngmap_count(&hyp, cand, 0);
    int closest = -1;
    for (int r = c->ref_off[i]; r < c->ref_off[i + 1] && rc == RD_OK; r++) {
      int rl = c->refs[r].len, d = abs(rl - cand.len), dc = abs(closest - cand.len);
      if (closest < 0 || d < dc || (d == dc && rl < closest)) closest = rl; /* ties: shorter */
      ngmap_clear(&ref);
      rc = ngmap_count(&ref, c->refs[r], 0);
      for (int u = 0; u < ref.nused; u++) {
        const ngslot *g = &ref.slot[ref.used[u]];
        ngslot *h = ngmap_find(&hyp, g->key, g->n);
        if (h && g->val[0] > h->val[1]) h->val[1] = g->val[0];
      }
    }
    for (int u = 0; u < hyp.nused; u++) {
      const ngslot *h = &hyp.slot[hyp.used[u]];
      match[h->n - 1] += h->val[0] < h->val[1] ? h->val[0] : h->val[1];
      total[h->n - 1] += h->val[0];
    }
    out->cand_len += cand.len;
    out->ref_len += closest;
  }
  ngmap_free(&hyp);
  ngmap_free(&ref);
  if (rc != RD_OK) return rc;

  double logsum = 0;
  int zero = 0;
  for (int n = 0; n < 4; n++) {
    out->precision[n] = total[n] ? (double)match[n] / (double)total[n] : 0.0;
    if (out->precision[n] > 0) logsum += log(out->precision[n]);
    else zero = 1;
  }
  if (out->cand_len > out->ref_len) out->bp = 1.0;
  else if (out->cand_len == 0) out->bp = 0.0;
  else out->bp = exp(1.0 - (double)out->ref_len / (double)out->cand_len);
  out->bleu4 = zero ? 0.0 : out->bp * exp(logsum / 4.0);
  return RD_OK;
}

/* ----------------------------------------------------------------- CIDEr-D */

#define CIDER_SIGMA 6.0

/* log(N) - log(max(1, df)): an n-gram no reference holds weighs log(N). */
static double idf_of(const ngmap *df, const ngslot *g, double log_n) {
  const ngslot *d = ngmap_find(df, g->key, g->n);
  return log_n - log(d ? (double)d->val[0] : 1.0);
}

/* tf-idf norms per order of the counts in m, with idf[slot] when given,
 * else looked up in df; and the "length" coco-caption's CiderD compares: it
 * adds term frequencies where its order index is 1, so it counts bigrams
 * (len - 1), not tokens. Kept as written there; the length difference only
 * changes when one caption is empty, and then the score is 0 either way. */
static void tfidf_norms(const ngmap *m, const double *idf, const ngmap *df, double log_n,
                        double norm[4], int *length) {
  for (int n = 0; n < 4; n++) norm[n] = 0;
  *length = 0;
  for (int u = 0; u < m->nused; u++) {
    const ngslot *g = &m->slot[m->used[u]];
    double v = (double)g->val[0] * (idf ? idf[m->used[u]] : idf_of(df, g, log_n));
    norm[g->n - 1] += v * v;
    if (g->n == 2) *length += g->val[0];
  }
  for (int n = 0; n < 4; n++) norm[n] = sqrt(norm[n]);
}

/* The CIDEr-D score of candidate i; hyp holds its counts, hyp_idf their idf. */
static int cider_one(const rd_caption_corpus *c, int i, const ngmap *df, double log_n, const ngmap *hyp,
                     const double *hyp_idf, ngmap *ref, double *score_out) {
  double norm_h[4], score[4] = {0};
  int len_h;
  tfidf_norms(hyp, hyp_idf, df, log_n, norm_h, &len_h);
  for (int r = c->ref_off[i]; r < c->ref_off[i + 1]; r++) {
    ngmap_clear(ref);
    RD_TRY(ngmap_count(ref, c->refs[r], 0));
    double norm_r[4], val[4] = {0};
    int len_r;
    tfidf_norms(ref, NULL, df, log_n, norm_r, &len_r);
    for (int u = 0; u < hyp->nused; u++) {
      const ngslot *h = &hyp->slot[hyp->used[u]];
      const ngslot *g = ngmap_find(ref, h->key, h->n);
      if (!g) continue;
      double idf = hyp_idf[hyp->used[u]];
      double vh = (double)h->val[0] * idf, vr = (double)g->val[0] * idf;
      val[h->n - 1] += (vh < vr ? vh : vr) * vr; /* the "-D" clipping */
    }
    double delta = (double)(len_h - len_r);
    double penalty = exp(-(delta * delta) / (2.0 * CIDER_SIGMA * CIDER_SIGMA));
    for (int n = 0; n < 4; n++) {
      if (norm_h[n] != 0 && norm_r[n] != 0) val[n] /= norm_h[n] * norm_r[n];
      score[n] += val[n] * penalty;
    }
  }
  int nref = c->ref_off[i + 1] - c->ref_off[i];
  *score_out = (score[0] + score[1] + score[2] + score[3]) / 4.0 / nref * 10.0;
  return RD_OK;
}

int rd_textmetrics_cider_d(const rd_caption_corpus *c, double *mean, double *per_caption) {
  int max_len;
  int64_t max_refgrams;
  *mean = 0;
  RD_TRY(check_corpus(c, &max_len, &max_refgrams));
  if (c->n == 0) return RD_OK;

  ngmap df, seen, hyp, ref;
  double *hyp_idf = NULL; /* [hyp capacity] idf of the n-gram in each slot of hyp */
  memset(&seen, 0, sizeof seen);
  memset(&hyp, 0, sizeof hyp);
  memset(&ref, 0, sizeof ref);
  int rc = ngmap_init(&df, 1024); /* grows with the distinct n-grams */
  if (rc == RD_OK) rc = ngmap_init(&seen, max_refgrams);
  if (rc == RD_OK) rc = ngmap_init(&hyp, ngrams_upto4(max_len)); /* never grows: hyp_idf fits */
  if (rc == RD_OK) rc = ngmap_init(&ref, ngrams_upto4(max_len));
  if (rc == RD_OK && !(hyp_idf = rd_malloc(((size_t)hyp.mask + 1) * sizeof *hyp_idf, "CIDEr idf")))
    rc = RD_ENOMEM;

  /* Document frequency: in how many candidates' reference sets an n-gram occurs. */
  for (int i = 0; i < c->n && rc == RD_OK; i++) {
    ngmap_clear(&seen);
    for (int r = c->ref_off[i]; r < c->ref_off[i + 1] && rc == RD_OK; r++)
      rc = ngmap_count(&seen, c->refs[r], 0);
    for (int u = 0; u < seen.nused && rc == RD_OK; u++) {
      const ngslot *g = &seen.slot[seen.used[u]];
      ngslot *d = ngmap_get(&df, g->key, g->n);
      if (d) d->val[0]++;
      else rc = RD_ENOMEM;
    }
  }

  const double log_n = log((double)c->n);
  double sum = 0;
  for (int i = 0; i < c->n && rc == RD_OK; i++) {
    ngmap_clear(&hyp);
    rc = ngmap_count(&hyp, c->cand[i], 0);
    for (int u = 0; u < hyp.nused; u++) hyp_idf[hyp.used[u]] = idf_of(&df, &hyp.slot[hyp.used[u]], log_n);
    double s_i = 0;
    if (rc == RD_OK) rc = cider_one(c, i, &df, log_n, &hyp, hyp_idf, &ref, &s_i);
    if (per_caption) per_caption[i] = s_i;
    sum += s_i;
  }
  if (rc == RD_OK) *mean = sum / c->n;

  free(hyp_idf);
  ngmap_free(&df);
  ngmap_free(&seen);
  ngmap_free(&hyp);
  ngmap_free(&ref);
  return rc;
}

/* -------------------------------------------------------------- repetition */

int rd_textmetrics_repetition(const rd_caption *caps, int n, int ngram, rd_repetition *out) {
  memset(out, 0, sizeof *out);
  if (ngram < 1 || ngram > RD_TEXTMETRICS_MAX_N)
    return rd_err(RD_EINVAL, "text metrics: repetition n-gram order %d is not in 1..%d", ngram,
                  RD_TEXTMETRICS_MAX_N);
  if (n < 0 || (n > 0 && !caps)) return rd_err(RD_EINVAL, "text metrics: %d captions", n);
  if (n == 0) return RD_OK;
  int max_len = 0;
  for (int i = 0; i < n; i++) {
    RD_TRY(check_caption(caps[i], "caption", i));
    if (caps[i].len > max_len) max_len = caps[i].len;
  }
  ngmap m;
  int rc = ngmap_init(&m, max_len); /* a caption of L ids has < L n-grams of one order */
  double rep = 0, runs = 0;
  for (int i = 0; i < n && rc == RD_OK; i++) {
    rd_caption c = caps[i];
    int total = c.len - ngram + 1;
    if (total > 0) {
      ngmap_clear(&m);
      for (int k = 0; k < total && rc == RD_OK; k++)
        if (!ngmap_get(&m, c.ids + k, ngram)) rc = RD_ENOMEM;
      rep += 1.0 - (double)m.nused / total;
    }
    for (int k = 1; k < c.len; k++) /* a run of >= 2 starts where a pair begins one */
      runs += c.ids[k] == c.ids[k - 1] && (k == 1 || c.ids[k - 1] != c.ids[k - 2]);
  }
  ngmap_free(&m);
  if (rc != RD_OK) return rc;
  out->repetition = rep / n;
  out->runs = runs / n;
  return RD_OK;
}
