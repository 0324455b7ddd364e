/* Files that appear only complete: every output of rediff is written under a
 * temporary name beside its final path, flushed to disk, then renamed, so a
 * crash or a kill leaves either the old file or the new one, never half of
 * one. */
#ifndef RD_IO_CORE_FS_H
#define RD_IO_CORE_FS_H

#include <stddef.h>
#include <stdio.h>

#define RD_PATH_MAX 4096

/* Creates dir and its parents (mode 0755); an existing dir is fine. */
int rd_fs_mkdirs(const char *dir);
/* Creates the parent folder of path. */
int rd_fs_mkparent(const char *path);
int rd_fs_exists(const char *path);
int rd_fs_isdir(const char *path);
/* The temporary name used for path: "<dir>/.<name>.tmp.<pid>". */
int rd_fs_tmpname(const char *path, char *tmp, size_t n);
/* fsync()s tmp, renames it to path and fsync()s the folder. */
int rd_fs_commit(const char *tmp, const char *path);
/* Removes a temporary file left by a failed write; ignores a missing file. */
void rd_fs_discard(const char *tmp);
/* Writes n bytes atomically (temporary name, fsync, rename). */
int rd_fs_write_atomic(const char *path, const void *data, size_t n);
/* Reads a whole regular file of at most max bytes into a NUL-terminated
 * malloc'd buffer (*n: its length, n may be NULL). A FIFO, device or
 * folder is refused without blocking on it (RD_EINVAL), as is a file
 * longer than max; the message names the file. */
int rd_fs_read_max(const char *path, size_t max, char **data, size_t *n);
/* RD_OK when path can be stat()ed; else missing_code with "no such file"
 * when it does not exist, or RD_EIO with the system's reason ("Too many
 * levels of symbolic links", "Permission denied"). The caller adds the path. */
int rd_fs_require(const char *path, int missing_code);
/* rd_fs_read_max with a limit of 1 GiB. */
int rd_fs_read_all(const char *path, char **data, size_t *n);
/* The last `lines` lines of the text file path (trailing newlines and
 * spaces left out) as a malloc'd string in *tail: for the end of a log in
 * a message. *tail is NULL (and RD_OK) when the file is missing or holds
 * only white space; an unreadable file is its read error. */
int rd_fs_tail(const char *path, int lines, char **tail);
/* Removes a folder and everything in it (no error when it is absent). */
int rd_fs_rmtree(const char *path);
/* Replaces the folder dst by src in one rename where possible: an existing
 * dst is first renamed aside and removed after src is in place. */
int rd_fs_replace_dir(const char *src, const char *dst);
/* Joins a and b with one '/'; errors when the result does not fit. */
int rd_fs_join(char *out, size_t n, const char *a, const char *b);

#endif
