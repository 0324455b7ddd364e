/* Checked HDF5 calls, shared by the shard and checkpoint code.
 *
 * HDF5 prints its whole error stack to stderr by default; rediff turns that
 * off (rd_h5_quiet) and instead puts the innermost message of the stack --
 * the one that says what was actually wrong, e.g. "truncated file: eof =
 * 4096, sblock->base_addr = 0, stored_eof = 9312" -- into its own error
 * message, with the place in our code. Callers add the file and dataset with
 * rd_err_wrap, so the user reads "data/train-00001.h5: dataset /captions:
 * H5Dread failed: ...".
 *
 * RD_H5(call) is an expression: 0 when call returned a non-negative value
 * (hid_t, herr_t, htri_t), else RD_EIO with the message set. Use it as
 *   RD_TRY(RD_H5(H5Dwrite(...)));
 *   if ((rc = RD_H5(d = H5Dopen2(f, "/captions", H5P_DEFAULT))) < 0) goto fail;
 * RD_H5_CTX(call, fmt, ...) is the same with the context put first
 * ("ckpt/step-00000100.h5: cannot open /params/emb: H5Dopen2 failed: ...");
 * RD_H5_GOTO(call, st, label, fmt, ...) is for functions that release their
 * handles at one label: on failure it sets st and jumps there.
 */
#ifndef RD_IO_H5CHECK_H
#define RD_IO_H5CHECK_H

#include <ctype.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "io/core/err.h"

#define RD_H5(call) rd_h5_check_((int64_t)(call), #call, __FILE__, __LINE__)
/* RD_H5 fails with RD_EIO and nothing else, so the context can be added with
 * that code without evaluating call twice. */
#define RD_H5_CTX(call, ...) (RD_H5(call) < 0 ? rd_err_wrap(RD_EIO, __VA_ARGS__) : RD_OK)
#define RD_H5_GOTO(call, st, label, ...)                                       \
  do {                                                                         \
    if (((st) = RD_H5_CTX(call, __VA_ARGS__)) < 0) goto label;                 \
  } while (0)
/* RD_H5's status and message for a call that already failed, named fn: for
 * results that must be looked at before the message is made. */
#define RD_H5_FAILED(fn) rd_h5_check_(-1, fn, __FILE__, __LINE__)

/* Turns off HDF5's printing of error stacks for this thread; call before
 * opening or creating a file. Idempotent and cheap. */
static inline void rd_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct {
  char msg[512];
} rd_h5_walk_ctx_;

static inline herr_t rd_h5_walk_cb_(unsigned n, const H5E_error2_t *e, void *data) {
  rd_h5_walk_ctx_ *c = data;
  /* Walking upward, entry 0 is the innermost: where the fault was found. */
  if (n == 0 && e->desc) snprintf(c->msg, sizeof c->msg, "%s", e->desc);
  return 0;
}

/* The innermost message of the current HDF5 error stack (then cleared), or
 * "no HDF5 error message". */
static inline void rd_h5_inner_msg(char *out, size_t n) {
  rd_h5_walk_ctx_ c;
  c.msg[0] = '\0';
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, rd_h5_walk_cb_, &c);
  H5Eclear2(H5E_DEFAULT);
  snprintf(out, n, "%s", c.msg[0] ? c.msg : "no HDF5 error message");
}

static inline int rd_h5_check_(int64_t v, const char *call, const char *file, int line) {
  if (v >= 0) return RD_OK;
  char inner[512];
  rd_h5_inner_msg(inner, sizeof inner);
  /* Name the function, not the whole call text: "d = H5Dopen2(f, ...)" ->
   * "H5Dopen2"; "m = ck_select(s, ...)" -> "ck_select", our own function
   * that failed in HDF5. */
  const char *fn = strstr(call, "H5");
  if (!fn) {
    const char *paren = strchr(call, '(');
    fn = call;
    if (paren) {
      fn = paren;
      while (fn > call && (isalnum((unsigned char)fn[-1]) || fn[-1] == '_')) fn--;
    }
  }
  size_t len = strcspn(fn, "( ");
  return rd_err_at(RD_EIO, file, line, "%.*s failed: %s", (int)len, fn, inner);
}

#endif
