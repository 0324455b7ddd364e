/* Recursive-descent JSON reader with byte-exact error positions. */
#include "io/json.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"

#define RD_JSON_DEPTH 64

typedef struct {
  const char *s;
  size_t n, i;
} cur;

static int fail(const cur *c, const char *what) {
  return rd_err(RD_EINVAL, "JSON: %s at byte %zu", what, c->i);
}

static void ws(cur *c) {
  while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r')) c->i++;
}

static int lit(cur *c, const char *w) {
  size_t k = strlen(w);
  if (c->n - c->i < k || memcmp(c->s + c->i, w, k) != 0) return 0;
  c->i += k;
  return 1;
}

static int hex4(cur *c, unsigned *u) {
  if (c->n - c->i < 4) return fail(c, "short \\u escape");
  *u = 0;
  for (int k = 0; k < 4; k++) {
    char h = c->s[c->i++];
    int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
    if (d < 0) return fail(c, "bad hex digit in \\u escape");
    *u = *u * 16 + (unsigned)d;
  }
  return RD_OK;
}

static size_t utf8(unsigned u, char *o) {
  if (u < 0x80) return o[0] = (char)u, 1;
  if (u < 0x800) return o[0] = (char)(0xC0 | u >> 6), o[1] = (char)(0x80 | (u & 63)), 2;
  if (u < 0x10000)
    return o[0] = (char)(0xE0 | u >> 12), o[1] = (char)(0x80 | (u >> 6 & 63)), o[2] = (char)(0x80 | (u & 63)), 3;
  o[0] = (char)(0xF0 | u >> 18), o[1] = (char)(0x80 | (u >> 12 & 63)), o[2] = (char)(0x80 | (u >> 6 & 63));
  o[3] = (char)(0x80 | (u & 63));
  return 4;
}

/* At the opening quote; the decoded string is never longer than its source. */
static int string(cur *c, char **out, size_t *len) {
  c->i++;
  char *b = rd_malloc(c->n - c->i + 1, "a JSON string");
  if (!b) return RD_ENOMEM;
  size_t k = 0;
  for (;;) {
    if (c->i >= c->n) {
      free(b);
      return fail(c, "unterminated string");
    }
    unsigned char ch = (unsigned char)c->s[c->i++];
    if (ch == '"') break;
    if (ch < 0x20) {
      free(b);
      c->i--;
      return fail(c, "control character in a string");
    }
    if (ch != '\\') {
      b[k++] = (char)ch;
      continue;
    }
    if (c->i >= c->n) {
      free(b);
      return fail(c, "unterminated escape");
    }
    char e = c->s[c->i++];
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *p = e ? strchr(from, e) : NULL;
    if (p) {
      b[k++] = to[p - from];
      continue;
    }
    unsigned u, lo;
    int s = e == 'u' ? hex4(c, &u) : fail(c, "unknown escape");
    /* A surrogate pair spells one character above U+FFFF. */
    if (s == RD_OK && u >= 0xD800 && u < 0xDC00) {
      if (!lit(c, "\\u")) s = fail(c, "high surrogate without its low half");
      if (s == RD_OK) s = hex4(c, &lo);
      if (s == RD_OK && (lo < 0xDC00 || lo > 0xDFFF)) s = fail(c, "bad low surrogate");
      if (s == RD_OK) u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    } else if (s == RD_OK && u >= 0xDC00 && u < 0xE000) {
      s = fail(c, "lone low surrogate");
    }
    if (s < 0) {
      free(b);
      return s;
    }
    k += utf8(u, b + k);
  }
  b[k] = '\0';
  *out = b;
  *len = k;
  return RD_OK;
}

static int number(cur *c, double *v) {
  size_t a = c->i;
  if (c->i < c->n && c->s[c->i] == '-') c->i++;
  if (c->i >= c->n || c->s[c->i] < '0' || c->s[c->i] > '9') return fail(c, "bad number");
  if (c->s[c->i] == '0') c->i++;
  else
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') c->i++;
  if (c->i < c->n && c->s[c->i] == '.') {
    c->i++;
    if (c->i >= c->n || c->s[c->i] < '0' || c->s[c->i] > '9') return fail(c, "bad fraction");
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') c->i++;
  }
  if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
    c->i++;
    if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-')) c->i++;
    if (c->i >= c->n || c->s[c->i] < '0' || c->s[c->i] > '9') return fail(c, "bad exponent");
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') c->i++;
  }
  char tmp[64];
  size_t len = c->i - a;
  if (len >= sizeof tmp) return fail(c, "number too long");
  memcpy(tmp, c->s + a, len);
  tmp[len] = '\0';
  *v = strtod(tmp, NULL);
  return RD_OK;
}

static int value(cur *c, rd_json **out, int depth);

static int elements(cur *c, rd_json *v, int depth, char close) {
  rd_json **tail = &v->child;
  c->i++;
  ws(c);
  if (c->i < c->n && c->s[c->i] == close) {
    c->i++;
    return RD_OK;
  }
  for (;;) {
    char *key = NULL;
    size_t klen;
    ws(c);
    if (close == '}') {
      if (c->i >= c->n || c->s[c->i] != '"') return fail(c, "expected a member name");
      RD_TRY(string(c, &key, &klen));
      ws(c);
      if (c->i >= c->n || c->s[c->i] != ':') {
        free(key);
        return fail(c, "expected ':'");
      }
      c->i++;
    }
    rd_json *e = NULL;
    int s = value(c, &e, depth + 1);
    if (s < 0) {
      free(key);
      return s;
    }
    e->key = key;
    *tail = e;
    tail = &e->next;
    ws(c);
    if (c->i < c->n && c->s[c->i] == ',') {
      c->i++;
      continue;
    }
    if (c->i < c->n && c->s[c->i] == close) {
      c->i++;
      return RD_OK;
    }
    return fail(c, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static int value(cur *c, rd_json **out, int depth) {
  if (depth > RD_JSON_DEPTH) return fail(c, "nesting deeper than 64");
  ws(c);
  if (c->i >= c->n) return fail(c, "unexpected end");
  rd_json *v = rd_calloc(1, sizeof *v, "a JSON value");
  if (!v) return RD_ENOMEM;
  *out = v;
  char ch = c->s[c->i];
  if (ch == '{' || ch == '[') {
    v->type = ch == '{' ? RD_JSON_OBJECT : RD_JSON_ARRAY;
    return elements(c, v, depth, ch == '{' ? '}' : ']');
  }
  if (ch == '"') {
    v->type = RD_JSON_STRING;
    return string(c, &v->str, &v->len);
  }
  if (ch == '-' || (ch >= '0' && ch <= '9')) {
    v->type = RD_JSON_NUMBER;
    return number(c, &v->num);
  }
  if (lit(c, "true")) v->type = RD_JSON_TRUE;
  else if (lit(c, "false")) v->type = RD_JSON_FALSE;
  else if (lit(c, "null")) v->type = RD_JSON_NULL;
  else return fail(c, "unexpected character");
  return RD_OK;
}

int rd_json_parse(const char *text, size_t n, rd_json **root) {
  cur c = {text, n, 0};
  *root = NULL;
  int s = value(&c, root, 0);
  if (s == RD_OK) {
    ws(&c);
    if (c.i != c.n) s = fail(&c, "text after the value");
  }
  if (s < 0) {
    rd_json_free(*root);
    *root = NULL;
  }
  return s;
}

void rd_json_free(rd_json *v) {
  while (v) {
    rd_json *next = v->next;
    rd_json_free(v->child);
    free(v->str);
    free(v->key);
    free(v);
    v = next;
  }
}

const rd_json *rd_json_get(const rd_json *obj, const char *key) {
  const rd_json *found = NULL;
  if (obj && obj->type == RD_JSON_OBJECT)
    for (const rd_json *e = obj->child; e; e = e->next)
      if (e->key && strcmp(e->key, key) == 0) found = e;
  return found;
}

int rd_json_quote(const char *s, char *out, size_t cap, size_t *len) {
  size_t k = *len;
#define PUT(ch)                                                              \
  do {                                                                       \
    if (k + 1 >= cap) return rd_err(RD_EINVAL, "JSON: string does not fit"); \
    out[k++] = (ch);                                                         \
  } while (0)
  PUT('"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      PUT('\\');
      PUT((char)*p);
    } else if (*p < 0x20) {
      static const char hexd[] = "0123456789abcdef";
      PUT('\\');
      PUT('u');
      PUT('0');
      PUT('0');
      PUT(hexd[*p >> 4]);
      PUT(hexd[*p & 15]);
    } else {
      PUT((char)*p);
    }
  }
  PUT('"');
#undef PUT
  out[k] = '\0';
  *len = k;
  return RD_OK;
}
