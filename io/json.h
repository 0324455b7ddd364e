/* A small JSON reader (RFC 8259: objects, arrays, strings with every
 * escape, numbers, true, false, null) and a string quoter, for the command
 * expert's JSON-lines protocol (docs/expert-protocol.md). Values form a tree
 * of nodes owned by the root; strings are decoded to UTF-8. */
#ifndef RD_IO_JSON_H
#define RD_IO_JSON_H

#include <stddef.h>

typedef enum {
  RD_JSON_NULL,
  RD_JSON_FALSE,
  RD_JSON_TRUE,
  RD_JSON_NUMBER,
  RD_JSON_STRING,
  RD_JSON_ARRAY,
  RD_JSON_OBJECT
} rd_json_type;

typedef struct rd_json {
  rd_json_type type;
  double num;             /* NUMBER */
  char *str;              /* STRING: decoded, NUL-terminated (may hold NULs: see len) */
  size_t len;             /* STRING: bytes */
  char *key;              /* member name when the parent is an object */
  struct rd_json *child;  /* ARRAY, OBJECT: first element */
  struct rd_json *next;   /* next element of the parent */
} rd_json;

/* Parses exactly one value (surrounding whitespace allowed) from text[n].
 * Errors (RD_EINVAL) say what was wrong and at which byte; nesting deeper
 * than 64 is refused. Free the result with rd_json_free. */
int rd_json_parse(const char *text, size_t n, rd_json **root);
void rd_json_free(rd_json *v);
/* The member named key of an object (the last one if repeated), or NULL. */
const rd_json *rd_json_get(const rd_json *obj, const char *key);
/* Appends s as a quoted JSON string to out[cap] at *len (control
 * characters, quote and backslash escaped); RD_EINVAL when it does not fit. */
int rd_json_quote(const char *s, char *out, size_t cap, size_t *len);

#endif
