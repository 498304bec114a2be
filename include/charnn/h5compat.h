/* h5compat: workarounds for the HDF5 releases charnn builds against (1.10.8
 * on Debian 12), kept apart so that they can be deleted in one piece.
 *
 *   void *img; size_t n;
 *   if (h5compat_build_image(path, tmp, write_contents, ctx, 1 << 20, &img, &n) == 0)
 *       ... write img[0..n) to a temporary, fsio_commit it, free(img) ...
 *
 * When it can go: once the oldest HDF5 charnn supports (a) closes a file
 * cleanly after a write failed inside the library (1.10 leaves it half
 * closed on a full disk and then crashes at exit, whichever driver writes)
 * and (b) writes a file image whose superblock checksum matches its flags
 * (HDFGroup/hdf5#1915, fixed in HDF5 2.0). Then ckpt.c can create its
 * temporary file with the default driver and close it, and this file goes.
 */
#ifndef CHARNN_H5COMPAT_H
#define CHARNN_H5COMPAT_H

#include <hdf5.h>
#include <stddef.h>

/* Fills the open, empty file fid; 0 or -1 with a message. */
typedef int (*h5compat_build_fn)(hid_t fid, void *ctx);

/* Build a whole HDF5 file in memory (the core driver, 1.10 object formats so
 * that all metadata carries checksums) by calling build(fid, ctx), and hand
 * back its bytes: *image (malloc'd, the caller frees) of *size bytes, ready to
 * be written to disk as they are. The memory grows in steps of `increment`.
 * path names the target in messages; name identifies the in-memory file
 * inside HDF5 and must be unique among open files (the temporary's name). */
int h5compat_build_image(const char *path, const char *name, h5compat_build_fn build, void *ctx,
                         size_t increment, void **image, size_t *size);

#endif
