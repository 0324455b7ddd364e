/* What the files of the shard module share; io/shard.h is the interface for
 * everyone else.
 *
 *   io/shard.c        the datasets of the schema, described once; batches
 *   io/shard_write.c  rd_shard_writer
 *   io/shard_read.c   opening, checking and reading one shard
 *   io/shardset.c     the shards of one split, read by global index */
#ifndef RD_IO_SHARD_INTERNAL_H
#define RD_IO_SHARD_INTERNAL_H

#include <hdf5.h>
#include <stddef.h>

#include "io/shard.h"

/* The datasets of a shard, in the order of rd_shard_ds_name. */
enum {
  RD_DS_IMAGES,
  RD_DS_FEATURES,
  RD_DS_CAPTIONS,
  RD_DS_CAPLEN,
  RD_DS_HALLUC,
  RD_DS_SPAN,
  RD_DS_SCENES,
  RD_DS_SID,
  RD_DS_N
};

/* "/images", "/features", ...: the path of each dataset in the file. */
extern const char *const rd_shard_ds_name[RD_DS_N];

/* One row (every dimension after N) of a dataset. */
typedef struct {
  int present;
  int rank;             /* of the row */
  hsize_t dims[3];      /* [rank] */
  const char *what[3];  /* the attribute each dim must match, for messages */
  size_t elem;          /* bytes per element */
  int is_float;
} rd_shard_row;

/* The row of dataset k in a shard of shape in (present = 0 when it has none). */
rd_shard_row rd_shard_row_of(const rd_shard_info *in, int k);
/* Elements in one row. */
size_t rd_shard_row_elems(const rd_shard_row *r);
/* The type dataset k has in the file: fixed little-endian, whatever the
 * machine. */
hid_t rd_shard_file_type(int k);
/* The array of b that holds dataset k. */
void *rd_shard_batch_col(const rd_shard_batch *b, int k);
/* Checks the shape fields of in; messages start with where. */
int rd_shard_check_shape(const rd_shard_info *in, const char *where);
/* Same arrays and row shapes (n_samples, hash and names may differ). */
int rd_shard_same_shape(const rd_shard_info *a, const rd_shard_info *b);
/* Reads or writes rows [begin, begin+count) of dataset k from/to mem. */
int rd_shard_rows_io(hid_t ds, int k, const rd_shard_row *r, hsize_t begin, hsize_t count, void *mem,
                     int write);
/* A split name: short, [a-z0-9_]. */
int rd_shard_valid_split(const char *s);

#endif
