/* A config as text: the YAML that `rediff config show` prints and that loads
 * back to the same config, its hash, and the Markdown reference of every key
 * (docs/config.md). */
#include "io/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config_internal.h"
#include "io/core/err.h"
#include "io/core/hash.h"
#include "io/core/strbuf.h"

/* ---------------------------------------------------------------- emitting */

/* The shortest decimal that reads back to the same double. */
static void fmt_double(char *out, size_t n, double x) {
  /* Whole numbers keep a ".0" so they read as floats to people (and to
   * other YAML readers), not "1e+04". */
  if (x == floor(x) && fabs(x) < 1e15) {
    snprintf(out, n, "%.1f", x);
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(out, n, "%.*g", prec, x);
    if (strtod(out, NULL) == x) break;
  }
  /* YAML 1.1 readers (PyYAML) take an exponent form for a float only with a
   * "." in the mantissa: "1e-05" would load there as a string, "1.0e-05"
   * loads as the same double in libyaml-based rediff and in PyYAML. */
  char *e = strchr(out, 'e');
  if (e && !strchr(out, '.') && strlen(out) + 2 < n) {
    memmove(e + 2, e, strlen(e) + 1);
    e[0] = '.', e[1] = '0';
  }
}

/* YAML double-quoted: any string reads back unchanged. */
static void sb_quoted(rd_strbuf *b, const char *s) {
  rd_strbuf_str(b, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      rd_strbuf_printf(b, "\\%c", *p);
    else if (*p == '\n')
      rd_strbuf_str(b, "\\n");
    else if (*p == '\t')
      rd_strbuf_str(b, "\\t");
    else if (*p < 0x20 || *p == 0x7f)
      rd_strbuf_printf(b, "\\x%02x", *p);
    else
      rd_strbuf_put(b, (const char *)p, 1);
  }
  rd_strbuf_str(b, "\"");
}

static void sb_value(rd_strbuf *b, const rd_config *cfg, const rd_cfg_key *k) {
  const void *field = (const char *)cfg + k->off;
  char num[40];
  switch (k->kind) {
  case RD_CFG_KIND_INT: rd_strbuf_printf(b, "%d", *(const int *)field); break;
  case RD_CFG_KIND_U64: rd_strbuf_printf(b, "%" PRIu64, *(const uint64_t *)field); break;
  case RD_CFG_KIND_FLOAT:
    fmt_double(num, sizeof num, *(const double *)field);
    rd_strbuf_str(b, num);
    break;
  case RD_CFG_KIND_BOOL: rd_strbuf_str(b, *(const int *)field ? "true" : "false"); break;
  case RD_CFG_KIND_STR:
    if (k->choices && rd_cfg_choice_ok(k->choices, field))
      rd_strbuf_str(b, field); /* plain words read back as such */
    else
      sb_quoted(b, field);
    break;
  case RD_CFG_KIND_INTS: {
    const rd_cfg_ints *l = field;
    rd_strbuf_str(b, "[");
    for (int i = 0; i < l->n; i++) rd_strbuf_printf(b, "%s%d", i ? ", " : "", l->v[i]);
    rd_strbuf_str(b, "]");
    break;
  }
  case RD_CFG_KIND_STRS: {
    const rd_cfg_strs *l = field;
    rd_strbuf_str(b, "[");
    for (int i = 0; i < l->n; i++) {
      if (i) rd_strbuf_str(b, ", ");
      if (k->choices && rd_cfg_choice_ok(k->choices, l->v[i]))
        rd_strbuf_str(b, l->v[i]);
      else
        sb_quoted(b, l->v[i]);
    }
    rd_strbuf_str(b, "]");
    break;
  }
  }
}

/* Every key, grouped by section in table order. With comments, each line
 * carries its key's meaning (for people); without, the text is what the hash
 * covers, so rewording a meaning does not change a config's identity. */
static int emit_text(const rd_config *cfg, int comments, rd_strbuf *b) {
  const char *section = "";
  for (int i = 0; i < rd_cfg_n_keys; i++) {
    const rd_cfg_key *k = &rd_cfg_keys[i];
    const char *dot = strchr(k->name, '.');
    size_t slen = dot ? (size_t)(dot - k->name) : 0;
    if (strlen(section) != slen || strncmp(section, k->name, slen) != 0) {
      section = k->name;
      for (int s = 0; s < rd_cfg_n_sections; s++)
        if (strlen(rd_cfg_sections[s].name) == slen && strncmp(rd_cfg_sections[s].name, k->name, slen) == 0) {
          section = rd_cfg_sections[s].name;
          if (comments) rd_strbuf_printf(b, "\n# %s\n", rd_cfg_sections[s].doc);
          rd_strbuf_printf(b, "%s:\n", section);
        }
    }
    size_t start = b->n;
    rd_strbuf_printf(b, "%s%s: ", dot ? "  " : "", rd_cfg_leaf(k->name));
    sb_value(b, cfg, k);
    if (comments) {
      size_t w = b->n - start;
      rd_strbuf_printf(b, "%*s# %s", w < 34 ? (int)(34 - w) : 1, "", k->doc);
    }
    rd_strbuf_str(b, "\n");
  }
  if (b->oom) {
    free(b->p);
    return rd_err(RD_ENOMEM, "out of memory writing the config as YAML");
  }
  return RD_OK;
}

int rd_config_to_yaml(const rd_config *cfg, char **yaml) {
  rd_strbuf b = RD_STRBUF_INIT;
  RD_TRY(emit_text(cfg, 1, &b));
  *yaml = b.p;
  return RD_OK;
}

int rd_config_emit(const rd_config *cfg, FILE *out) {
  char *text;
  RD_TRY(rd_config_to_yaml(cfg, &text));
  size_t n = strlen(text);
  int ok = fwrite(text, 1, n, out) == n && fflush(out) == 0;
  free(text);
  return ok ? RD_OK : rd_err(RD_EIO, "cannot write the config: %s", strerror(errno));
}

int rd_config_to_lines(const rd_config *cfg, char **text) {
  rd_strbuf b = RD_STRBUF_INIT;
  for (int i = 0; i < rd_cfg_n_keys; i++) {
    rd_strbuf_printf(&b, "%s: ", rd_cfg_keys[i].name);
    sb_value(&b, cfg, &rd_cfg_keys[i]);
    rd_strbuf_str(&b, "\n");
  }
  if (b.oom) {
    free(b.p);
    return rd_err(RD_ENOMEM, "out of memory listing the config");
  }
  *text = b.p;
  return RD_OK;
}

uint64_t rd_config_hash(const rd_config *cfg) {
  rd_strbuf b = RD_STRBUF_INIT;
  if (emit_text(cfg, 0, &b) < 0) return 0;
  uint64_t h = rd_hash_bytes(RD_HASH_INIT, b.p, b.n);
  free(b.p);
  return h;
}

/* ------------------------------------------------------- the Markdown reference */

static int in_section(const rd_cfg_key *k, const char *section) {
  size_t n = strlen(section);
  return strncmp(k->name, section, n) == 0 && k->name[n] == '.';
}

static const char *type_words(const rd_cfg_key *k) {
  switch (k->kind) {
  case RD_CFG_KIND_INT: return "int";
  case RD_CFG_KIND_U64: return "uint64";
  case RD_CFG_KIND_FLOAT: return "float";
  case RD_CFG_KIND_BOOL: return "bool";
  case RD_CFG_KIND_STR: return k->choices ? "enum" : "string";
  case RD_CFG_KIND_INTS: return "list of int";
  case RD_CFG_KIND_STRS: return k->choices ? "list of enum" : "list of string";
  }
  return "?";
}

static void doc_range(rd_strbuf *b, const rd_cfg_key *k) {
  switch (k->kind) {
  case RD_CFG_KIND_INT:
  case RD_CFG_KIND_FLOAT:
    if (k->hi >= RD_CFG_NO_MAX && k->kind == RD_CFG_KIND_INT)
      rd_strbuf_printf(b, "%s %.15g", (k->open & RD_CFG_LO_OPEN) ? ">" : ">=", k->lo);
    else
      rd_strbuf_printf(b, "%s%.15g, %.15g%s", (k->open & RD_CFG_LO_OPEN) ? "(" : "[", k->lo, k->hi,
                (k->open & RD_CFG_HI_OPEN) ? ")" : "]");
    break;
  case RD_CFG_KIND_U64: rd_strbuf_str(b, "0 .. 2^64-1"); break;
  case RD_CFG_KIND_BOOL: rd_strbuf_str(b, "`true`, `false`"); break;
  case RD_CFG_KIND_STR:
    if (k->choices) {
      for (int i = 0; k->choices[i]; i++) rd_strbuf_printf(b, "%s`%s`", i ? ", " : "", k->choices[i]);
    } else {
      rd_strbuf_printf(b, "%s%zu bytes, one line", k->lo > 0 ? "1 to " : "up to ", k->size - 1);
    }
    break;
  case RD_CFG_KIND_INTS:
    rd_strbuf_printf(b, "%d to %d items, each [%.15g, %.15g]", k->min_n, k->max_n, k->lo, k->hi);
    break;
  case RD_CFG_KIND_STRS:
    rd_strbuf_printf(b, "%d to %d items", k->min_n, k->max_n);
    if (k->choices) {
      rd_strbuf_str(b, " of ");
      for (int i = 0; k->choices[i]; i++) rd_strbuf_printf(b, "%s`%s`", i ? ", " : "", k->choices[i]);
    } else {
      rd_strbuf_printf(b, ", each up to %d bytes, one line", RD_CFG_STR - 1);
    }
    break;
  }
}

/* Markdown table cells: '|' would end the cell. */
static void sb_cell(rd_strbuf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '|')
      rd_strbuf_str(b, "\\|");
    else
      rd_strbuf_put(b, s, 1);
  }
}

int rd_config_doc(FILE *out) {
  rd_config def;
  rd_config_defaults(&def);
  rd_strbuf b = RD_STRBUF_INIT;
  const char *head = "| key | type | default | range | meaning |\n|---|---|---|---|---|\n";
  rd_strbuf_str(&b, "## Top level\n\n");
  rd_strbuf_str(&b, head);
  for (int pass = -1; pass < rd_cfg_n_sections; pass++) {
    if (pass >= 0) {
      rd_strbuf_printf(&b, "\n## %s\n\n%c%s.\n\n", rd_cfg_sections[pass].name,
                toupper((unsigned char)rd_cfg_sections[pass].doc[0]), rd_cfg_sections[pass].doc + 1);
      rd_strbuf_str(&b, head);
    }
    for (int i = 0; i < rd_cfg_n_keys; i++) {
      const rd_cfg_key *k = &rd_cfg_keys[i];
      if (pass < 0 ? strchr(k->name, '.') != NULL : !in_section(k, rd_cfg_sections[pass].name)) continue;
      rd_strbuf v = RD_STRBUF_INIT;
      sb_value(&v, &def, k);
      rd_strbuf_printf(&b, "| `%s` | %s | `", k->name, type_words(k));
      sb_cell(&b, v.oom ? "?" : v.p);
      rd_strbuf_str(&b, "` | ");
      doc_range(&b, k);
      rd_strbuf_str(&b, " | ");
      sb_cell(&b, k->doc);
      rd_strbuf_str(&b, " |\n");
      free(v.p);
    }
  }
  if (b.oom) {
    free(b.p);
    return rd_err(RD_ENOMEM, "out of memory writing the config reference");
  }
  int ok = fwrite(b.p, 1, b.n, out) == b.n && fflush(out) == 0;
  free(b.p);
  return ok ? RD_OK : rd_err(RD_EIO, "cannot write the config reference: %s", strerror(errno));
}
