/* rundir: the run lock, latest, keep-last, find-resumable and stale
 * temporaries. See rundir.h. */
#include "charnn/rundir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "charnn/ckpt.h"
#include "charnn/common.h"
#include "charnn/dist.h"
#include "charnn/fsio.h"

/* ---- the directory and its lock -------------------------------------- */

int rundir_create(const char *dir)
{
    struct stat sb;
    char path[4096];
    if (stat(dir, &sb) == 0)
        return S_ISDIR(sb.st_mode) ? 0 : cn_err("--out '%s' exists and is not a directory", dir);
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return cn_err("--out '%s': path too long", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return cn_err("cannot create --out directory '%s': %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return cn_err("cannot create --out directory '%s': %s", dir, strerror(errno));
    return 0;
}

/* "pid P on host H" from the lock file, or "" when it names nobody yet. */
static void lock_holder(int fd, char *out, size_t n)
{
    char buf[320];
    out[0] = '\0';
    /* the holder writes its name right after taking the lock: give it a moment */
    for (int tries = 0; tries < 20; tries++) {
        ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
        if (got > 0) {
            buf[got] = '\0';
            long pid = 0;
            char host[256] = "";
            if (sscanf(buf, "%ld %255s", &pid, host) == 2 && pid > 0) {
                snprintf(out, n, "pid %ld on host %s", pid, host);
                return;
            }
        }
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
}

int rundir_lock_acquire(const char *dir, rundir_lock *lock)
{
    char *path = lock->path, holder[320], me[320], host[256];
    struct stat sb;
    lock->fd = -1;
    lock->created_dir = stat(dir, &sb) != 0;
    if (rundir_create(dir) != 0)
        return -1;
    if (snprintf(path, sizeof lock->path, "%s/%s", dir, RUNDIR_LOCK_NAME) >=
        (int)sizeof lock->path)
        return cn_err("--out '%s': path too long", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return cn_err("cannot create the run lock '%s': %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            lock_holder(fd, holder, sizeof holder);
            close(fd);
            if (holder[0])
                return cn_err("run directory '%s' is in use by another charnn run (%s)", dir,
                              holder);
            return cn_err("run directory '%s' is in use by another charnn run", dir);
        }
        close(fd);
        if (e == ENOLCK || e == EOPNOTSUPP || e == ENOSYS) {
            fprintf(stderr, "charnn: warning: cannot lock '%s' (%s): another run on the same "
                            "--out would not be detected\n", path, strerror(e));
            return 0;
        }
        return cn_err("cannot lock '%s': %s", path, strerror(e));
    }
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    int len = snprintf(me, sizeof me, "%ld %s\n", (long)getpid(), host);
    /* the name is only for messages: a failure to write it does not stop the run */
    if (ftruncate(fd, 0) != 0 || pwrite(fd, me, (size_t)len, 0) != len)
        fprintf(stderr, "charnn: warning: cannot write '%s': %s\n", path, strerror(errno));
    lock->fd = fd;
    return 0;
}

int rundir_lock_run(const char *dir, rundir_lock *lock)
{
    lock->fd = -1;
    lock->created_dir = 0;
    int failed = dist_rank() == 0 && rundir_lock_acquire(dir, lock) != 0;
    if (dist_allreduce_sum_int(failed) != 0) {
        if (!failed)
            cn_err("rank 0 could not lock run directory '%s'", dir);
        return -1;
    }
    return 0;
}

void rundir_lock_release(rundir_lock *lock)
{
    if (lock->fd < 0)
        return;
    flock(lock->fd, LOCK_UN);
    close(lock->fd);
    lock->fd = -1;
}

void rundir_lock_abandon(rundir_lock *lock)
{
    if (lock->fd < 0)
        return;
    if (lock->created_dir) {
        /* still holding the lock, so no other run can be using the directory */
        char dir[4096];
        fsio_path_dir(dir, sizeof dir, lock->path);
        unlink(lock->path);
        rmdir(dir);
    }
    rundir_lock_release(lock);
}

/* ---- checkpoints ------------------------------------------------------ */

void rundir_step_path(char *out, size_t n, const char *dir, int64_t step)
{
    snprintf(out, n, "%s/ckpt-%08lld.h5", dir, (long long)step);
}

int rundir_update_latest(const char *dir, const char *ckpt_path)
{
    char path[4096], line[1024];
    snprintf(path, sizeof path, "%s/latest", dir);
    int len = snprintf(line, sizeof line, "%s\n", fsio_path_base(ckpt_path));
    if (len < 0 || (size_t)len >= sizeof line)
        return cn_err("cannot write '%s': checkpoint name too long", path);
    return fsio_write_atomic(path, line, (size_t)len);
}

/* The step of a file named ckpt-<digits>.h5, or -1. */
static int64_t ckpt_name_step(const char *name)
{
    const char *p = name + 5;
    int64_t step = 0;
    if (strncmp(name, "ckpt-", 5) != 0 || *p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (step > (INT64_MAX - 9) / 10)
            return -1;
        step = step * 10 + (*p - '0');
    }
    return strcmp(p, ".h5") == 0 ? step : -1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Steps of every ckpt-*.h5 in dir, ascending. *steps is NULL when there are none. */
static int list_steps(const char *dir, int64_t **steps, size_t *n)
{
    size_t cap = 0;
    *steps = NULL;
    *n = 0;
    DIR *dp = opendir(dir);
    if (!dp)
        return cn_err("cannot open '%s': %s", dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        int64_t step = ckpt_name_step(de->d_name);
        if (step < 0)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            *steps = cn_xrealloc(*steps, cap * sizeof **steps);
        }
        (*steps)[(*n)++] = step;
    }
    closedir(dp);
    if (*n > 1)
        qsort(*steps, *n, sizeof **steps, cmp_i64);
    return 0;
}

int rundir_prune(const char *dir, int keep_last)
{
    int64_t *steps;
    size_t n;
    int rc = 0;
    if (keep_last <= 0)
        return 0;
    if (list_steps(dir, &steps, &n) < 0)
        return -1;
    for (size_t i = 0; i + (size_t)keep_last < n; i++) {
        char path[4096];
        rundir_step_path(path, sizeof path, dir, steps[i]);
        if (unlink(path) < 0 && errno != ENOENT)
            rc = cn_err("cannot remove '%s': %s", path, strerror(errno));
    }
    free(steps);
    return rc;
}

/* 1 and the step if path verifies; 0 (with a warning on stderr) if not. */
static int try_candidate(const char *path, int64_t *step)
{
    if (access(path, F_OK) != 0)
        return 0;
    if (ckpt_verify(path, step) == 0)
        return 1;
    /* The message usually starts "'<path>' is damaged: "; keep only the reason. */
    const char *msg = cn_errmsg();
    size_t plen = strlen(path);
    if (msg[0] == '\'' && strncmp(msg + 1, path, plen) == 0 && msg[1 + plen] == '\'') {
        const char *rest = msg + 2 + plen;
        if (strncmp(rest, " is damaged: ", 13) == 0)
            msg = rest + 13;
        else if (strncmp(rest, ": ", 2) == 0)
            msg = rest + 2;
        else if (rest[0] == ' ')
            msg = rest + 1;
    }
    fprintf(stderr, "charnn: warning: skipping damaged checkpoint '%s': %s\n", path, msg);
    return 0;
}

/* The file name written in dir/latest, or "" when there is none usable. */
static void read_latest(const char *dir, char *name, size_t n)
{
    char path[4096];
    name[0] = 0;
    snprintf(path, sizeof path, "%s/latest", dir);
    if (fsio_check_regular(path, NULL) != 0)
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (!fgets(name, (int)n, f))
        name[0] = 0;
    fclose(f);
    name[strcspn(name, "\r\n")] = 0;
    /* Only a plain file name in dir is accepted. */
    if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        name[0] = 0;
}

int rundir_find_resumable(const char *dir, char *out, size_t n)
{
    char latest[256], path[4096], latest_path[4096] = "", best_path[4096] = "";
    int64_t *steps = NULL, step = 0, best_step = -1;
    size_t n_steps = 0;
    struct stat sb;
    out[0] = 0;
    if (stat(dir, &sb) < 0 && errno == ENOENT)
        return 0;
    if (list_steps(dir, &steps, &n_steps) < 0)
        return -1;
    /* Every candidate that verifies competes on its step, so a damaged or
     * missing newest file falls back to the newest good one, whichever it is. */
    read_latest(dir, latest, sizeof latest);
    if (latest[0]) {
        snprintf(latest_path, sizeof latest_path, "%s/%s", dir, latest);
        if (access(latest_path, F_OK) != 0)
            fprintf(stderr, "charnn: warning: '%s/latest' names '%s', which does not exist\n",
                    dir, latest);
        else if (try_candidate(latest_path, &step)) {
            best_step = step;
            snprintf(best_path, sizeof best_path, "%s", latest_path);
        }
    }
    for (size_t i = n_steps; i-- > 0;) {
        rundir_step_path(path, sizeof path, dir, steps[i]);
        if (strcmp(path, latest_path) != 0 && steps[i] > best_step &&
            try_candidate(path, &step) && step > best_step) {
            best_step = step;
            snprintf(best_path, sizeof best_path, "%s", path);
        }
    }
    snprintf(path, sizeof path, "%s/model.h5", dir);
    if (strcmp(path, latest_path) != 0 && try_candidate(path, &step) && step > best_step) {
        best_step = step;
        snprintf(best_path, sizeof best_path, "%s", path);
    }
    free(steps);
    if (best_step < 0)
        return 0;
    if (strlen(best_path) >= n)
        return cn_err("checkpoint path '%s' is too long", best_path);
    snprintf(out, n, "%s", best_path);
    return 0;
}

/* The writer's pid of a temporary "<name>.tmp.<pid>", or -1. */
static long tmp_writer(const char *name)
{
    const char *tag = NULL;
    /* the last tag: a target's own name may hold one */
    for (const char *p = strstr(name, FSIO_TMP_TAG); p; p = strstr(p + 1, FSIO_TMP_TAG))
        tag = p;
    if (!tag || tag == name)
        return -1;
    const char *digits = tag + strlen(FSIO_TMP_TAG);
    if (*digits < '0' || *digits > '9')
        return -1;
    char *end;
    errno = 0;
    long pid = strtol(digits, &end, 10);
    return *end == '\0' && errno == 0 && pid > 0 ? pid : -1;
}

int rundir_remove_stale_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        long pid = tmp_writer(e->d_name);
        if (pid < 0 || pid > INT_MAX)
            continue;
        /* a writer that is gone (killed mid-write) left it behind */
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0)
            fprintf(stderr, "charnn: removed '%s', left by an interrupted write\n", path);
    }
    closedir(d);
    return 0;
}
