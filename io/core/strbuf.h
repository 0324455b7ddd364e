/* The one growable buffer of rediff: text built in memory (batch scripts,
 * the config's YAML and reference, a program's captured output) and packed
 * bytes (the expert's records). The bytes are p[0, n), always followed by
 * a NUL, so text can be used as a C string at any time.
 *
 * A failed allocation is sticky: later calls do nothing and return
 * RD_ENOMEM, so a writer may put many pieces and check once, at
 * rd_strbuf_take. Start from a zeroed struct (RD_STRBUF_INIT). */
#ifndef RD_IO_CORE_STRBUF_H
#define RD_IO_CORE_STRBUF_H

#include <stddef.h>

typedef struct {
  char *p;    /* NULL until something is put; then n bytes and a NUL */
  size_t n;   /* bytes held */
  size_t cap; /* bytes allocated */
  int oom;    /* an allocation failed: the buffer no longer grows */
} rd_strbuf;

#define RD_STRBUF_INIT {NULL, 0, 0, 0}

/* Appends n bytes of s (any bytes, NULs included). RD_OK, or RD_ENOMEM
 * with a message (and the buffer left as it was). */
int rd_strbuf_put(rd_strbuf *b, const void *s, size_t n);
/* Appends the C string s. */
int rd_strbuf_str(rd_strbuf *b, const char *s);
/* Appends printf output, however long. */
int rd_strbuf_printf(rd_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for extra more bytes (and the NUL) at p + n, for a caller
 * that writes there itself (read(2), fread) and then calls
 * rd_strbuf_commit. */
int rd_strbuf_reserve(rd_strbuf *b, size_t extra);
/* The k bytes written at p + n after rd_strbuf_reserve are now held;
 * k must fit in what was reserved. */
void rd_strbuf_commit(rd_strbuf *b, size_t k);
/* Removes the first k bytes (k <= n): a reader that consumes from the
 * front. */
void rd_strbuf_drop(rd_strbuf *b, size_t k);
/* Hands the bytes over as a malloc'd NUL-terminated string (*n, may be
 * NULL, its length; an empty buffer gives ""), and leaves b empty. When an
 * earlier call ran out of memory it frees everything and returns RD_ENOMEM
 * with "out of memory writing WHAT". */
int rd_strbuf_take(rd_strbuf *b, const char *what, char **out, size_t *n);
/* Frees the bytes and leaves b empty (RD_STRBUF_INIT). */
void rd_strbuf_free(rd_strbuf *b);

#endif
