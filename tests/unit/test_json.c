/* io/json: what rediff relies on from its JSON layer over libjansson. Bad
 * input is named by file, line and column; strings with quotes, backslashes
 * and control characters come back as they went in; numbers keep the
 * digits their writer rounds them to; keys keep their order. */
#include <unistd.h>

#include "io/core/fs.h"
#include "io/core/json.h"
#include "rd_test.h"

static json_t *parse(const char *s) {
  json_t *v = NULL;
  int rc = rd_json_parse(s, strlen(s), "t.json", 1, &v);
  if (rc != RD_OK) fprintf(stderr, "parse %s: %s\n", s, rd_err_msg());
  return v;
}

static char *dump(const json_t *v, size_t flags) {
  char *s = NULL;
  size_t n = 0;
  CHECK_OK(rd_json_dump(v, flags, "a test value", &s, &n));
  CHECK(s && n == strlen(s) && n > 0 && s[n - 1] == '\n');
  return s;
}

static void test_values(void) {
  json_t *v = parse(" {\"id\": 17, \"right\": true, \"edits\": [{\"org\": \"a b\", \"target\": \"c\"}, {}], "
                    "\"x\": null, \"f\": false, \"n\": -1.5e2, \"e\": [], \"id\": 18} ");
  CHECK(json_is_object(v));
  /* A repeated key: the last one counts, as the expert protocol reads it. */
  CHECK(json_is_integer(json_object_get(v, "id")) && json_integer_value(json_object_get(v, "id")) == 18);
  CHECK(json_is_true(json_object_get(v, "right")) && json_is_false(json_object_get(v, "f")));
  CHECK(json_is_null(json_object_get(v, "x")) && json_number_value(json_object_get(v, "n")) == -150.0);
  const json_t *e = json_object_get(v, "edits");
  CHECK(json_is_array(e) && json_array_size(e) == 2);
  CHECK(strcmp(json_string_value(json_object_get(json_array_get(e, 0), "org")), "a b") == 0);
  CHECK(json_array_size(json_object_get(v, "e")) == 0 && json_object_get(v, "missing") == NULL);
  json_decref(v);
  /* Every escape, surrogate pairs to UTF-8; any value at the top. */
  v = parse("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9 \\ud83d\\ude00\"");
  CHECK(json_is_string(v) && strcmp(json_string_value(v), "q\" b\\ s/ \b\f\n\r\t \xc3\xa9 \xf0\x9f\x98\x80") == 0);
  json_decref(v);
  v = parse("[0, 1.25, -0.5e-1, \"\"]");
  CHECK(json_number_value(json_array_get(v, 0)) == 0 && json_number_value(json_array_get(v, 1)) == 1.25 &&
        json_number_value(json_array_get(v, 2)) == -0.05);
  json_decref(v);
}

static void test_errors(void) {
  json_t *v = (json_t *)1;
#define BAD(text, line, msg) CHECK_ERR(rd_json_parse(text, strlen(text), "f.json", line, &v), msg)
  BAD("{\"a\": 1", 1, "f.json:1:7: bad JSON: '}' expected near end of file");
  CHECK(v == NULL);
  BAD("{\"a\" 1}", 1, "f.json:1:6: bad JSON: ':' expected");
  BAD("[1 2]", 1, "']' expected");
  BAD("\"abc", 1, "premature end of input");
  BAD("\"a\\x\"", 1, "invalid escape");
  BAD("\"\\u12G4\"", 1, "invalid escape");
  BAD("\"\\ud800x\"", 1, "invalid Unicode");
  BAD("01", 1, "invalid token");
  BAD("1.", 1, "invalid token");
  BAD("tru", 1, "invalid token");
  BAD("{\"a\": 1} x", 1, "f.json:1:10: bad JSON: end of file expected");
  BAD("", 1, "f.json:1:0: bad JSON: unexpected token near end of file");
  BAD("\"a\nb\"", 1, "unexpected newline");
  BAD("\"\\u0000\"", 1, "not allowed");
  BAD("\"\xff\"", 1, "unable to decode byte 0xff");
  BAD("[99999999999999999999]", 1, "too big integer");
  /* The line of a file, and the line of a JSON-lines file a line came from. */
  BAD("{\n \"a\": 1,\n x}", 1, "f.json:3:2: bad JSON: string or '}' expected near 'x'");
  BAD("{\"step\": 1,}", 12, "f.json:12:");
#undef BAD
  CHECK(v == NULL);
}

/* Quotes, backslashes and every control character come back as they went
 * in, in JSON lines and indented files alike; UTF-8 passes unescaped. */
static void test_strings(void) {
  char all[64];
  int k = 0;
  all[k++] = '"', all[k++] = '\\', all[k++] = '/';
  for (int c = 1; c < 0x20; c++) all[k++] = (char)c;
  all[k++] = 0x7f;
  all[k] = '\0';
  const char *text[] = {"a \"b\"\\\n", all, "\xc3\xa9 \xf0\x9f\x98\x80", ""};
  for (int i = 0; i < 4; i++)
    for (int f = 0; f < 2; f++) {
      json_t *v = NULL;
      CHECK_OK(rd_json_pack(&v, "a test value", "{s:s}", "k", text[i]));
      char *s = dump(v, f ? JSON_INDENT(2) : JSON_COMPACT);
      /* JSON lines stay one line: the only newline is the last byte. */
      CHECK(s && (f || strchr(s, '\n') == s + strlen(s) - 1));
      json_t *back = NULL;
      CHECK_OK(rd_json_parse(s, strlen(s), "t.json", 1, &back));
      CHECK_MSG(strcmp(json_string_value(json_object_get(back, "k")), text[i]) == 0, "string %d, flags %d", i, f);
      json_decref(back);
      free(s);
      json_decref(v);
    }
  json_t *v = NULL;
  CHECK_OK(rd_json_pack(&v, "a test value", "s", "a \"b\"\\\n\t\x01 \xc3\xa9"));
  char *s = dump(v, JSON_COMPACT);
  CHECK_MSG(strcmp(s, "\"a \\\"b\\\"\\\\\\n\\t\\u0001 \xc3\xa9\"\n") == 0, "got %s", s);
  free(s);
  json_decref(v);
  /* A string that is not UTF-8 cannot be written. */
  v = NULL;
  CHECK_ERR(rd_json_pack(&v, "results.json", "{s:s}", "model", "a\xff"),
            "cannot make the JSON of results.json: Invalid UTF-8");
  CHECK(v == NULL);
}

/* Keys keep the order they were added in; a key is added once. */
static void test_build(void) {
  json_t *o = NULL, *a = NULL;
  CHECK_OK(rd_json_pack(&o, "a line", "{s:I, s:s}", "step", (json_int_t)123456789012ll, "stage", "base"));
  CHECK_OK(rd_json_pack(&a, "a line", "[]"));
  CHECK_OK(rd_json_add(a, NULL, "a line", "i", 1));
  CHECK_OK(rd_json_add(a, NULL, "a line", "s?", NULL));
  CHECK_OK(rd_json_add(o, "z", "a line", "b", 1));
  CHECK_OK(rd_json_add(o, "a", "a line", "o", a));
  CHECK_OK(rd_json_add(o, "m", "a line", "{s:n}", "x"));
  CHECK_ERR(rd_json_add(o, "z", "a line", "i", 2), "JSON of a line: key \"z\" added twice");
  CHECK_ERR(rd_json_add(o, NULL, "a line", "i", 2), "an element added to a non-array");
  CHECK_ERR(rd_json_add(o, "f", "a line", "f", NAN), "Invalid floating point value");
  char *s = dump(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  CHECK_MSG(strcmp(s, "{\"step\":123456789012,\"stage\":\"base\",\"z\":true,\"a\":[1,null],\"m\":{\"x\":null}}\n") == 0,
            "got %s", s);
  free(s);
  s = dump(o, JSON_PRESERVE_ORDER);
  CHECK_MSG(strcmp(s, "{\"step\": 123456789012, \"stage\": \"base\", \"z\": true, \"a\": [1, null], "
                     "\"m\": {\"x\": null}}\n") == 0,
            "got %s", s);
  free(s);
  json_decref(o);
}

/* Numbers: %.9g for metrics, and the printf rounding of results.json's
 * %.6f / %.3f / %.3g read back the same from a dump at 15 digits. */
static void test_numbers(void) {
  json_t *o = NULL;
  CHECK_OK(rd_json_pack(&o, "a line", "{s:f, s:f, s:f, s:f, s:f}", "a", 2.3125, "b", 3e-4, "c", 1.0, "d", 1e-5, "e",
                        0.1f));
  char *s = dump(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
  /* jansson adds ".0" to an integral number and drops the exponent's "+"
   * and leading zeros; the values are those of "%.9g". */
  CHECK_MSG(strcmp(s, "{\"a\":2.3125,\"b\":0.0003,\"c\":1.0,\"d\":1e-5,\"e\":0.100000001}\n") == 0, "got %s", s);
  free(s);
  json_decref(o);
  const double x[] = {0.123456789, 1.0 / 3, 2.0 / 3, 9.9999996, 1234.56789, -0.0000004, 0.5, 7.25e-7, 1e30};
  for (int i = 0; i < 9; i++) {
    json_t *a = NULL;
    CHECK_OK(rd_json_pack(&a, "a row", "[ooo]", rd_json_fixed(x[i], 6), rd_json_fixed(x[i], 3), rd_json_sig(x[i], 3)));
    char *t = dump(a, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_t *back = NULL;
    CHECK_OK(rd_json_parse(t, strlen(t), "t.json", 1, &back));
    char f6[400], f3[400], g3[64];
    snprintf(f6, sizeof f6, "%.6f", x[i]);
    snprintf(f3, sizeof f3, "%.3f", x[i]);
    snprintf(g3, sizeof g3, "%.3g", x[i]);
    CHECK_MSG(json_real_value(json_array_get(back, 0)) == strtod(f6, NULL) &&
                  json_real_value(json_array_get(back, 1)) == strtod(f3, NULL) &&
                  json_real_value(json_array_get(back, 2)) == strtod(g3, NULL),
              "%.17g: wrote %s for %s %s %s", x[i], t, f6, f3, g3);
    json_decref(back);
    free(t);
    json_decref(a);
  }
  json_t *a = NULL;
  CHECK_OK(rd_json_pack(&a, "a row", "[oooo]", rd_json_fixed(0.123456789, 6), rd_json_fixed(NAN, 6),
                        rd_json_sig(INFINITY, 3), rd_json_sig(1e30, 3)));
  s = dump(a, JSON_COMPACT | JSON_REAL_PRECISION(15));
  CHECK_MSG(strcmp(s, "[0.123457,null,null,1e30]\n") == 0, "got %s", s);
  free(s);
  json_decref(a);
}

static void test_write(void) {
  const char *base = getenv("TMPDIR");
  char dir[256], path[RD_PATH_MAX];
  snprintf(dir, sizeof dir, "%s/rd_json_XXXXXX", base && base[0] ? base : "/tmp");
  if (!mkdtemp(dir)) {
    CHECK(0);
    return;
  }
  CHECK_OK(rd_fs_join(path, sizeof path, dir, "r.json"));
  json_t *o = NULL;
  CHECK_OK(rd_json_pack(&o, path, "{s:i, s:[ii]}", "round", 1, "x", 2, 3));
  CHECK_OK(rd_json_write_atomic(path, o, JSON_INDENT(2) | JSON_PRESERVE_ORDER));
  json_decref(o);
  char *s = NULL;
  CHECK_OK(rd_fs_read_all(path, &s, NULL));
  CHECK_MSG(s && strcmp(s, "{\n  \"round\": 1,\n  \"x\": [\n    2,\n    3\n  ]\n}\n") == 0, "got %s", s);
  free(s);
  CHECK(unlink(path) == 0 && rmdir(dir) == 0);
}

RD_TEST_MAIN("json", RD_CASE(test_values), RD_CASE(test_errors), RD_CASE(test_strings), RD_CASE(test_build),
             RD_CASE(test_numbers), RD_CASE(test_write))
