/* h5compat: the HDF5 1.10 file-image workaround. See h5compat.h for why and
 * when it can be deleted. */
#include "charnn/h5compat.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/h5io.h"

/* The core driver's memory goes through these callbacks, so that on close
 * the finished image is handed to us instead of being freed: no second copy
 * (H5Fget_file_image would copy it, doubling the write's memory). */
typedef struct {
    void *image; /* the core driver's buffer, once the file is closed */
} image_capture;

static void *image_cb_malloc(size_t size, H5FD_file_image_op_t op, void *udata)
{
    (void)op, (void)udata;
    return malloc(size);
}

static void *image_cb_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op,
                             void *udata)
{
    (void)op, (void)udata;
    return memcpy(dest, src, size);
}

static void *image_cb_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata)
{
    (void)op, (void)udata;
    return realloc(ptr, size);
}

static herr_t image_cb_free(void *ptr, H5FD_file_image_op_t op, void *udata)
{
    image_capture *cap = udata;
    if (op == H5FD_FILE_IMAGE_OP_FILE_CLOSE && cap && !cap->image)
        cap->image = ptr;
    else
        free(ptr);
    return 0;
}

/* the property list copies udata by reference: one capture per build */
static void *image_cb_udata_copy(void *udata)
{
    return udata;
}

static herr_t image_cb_udata_free(void *udata)
{
    (void)udata;
    return 0;
}

static const uint8_t hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

#define LOOKUP3_ROT(x, k) (((x) << (k)) ^ ((x) >> (32 - (k))))

/* Bob Jenkins' lookup3 hashlittle (initval 0), read byte by byte: the
 * checksum HDF5 puts on its metadata. */
static uint32_t lookup3(const uint8_t *k, size_t length)
{
    uint32_t a, b, c;
    a = b = c = 0xdeadbeefu + (uint32_t)length;
    while (length > 12) {
        a += k[0] | (uint32_t)k[1] << 8 | (uint32_t)k[2] << 16 | (uint32_t)k[3] << 24;
        b += k[4] | (uint32_t)k[5] << 8 | (uint32_t)k[6] << 16 | (uint32_t)k[7] << 24;
        c += k[8] | (uint32_t)k[9] << 8 | (uint32_t)k[10] << 16 | (uint32_t)k[11] << 24;
        a -= c, a ^= LOOKUP3_ROT(c, 4), c += b;
        b -= a, b ^= LOOKUP3_ROT(a, 6), a += c;
        c -= b, c ^= LOOKUP3_ROT(b, 8), b += a;
        a -= c, a ^= LOOKUP3_ROT(c, 16), c += b;
        b -= a, b ^= LOOKUP3_ROT(a, 19), a += c;
        c -= b, c ^= LOOKUP3_ROT(b, 4), b += a;
        length -= 12;
        k += 12;
    }
    if (length == 0)
        return c;
    uint32_t w[3] = {0, 0, 0};
    for (size_t i = 0; i < length; i++)
        w[i / 4] |= (uint32_t)k[i] << (8 * (i % 4));
    a += w[0];
    b += w[1];
    c += w[2];
    c ^= b, c -= LOOKUP3_ROT(b, 14);
    a ^= c, a -= LOOKUP3_ROT(c, 11);
    b ^= a, b -= LOOKUP3_ROT(a, 25);
    c ^= b, c -= LOOKUP3_ROT(b, 16);
    a ^= c, a -= LOOKUP3_ROT(c, 4);
    b ^= a, b -= LOOKUP3_ROT(a, 14);
    c ^= b, c -= LOOKUP3_ROT(b, 24);
    return c;
}

/* H5Fget_file_image clears the "open for writing" flags in the image's
 * superblock but, before HDF5 2.0 (HDFGroup/hdf5#1915), leaves the checksum
 * of the old flags, so the image would not open. Recompute it (a no-op where
 * HDF5 has the fix). Superblock versions 2 and 3 are: signature (8), version,
 * size of offsets, size of lengths, flags, four addresses, checksum (4). */
static void image_fix_superblock(uint8_t *img, size_t n)
{
    if (n < 12 || memcmp(img, hdf5_signature, 8) != 0 || img[8] < 2)
        return;
    size_t len = 12 + 4 * (size_t)img[9];
    if (len + 4 > n)
        return;
    uint32_t c = lookup3(img, len);
    for (int i = 0; i < 4; i++)
        img[len + (size_t)i] = (uint8_t)(c >> (8 * i));
}

int h5compat_build_image(const char *path, const char *name, h5compat_build_fn build, void *ctx,
                         size_t increment, void **image, size_t *size)
{
    hid_t fapl = H5I_INVALID_HID, fid = H5I_INVALID_HID;
    int rc = -1;
    image_capture cap = {NULL};
    H5FD_file_image_callbacks_t cb = {image_cb_malloc, image_cb_memcpy,     image_cb_realloc,
                                      image_cb_free,   image_cb_udata_copy, image_cb_udata_free,
                                      &cap};
    ssize_t len = -1;
    *image = NULL;
    *size = 0;
    h5io_silence();
    if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 || H5Pset_fapl_core(fapl, increment, 0) < 0 ||
        H5Pset_file_image_callbacks(fapl, &cb) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) < 0 ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_SEMI) < 0) {
        h5io_write_fail(path, "setting up file access");
        goto error;
    }
    /* `name` only identifies the file inside HDF5; nothing is created under it. */
    if ((fid = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0) {
        h5io_write_fail(path, "creating the file");
        goto error;
    }
    if (build(fid, ctx) < 0)
        goto error;
    if (H5Fflush(fid, H5F_SCOPE_GLOBAL) < 0) {
        h5io_write_fail(path, "flushing the file");
        goto error;
    }
    /* the file's length (its end of allocation); the buffer is rounded up to
     * the increment */
    if ((len = H5Fget_file_image(fid, NULL, 0)) <= 0) {
        h5io_write_fail(path, "sizing the file image");
        goto error;
    }
    /* closing writes the final superblock into the buffer and hands it over */
    herr_t closed = H5Fclose(fid);
    fid = H5I_INVALID_HID;
    if (closed < 0 || !cap.image) {
        h5io_write_fail(path, "closing the file image");
        goto error;
    }
    image_fix_superblock(cap.image, (size_t)len);
    *image = cap.image;
    *size = (size_t)len;
    cap.image = NULL;
    rc = 0;
error:
    H5Fclose(fid);
    H5Pclose(fapl);
    free(cap.image); /* a failed build's buffer */
    return rc;
}
