/* The expert of the self-correction round (kinds: docs/config.md, expert.*;
 * the command expert's protocol: docs/expert-protocol.md): it reads a draft
 * against the ground truth and answers `right` or a list of minimal, local
 * edits {draft span -> target tokens}; the gather step
 * (stages/expert/expert_gather.c, `rediff expert --round R`) applies them under the
 * length policy to make Stage II's (draft, refined, mistake) rows.
 *
 * Kinds: scene (ShapesCap: exact, from the scene graph; expert_scene.c),
 * reference (token alignment to the ground-truth caption; expert_ref.c) and
 * command (an external program speaking JSON lines; expert_cmd.c,
 * docs/expert-protocol.md). All work on token ids; a draft is its tokens
 * before the first [EOS]. */
#ifndef RD_STAGES_EXPERT_EXPERT_H
#define RD_STAGES_EXPERT_EXPERT_H

#include <stdint.h>
#include <stdio.h>

#include "data/shapes.h"
#include "io/drafts.h"
#include "io/vocab.h"

#define RD_EXPERT_EDITS_MAX 256
#define RD_EXPERT_TGT_MAX 4096

/* One edit: draft words [start, start + len) become tgt[t_off, t_off + t_len).
 * len 0 is an insertion before start, t_len 0 a deletion. */
typedef struct {
  int start, len;
  int t_off, t_len;
  int kind; /* RD_EDIT_* */
} rd_edit;

/* Who revises the drafts (expert.kind). The config holds the kind's name;
 * the gather parses it once, so no other code compares kind strings. */
typedef enum { RD_EXPERT_SCENE, RD_EXPERT_REFERENCE, RD_EXPERT_COMMAND } rd_expert_kind;
/* The kind named "scene", "reference" or "command" into *kind; RD_EINVAL
 * naming expert.kind for any other name (the config check refuses those
 * first, so this is the last guard, not the user's message). */
int rd_expert_kind_parse(const char *name, rd_expert_kind *kind);

enum { RD_VERDICT_RIGHT, RD_VERDICT_EDITS, RD_VERDICT_DROP };

/* Why a draft left no row in the revisions file. */
enum {
  RD_DROP_NONE,
  RD_DROP_EMPTY,     /* the draft has no words */
  RD_DROP_LENGTH,    /* an edit changes the length and length_policy is drop */
  RD_DROP_OVERFLOW,  /* remask: the revised draft is longer than gen_len */
  RD_DROP_FAILED,    /* the expert could not judge it (e.g. longer than the parser reads) */
  RD_DROP_TIMEOUT,   /* command: no reply within expert.timeout_s, on every attempt */
  RD_DROP_CRASH,     /* command: the program exited or closed its pipes */
  RD_DROP_MALFORMED, /* command: the reply is not the protocol's JSON */
  RD_DROP_INVALID,   /* command: an org not found exactly once, a target word outside the vocabulary */
  RD_DROP_REASONS
};
/* "none", "empty", "length", "overflow", "failed", "timeout", "crash",
 * "malformed", "invalid". */
const char *rd_drop_reason_name(int reason);

/* An expert's answer. Edits are sorted by start and do not overlap. */
typedef struct {
  int verdict; /* RD_VERDICT_* */
  int reason;  /* RD_DROP_* when verdict is DROP */
  int n_edits;
  rd_edit e[RD_EXPERT_EDITS_MAX];
  int n_tgt;
  int32_t tgt[RD_EXPERT_TGT_MAX];
} rd_expert_out;

void rd_expert_out_clear(rd_expert_out *o);
/* Appends an edit (its target copied into o->tgt); RD_EINVAL when full. */
int rd_expert_push(rd_expert_out *o, int start, int len, const int32_t *tgt, int t_len, int kind);

/* Aligns a[n] to b[m] (word-level Levenshtein; on ties a match, then a
 * substitution, then a deletion is preferred, so equal lengths give
 * substitutions) and appends one edit per maximal run of differing words,
 * with draft positions offset by a_base. Returns the edit distance (>= 0)
 * or a negative error. */
int rd_expert_align(const int32_t *a, int n, const int32_t *b, int m, int a_base, int kind,
                    rd_expert_out *o);
/* The word-level Levenshtein distance alone (for ranking candidates). */
int rd_expert_distance(const int32_t *a, int n, const int32_t *b, int m);

/* Scene expert. draft[n]: the words before [EOS]. Every parsed, true
 * sentence that states a new fact is kept; each other sentence (false, a
 * repeat, unparsed, or an unterminated tail) becomes the sentence of a true
 * fact the kept ones do not state, the one nearest to it in words (so a
 * wrong attribute, count or relation word is replaced and the rest kept), or
 * is deleted when every true fact is stated. same_len: prefer rewrites of
 * the sentence's own length (length_policy drop). */
int rd_expert_scene(const rd_vocab *v, const rd_scene *s, const int32_t *draft, int n, int same_len,
                    rd_expert_out *o);

/* Reference expert: the draft aligned to the ground-truth caption ref[m]. */
int rd_expert_reference(const int32_t *draft, int n, const int32_t *ref, int m, rd_expert_out *o);

/* Applies o to the draft row[L] ([EOS]-padded). Fills x (the model input),
 * y (the targets), mask (1 at the corrected positions) and spans[n_edits][4]
 * = {draft start, draft length, target start, target length}. Same-length
 * edits keep the draft's words in x; an edit that changes the length drops
 * the draft (remask 0: returns RD_DROP_LENGTH) or (remask 1) puts
 * [MASK] x t_len in x, shifting the rest (RD_DROP_OVERFLOW when that passes
 * L). Returns RD_DROP_NONE (0) when the row is kept, a drop reason (> 0), or
 * RD_EINVAL for edits out of order or out of range. */
int rd_expert_apply(const int32_t *row, int L, const rd_expert_out *o, int remask, int32_t *x,
                    int32_t *y, uint8_t *mask, int32_t (*spans)[4]);

/* ---- the counts of a gather (expert_counts.c), written as revisions/r<R>.json */

enum { RD_COUNT_DRAFTS, RD_COUNT_RIGHT, RD_COUNT_REVISED, RD_COUNT_DROPPED, RD_COUNT_EDITS, RD_COUNT_COLS };

typedef struct {
  int64_t total[RD_COUNT_COLS];
  int64_t dropped_by[RD_DROP_REASONS];
  int64_t edits_by_kind[RD_EDIT_KINDS];
  int64_t same, longer, shorter;   /* edits by target length against the span's */
  int64_t mistake_tokens, rows_with_mistakes;
  int n_steps;
  int32_t *steps;                  /* [n_steps] distinct step counts, ascending */
  int64_t (*by_steps)[RD_COUNT_COLS]; /* [n_steps] */
} rd_expert_counts;

void rd_expert_counts_init(rd_expert_counts *c);
void rd_expert_counts_free(rd_expert_counts *c);
/* One draft: judged right, revised (right 0, drop -1) or dropped (drop = reason). */
int rd_expert_counts_add(rd_expert_counts *c, int steps, int right, int drop);
/* One edit of a kept draft; delta = target length - span length. */
void rd_expert_counts_edit(rd_expert_counts *c, int steps, int kind, int delta);
/* The counts as the text of a JSON object (docs/formats.md; io/core/json.h,
 * indented), malloc'd and newline-terminated. */
int rd_expert_counts_json(const rd_expert_counts *c, int round, const char *expert, const char *policy, char **json,
                          size_t *n);
/* One summary line per step count and a total. */
void rd_expert_counts_print(const rd_expert_counts *c, int round, FILE *out);

/* ---- command expert (expert_cmd.c) */

typedef struct rd_expert_proc rd_expert_proc;

typedef struct {
  int64_t id;             /* request id, unique in the gather */
  const char *image;      /* PNG path or NULL */
  const char *prompt;     /* the instruction */
  const char *reference;  /* the ground-truth caption */
  const char *draft;      /* the draft's words joined by single spaces */
} rd_expert_request;

/* Starts nothing yet: the program (/bin/sh -c command) starts on the first
 * request and is restarted after a timeout or an exit. */
int rd_expert_proc_open(rd_expert_proc **x, const char *command, double timeout_s, int retries);
/* Ends the program (stdin closed, then killed if it lingers) and frees x. */
void rd_expert_proc_close(rd_expert_proc *x);
/* Asks about one draft (the words draft[n] that req->draft spells) and
 * validates the answer into o; a failure after every attempt is a DROP
 * verdict with its reason, never an error. Errors only for what the gather
 * cannot go on without (memory). */
int rd_expert_proc_ask(rd_expert_proc *x, const rd_vocab *v, const rd_expert_request *req,
                      const int32_t *draft, int n, rd_expert_out *o);
/* The instruction sent as "prompt" (the paper's expert prompt, shortened). */
extern const char rd_expert_prompt[];

#endif
