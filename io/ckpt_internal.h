/* What the files of the checkpoint module share; io/ckpt.h is the interface
 * for everyone else.
 *
 *   io/ckpt.c          ranks agreeing, tensor descriptors, slabs in HDF5, names
 *   io/ckpt_write.c    the write plan, writing a file, rd_ckpt_save
 *   io/ckpt_dir.c      the folder of checkpoints: listing, LATEST, pruning
 *   io/ckpt_read.c     reading a file, rd_ckpt_load, rd_ckpt_load_latest
 *   io/ckpt_inspect.c  rd_ckpt_peek, rd_ckpt_list
 *
 * rd_ckpt_ names the public interface, ck_ and CK_ what the module keeps to
 * itself. Functions called inside RD_H5 keep their names: the message of a
 * failure names the function ("ck_select failed: ..."). */
#ifndef RD_IO_CKPT_INTERNAL_H
#define RD_IO_CKPT_INTERNAL_H

#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>

#include "io/ckpt.h"
#include "io/core/err.h"

/* Returns RD_EMPI with MPI's message from the calling function. MPI's default
 * handler aborts on failure; the check still reports the place when a caller
 * installs MPI_ERRORS_RETURN. */
#define CK_MPI(call)                                                           \
  do {                                                                         \
    int ck_mpi_s_ = (call);                                                    \
    if (ck_mpi_s_ != MPI_SUCCESS) {                                            \
      char ck_mpi_m_[MPI_MAX_ERROR_STRING];                                    \
      int ck_mpi_l_ = 0;                                                       \
      MPI_Error_string(ck_mpi_s_, ck_mpi_m_, &ck_mpi_l_);                      \
      return rd_err_at(RD_EMPI, __FILE__, __LINE__, "MPI: %s", ck_mpi_m_);    \
    }                                                                          \
  } while (0)

/* The link-info type of H5Literate's callback was renamed in 1.12. */
#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t ck_linfo;
#else
typedef H5L_info_t ck_linfo;
#endif

/* Tensor names are shorter than this (checked by ck_check_tensors), so
 * buffers of "/group/name" paths can have a fixed size. */
#define CK_NAME_MAX 128
/* File names longer than this in a checkpoint folder are not checkpoints. */
#define CK_FILE_MAX 64

/* Our errors are reported through io/core/err.h; HDF5's own printing is off
 * between ck_quiet_on and ck_quiet_off, which restores what was there. */
typedef struct {
  H5E_auto2_t fn;
  void *data;
} ck_quiet;
void ck_quiet_on(ck_quiet *q);
void ck_quiet_off(ck_quiet *q);

/* The communicator of a collective call, with this rank's place in it. */
typedef struct {
  MPI_Comm comm;
  int rank, size;
} ck_comm;

/* Before MPI_Init (a serial tool loading a checkpoint) MPI_COMM_SELF means
 * this process alone; any other comm is then an error. */
int ck_comm_init(ck_comm *c, MPI_Comm comm);

/* Makes a status common to all ranks: the lowest failing rank's code and
 * message become everyone's. Collective. */
int ck_agree(const ck_comm *c, int s);

/* Checks the caller's descriptors: names, shapes, split axes and slabs, and
 * that a tensor's data (when need_param) and both or neither moments are
 * given. RD_EINVAL naming the tensor. */
int ck_check_tensors(const rd_ckpt_tensor *t, int n, int need_param);

/* RD_EINVAL unless all ranks list the same tensors (names, shapes, split
 * axes, moments). Collective. */
int ck_same_list(const ck_comm *c, const rd_ckpt_tensor *t, int n);

/* A file access list: MPI-IO over c's comm when it has more than one rank.
 * Negative on failure, with HDF5's error stack set. */
hid_t ck_fapl(const ck_comm *c);

/* Selects this rank's slab of x in fspace (or nothing when !active or the
 * slab is empty) and returns the matching memory space: the slab is
 * contiguous row-major in memory. Negative on failure. */
hid_t ck_select(hid_t fspace, const rd_ckpt_tensor *x, int active);

/* One checkpoint file of a folder. Plain bytes: rank 0 broadcasts a list. */
typedef struct {
  int64_t step;
  char name[CK_FILE_MAX];
} ck_entry;

/* The checkpoints in dir, newest first, in *out (free it); a missing folder
 * has none. */
int ck_scan(const char *dir, ck_entry **out, int *n);

/* After the save of `step`: deletes all but the `keep` newest checkpoints at
 * or below it (keep <= 0 keeps all) and temporaries of interrupted saves. */
void ck_prune(const char *dir, int64_t step, int keep);

/* The files a load tries, in order, in *out (free it): the checkpoints up to
 * the one LATEST names, newest first. Returns the count, 0 when the folder
 * holds no checkpoint, or an error. Serial: rank 0 decides for all. */
int ck_candidates(const char *dir, ck_entry **out);

/* Opens path read-only for c's ranks; RD_EIO naming the file when it is
 * missing or not HDF5. Collective. */
int ck_open(const ck_comm *c, const char *path, hid_t *f);

/* The meta of an open checkpoint; the file must be complete and of a schema
 * this build reads. meta->config_yaml is malloc'd on success. */
int ck_read_meta(hid_t f, const char *path, rd_ckpt_meta *m);

#endif
