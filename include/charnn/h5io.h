/* h5io: the checked HDF5 helpers every charnn file format uses (checkpoints,
 * prepared corpora, traces, analysis, examples).
 *
 *   hid_t f = h5io_file_open("corpus.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
 *   if (f < 0) return -1;                               // message recorded
 *   if (h5io_dataset_read("corpus.h5", f, "/vocab", H5T_NATIVE_UINT32, H5T_INTEGER,
 *                         1, dims, buf) < 0) ...       // "'corpus.h5' is damaged: checksum
 *                                                       //  mismatch in /vocab"
 *
 * Rules every function here keeps, so that the formats above need not:
 *  - HDF5 never prints its own error stack: the first h5io call turns the
 *    library's automatic printing off for good, and every failure becomes one
 *    cn_err line naming the file and the object, in charnn's words (a checksum
 *    mismatch, a truncated file, the OS's reason for a failed write), never
 *    HDF5's internal messages.
 *  - Ids start at H5I_INVALID_HID, every call is checked < 0 and each function
 *    closes what it opened at one label.
 *  - Every dataset written is chunked and carries the fletcher32 filter, so a
 *    flipped bit fails the read instead of loading garbage.
 *  - Paths of objects are absolute ("/model/decoder.weight"); `path` is the
 *    file's name, only for messages.
 * Functions returning int give 0 (or 1/0 where they say so), or -1 with the
 * message recorded; those returning hid_t give H5I_INVALID_HID on failure.
 */
#ifndef CHARNN_H5IO_H
#define CHARNN_H5IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* The most dimensions a dataset read or written through h5io has. */
#define H5IO_MAX_RANK 4
/* Chunks of a fixed-size dataset hold it whole up to this many elements;
 * larger ones are split along axis 0, far below HDF5's 4 GiB chunk limit. */
#define H5IO_CHUNK_ELEMS ((hsize_t)1 << 20)

/* Turn off HDF5's automatic error printing (idempotent; every h5io entry
 * point calls it, callers that use the library directly may too). */
void h5io_silence(void);

/* ---- files ----------------------------------------------------------- */

/* 1 if path is a regular file that starts with the HDF5 signature (at 0 or
 * after a user block of 512, 1024, ... bytes), else 0. Never blocks. */
int h5io_is_hdf5(const char *path);
/* 1 if path is a regular file that begins with "\x89HDF" or is h5io_is_hdf5:
 * an HDF5 file, damaged or not, which must never be read as anything else. */
int h5io_starts_like_hdf5(const char *path);

/* Open an existing file. Refuses non-regular files (fsio_check_regular) and
 * empty ones ("'X' is damaged: the file is empty"), files without the HDF5
 * signature ("'X' is not an HDF5 file"), and damaged ones ("'X' is damaged:
 * the file is truncated", "... checksum mismatch in the file's metadata",
 * "... its HDF5 signature is broken").
 * fapl may be H5P_DEFAULT; one-shot readers pass one with H5F_CLOSE_STRONG so
 * that a read failing halfway leaves nothing open (a file stays open with one
 * close degree only: every opener of the same file must use the same). */
hid_t h5io_file_open(const char *path, unsigned flags, hid_t fapl);
/* Create (truncate) path. A file that cannot be made at all gets errno's
 * words ("cannot create 'X': Permission denied"). */
hid_t h5io_file_create(const char *path, hid_t fapl);
/* Close fid; a failure is reported as a failed write of path. */
int h5io_file_close(const char *path, hid_t fid);

/* ---- errors ---------------------------------------------------------- */

/* For a failed read of `what` (an object path): "'P' is damaged: checksum
 * mismatch in WHAT", "'P' is damaged: the file is truncated" or "'P' is
 * damaged: cannot read WHAT". Must run right after the failed call. */
int h5io_read_fail(const char *path, const char *what);
/* For a failed write: "cannot write 'P': WHAT failed[: <OS reason>]". */
int h5io_write_fail(const char *path, const char *what);

/* ---- objects --------------------------------------------------------- */

/* 1 if the object `name` exists (every group on the way checked), 0 if not. */
int h5io_exists(const char *path, hid_t loc, const char *name);
/* Create group `name`. */
int h5io_group_create(const char *path, hid_t loc, const char *name);

/* ---- attributes ------------------------------------------------------ */

/* Scalar attributes of loc, replaced if they exist. Strings are UTF-8,
 * variable length (what h5py reads back as str) or fixed length. */
int h5io_attr_write_i64(const char *path, hid_t loc, const char *name, int64_t v);
int h5io_attr_write_u64(const char *path, hid_t loc, const char *name, uint64_t v);
int h5io_attr_write_f64(const char *path, hid_t loc, const char *name, double v);
int h5io_attr_write_str(const char *path, hid_t loc, const char *name, const char *s);
int h5io_attr_write_fixed_str(const char *path, hid_t loc, const char *name, const char *s);

/* Scalar numeric attribute `name` of loc (obj names loc in messages, "" for
 * the root group) as mem_type; want_int refuses floating-point values.
 * 1 read, 0 absent, -1 error. */
int h5io_attr_read_num(const char *path, hid_t loc, const char *obj, const char *name,
                       hid_t mem_type, int want_int, void *out);
/* String attribute (variable or fixed length) into buf (n bytes; longer is
 * an error). 1 read, 0 absent, -1 error. */
int h5io_attr_read_str(const char *path, hid_t loc, const char *obj, const char *name,
                       char *buf, size_t n);

/* ---- datasets -------------------------------------------------------- */

enum {
    H5IO_GROWABLE = 1u << 0, /* axis 0 starts at dims[0] and grows without limit */
    H5IO_COMPRESS = 1u << 1, /* shuffle + deflate before the checksum */
    H5IO_NO_FILL = 1u << 2,  /* never write fill values (every element is written later) */
};

/* Create dataset `name` (intermediate groups too) of `rank` dims, chunked as
 * `chunk` (NULL: whole up to H5IO_CHUNK_ELEMS, split along axis 0), with
 * fletcher32 and the H5IO_* flags. */
hid_t h5io_dataset_create(const char *path, hid_t loc, const char *name, hid_t file_type,
                          int rank, const hsize_t *dims, const hsize_t *chunk, unsigned flags);
/* Create `name` with dims and write all of data (mem_type). A dataset with no
 * elements is left contiguous and unwritten: there is nothing to checksum. */
int h5io_dataset_write(const char *path, hid_t loc, const char *name, hid_t file_type,
                       hid_t mem_type, int rank, const hsize_t *dims, const void *data);
/* A 1-d dataset of n fixed-length UTF-8 strings (NULL-terminated, as long as
 * the longest), checksummed like every other dataset. */
int h5io_dataset_write_strings(const char *path, hid_t loc, const char *name,
                               const char *const *s, size_t n);
/* Write buf into the box [start, start + count) of an open dataset. mem is
 * the source's dataspace with its selection made, or H5I_INVALID_HID for a
 * contiguous buffer of `count`. A count with a zero selects nothing, in the
 * file and in memory, so a rank with nothing to write still joins a
 * collective write (dxpl). */
int h5io_dataset_write_box(const char *path, const char *name, hid_t dset, hid_t mem_type,
                           int rank, const hsize_t *start, const hsize_t *count, hid_t mem,
                           hid_t dxpl, const void *buf);
/* Set the length of axis 0 of a growable dataset (grow or shrink). */
int h5io_dataset_set_rows(const char *path, const char *name, hid_t dset, hsize_t rows);
/* Append n values to a growable 1-d dataset at `at`. */
int h5io_dataset_append_1d(const char *path, const char *name, hid_t dset, hid_t mem_type,
                           hsize_t at, hsize_t n, const void *buf);

/* Open dataset `name` (dapl may be H5P_DEFAULT) and check its rank and the
 * dims in want (-1: any); the dims found go to dims_out (may be NULL).
 * Absent: "'P' is damaged: missing NAME". */
hid_t h5io_dataset_open(const char *path, hid_t loc, const char *name, hid_t dapl, int rank,
                        const int64_t *want, int64_t *dims_out);
/* Shape of dataset `name`: rank (1..H5IO_MAX_RANK) and dims. */
int h5io_dataset_shape(const char *path, hid_t loc, const char *name, int *rank, hsize_t *dims);
/* Read all of dataset `name` into buf after checking that its type is of
 * class `cls` and its shape is exactly dims. */
int h5io_dataset_read(const char *path, hid_t loc, const char *name, hid_t mem_type,
                      H5T_class_t cls, int rank, const hsize_t *dims, void *buf);
/* Read the box [start, start + count) of an open dataset into a contiguous
 * buf (dxpl may be H5P_DEFAULT). */
int h5io_dataset_read_box(const char *path, const char *name, hid_t dset, hid_t mem_type,
                          int rank, const hsize_t *start, const hsize_t *count, hid_t dxpl,
                          void *buf);
/* A 1-d dataset of strings (fixed or variable length), each into a malloc'd
 * string: *out (n entries, free each and the array with h5io_strings_free). */
int h5io_dataset_read_strings(const char *path, hid_t loc, const char *name, char ***out,
                              size_t *n);
void h5io_strings_free(char **s, size_t n);

#endif
