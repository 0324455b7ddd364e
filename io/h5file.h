/* HDF5 files rediff did not write itself (shards, drafts, revisions,
 * checkpoints from elsewhere) could make it read other files: an external
 * link, a dataset in external storage or a virtual dataset points outside
 * the file, and rediff would train on (or render, and send to a command
 * expert) the bytes of whatever file it names. Every file rediff reads is
 * checked with rd_h5_check_contained right after it is opened. */
#ifndef RD_IO_H5FILE_H
#define RD_IO_H5FILE_H

#include <hdf5.h>

/* RD_OK when every link in the file f is a hard link (soft links are refused
 * too: no file of rediff's formats has one) and every dataset keeps its data
 * inside the file; else RD_EINVAL naming path and the object, e.g.
 * "data/train-00000.h5: /images is stored in an external file (pixels.raw);
 * rediff reads only data inside the file". Walks the file's links without
 * following any, so it opens nothing outside f. path NULL: the message
 * starts with the object (for callers that add the path themselves). */
int rd_h5_check_contained(hid_t f, const char *path);

#endif
