/* fsio: the one way charnn commits a file and the one check every reader of a
 * sized input makes.
 *
 *   char tmp[4096];
 *   fsio_tmp_path(tmp, sizeof tmp, "run/model.h5");   // "run/model.h5.tmp.<pid>"
 *   ... write tmp completely ...
 *   fsio_commit(tmp, "run/model.h5", 1);              // fsync, rename, fsync the directory
 *
 *   fsio_check_regular("corpus.h5", &size);           // before opening any input by name
 *
 * A commit moves a complete temporary file over its target in one rename(),
 * so a reader sees the old file or the new one, never a mix, and a crash at
 * any moment leaves at most a "<target>.tmp.<pid>" behind (rundir removes
 * those once their writer is gone). Every function returns 0, or -1 with one
 * line recorded by cn_err naming the path and the reason.
 */
#ifndef CHARNN_FSIO_H
#define CHARNN_FSIO_H

#include <stddef.h>
#include <stdint.h>

/* The marker between a target's name and the writer's pid in a temporary. */
#define FSIO_TMP_TAG ".tmp."

/* "<path>.tmp.<pid>": in the target's directory, so the rename is atomic, and
 * named by the writer's pid, so two writers never share a temporary. */
int fsio_tmp_path(char *out, size_t n, const char *path);

/* Move the complete file `tmp` over `path`: fsync tmp first when sync_tmp
 * (pass 0 when the caller has already synced it), rename, fsync the
 * directory. On a failure before the rename, tmp is removed and path is
 * untouched. */
int fsio_commit(const char *tmp, const char *path, int sync_tmp);

/* Write buf (n bytes) to path atomically: temporary, write, fsync, commit. */
int fsio_write_atomic(const char *path, const void *buf, size_t n);

/* write(2) all n bytes, retrying on EINTR and short writes; -1 with errno set. */
int fsio_write_all(int fd, const void *buf, size_t n);

/* Refuse anything but an existing regular file (symbolic links followed):
 * "'X' is a FIFO, not a regular file", "... a directory ...", "... a
 * character device ...", "... a block device ...", "... a socket ...", or
 * "cannot open 'X': <errno>". Never opens path, so a FIFO cannot block.
 * *size (may be NULL) receives the file's size. */
int fsio_check_regular(const char *path, uint64_t *size);

/* 1 if a and b name the same existing file (device and inode), else 0. */
int fsio_same_file(const char *a, const char *b);

/* The directory part of path ("." when there is none, "/" for the root). */
void fsio_path_dir(char *out, size_t n, const char *path);
/* The last component of path. */
const char *fsio_path_base(const char *path);

#endif
