#include "io/h5attr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"
#include "io/h5check.h"

static int write_scalar(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v) {
  hid_t sp = -1, a = -1;
  int rc = RD_H5(sp = H5Screate(H5S_SCALAR));
  if (rc == RD_OK) rc = RD_H5(a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT));
  if (rc == RD_OK) rc = RD_H5(H5Awrite(a, mtype, v));
  if (a >= 0) H5Aclose(a);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

int rd_h5_attr_write_i32(hid_t obj, const char *name, int32_t v) {
  int rc = write_scalar(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, &v);
  return rc < 0 ? rd_err_wrap(rc, "attribute %s", name) : RD_OK;
}

int rd_h5_attr_write_i64(hid_t obj, const char *name, int64_t v) {
  int rc = write_scalar(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
  return rc < 0 ? rd_err_wrap(rc, "attribute %s", name) : RD_OK;
}

int rd_h5_attr_write_str(hid_t obj, const char *name, const char *s) {
  hid_t t = -1;
  int rc = RD_H5(t = H5Tcopy(H5T_C_S1));
  if (rc == RD_OK) rc = RD_H5(H5Tset_size(t, strlen(s) + 1));
  if (rc == RD_OK) rc = RD_H5(H5Tset_strpad(t, H5T_STR_NULLTERM));
  if (rc == RD_OK) rc = write_scalar(obj, name, t, t, s);
  if (t >= 0) H5Tclose(t);
  return rc < 0 ? rd_err_wrap(rc, "attribute %s", name) : RD_OK;
}

/* Opens attribute name of obj with its type; checks it holds one value of
 * class want. */
static int open_one(hid_t obj, const char *name, H5T_class_t want, const char *what, hid_t *a, hid_t *t) {
  htri_t has = H5Aexists(obj, name);
  RD_TRY(RD_H5(has));
  if (!has) return rd_err(RD_EINVAL, "attribute %s is missing", name);
  hid_t sp = -1;
  int rc = RD_H5(*a = H5Aopen(obj, name, H5P_DEFAULT));
  if (rc == RD_OK) rc = RD_H5(*t = H5Aget_type(*a));
  if (rc == RD_OK) rc = RD_H5(sp = H5Aget_space(*a));
  if (rc == RD_OK && (H5Tget_class(*t) != want || H5Sget_simple_extent_npoints(sp) != 1))
    rc = rd_err(RD_EINVAL, "attribute %s is not one %s", name, what);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

int rd_h5_attr_read_i64(hid_t obj, const char *name, int64_t *v) {
  hid_t a = -1, t = -1;
  int rc = open_one(obj, name, H5T_INTEGER, "integer", &a, &t);
  if (rc == RD_OK) rc = RD_H5(H5Aread(a, H5T_NATIVE_INT64, v));
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return rc;
}

int rd_h5_attr_read_str(hid_t obj, const char *name, char *out, size_t n) {
  hid_t a = -1, t = -1;
  int rc = open_one(obj, name, H5T_STRING, "string", &a, &t);
  if (rc == RD_OK && H5Tis_variable_str(t) > 0) {
    char *s = NULL;
    rc = RD_H5(H5Aread(a, t, &s));
    if (rc == RD_OK) snprintf(out, n, "%s", s ? s : "");
    if (s) H5free_memory(s);
  } else if (rc == RD_OK) {
    char *buf = rd_calloc(H5Tget_size(t) + 1, 1, "a string attribute");
    rc = buf ? RD_H5(H5Aread(a, t, buf)) : RD_ENOMEM;
    if (rc == RD_OK) snprintf(out, n, "%s", buf);
    free(buf);
  }
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  /* These attributes are one-line names and ids that rediff prints: a
   * control character (a terminal escape, a newline) has no business there
   * and could rewrite what a user's terminal shows. */
  for (size_t i = 0; rc == RD_OK && out[i]; i++)
    if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
      rc = rd_err(RD_EINVAL, "attribute %s holds the control character 0x%02x at byte %zu", name,
                  (unsigned)(unsigned char)out[i], i);
  return rc;
}
