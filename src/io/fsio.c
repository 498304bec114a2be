/* fsio: atomic commit and the regular-file check. See fsio.h. */
#include "charnn/fsio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "charnn/common.h"

int fsio_tmp_path(char *out, size_t n, const char *path)
{
    int len = snprintf(out, n, "%s" FSIO_TMP_TAG "%ld", path, (long)getpid());
    if (len < 0 || (size_t)len >= n)
        return cn_err("cannot write '%s': path too long", path);
    return 0;
}

void fsio_path_dir(char *out, size_t n, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, n, ".");
    else if (slash == path)
        snprintf(out, n, "/");
    else
        snprintf(out, n, "%.*s", (int)(slash - path), path);
}

const char *fsio_path_base(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int fsync_path(const char *p, int directory)
{
    int fd = open(p, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    /* Some file systems cannot sync a directory; the rename is as durable as they allow. */
    if (rc < 0 && directory && (errno == EINVAL || errno == ENOTSUP))
        rc = 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int fsio_commit(const char *tmp, const char *path, int sync_tmp)
{
    char dir[4096];
    if (sync_tmp && fsync_path(tmp, 0) < 0) {
        int e = errno;
        unlink(tmp);
        return cn_err("cannot write '%s': %s", path, strerror(e));
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return cn_err("cannot write '%s': %s", path, strerror(e));
    }
    fsio_path_dir(dir, sizeof dir, path);
    if (fsync_path(dir, 1) < 0)
        return cn_err("cannot sync directory '%s' after writing '%s': %s", dir, path,
                      strerror(errno));
    return 0;
}

int fsio_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int fsio_write_atomic(const char *path, const void *buf, size_t n)
{
    char tmp[4096];
    if (fsio_tmp_path(tmp, sizeof tmp, path) < 0)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return cn_err("cannot write '%s': %s", path, strerror(errno));
    int rc = fsio_write_all(fd, buf, n) == 0 && fsync(fd) == 0 ? 0 : -1;
    int e = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc < 0) {
        unlink(tmp);
        return cn_err("cannot write '%s': %s", path, strerror(e));
    }
    return fsio_commit(tmp, path, 0);
}

static const char *file_kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a file";
}

int fsio_check_regular(const char *path, uint64_t *size)
{
    struct stat sb;
    if (stat(path, &sb) < 0)
        return cn_err("cannot open '%s': %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return cn_err("'%s' is %s, not a regular file", path, file_kind(sb.st_mode));
    if (size)
        *size = (uint64_t)sb.st_size;
    return 0;
}

int fsio_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}
