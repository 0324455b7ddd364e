/* io/json: the reader the command expert's protocol rests on. */
#include "io/json.h"
#include "rd_test.h"

static rd_json *parse(const char *s) {
  rd_json *v = NULL;
  int rc = rd_json_parse(s, strlen(s), &v);
  if (rc != RD_OK) fprintf(stderr, "parse %s: %s\n", s, rd_err_msg());
  return v;
}

static void test_values(void) {
  rd_json *v = parse(" {\"id\": 17, \"right\": true, \"edits\": [{\"org\": \"a b\", \"target\": \"c\"}, {}], "
                     "\"x\": null, \"f\": false, \"n\": -1.5e2, \"e\": []} ");
  CHECK(v && v->type == RD_JSON_OBJECT);
  CHECK(rd_json_get(v, "id")->type == RD_JSON_NUMBER && rd_json_get(v, "id")->num == 17);
  CHECK(rd_json_get(v, "right")->type == RD_JSON_TRUE);
  CHECK(rd_json_get(v, "x")->type == RD_JSON_NULL && rd_json_get(v, "f")->type == RD_JSON_FALSE);
  CHECK(rd_json_get(v, "n")->num == -150.0);
  const rd_json *e = rd_json_get(v, "edits");
  CHECK(e->type == RD_JSON_ARRAY && e->child && e->child->next && !e->child->next->next);
  CHECK(strcmp(rd_json_get(e->child, "org")->str, "a b") == 0);
  CHECK(rd_json_get(v, "e")->child == NULL && rd_json_get(v, "missing") == NULL);
  rd_json_free(v);
  /* Every escape, surrogate pairs to UTF-8. */
  v = parse("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9 \\ud83d\\ude00\"");
  CHECK(v && v->type == RD_JSON_STRING);
  CHECK(v && strcmp(v->str, "q\" b\\ s/ \b\f\n\r\t \xc3\xa9 \xf0\x9f\x98\x80") == 0);
  rd_json_free(v);
  v = parse("[0, 1.25, -0.5e-1, \"\"]");
  CHECK(v && v->child->num == 0 && v->child->next->num == 1.25 && v->child->next->next->num == -0.05);
  rd_json_free(v);
}

static void test_errors(void) {
  rd_json *v;
#define BAD(text, msg) CHECK_ERR(rd_json_parse(text, strlen(text), &v), msg)
  BAD("{\"a\": 1", "expected ',' or '}' at byte 7");
  BAD("{\"a\" 1}", "expected ':'");
  BAD("[1 2]", "expected ',' or ']'");
  BAD("\"abc", "unterminated string");
  BAD("\"a\\x\"", "unknown escape");
  BAD("\"\\u12G4\"", "bad hex digit");
  BAD("\"\\ud800x\"", "high surrogate");
  BAD("01", "text after the value");
  BAD("-", "bad number");
  BAD("1.", "bad fraction");
  BAD("tru", "unexpected character");
  BAD("{\"a\": 1} x", "text after the value at byte 9");
  BAD("", "unexpected end");
  BAD("\"a\nb\"", "control character");
  char deep[200];
  memset(deep, '[', 100);
  deep[100] = '\0';
  BAD(deep, "nesting deeper than 64");
#undef BAD
  CHECK(v == NULL);
}

static void test_quote(void) {
  char out[64];
  size_t n = 0;
  CHECK_OK(rd_json_quote("a \"b\"\\\n", out, sizeof out, &n));
  CHECK(strcmp(out, "\"a \\\"b\\\"\\\\\\u000a\"") == 0 && n == strlen(out));
  rd_json *v = NULL;
  CHECK_OK(rd_json_parse(out, n, &v));
  CHECK(v && strcmp(v->str, "a \"b\"\\\n") == 0);
  rd_json_free(v);
  n = 0;
  CHECK_ERR(rd_json_quote("0123456789", out, 8, &n), "does not fit");
}

RD_TEST_MAIN("json", RD_CASE(test_values), RD_CASE(test_errors), RD_CASE(test_quote))
