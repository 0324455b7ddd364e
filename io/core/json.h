/* JSON through libjansson, with rediff's status codes: every file and line
 * of JSON that rediff writes is a json_t dumped here (so every string is
 * escaped), and every one it reads is parsed here (so bad input is named by
 * file, line and column). Values are jansson's json_t; callers use jansson's
 * own API to read them (json_object_get, json_unpack_ex, ...) and
 * json_decref to free them.
 *
 * Writers pass jansson's dump flags: JSON_PRESERVE_ORDER always (keys in the
 * order they were added), JSON_COMPACT for JSON lines, JSON_INDENT(2) for
 * whole files, and JSON_REAL_PRECISION(n) for the significant digits of
 * numbers (jansson writes them as "%.<n>g", with ".0" added to integral
 * values so they read back as numbers with a fraction, and the exponent
 * without "+" and leading zeros: 1e30, 1e-5). */
#ifndef RD_IO_CORE_JSON_H
#define RD_IO_CORE_JSON_H

#include <jansson.h>
#include <stddef.h>

/* Parses text[n] as exactly one JSON value of any type (whitespace around it
 * allowed; "\u0000" in a string is refused). name and line say where text
 * comes from: a file and the line text starts at (1 for a whole file, the
 * line number for one line of a JSON-lines file). Bad input gives RD_EINVAL
 * with "NAME:LINE:COLUMN: bad JSON: <jansson's message>" (RD_ENOMEM when
 * memory ran out). *out is the new value, or NULL on error. */
int rd_json_parse(const char *text, size_t n, const char *name, int line, json_t **out);

/* json_pack(fmt, ...) into *out (a new reference). A value that cannot be
 * made (a string that is not UTF-8, a non-finite "f", a NULL "o") gives
 * RD_EINVAL, memory RD_ENOMEM, with "cannot make the JSON of WHAT: ...".
 * As in jansson, "o" arguments are stolen, "s?" and "o?" turn NULL into
 * null. */
int rd_json_pack(json_t **out, const char *what, const char *fmt, ...);

/* Packs one value as rd_json_pack does and adds it to to: under key when to
 * is an object (a key already there is RD_ESTATE: keys are written once),
 * at the end when to is an array (key NULL). Errors name what; "o"
 * arguments are taken also on error. */
int rd_json_add(json_t *to, const char *key, const char *what, const char *fmt, ...);

/* v as a number rounded as printf("%.*f", decimals, v) rounds it, or null
 * when v is not finite; a new reference, NULL only when memory ran out.
 * Dumped with JSON_REAL_PRECISION(15) it reads back as the printf text
 * does (up to 15 significant digits: DBL_DIG). */
json_t *rd_json_fixed(double v, int decimals);
/* The same for printf("%.*g", digits, v). */
json_t *rd_json_sig(double v, int digits);

/* v as text (jansson's json_dumps with flags), ended by a newline:
 * *text is malloc'd, *n its length. Errors name what. */
int rd_json_dump(const json_t *v, size_t flags, const char *what, char **text, size_t *n);

/* rd_json_dump into path, written atomically (io/core/fs.h). */
int rd_json_write_atomic(const char *path, const json_t *v, size_t flags);

#endif
