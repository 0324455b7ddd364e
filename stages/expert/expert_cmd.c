/* The command expert: an external program (expert.command, run by /bin/sh
 * -c) kept alive for the whole gather and fed one JSON request line per
 * draft on stdin; it answers one JSON line per request on stdout
 * (docs/expert-protocol.md). One process per gather rather than per request
 * so a program that loads a model or opens an API session pays for it once.
 *
 * Nothing the program does may stop the gather: every read and write waits
 * with poll() against the request's deadline, a program that exits is
 * restarted, one that overruns the timeout is killed (its whole process
 * group) and restarted, and a reply that is not the protocol's JSON, or
 * whose edits do not fit the draft, is retried and finally counted as a
 * dropped draft. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/core/clock.h"
#include "io/core/err.h"
#include "io/core/json.h"
#include "io/core/proc.h"
#include "io/core/strbuf.h"
#include "stages/expert/expert.h"

const char rd_expert_prompt[] =
    "You are given an image, a ground-truth description of it (reference) and a draft description written by "
    "a model (draft). Find the segments of the draft that are wrong: grammatical errors (repeated, missing, "
    "garbled or misplaced words, broken sentences) and hallucinations (objects, attributes, counts, positions "
    "or relations that the image and the reference do not support). For each, give a minimal, local "
    "correction: \"org\" is the wrong segment copied exactly from the draft (a few words, long enough to occur "
    "only once), \"target\" is what replaces it (may be empty to delete). Do not rewrite correct text and do "
    "not add information the draft does not try to give. Answer with one line of JSON: "
    "{\"id\": <the request id>, \"right\": true} if the draft has no error, else "
    "{\"id\": <the request id>, \"edits\": [{\"org\": \"...\", \"target\": \"...\"}, ...]}.";

#define RD_REPLY_MAX (1 << 20)

struct rd_expert_proc {
  char *command;
  double timeout_s;
  int retries;
  rd_proc child;    /* the program; child.pid 0 when not running */
  rd_strbuf rbuf;   /* bytes read and not yet consumed */
  struct sigaction old_pipe;
};

/* Ends the program (and anything it started) after grace seconds, and
 * forgets what was read of it. */
static void proc_stop(rd_expert_proc *x, double grace) {
  rd_proc_stop(&x->child, grace);
  rd_strbuf_drop(&x->rbuf, x->rbuf.n);
}

static int proc_start(rd_expert_proc *x) {
  rd_strbuf_drop(&x->rbuf, x->rbuf.n);
  return rd_proc_start_shell(&x->child, x->command, "expert.command");
}

/* RD_DROP_NONE, _TIMEOUT or _CRASH. */
static int send_all(rd_expert_proc *x, const char *s, size_t n, double deadline) {
  while (n) {
    ssize_t w = write(x->child.in_fd, s, n);
    if (w > 0) {
      s += w, n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno != EAGAIN && errno != EINTR) return RD_DROP_CRASH; /* EPIPE: it exited */
    int r = rd_proc_wait_fd(x->child.in_fd, POLLOUT, deadline);
    if (r == 0) return RD_DROP_TIMEOUT;
    if (r < 0) return RD_DROP_CRASH;
  }
  return RD_DROP_NONE;
}

/* One line (without its newline) into *line; RD_DROP_NONE, _TIMEOUT,
 * _CRASH (end of file) or _MALFORMED (longer than RD_REPLY_MAX); -1 when
 * memory ran out. */
static int read_line(rd_expert_proc *x, double deadline, char **line, size_t *len) {
  rd_strbuf *b = &x->rbuf;
  for (;;) {
    char *nl = b->n ? memchr(b->p, '\n', b->n) : NULL;
    if (nl) {
      *len = (size_t)(nl - b->p);
      *line = malloc(*len + 1);
      if (!*line) return -1;
      memcpy(*line, b->p, *len);
      (*line)[*len] = '\0';
      rd_strbuf_drop(b, *len + 1);
      return RD_DROP_NONE;
    }
    if (b->n >= RD_REPLY_MAX) return RD_DROP_MALFORMED;
    if (rd_strbuf_reserve(b, 4096) < 0) return -1;
    ssize_t r = read(x->child.out_fd, b->p + b->n, b->cap - b->n - 1);
    if (r > 0) {
      rd_strbuf_commit(b, (size_t)r);
      continue;
    }
    if (r == 0) return RD_DROP_CRASH;
    if (errno != EAGAIN && errno != EINTR) return RD_DROP_CRASH;
    int w = rd_proc_wait_fd(x->child.out_fd, POLLIN, deadline);
    if (w == 0) return RD_DROP_TIMEOUT;
    if (w < 0) return RD_DROP_CRASH;
  }
}

int rd_expert_proc_open(rd_expert_proc **xp, const char *command, double timeout_s, int retries) {
  rd_expert_proc *x = rd_calloc(1, sizeof *x, "the command expert");
  if (!x) return RD_ENOMEM;
  x->command = strdup(command);
  if (!x->command) {
    free(x);
    return rd_err(RD_ENOMEM, "out of memory");
  }
  x->timeout_s = timeout_s;
  x->retries = retries < 0 ? 0 : retries;
  x->child.in_fd = x->child.out_fd = -1;
  /* A program that exits while we write must not kill the gather. */
  struct sigaction ign;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &x->old_pipe);
  *xp = x;
  return RD_OK;
}

void rd_expert_proc_close(rd_expert_proc *x) {
  if (!x) return;
  proc_stop(x, 2.0);
  sigaction(SIGPIPE, &x->old_pipe, NULL);
  rd_strbuf_free(&x->rbuf);
  free(x->command);
  free(x);
}

/* ---- replies */

/* Splits s at whitespace into the ids of its words, each of which must be
 * an ordinary vocabulary word (not [MASK], [EOS], ...). Returns the count,
 * or -1. */
static int split_words(const rd_vocab *v, const char *s, int32_t *ids, int max) {
  int n = 0;
  while (*s) {
    while (*s == ' ' || *s == '\t' || *s == '\n') s++;
    if (!*s) break;
    const char *e = s;
    while (*e && *e != ' ' && *e != '\t' && *e != '\n') e++;
    char w[RD_VOCAB_WORD_MAX + 1];
    if (e - s > RD_VOCAB_WORD_MAX || n >= max) return -1;
    memcpy(w, s, (size_t)(e - s));
    w[e - s] = '\0';
    int id = rd_vocab_id(v, w);
    if (id < RD_TOK_NSPECIAL) return -1; /* unknown, or [MASK]/[EOS]/... */
    ids[n++] = id;
    s = e;
  }
  return n;
}

static int by_start(const void *a, const void *b) {
  const rd_edit *x = a, *y = b;
  return x->start - y->start;
}

/* Whether the reply j (NULL: none) carries the request's id. */
static int same_id(const json_t *j, int64_t id) {
  const json_t *jid = json_object_get(j, "id");
  return json_is_number(jid) && json_number_value(jid) == (double)id;
}

/* A parsed reply into o; RD_DROP_NONE or the reason it is unusable. */
static int interpret(const json_t *j, int64_t id, const rd_vocab *v, const int32_t *draft, int n, rd_expert_out *o) {
  const json_t *edits = json_object_get(j, "edits");
  if (!same_id(j, id)) return RD_DROP_MALFORMED;
  rd_expert_out_clear(o);
  if (json_is_true(json_object_get(j, "right"))) return RD_DROP_NONE;
  if (!json_is_array(edits)) return RD_DROP_MALFORMED;
  int32_t org[RD_WORDS_MAX], tgt[RD_WORDS_MAX];
  size_t i;
  const json_t *e;
  json_array_foreach(edits, i, e) {
    const json_t *jo = json_object_get(e, "org"), *jt = json_object_get(e, "target"), *jk = json_object_get(e, "kind");
    if (!json_is_string(jo) || !json_is_string(jt)) return RD_DROP_MALFORMED;
    int no = split_words(v, json_string_value(jo), org, RD_WORDS_MAX);
    int nt = split_words(v, json_string_value(jt), tgt, RD_WORDS_MAX);
    if (no <= 0 || nt < 0) return RD_DROP_INVALID;
    /* org must name one place: exactly one occurrence, on word boundaries. */
    int at = -1, hits = 0;
    for (int i = 0; i + no <= n; i++)
      if (memcmp(draft + i, org, sizeof(int32_t) * (size_t)no) == 0) at = i, hits++;
    if (hits != 1) return RD_DROP_INVALID;
    if (nt == no && memcmp(org, tgt, sizeof(int32_t) * (size_t)no) == 0) continue; /* no change */
    int kind = RD_EDIT_TEXT;
    for (int k = 0; json_is_string(jk) && k < RD_EDIT_KINDS; k++)
      if (strcmp(json_string_value(jk), rd_edit_kind_name(k)) == 0) kind = k;
    if (rd_expert_push(o, at, no, tgt, nt, kind) < 0) return RD_DROP_INVALID;
  }
  qsort(o->e, (size_t)o->n_edits, sizeof o->e[0], by_start);
  for (int k = 1; k < o->n_edits; k++)
    if (o->e[k].start < o->e[k - 1].start + o->e[k - 1].len) return RD_DROP_INVALID; /* overlapping */
  o->verdict = o->n_edits ? RD_VERDICT_EDITS : RD_VERDICT_RIGHT;
  return RD_DROP_NONE;
}

/* One line, separators ", " and ": " (docs/expert-protocol.md). */
static int request_line(const rd_expert_request *q, char **out, size_t *len) {
  json_t *r;
  RD_TRY(rd_json_pack(&r, "an expert request", "{s:I, s:s?, s:s, s:s, s:s}", "id", (json_int_t)q->id, "image", q->image,
                      "prompt", q->prompt, "reference", q->reference, "draft", q->draft));
  int s = rd_json_dump(r, JSON_PRESERVE_ORDER, "an expert request", out, len);
  json_decref(r);
  return s;
}

int rd_expert_proc_ask(rd_expert_proc *x, const rd_vocab *v, const rd_expert_request *req, const int32_t *draft, int n,
                       rd_expert_out *o) {
  char *line = NULL;
  size_t len = 0;
  RD_TRY(request_line(req, &line, &len));
  int reason = RD_DROP_CRASH;
  for (int attempt = 0; attempt <= x->retries; attempt++) {
    if (x->child.pid <= 0 && proc_start(x) < 0) {
      reason = RD_DROP_CRASH; /* could not even start: counted like an exit */
      continue;
    }
    double deadline = rd_clock_now() + x->timeout_s;
    reason = send_all(x, line, len, deadline);
    char *reply = NULL;
    size_t rlen = 0;
    if (reason == RD_DROP_NONE) reason = read_line(x, deadline, &reply, &rlen);
    if (reason < 0) {
      free(line);
      return rd_err(RD_ENOMEM, "out of memory reading the expert's reply");
    }
    if (reason == RD_DROP_NONE) {
      /* A reply that does not parse is counted, not reported: the message
       * goes. */
      json_t *j = NULL;
      if (rd_json_parse(reply, rlen, "the expert's reply", 1, &j) < 0 || !json_is_object(j))
        reason = RD_DROP_MALFORMED;
      else reason = interpret(j, req->id, v, draft, n, o);
      /* A reply for another id means the program is out of step: restart. */
      if (!same_id(j, req->id)) proc_stop(x, 0);
      json_decref(j);
      rd_err_clear();
    } else {
      proc_stop(x, 0); /* timed out or gone: a fresh process for the next attempt */
    }
    free(reply);
    if (reason == RD_DROP_NONE) break;
  }
  free(line);
  if (reason != RD_DROP_NONE) {
    rd_expert_out_clear(o);
    o->verdict = RD_VERDICT_DROP;
    o->reason = reason;
  }
  return RD_OK;
}
