/* Reading a config: YAML files and --set overrides into rd_config, against
 * the key table of io/config.c.
 *
 * Files are read with libyaml's document API so every node keeps its mark:
 * each error names file:line:column, or the --set override at fault. */
#include "io/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "io/config_internal.h"
#include "io/core/err.h"
#include "io/core/fs.h"

/* ------------------------------------------------------- where values come from */

/* A value's source: a config file (messages give file:line:col of the node)
 * or one assignment (messages give the assignment). */
typedef struct {
  const char *file;
  const char *label; /* "--set" or "default" when file is NULL */
  const char *text;  /* the assignment */
} rd_src;

static void place(char *buf, size_t n, const rd_src *s, yaml_mark_t m) {
  if (s->file)
    snprintf(buf, n, "%s:%zu:%zu", s->file, m.line + 1, m.column + 1);
  else
    snprintf(buf, n, "%s %s", s->label, s->text);
}

__attribute__((format(printf, 3, 4))) static int fail_at(const rd_src *s, yaml_mark_t m, const char *fmt,
                                                         ...) {
  char where[RD_CFG_LONGSTR + 64], msg[RD_CFG_LONGSTR + 512];
  place(where, sizeof where, s, m);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return rd_err(RD_EINVAL, "%s: %s", where, msg);
}

/* Where each key got its value during a load, to place cross-key errors at
 * the value the user set last. */
typedef struct {
  rd_src src;
  yaml_mark_t mark;
  int seq; /* 0: still the default */
} rd_origin;

/* ------------------------------------------------------------------ values */

static const char *want_words(const rd_cfg_key *k) {
  switch (k->kind) {
  case RD_CFG_KIND_INT: return "an integer";
  case RD_CFG_KIND_U64: return "an unsigned 64-bit integer";
  case RD_CFG_KIND_FLOAT: return "a number";
  case RD_CFG_KIND_BOOL: return "true or false";
  case RD_CFG_KIND_STR: return "a string";
  case RD_CFG_KIND_INTS: return "a list of integers like [1, 2]";
  case RD_CFG_KIND_STRS: return "a list of strings like [a, b]";
  }
  return "a value";
}

static const char *node_words(const yaml_node_t *n) {
  return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a value";
}

static int is_null_scalar(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
  const char *v = (const char *)n->data.scalar.value;
  return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0;
}

static int parse_int(const char *s, long long *out) {
  if (!*s) return 0;
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (*end || end == s || (s[0] != '-' && s[0] != '+' && (s[0] < '0' || s[0] > '9'))) return 0;
  *out = errno == ERANGE ? (x < 0 ? LLONG_MIN : LLONG_MAX) : x;
  return 1;
}

static int parse_u64(const char *s, uint64_t *out) {
  if (s[0] < '0' || s[0] > '9') return 0;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (*end || errno == ERANGE) return 0;
  *out = (uint64_t)x;
  return 1;
}

static int parse_float(const char *s, double *out) {
  /* Decimal notation only, as an integer is: strtod alone would also take
   * " 0.5" (leading space), "0x1p3" and other spellings YAML readers do not
   * read as the same number. */
  if (!*s || strspn(s, "0123456789+-.eE") != strlen(s)) return 0;
  char *end;
  double x = strtod(s, &end);
  if (*end || !isfinite(x)) return 0;
  *out = x;
  return 1;
}

/* Reads one integer scalar for key (or list item) name into *out. */
static int scalar_int(const rd_cfg_key *k, const char *name, const yaml_node_t *n, const rd_src *src,
                      int *out) {
  if (n->type != YAML_SCALAR_NODE)
    return fail_at(src, n->start_mark, "%s wants an integer, got %s", name, node_words(n));
  const char *v = (const char *)n->data.scalar.value;
  long long x;
  if (!parse_int(v, &x))
    return fail_at(src, n->start_mark, "%s wants an integer, got %s%s%s", name, *v ? "'" : "",
                   *v ? v : "nothing", *v ? "'" : "");
  if (!rd_cfg_in_range(k, (double)x)) {
    char r[96];
    rd_cfg_range_words(k, r, sizeof r);
    return fail_at(src, n->start_mark, "%s must be %s, got %s", name, r, v);
  }
  *out = (int)x;
  return RD_OK;
}

/* Stores the value node n (NULL: an empty scalar) into key k of cfg. */
static int apply(rd_config *cfg, const rd_cfg_key *k, yaml_document_t *doc, yaml_node_t *n,
                 const rd_src *src) {
  yaml_node_t empty;
  memset(&empty, 0, sizeof empty);
  if (!n) {
    empty.type = YAML_SCALAR_NODE;
    empty.data.scalar.value = (yaml_char_t *)"";
    empty.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
    n = &empty;
  }
  void *field = (char *)cfg + k->off;
  const char *quote_hint = src->file ? "" : " (quote a value with ': ' or '#' as YAML: --set 'key=\"...\"')";
  int is_list = k->kind == RD_CFG_KIND_INTS || k->kind == RD_CFG_KIND_STRS;
  if (!is_list && n->type != YAML_SCALAR_NODE) {
    char want[128];
    if (k->choices) {
      char words[96];
      rd_cfg_choice_words(k->choices, words, sizeof words);
      snprintf(want, sizeof want, "one of %s", words);
    } else {
      snprintf(want, sizeof want, "%s", want_words(k));
    }
    return fail_at(src, n->start_mark, "%s wants %s, got %s%s", k->name, want, node_words(n),
                   k->kind == RD_CFG_KIND_STR && !k->choices ? quote_hint : "");
  }
  const char *v = n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : "";
  char vq[RD_CFG_LONGSTR + 8]; /* the value quoted for messages, or "nothing" */
  if (*v)
    snprintf(vq, sizeof vq, "'%s'", v);
  else
    snprintf(vq, sizeof vq, "nothing");

  switch (k->kind) {
  case RD_CFG_KIND_INT: return scalar_int(k, k->name, n, src, (int *)field);
  case RD_CFG_KIND_U64: {
    uint64_t x;
    if (!parse_u64(v, &x))
      return fail_at(src, n->start_mark, "%s wants %s, got %s", k->name, want_words(k), vq);
    *(uint64_t *)field = x;
    return RD_OK;
  }
  case RD_CFG_KIND_FLOAT: {
    double x;
    if (!parse_float(v, &x)) return fail_at(src, n->start_mark, "%s wants a number, got %s", k->name, vq);
    if (!rd_cfg_in_range(k, x)) {
      char r[96];
      rd_cfg_range_words(k, r, sizeof r);
      return fail_at(src, n->start_mark, "%s must be %s, got %s", k->name, r, v);
    }
    *(double *)field = x;
    return RD_OK;
  }
  case RD_CFG_KIND_BOOL:
    if (strcasecmp(v, "true") == 0)
      *(int *)field = 1;
    else if (strcasecmp(v, "false") == 0)
      *(int *)field = 0;
    else
      return fail_at(src, n->start_mark, "%s wants true or false, got %s", k->name, vq);
    return RD_OK;
  case RD_CFG_KIND_STR: {
    size_t len = n->data.scalar.length;
    if (is_null_scalar(n)) v = "", len = 0; /* `key:`, `~`, `null`: empty */
    if (rd_cfg_check_string(k, k->name, v, len, k->size) < 0) {
      char msg[RD_CFG_LONGSTR + 256];
      snprintf(msg, sizeof msg, "%s", rd_err_msg());
      return fail_at(src, n->start_mark, "%s", msg);
    }
    memset(field, 0, k->size);
    memcpy(field, v, len);
    return RD_OK;
  }
  case RD_CFG_KIND_INTS:
  case RD_CFG_KIND_STRS: {
    if (is_null_scalar(n))
      n = NULL; /* `key:` with nothing: an empty list */
    else if (n->type != YAML_SEQUENCE_NODE)
      return fail_at(src, n->start_mark, "%s wants %s, got %s", k->name, want_words(k),
                     n->type == YAML_SCALAR_NODE ? vq : node_words(n));
    int count = n ? (int)(n->data.sequence.items.top - n->data.sequence.items.start) : 0;
    if (count < k->min_n || count > k->max_n)
      return fail_at(src, n ? n->start_mark : empty.start_mark, "%s wants %d to %d items, got %d", k->name,
                     k->min_n, k->max_n, count);
    if (k->kind == RD_CFG_KIND_INTS) {
      rd_cfg_ints out = {.n = count};
      for (int i = 0; i < count; i++) {
        yaml_node_t *it = yaml_document_get_node(doc, n->data.sequence.items.start[i]);
        char name[96];
        snprintf(name, sizeof name, "%s[%d]", k->name, i);
        RD_TRY(scalar_int(k, name, it, src, &out.v[i]));
      }
      memcpy(field, &out, sizeof out);
    } else {
      rd_cfg_strs *out = field;
      memset(out, 0, sizeof *out);
      for (int i = 0; i < count; i++) {
        yaml_node_t *it = yaml_document_get_node(doc, n->data.sequence.items.start[i]);
        char name[96];
        snprintf(name, sizeof name, "%s[%d]", k->name, i);
        if (it->type != YAML_SCALAR_NODE)
          return fail_at(src, it->start_mark, "%s wants a string, got %s", name, node_words(it));
        const char *s = (const char *)it->data.scalar.value;
        size_t len = it->data.scalar.length;
        if (is_null_scalar(it)) s = "", len = 0; /* `~`, `null`: empty */
        if (rd_cfg_check_string(k, name, s, len, RD_CFG_STR) < 0) {
          char msg[RD_CFG_LONGSTR + 256];
          snprintf(msg, sizeof msg, "%s", rd_err_msg());
          return fail_at(src, it->start_mark, "%s", msg);
        }
        memcpy(out->v[i], s, len);
      }
      out->n = count;
    }
    return RD_OK;
  }
  }
  return rd_err(RD_ESTATE, "config key %s has an unknown type", k->name);
}

/* ------------------------------------------------------------ YAML parsing */

/* Turns libyaml's complaint into a message at its mark. */
static int yaml_problem(const yaml_parser_t *p, const rd_src *src) {
  if (p->error == YAML_MEMORY_ERROR)
    return rd_err_at(RD_ENOMEM, __FILE__, __LINE__, "libyaml ran out of memory");
  const char *problem = p->problem ? p->problem : "unknown problem";
  if (p->error == YAML_READER_ERROR) {
    yaml_mark_t m = {.index = p->problem_offset};
    if (src->file)
      return rd_err(RD_EINVAL, "%s: byte %zu: not valid UTF-8 text: %s", src->file, p->problem_offset,
                    problem);
    return fail_at(src, m, "not valid UTF-8 text: %s", problem);
  }
  if (p->context)
    return fail_at(src, p->problem_mark, "malformed YAML: %s (%s at line %zu, column %zu)", problem,
                   p->context, p->context_mark.line + 1, p->context_mark.column + 1);
  return fail_at(src, p->problem_mark, "malformed YAML: %s", problem);
}

/* A config is two levels deep (section: key: value, a value at most a flow
 * list); libyaml's scanner spends time quadratic in the flow nesting, so a
 * hostile config is stopped at this depth before the document is built. */
#define RD_CFG_MAX_DEPTH 16

static int check_depth(const char *text, size_t len, const rd_src *src) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p))
    return rd_err_at(RD_ENOMEM, __FILE__, __LINE__, "libyaml: yaml_parser_initialize failed");
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  int s = RD_OK, depth = 0, done = 0;
  while (s == RD_OK && !done) {
    yaml_event_t e;
    if (!yaml_parser_parse(&p, &e)) break; /* the full parse below reports it */
    if (e.type == YAML_SEQUENCE_START_EVENT || e.type == YAML_MAPPING_START_EVENT) {
      if (++depth > RD_CFG_MAX_DEPTH)
        s = fail_at(src, e.start_mark, "nested deeper than %d levels; a config is sections of keys",
                    RD_CFG_MAX_DEPTH);
    } else if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
      depth--;
    }
    done = e.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&e);
  }
  yaml_parser_delete(&p);
  return s;
}

/* Parses text as one YAML document. *doc must be freed by the caller when
 * this returns 0. */
static int parse_doc(const char *text, size_t len, const rd_src *src, yaml_document_t *doc) {
  RD_TRY(check_depth(text, len, src));
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p))
    return rd_err_at(RD_ENOMEM, __FILE__, __LINE__, "libyaml: yaml_parser_initialize failed");
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  int s = RD_OK;
  if (!yaml_parser_load(&p, doc)) {
    s = yaml_problem(&p, src);
  } else {
    /* A second document would be silently ignored: say so instead. */
    yaml_document_t next;
    if (!yaml_parser_load(&p, &next)) {
      s = yaml_problem(&p, src);
      yaml_document_delete(doc);
    } else {
      yaml_node_t *root = yaml_document_get_root_node(&next);
      if (root) {
        s = fail_at(src, root->start_mark, "a second YAML document (after '---'); a config is one document");
        yaml_document_delete(doc);
      }
      yaml_document_delete(&next);
    }
  }
  yaml_parser_delete(&p);
  return s;
}

static void note_origin(rd_origin *org, int *seq, const rd_cfg_key *k, const rd_src *src, yaml_mark_t m) {
  if (!org) return;
  rd_origin *o = &org[k - rd_cfg_keys];
  o->src = *src;
  o->mark = m;
  o->seq = ++*seq;
}

/* Errors when the key of pair already appeared earlier in map. */
static int check_duplicate(yaml_document_t *doc, yaml_node_t *map, yaml_node_pair_t *pair, const char *what,
                           const rd_src *src) {
  yaml_node_t *key = yaml_document_get_node(doc, pair->key);
  for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pair; q++) {
    yaml_node_t *other = yaml_document_get_node(doc, q->key);
    if (other->type == YAML_SCALAR_NODE &&
        strcmp((char *)other->data.scalar.value, (char *)key->data.scalar.value) == 0)
      return fail_at(src, key->start_mark, "duplicate %s (first at line %zu)", what,
                     other->start_mark.line + 1);
  }
  return RD_OK;
}

static int key_name(yaml_document_t *doc, yaml_node_pair_t *pair, const rd_src *src, const char **name) {
  yaml_node_t *key = yaml_document_get_node(doc, pair->key);
  if (key->type != YAML_SCALAR_NODE)
    return fail_at(src, key->start_mark, "a key must be a plain name, got %s", node_words(key));
  *name = (const char *)key->data.scalar.value;
  return RD_OK;
}

static int load_section(rd_config *cfg, yaml_document_t *doc, const char *section, yaml_node_t *map,
                        const rd_src *src, rd_origin *org, int *seq) {
  if (is_null_scalar(map)) return RD_OK; /* `model:` with every key commented out */
  if (map->type != YAML_MAPPING_NODE)
    return fail_at(src, map->start_mark, "section '%s' wants a mapping of keys (key: value lines), got %s",
                   section, map->type == YAML_SCALAR_NODE ? "a value" : node_words(map));
  for (yaml_node_pair_t *pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
    const char *name = "";
    RD_TRY(key_name(doc, pair, src, &name));
    char full[2 * RD_CFG_STR];
    snprintf(full, sizeof full, "%s.%s", section, name);
    yaml_node_t *key = yaml_document_get_node(doc, pair->key);
    char what[sizeof full + 16];
    snprintf(what, sizeof what, "key '%s'", full);
    RD_TRY(check_duplicate(doc, map, pair, what, src));
    const rd_cfg_key *k = rd_cfg_find_key(full);
    if (!k) {
      char hint[256];
      rd_cfg_suggest(full, 0, hint, sizeof hint);
      return fail_at(src, key->start_mark, "unknown key '%s'%s", full, hint);
    }
    RD_TRY(apply(cfg, k, doc, yaml_document_get_node(doc, pair->value), src));
    note_origin(org, seq, k, src, key->start_mark);
  }
  return RD_OK;
}

static int load_doc(rd_config *cfg, yaml_document_t *doc, const rd_src *src, rd_origin *org, int *seq) {
  yaml_node_t *root = yaml_document_get_root_node(doc);
  if (!root || is_null_scalar(root)) return RD_OK; /* an empty file: all defaults */
  if (root->type != YAML_MAPPING_NODE)
    return fail_at(src, root->start_mark,
                   "the top level must be a mapping of sections (model:, train:, ...), got %s",
                   root->type == YAML_SCALAR_NODE ? "a value" : node_words(root));
  for (yaml_node_pair_t *pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
    const char *name = "";
    RD_TRY(key_name(doc, pair, src, &name));
    yaml_node_t *key = yaml_document_get_node(doc, pair->key);
    yaml_node_t *value = yaml_document_get_node(doc, pair->value);
    const rd_cfg_key *k = rd_cfg_find_key(name);
    if (k && strchr(name, '.'))
      return fail_at(src, key->start_mark, "write '%s' as '%s:' under '%.*s:'", name, rd_cfg_leaf(name),
                     (int)(rd_cfg_leaf(name) - name - 1), name);
    char what[RD_CFG_STR + 16];
    snprintf(what, sizeof what, "%s '%s'", k ? "key" : "section", name);
    RD_TRY(check_duplicate(doc, root, pair, what, src));
    if (k) {
      RD_TRY(apply(cfg, k, doc, value, src));
      note_origin(org, seq, k, src, key->start_mark);
    } else if (rd_cfg_is_section(name)) {
      RD_TRY(load_section(cfg, doc, name, value, src, org, seq));
    } else {
      char hint[256];
      rd_cfg_suggest(name, 1, hint, sizeof hint);
      return fail_at(src, key->start_mark, "unknown %s '%s'%s",
                     value->type == YAML_MAPPING_NODE ? "section" : "key", name, hint);
    }
  }
  return RD_OK;
}

/* Applies "key.path=value"; label names the source in messages. */
static int set_one(rd_config *cfg, const char *label, const char *assignment, rd_origin *org, int *seq) {
  rd_src src = {.label = label, .text = assignment};
  yaml_mark_t none = {0};
  const char *eq = strchr(assignment, '=');
  if (!eq || eq == assignment) return fail_at(&src, none, "want key.path=value");
  char name[2 * RD_CFG_STR];
  if ((size_t)(eq - assignment) >= sizeof name) return fail_at(&src, none, "the key is too long");
  memcpy(name, assignment, (size_t)(eq - assignment));
  name[eq - assignment] = '\0';
  const rd_cfg_key *k = rd_cfg_find_key(name);
  if (!k) {
    if (rd_cfg_is_section(name))
      return fail_at(&src, none, "'%s' is a section; set its keys one at a time (%s.<key>=value)", name,
                     name);
    char hint[256];
    rd_cfg_suggest(name, !strchr(name, '.'), hint, sizeof hint);
    return fail_at(&src, none, "unknown key '%s'%s", name, hint);
  }
  yaml_document_t doc;
  RD_TRY(parse_doc(eq + 1, strlen(eq + 1), &src, &doc));
  /* The marks inside the value are not worth showing: the override itself is the place. */
  int s = apply(cfg, k, &doc, yaml_document_get_root_node(&doc), &src);
  yaml_document_delete(&doc);
  if (s == RD_OK) note_origin(org, seq, k, &src, none);
  return s;
}

void rd_config_defaults(rd_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  for (int i = 0; i < rd_cfg_n_keys; i++) {
    char a[512];
    snprintf(a, sizeof a, "%s=%s", rd_cfg_keys[i].name, rd_cfg_keys[i].def);
    if (set_one(cfg, "default", a, NULL, NULL) < 0) {
      /* Only a broken table gets here, and tests/unit/test_config.c runs this. */
      fprintf(stderr, "rediff: bad default in io/config.c: %s\n", rd_err_msg());
      abort();
    }
  }
  snprintf(cfg->source, sizeof cfg->source, "(defaults)");
}

int rd_config_set(rd_config *cfg, const char *assignment) {
  return set_one(cfg, "--set", assignment, NULL, NULL);
}

/* ------------------------------------------------------------------ loading */

int rd_config_load(rd_config *cfg, const char *path, const char *const *overrides, int n_overrides) {
  rd_config_defaults(cfg);
  rd_origin org[RD_CFG_MAX_KEYS];
  memset(org, 0, sizeof org);
  int seq = 0;
  if (path) {
    snprintf(cfg->source, sizeof cfg->source, "%s", path);
    char *text;
    size_t len;
    int s = rd_fs_read_max(path, RD_CFG_MAX_BYTES, &text, &len);
    if (s < 0) return rd_err_wrap(s, "config");
    /* libyaml would read UTF-16 too; docs/config.md promises UTF-8 files,
     * and other tools (editors, diff, grep) treat the two differently. */
    const unsigned char *u = (const unsigned char *)text;
    if (len >= 2 && ((u[0] == 0xff && u[1] == 0xfe) || (u[0] == 0xfe && u[1] == 0xff) || memchr(text, 0, len))) {
      free(text);
      return rd_err(RD_EINVAL, "%s: a config is UTF-8 text; this file is UTF-16 (or holds NUL bytes)", path);
    }
    rd_src src = {.file = path};
    yaml_document_t doc;
    s = parse_doc(text, len, &src, &doc);
    if (s == RD_OK) {
      s = load_doc(cfg, &doc, &src, org, &seq);
      yaml_document_delete(&doc);
    }
    free(text);
    RD_TRY(s);
  }
  for (int i = 0; i < n_overrides; i++) RD_TRY(set_one(cfg, "--set", overrides[i], org, &seq));

  rd_cfg_blame b = {NULL};
  int s = rd_cfg_validate(cfg, &b);
  if (s == RD_OK) return s;
  const rd_origin *last = NULL;
  for (const char *p = b.keys ? b.keys : ""; *p;) {
    size_t len = strcspn(p, " ");
    char name[2 * RD_CFG_STR];
    snprintf(name, sizeof name, "%.*s", (int)len, p);
    p += len + (p[len] == ' ');
    const rd_cfg_key *k = rd_cfg_find_key(name);
    const rd_origin *o = k ? &org[k - rd_cfg_keys] : NULL;
    if (o && o->seq && (!last || o->seq > last->seq)) last = o;
  }
  if (!last) return s;
  char where[RD_CFG_LONGSTR + 64];
  place(where, sizeof where, &last->src, last->mark);
  return rd_err_wrap(s, "%s", where);
}
