#include "stages/run/rundir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/core/err.h"
#include "io/core/fs.h"

int rd_run_path(char *out, size_t n, const char *run_dir, const char *rel) {
  return rd_fs_join(out, n, run_dir, rel);
}

int rd_done_path(char *out, size_t n, const char *run_dir, const char *stage, int round) {
  char rel[256];
  if (round > 0) snprintf(rel, sizeof rel, "done/%s.r%d", stage, round);
  else snprintf(rel, sizeof rel, "done/%s", stage);
  return rd_fs_join(out, n, run_dir, rel);
}

int rd_ckpt_dir_path(char *out, size_t n, const char *run_dir, const char *stage, int round) {
  char rel[256];
  if (round > 0) snprintf(rel, sizeof rel, "ckpt/%s_r%d", stage, round);
  else snprintf(rel, sizeof rel, "ckpt/%s", stage);
  return rd_fs_join(out, n, run_dir, rel);
}

int rd_done_exists(const char *run_dir, const char *stage, int round) {
  char p[RD_PATH_MAX];
  if (rd_done_path(p, sizeof p, run_dir, stage, round) < 0) return 0;
  return rd_fs_exists(p);
}

int rd_done_write(const char *run_dir, const char *stage, int round, uint64_t config_hash) {
  char p[RD_PATH_MAX], text[256];
  RD_TRY(rd_done_path(p, sizeof p, run_dir, stage, round));
  RD_TRY(rd_fs_mkparent(p));
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  char when[64];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  int len = snprintf(text, sizeof text, "stage: %s\nround: %d\nfinished: %s\nconfig_hash: %016llx\n",
                     stage, round, when, (unsigned long long)config_hash);
  return rd_fs_write_atomic(p, text, (size_t)len);
}

int rd_log_error_line(const char *log, char *out, size_t n) {
  char *text;
  size_t len;
  if (!rd_fs_exists(log) || rd_fs_read_all(log, &text, &len) != RD_OK) {
    rd_err_clear();
    return 0;
  }
  const char *hit = NULL;
  for (const char *p = text; (p = strstr(p, "rediff: ")) != NULL; p++)
    if (p == text || p[-1] == '\n') hit = p;
  if (hit) snprintf(out, n, "%.*s", (int)strcspn(hit, "\n"), hit);
  free(text);
  return hit != NULL;
}
