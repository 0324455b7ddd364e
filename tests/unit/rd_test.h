/* A minimal test harness: CHECK macros count failures and print the place;
 * RD_TEST_MAIN runs the listed functions and prints "N passed, N failed". */
#ifndef RD_TEST_H
#define RD_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"

static int rd_test_checks, rd_test_fails;

#define CHECK(cond)                                                            \
  do {                                                                         \
    rd_test_checks++;                                                          \
    if (!(cond)) {                                                             \
      rd_test_fails++;                                                         \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

#define CHECK_MSG(cond, ...)                                                   \
  do {                                                                         \
    rd_test_checks++;                                                          \
    if (!(cond)) {                                                             \
      rd_test_fails++;                                                         \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
    }                                                                          \
  } while (0)

/* A call that must succeed; on failure prints the error facility's message. */
#define CHECK_OK(expr)                                                         \
  do {                                                                         \
    rd_test_checks++;                                                          \
    int rd_test_s_ = (expr);                                                   \
    if (rd_test_s_ != 0) {                                                     \
      rd_test_fails++;                                                         \
      fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__,       \
              #expr, rd_test_s_, rd_err_msg());                                \
    }                                                                          \
  } while (0)

/* A call that must fail with a message containing substr. */
#define CHECK_ERR(expr, substr)                                                \
  do {                                                                         \
    rd_test_checks++;                                                          \
    rd_err_clear();                                                            \
    int rd_test_s_ = (expr);                                                   \
    if (rd_test_s_ >= 0 || !strstr(rd_err_msg(), (substr))) {                  \
      rd_test_fails++;                                                         \
      fprintf(stderr, "%s:%d: %s: want an error with \"%s\", got %d: %s\n",   \
              __FILE__, __LINE__, #expr, (substr), rd_test_s_, rd_err_msg());  \
    }                                                                          \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                  \
  do {                                                                         \
    rd_test_checks++;                                                          \
    double rd_a_ = (double)(a), rd_b_ = (double)(b);                           \
    if (!(fabs(rd_a_ - rd_b_) <= (tol))) {                                     \
      rd_test_fails++;                                                         \
      fprintf(stderr, "%s:%d: %s = %.9g, %s = %.9g, differ by more than %g\n", \
              __FILE__, __LINE__, #a, rd_a_, #b, rd_b_, (double)(tol));        \
    }                                                                          \
  } while (0)

typedef struct {
  const char *name;
  void (*fn)(void);
} rd_test_case;

static inline int rd_test_run(const char *suite, const rd_test_case *cases, int n) {
  int failed_cases = 0;
  for (int i = 0; i < n; i++) {
    int before = rd_test_fails;
    cases[i].fn();
    int bad = rd_test_fails != before;
    failed_cases += bad;
    printf("%s %s.%s\n", bad ? "FAIL" : "ok  ", suite, cases[i].name);
  }
  printf("%s: %d checks, %d failed\n", suite, rd_test_checks, rd_test_fails);
  printf("%d passed, %d failed\n", n - failed_cases, failed_cases);
  return failed_cases ? 1 : 0;
}

#define RD_TEST_MAIN(suite, ...)                                               \
  int main(void) {                                                             \
    static const rd_test_case cases_[] = {__VA_ARGS__};                        \
    return rd_test_run(suite, cases_, (int)(sizeof cases_ / sizeof cases_[0])); \
  }
#define RD_CASE(fn) {#fn, fn}

/* Where the source tree is (set by ctest), for configs/ and tests/reference/. */
static inline const char *rd_test_srcdir(void) {
  const char *s = getenv("RD_SOURCE_DIR");
  return s ? s : ".";
}

#endif
