/* libjansson behind rediff's status codes and messages (io/core/json.h). */
#include "io/core/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/core/fs.h"

static int code_of(const json_error_t *e) {
  return json_error_code(e) == json_error_out_of_memory ? RD_ENOMEM : RD_EINVAL;
}

int rd_json_parse(const char *text, size_t n, const char *name, int line, json_t **out) {
  json_error_t e;
  *out = json_loadb(text, n, JSON_DECODE_ANY, &e);
  if (*out) return RD_OK;
  /* jansson counts lines from 1 within text; errors not tied to a place
   * (memory) have no line. */
  if (e.line < 1) return rd_err(code_of(&e), "%s: bad JSON: %s", name, e.text);
  return rd_err(code_of(&e), "%s:%d:%d: bad JSON: %s", name, line + e.line - 1, e.column, e.text);
}

static int vpack(json_t **out, const char *what, const char *fmt, va_list ap) {
  json_error_t e;
  *out = json_vpack_ex(&e, 0, fmt, ap);
  if (*out) return RD_OK;
  return rd_err(code_of(&e), "cannot make the JSON of %s: %s", what, e.text);
}

int rd_json_pack(json_t **out, const char *what, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int s = vpack(out, what, fmt, ap);
  va_end(ap);
  return s;
}

int rd_json_add(json_t *to, const char *key, const char *what, const char *fmt, ...) {
  json_t *v;
  va_list ap;
  va_start(ap, fmt);
  int s = vpack(&v, what, fmt, ap); /* first, so "o" arguments are taken whatever follows */
  va_end(ap);
  if (s < 0) return s;
  if (key ? !json_is_object(to) || json_object_get(to, key) : !json_is_array(to)) {
    json_decref(v);
    if (key && json_is_object(to)) return rd_err(RD_ESTATE, "JSON of %s: key \"%s\" added twice", what, key);
    return rd_err(RD_ESTATE, "JSON of %s: %s", what,
                  key ? "a key added to a non-object" : "an element added to a non-array");
  }
  /* Both calls take v, also when they fail; they fail for memory or, for a
   * key, one that is not UTF-8. */
  if (key ? json_object_set_new(to, key, v) < 0 : json_array_append_new(to, v) < 0)
    return rd_err(RD_EINVAL, "cannot make the JSON of %s: cannot add %s%s%s (out of memory, or a key that is not "
                  "UTF-8)", what, key ? "key \"" : "an element", key ? key : "", key ? "\"" : "");
  return RD_OK;
}

/* Room for "%.30f" of DBL_MAX: 309 digits, sign, point and 30 decimals. */
#define RD_JSON_NUM_CHARS 400

json_t *rd_json_fixed(double v, int decimals) {
  if (!isfinite(v)) return json_null();
  char b[RD_JSON_NUM_CHARS];
  snprintf(b, sizeof b, "%.*f", decimals < 0 ? 0 : decimals > 30 ? 30 : decimals, v);
  return json_real(strtod(b, NULL));
}

json_t *rd_json_sig(double v, int digits) {
  if (!isfinite(v)) return json_null();
  char b[RD_JSON_NUM_CHARS];
  snprintf(b, sizeof b, "%.*g", digits < 1 ? 1 : digits > 30 ? 30 : digits, v);
  return json_real(strtod(b, NULL));
}

int rd_json_dump(const json_t *v, size_t flags, const char *what, char **text, size_t *n) {
  *text = NULL;
  *n = 0;
  char *s = json_dumps(v, flags | JSON_ENCODE_ANY);
  if (!s) return rd_err(RD_ENOMEM, "out of memory writing the JSON of %s", what);
  size_t len = strlen(s);
  /* jansson allocates with malloc (rediff never sets other allocators), so
   * the text can grow here and be freed by the caller. */
  char *t = realloc(s, len + 2);
  if (!t) {
    free(s);
    return rd_err(RD_ENOMEM, "out of memory writing the JSON of %s", what);
  }
  t[len] = '\n';
  t[len + 1] = '\0';
  *text = t;
  *n = len + 1;
  return RD_OK;
}

int rd_json_write_atomic(const char *path, const json_t *v, size_t flags) {
  char *text;
  size_t n;
  RD_TRY(rd_json_dump(v, flags, path, &text, &n));
  int s = rd_fs_write_atomic(path, text, n);
  free(text);
  return s;
}
