/* What the files of the config module share; io/config.h is the interface
 * for everyone else.
 *
 *   io/config.c        the key table, and lookups and value rules over it
 *   io/config_load.c   reading YAML files and --set overrides into rd_config
 *   io/config_check.c  rd_config_validate: ranges and rules across keys
 *   io/config_emit.c   the YAML text, its hash, the Markdown reference */
#ifndef RD_IO_CONFIG_INTERNAL_H
#define RD_IO_CONFIG_INTERNAL_H

#include <limits.h>
#include <stddef.h>

#include "io/config.h"

typedef enum {
  RD_CFG_KIND_INT,
  RD_CFG_KIND_U64,
  RD_CFG_KIND_FLOAT,
  RD_CFG_KIND_BOOL,
  RD_CFG_KIND_STR,
  RD_CFG_KIND_INTS,
  RD_CFG_KIND_STRS
} rd_cfg_kind;

/* Which ends of a numeric range are excluded: (lo, hi], [lo, hi), ... */
enum { RD_CFG_LO_OPEN = 1, RD_CFG_HI_OPEN = 2 };

/* The hi of an integer key with no upper bound: messages and the reference
 * then give only the lower one (">= 1"). */
#define RD_CFG_NO_MAX INT_MAX

/* clang-format off */
typedef struct {
  const char *name;           /* "section.key", or "key" at the top level */
  rd_cfg_kind kind;
  size_t off, size;           /* of the field in rd_config */
  const char *def;            /* the default, as YAML text */
  double lo, hi;              /* numbers and list items: the range; strings: lo = min length */
  int open;                   /* RD_CFG_LO_OPEN | RD_CFG_HI_OPEN */
  int min_n, max_n;           /* lists: bounds of the item count */
  const char *const *choices; /* strings and string lists: allowed words, NULL-ended */
  const char *doc;
} rd_cfg_key;
/* clang-format on */

typedef struct {
  const char *name, *doc; /* doc: one sentence, for the emitted YAML and the reference */
} rd_cfg_section;

/* The keys and sections, in the order the YAML and the reference list them. */
extern const rd_cfg_key rd_cfg_keys[];
extern const int rd_cfg_n_keys;
extern const rd_cfg_section rd_cfg_sections[];
extern const int rd_cfg_n_sections;

/* At least rd_cfg_n_keys (io/config.c checks it when compiled), so arrays
 * with one entry per key can have a fixed size. */
#define RD_CFG_MAX_KEYS 256

/* The key of that dotted name, or NULL. */
const rd_cfg_key *rd_cfg_find_key(const char *name);
int rd_cfg_is_section(const char *name);
/* The part of a key's name after its section. */
const char *rd_cfg_leaf(const char *name);
/* " (did you mean 'x'?)" for an unknown name, or "" when nothing is close.
 * top: the name stands at the top level (sections and top-level keys are the
 * candidates); otherwise it is a dotted key. A name that is a key of another
 * section (model.seed, or d_model at the top) is pointed at that key. */
void rd_cfg_suggest(const char *name, int top, char *out, size_t n);

/* "must be > 0 and <= 1" for a key's range. */
void rd_cfg_range_words(const rd_cfg_key *k, char *out, size_t n);
int rd_cfg_in_range(const rd_cfg_key *k, double x);
/* Whether v is one of the NULL-ended choices. */
int rd_cfg_choice_ok(const char *const *choices, const char *v);
/* The choices as "a, b, c". */
void rd_cfg_choice_words(const char *const *choices, char *out, size_t n);
/* Checks a string value (from a file or already in the struct). name is the
 * key, or "key[i]" for a list item. Returns 0 or an RD_EINVAL message without
 * a place (callers prefix it). */
int rd_cfg_check_string(const rd_cfg_key *k, const char *name, const char *v, size_t len, size_t cap);

/* The keys a failed check is about, separated by spaces; the loader places
 * the message at whichever of them the user set last. */
typedef struct {
  const char *keys;
} rd_cfg_blame;

/* rd_config_validate, also telling which keys a failure is about. */
int rd_cfg_validate(const rd_config *cfg, rd_cfg_blame *b);

#endif
