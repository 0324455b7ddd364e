/* The folder of checkpoints: the step-*.h5 files it holds, which of them
 * LATEST lets a load try, and pruning after a save. */
#include "io/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/ckpt_internal.h"
#include "io/core/err.h"
#include "io/core/fs.h"

/* "step-<8+ digits>.h5" -> step; anything else (temporaries) -> -1. */
static int64_t ck_parse_name(const char *s) {
  if (strncmp(s, "step-", 5) != 0) return -1;
  const char *p = s + 5;
  int64_t step = 0;
  int digits = 0;
  for (; *p >= '0' && *p <= '9' && digits < 18; p++, digits++) step = step * 10 + (*p - '0');
  if (digits < 8 || strcmp(p, ".h5") != 0) return -1;
  return step;
}

static int ck_cmp_desc(const void *a, const void *b) {
  const ck_entry *x = a, *y = b;
  return x->step < y->step ? 1 : x->step > y->step ? -1 : 0;
}

int ck_scan(const char *dir, ck_entry **out, int *n) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT) return RD_OK;
    return rd_err(RD_EIO, "cannot list %s: %s", dir, strerror(errno));
  }
  int cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    int64_t step = ck_parse_name(e->d_name);
    if (step < 0 || strlen(e->d_name) >= CK_FILE_MAX) continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 16;
      ck_entry *nb = realloc(*out, (size_t)cap * sizeof **out);
      if (!nb) {
        closedir(d);
        free(*out);
        *out = NULL;
        return rd_err(RD_ENOMEM, "out of memory listing %s", dir);
      }
      *out = nb;
    }
    (*out)[*n].step = step;
    memcpy((*out)[*n].name, e->d_name, strlen(e->d_name) + 1); /* < CK_FILE_MAX, checked above */
    (*n)++;
  }
  closedir(d);
  if (*n) qsort(*out, (size_t)*n, sizeof **out, ck_cmp_desc);
  return RD_OK;
}

/* Keeps the `keep` newest checkpoints at or below `step`; newer ones (left
 * by a run that went further before being resumed from an older file) are
 * not ours to judge and stay. Temporaries of interrupted saves go. Failing
 * to delete is a warning: the new checkpoint is safe either way. */
void ck_prune(const char *dir, int64_t step, int keep) {
  ck_entry *e;
  int n, kept = 0;
  if (keep > 0 && ck_scan(dir, &e, &n) == RD_OK) {
    for (int i = 0; i < n; i++) {
      if (e[i].step > step) continue;
      if (kept++ < keep || e[i].step == step) continue;
      char p[RD_PATH_MAX];
      if (rd_fs_join(p, sizeof p, dir, e[i].name) == RD_OK && unlink(p) != 0)
        fprintf(stderr, "rediff: warning: cannot delete old checkpoint %s: %s\n", p, strerror(errno));
    }
    free(e);
  }
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (strncmp(de->d_name, ".step-", 6) != 0 || !strstr(de->d_name, ".h5.tmp.")) continue;
    char p[RD_PATH_MAX];
    if (rd_fs_join(p, sizeof p, dir, de->d_name) == RD_OK) unlink(p);
  }
  if (d) closedir(d);
}

int ck_candidates(const char *dir, ck_entry **out) {
  ck_entry *e;
  int n;
  *out = NULL;
  RD_TRY(ck_scan(dir, &e, &n));
  char lp[RD_PATH_MAX], *text = NULL;
  int64_t latest = -1;
  RD_TRY(rd_fs_join(lp, sizeof lp, dir, "LATEST"));
  if (rd_fs_exists(lp)) {
    if (rd_fs_read_all(lp, &text, NULL) == RD_OK) {
      text[strcspn(text, " \t\r\n")] = '\0';
      latest = ck_parse_name(text);
    }
    if (latest < 0)
      fprintf(stderr, "rediff: warning: %s does not name a checkpoint (\"%.64s\"); trying the newest file\n",
              lp, text ? text : "");
    free(text);
  }
  if (latest >= 0) {
    /* LATEST is the commit point: a newer file is from a save that never
     * reached it. */
    int k = 0, found = 0;
    for (int i = 0; i < n; i++) {
      if (e[i].step > latest) {
        fprintf(stderr, "rediff: warning: ignoring %s/%s, newer than LATEST (%s/step-%08" PRId64 ".h5)\n",
                dir, e[i].name, dir, latest);
        continue;
      }
      found |= e[i].step == latest;
      e[k++] = e[i];
    }
    if (!found)
      fprintf(stderr, "rediff: warning: LATEST in %s names step-%08" PRId64 ".h5, which does not exist\n",
              dir, latest);
    if (k == 0) {
      free(e);
      return rd_err(RD_EIO, "no usable checkpoint in %s: LATEST names step-%08" PRId64 ".h5, which does not exist",
                    dir, latest);
    }
    n = k;
  }
  *out = e;
  return n;
}
