#include "model/decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/rng.h"

void rd_decode_opts_default(rd_decode_opts *o) {
  memset(o, 0, sizeof *o);
  o->mode = RD_DECODE_REFINE;
  o->top_frac = 1.0;
  o->mask_id = 0;
  o->eos_id = 1;
  o->n_special = 4;
}

int rd_decode_mode_parse(const char *s, rd_decode_mode *mode) {
  if (s && strcmp(s, "refine") == 0) *mode = RD_DECODE_REFINE;
  else if (s && strcmp(s, "remask") == 0) *mode = RD_DECODE_REMASK;
  else return rd_err(RD_EINVAL, "decoding mode '%s' is neither refine nor remask", s ? s : "(null)");
  return RD_OK;
}

const char *rd_decode_mode_name(rd_decode_mode mode) { return mode == RD_DECODE_REMASK ? "remask" : "refine"; }

static int n_blocks(const rd_decode_opts *o, int L) {
  return o->block <= 0 || o->block >= L ? 1 : (L + o->block - 1) / o->block;
}

int rd_decode_check(const rd_decode_opts *o, int L) {
  if (L < 1) return rd_err(RD_EINVAL, "decoding needs a response of at least 1 token, got %d", L);
  if (o->mode != RD_DECODE_REFINE && o->mode != RD_DECODE_REMASK)
    return rd_err(RD_EINVAL, "decoding mode %d is neither refine nor remask", (int)o->mode);
  int nb = n_blocks(o, L);
  if (o->steps < nb || o->steps > L)
    return rd_err(RD_EINVAL, "decoding steps = %d: must be between %d (one per block) and %d (the response length)",
                  o->steps, nb, L);
  if (o->block < 0) return rd_err(RD_EINVAL, "decoding block length %d is negative", o->block);
  if (!(o->temperature >= 0) || !isfinite(o->temperature))
    return rd_err(RD_EINVAL, "decoding temperature %g must be finite and >= 0", o->temperature);
  if (!(o->tau >= 0 && o->tau <= 1)) return rd_err(RD_EINVAL, "refine tau %g must be in [0, 1]", o->tau);
  if (!(o->top_frac > 0 && o->top_frac <= 1))
    return rd_err(RD_EINVAL, "refine top fraction %g must be in (0, 1]", o->top_frac);
  if (o->n_special < 0 || o->mask_id < 0 || o->eos_id < 0 || o->mask_id == o->eos_id)
    return rd_err(RD_EINVAL, "decoding special ids: mask %d, eos %d, %d specials", o->mask_id, o->eos_id,
                  o->n_special);
  return RD_OK;
}

int rd_decode_plan(const rd_decode_opts *o, int L, int step, rd_decode_stepinfo *si) {
  const int nb = n_blocks(o, L), len = nb == 1 ? L : o->block;
  if (step < 0 || step >= o->steps || o->steps < nb)
    return rd_err(RD_EINVAL, "decoding step %d outside the %d steps of %d blocks", step, o->steps, nb);
  int first = 0; /* first step of block b */
  for (int b = 0; b < nb; b++) {
    int sb = o->steps / nb + (b < o->steps % nb);
    if (step < first + sb) {
      si->block = b;
      si->lo = b * len;
      si->hi = b == nb - 1 ? L : (b + 1) * len;
      si->k = step - first;
      si->steps = sb;
      return RD_OK;
    }
    first += sb;
  }
  return rd_err(RD_ESTATE, "decoding plan: step %d not placed", step);
}

int rd_decode_count(int n_masked, int steps_left) {
  if (n_masked <= 0) return 0;
  if (steps_left <= 1) return n_masked;
  return (n_masked + steps_left - 1) / steps_left;
}

void rd_decode_traj_free(rd_decode_traj *t) {
  if (!t) return;
  free(t->ev);
  memset(t, 0, sizeof *t);
}

static int traj_push(rd_decode_traj *t, int step, int pos, int32_t old_tok, int32_t new_tok) {
  if (t->n == t->cap) {
    int cap = t->cap ? 2 * t->cap : 64;
    rd_decode_event *ev = realloc(t->ev, (size_t)cap * sizeof *ev);
    if (!ev) return rd_err(RD_ENOMEM, "out of memory recording the decoding trajectory (%d events)", cap);
    t->ev = ev;
    t->cap = cap;
  }
  t->ev[t->n++] = (rd_decode_event){step, pos, old_tok, new_tok};
  return RD_OK;
}

static int allowed(const rd_decode_opts *o, int id) {
  return id == o->eos_id || (id >= o->n_special && id != o->mask_id);
}

void rd_decode_predict(const rd_decode_opts *o, const float *logits, int L, int V, int Vp, int step,
                       int64_t sample_id, int32_t *x0, float *conf, float *gap) {
  rd_rng rng;
  const int gumbel = o->temperature > 0;
  if (gumbel) rd_rng_init(&rng, o->seed, RD_RNG_DECODE, (uint64_t)step, (uint64_t)sample_id);
  for (int i = 0; i < L; i++) {
    const float *z = logits + (size_t)i * Vp;
    int best = -1, pick = -1;
    /* bz, bs: the best logit and Gumbel score; z2, s2: the runners-up */
    double bz = -INFINITY, bs = -INFINITY, z2 = -INFINITY, s2 = -INFINITY;
    for (int v = 0; v < V; v++) {
      /* The draw happens for every id so the stream's layout does not
       * depend on which ids are allowed. */
      double g = gumbel ? -log(-log(rd_rng_uniform(&rng))) : 0.0;
      if (!allowed(o, v)) continue;
      if (z[v] > bz || best < 0) z2 = bz, bz = z[v], best = v;
      else if (z[v] > z2) z2 = z[v];
      if (gumbel) {
        double s = z[v] / o->temperature + g;
        if (s > bs || pick < 0) s2 = bs, bs = s, pick = v;
        else if (s > s2) s2 = s;
      }
    }
    if (!gumbel) pick = best;
    if (gap) gap[i] = (float)(gumbel ? bs - s2 : bz - z2);
    /* softmax over the allowed ids, shifted by their max for range */
    double sum = 0;
    for (int v = 0; v < V; v++)
      if (allowed(o, v)) sum += exp((double)z[v] - bz);
    x0[i] = pick;
    conf[i] = (float)(exp((double)z[pick] - bz) / sum);
  }
}

/* Sorts idx[n] by confidence, high first, ties to the lower position.
 * Insertion sort: n <= L is small next to a forward pass, and qsort would
 * need global state to see conf. */
static void sort_by_conf(int *idx, int n, const float *conf) {
  for (int a = 1; a < n; a++) {
    int v = idx[a], b = a - 1;
    while (b >= 0 && (conf[idx[b]] < conf[v] || (conf[idx[b]] == conf[v] && idx[b] > v))) {
      idx[b + 1] = idx[b];
      b--;
    }
    idx[b + 1] = v;
  }
}

/* How large an error in every logit it takes to swap two confidences
 * a >= b (softmax probabilities), in logit units: an error of at most e per
 * logit moves log p by at most 2 e (1 - p), so the order holds while
 * 2 e ((1 - a) + (1 - b)) < log a - log b. Two confidences saturated at 1
 * stay equal (ties go to the lower position), so they cannot swap. */
static double conf_gap(float a, float b) {
  if (a == 1.0f && b == 1.0f) return INFINITY;
  double d = log((double)a) - log((double)b), room = 2.0 * ((1.0 - a) + (1.0 - b));
  return d > 0 ? d / room : 0.0;
}

double rd_decode_margin(const rd_decode_opts *o, const rd_decode_stepinfo *si, int L, const int32_t *x,
                        const float *conf, const float *gap, int *work) {
  int *idx = work, nm = 0;
  double m = INFINITY;
  for (int i = si->lo; i < si->hi; i++)
    if (x[i] == o->mask_id) idx[nm++] = i;
  int n = rd_decode_count(nm, si->steps - si->k);
  sort_by_conf(idx, nm, conf);
  /* which masked positions are unmasked: the boundary of the top n */
  if (n > 0 && n < nm) m = fmin(m, conf_gap(conf[idx[n - 1]], conf[idx[n]]));
  /* the token each of them takes */
  for (int a = 0; a < n; a++) m = fmin(m, gap[idx[a]]);
  if (o->mode == RD_DECODE_REFINE) {
    int ne = 0;
    for (int i = 0; i < L; i++) {
      if (x[i] == o->mask_id) continue;
      /* whether an earlier token is revisited at all: its confidence
       * against tau */
      if (o->tau > 0)
        m = fmin(m, conf[i] >= o->tau ? conf_gap(conf[i], (float)o->tau) : conf_gap((float)o->tau, conf[i]));
      if (conf[i] >= o->tau) idx[ne++] = i;
    }
    int keep = ne;
    if (o->top_frac < 1) {
      keep = (int)ceil(o->top_frac * ne - 1e-9);
      sort_by_conf(idx, ne, conf);
      if (keep > 0 && keep < ne) m = fmin(m, conf_gap(conf[idx[keep - 1]], conf[idx[keep]]));
    }
    /* the token each revisited position takes */
    for (int a = 0; a < keep; a++) m = fmin(m, gap[idx[a]]);
  }
  return m;
}

int rd_decode_select(const rd_decode_opts *o, const rd_decode_stepinfo *si, int step, int L,
                     const int32_t *x0, const float *conf, int32_t *x, int *work, rd_decode_traj *traj,
                     int *n_unmasked, int *n_changed) {
  int *idx = work, *fresh = work + L;
  int nu = 0, nc = 0, nm = 0;
  memset(fresh, 0, (size_t)L * sizeof *fresh);
  for (int i = si->lo; i < si->hi; i++)
    if (x[i] == o->mask_id) idx[nm++] = i;
  int n = rd_decode_count(nm, si->steps - si->k);
  sort_by_conf(idx, nm, conf);
  /* unmask the n most confident, recorded in position order */
  for (int a = 0; a < n; a++) fresh[idx[a]] = 1;
  for (int i = si->lo; i < si->hi; i++) {
    if (!fresh[i]) continue;
    x[i] = x0[i];
    nu++;
    if (traj) RD_TRY(traj_push(traj, step, i, o->mask_id, x0[i]));
  }
  if (o->mode == RD_DECODE_REFINE) {
    int ne = 0;
    for (int i = 0; i < L; i++)
      if (x[i] != o->mask_id && !fresh[i] && conf[i] >= o->tau) idx[ne++] = i;
    int keep = ne;
    if (o->top_frac < 1) {
      keep = (int)ceil(o->top_frac * ne - 1e-9);
      sort_by_conf(idx, ne, conf);
      /* back to position order for the record */
      for (int a = 0; a < L; a++) fresh[a] = 0;
      for (int a = 0; a < keep; a++) fresh[idx[a]] = 2;
      keep = 0;
      for (int i = 0; i < L; i++)
        if (fresh[i] == 2) idx[keep++] = i;
    }
    for (int a = 0; a < keep; a++) {
      int i = idx[a];
      if (x[i] == x0[i]) continue;
      if (traj) RD_TRY(traj_push(traj, step, i, x[i], x0[i]));
      x[i] = x0[i];
      nc++;
    }
  }
  if (n_unmasked) *n_unmasked = nu;
  if (n_changed) *n_changed = nc;
  return RD_OK;
}

int rd_decode_caption_len(const int32_t *tokens, int L, int32_t eos_id) {
  for (int i = 0; i < L; i++)
    if (tokens[i] == eos_id) return i;
  return L;
}

int rd_decode(rd_vlm *m, const rd_decode_opts *o, const rd_decode_input *in, rd_decode_output *out) {
  const int B = in->B, L = m->L;
  RD_TRY(rd_decode_check(o, L));
  if (B < 1 || B > m->max_batch)
    return rd_err(RD_EINVAL, "decoding a batch of %d; the model was set up for 1 .. %d", B, m->max_batch);
  const size_t nt = (size_t)B * L;
  if (in->init) {
    for (size_t i = 0; i < nt; i++)
      if (in->init[i] < 0 || in->init[i] >= m->V)
        return rd_err(RD_EINVAL, "starting caption %zu, position %zu: token %d is outside the vocabulary (%d)",
                      i / L, i % L, in->init[i], m->V);
    memcpy(out->tokens, in->init, nt * sizeof *out->tokens);
  } else {
    for (size_t i = 0; i < nt; i++) out->tokens[i] = o->mask_id;
  }
  int32_t *x0 = malloc((size_t)L * sizeof *x0);
  float *conf = malloc((size_t)L * sizeof *conf), *gap = malloc((size_t)L * sizeof *gap);
  int *work = malloc((size_t)2 * L * sizeof *work);
  if (out->margin)
    for (int j = 0; j < B; j++) out->margin[j] = INFINITY;
  int s = x0 && conf && gap && work ? RD_OK : rd_err(RD_ENOMEM, "out of memory for the decoding scratch");
  for (int step = 0; step < o->steps && s == RD_OK; step++) {
    rd_decode_stepinfo si;
    s = rd_decode_plan(o, L, step, &si);
    rd_batch b = {B, in->images, in->features, out->tokens, NULL, NULL, NULL, 0.0f};
    if (s == RD_OK) s = rd_vlm_forward(m, &b, NULL);
    if (s != RD_OK) break;
    out->forward_passes++;
    const float *logits = rd_vlm_logits(m); /* [B, L, Vp] */
    for (int j = 0; j < B && s == RD_OK; j++) {
      int32_t *x = out->tokens + (size_t)j * L;
      rd_decode_predict(o, logits + (size_t)j * L * m->Vp, L, m->V, m->Vp, step, in->sample_id[j], x0, conf, gap);
      if (out->margin) {
        float mj = (float)rd_decode_margin(o, &si, L, x, conf, gap, work);
        if (mj < out->margin[j]) out->margin[j] = mj;
      }
      s = rd_decode_select(o, &si, step, L, x0, conf, out->tokens + (size_t)j * L, work,
                           out->traj ? &out->traj[j] : NULL, NULL, NULL);
    }
  }
  free(x0);
  free(conf);
  free(gap);
  free(work);
  return s;
}
