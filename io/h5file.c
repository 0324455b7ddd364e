#include "io/h5file.h"

#include <stdio.h>

#include "io/core/err.h"
#include "io/h5check.h"

typedef struct {
  char what[768]; /* the first object that points outside, with why */
} walk;

static int dataset_outside(hid_t f, const char *name, walk *w) {
  hid_t o = H5Oopen(f, name, H5P_DEFAULT);
  if (o < 0) return -1;
  int out = 0;
  if (H5Iget_type(o) == H5I_DATASET) {
    hid_t dcpl = H5Dget_create_plist(o);
    if (dcpl < 0) {
      out = -1;
    } else {
      if (H5Pget_layout(dcpl) == H5D_VIRTUAL) {
        snprintf(w->what, sizeof w->what, "/%s is a virtual dataset (its data comes from other files)", name);
        out = 1;
      } else if (H5Pget_external_count(dcpl) > 0) {
        char ext[256] = "?";
        off_t offset;
        hsize_t size;
        H5Pget_external(dcpl, 0, sizeof ext, ext, &offset, &size);
        snprintf(w->what, sizeof w->what, "/%s is stored in an external file (%s)", name, ext);
        out = 1;
      }
      H5Pclose(dcpl);
    }
  }
  H5Oclose(o);
  return out;
}

static herr_t visit(hid_t f, const char *name, const H5L_info_t *info, void *data) {
  walk *w = data;
  if (info->type == H5L_TYPE_EXTERNAL) {
    snprintf(w->what, sizeof w->what, "/%s is an external link to another file", name);
    return 1;
  }
  if (info->type != H5L_TYPE_HARD) {
    snprintf(w->what, sizeof w->what, "/%s is a %s link", name, info->type == H5L_TYPE_SOFT ? "soft" : "user-defined");
    return 1;
  }
  return dataset_outside(f, name, w);
}

int rd_h5_check_contained(hid_t f, const char *path) {
  walk w = {{0}};
  herr_t r = H5Lvisit(f, H5_INDEX_NAME, H5_ITER_NATIVE, visit, &w);
  if (r < 0) {
    int st = RD_H5_FAILED("H5Lvisit");
    return path ? rd_err_wrap(st, "%s: walking the file's links", path) : st;
  }
  if (r > 0 && path) return rd_err(RD_EINVAL, "%s: %s; rediff reads only data inside the file", path, w.what);
  if (r > 0) return rd_err(RD_EINVAL, "%s; rediff reads only data inside the file", w.what);
  return RD_OK;
}
