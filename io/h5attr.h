/* Scalar attributes of an HDF5 object, as every rediff file writes them:
 * integers little-endian, strings fixed-length and NUL-terminated (h5py
 * reads them as bytes, h5dump prints them as text). Readers accept what
 * h5py writes too (variable-length strings, any integer width). Errors name
 * the attribute; callers add the file. Used by shards and drafts files;
 * checkpoints keep their own, which name the group path as well. */
#ifndef RD_IO_H5ATTR_H
#define RD_IO_H5ATTR_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

int rd_h5_attr_write_i32(hid_t obj, const char *name, int32_t v);
int rd_h5_attr_write_i64(hid_t obj, const char *name, int64_t v);
int rd_h5_attr_write_str(hid_t obj, const char *name, const char *s);
/* "attribute NAME is missing" / "is not one integer" / "is not one string". */
int rd_h5_attr_read_i64(hid_t obj, const char *name, int64_t *v);
/* Truncates to n - 1 bytes. A control character (below 0x20, or 0x7f) in
 * the value is an error naming the attribute and byte. */
int rd_h5_attr_read_str(hid_t obj, const char *name, char *out, size_t n);

#endif
