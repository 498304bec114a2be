/* rundir: the run directory's policy (`train --out DIR`): who may write it,
 * where checkpoints go, which one a resume takes and what is cleaned up.
 *
 *   rundir_lock lock;
 *   if (rundir_lock_run(dir, &lock) != 0) ...      // collective; rank 0 holds it
 *   rundir_find_resumable(dir, path, sizeof path); // the newest checkpoint that verifies
 *   rundir_remove_stale_tmp(dir);
 *   ... rundir_step_path, ckpt_write_atomic, rundir_update_latest, rundir_prune ...
 *   rundir_lock_release(&lock);
 *
 * Layout: DIR/ckpt-<step, 8 digits>.h5 are periodic checkpoints; DIR/latest is
 * a one-line text file naming the newest complete one (committed after the
 * checkpoint itself); DIR/best.h5 the best by validation loss; DIR/model.h5 the
 * final model; DIR/.charnn.lock the run lock.
 *
 * The lock is an exclusive flock(2) on DIR/.charnn.lock, taken by rank 0
 * before anything in DIR is read for a resume or written, and held until the
 * run ends. The file names the holder ("<pid> <host>") for the message a
 * second run gets. The kernel drops a flock when its process dies, however it
 * dies, so a run killed with SIGKILL never blocks the resume that follows; the
 * file itself stays. On a file system without flock support (ENOLCK,
 * EOPNOTSUPP) the run goes on unlocked after a warning.
 */
#ifndef CHARNN_RUNDIR_H
#define CHARNN_RUNDIR_H

#include <stddef.h>
#include <stdint.h>

#define RUNDIR_LOCK_NAME ".charnn.lock"

typedef struct {
    int fd;          /* the locked file, -1 when not held */
    int created_dir; /* this process made the directory (and so the lock file) */
    char path[4096]; /* the lock file */
} rundir_lock;

/* mkdir -p dir; an existing non-directory is an error. */
int rundir_create(const char *dir);

/* Create dir if needed and lock it for this process. Held by someone else:
 * "run directory 'DIR' is in use by another charnn run (pid 4242 on host
 * node7)". Nothing in dir but the lock file is touched. */
int rundir_lock_acquire(const char *dir, rundir_lock *lock);
/* Collective: rank 0 takes the lock, then every rank learns whether it got
 * it, so a refused run ends on all ranks at once (the others' message says
 * rank 0 was refused; rank 0 holds the real one). */
int rundir_lock_run(const char *dir, rundir_lock *lock);
/* Release (and close) the lock; a lock not held is ignored. */
void rundir_lock_release(rundir_lock *lock);
/* Release after a run that wrote nothing (its set-up failed): when this
 * process created the directory, the lock file and the directory go too, so a
 * mistyped flag leaves no empty run directory behind. */
void rundir_lock_abandon(rundir_lock *lock);

/* DIR/ckpt-<step>.h5 */
void rundir_step_path(char *out, size_t n, const char *dir, int64_t step);
/* Point DIR/latest at ckpt_path (its file name), atomically. */
int rundir_update_latest(const char *dir, const char *ckpt_path);
/* Delete the oldest ckpt-*.h5 beyond the newest keep_last (never best.h5/model.h5). */
int rundir_prune(const char *dir, int keep_last);
/* The checkpoint with the highest step in dir that reads and verifies (among
 * the one DIR/latest names, ckpt-*.h5 and model.h5), so a damaged newest file
 * falls back to an older one, saying so on stderr; out is "" when there is none. */
int rundir_find_resumable(const char *dir, char *out, size_t n);
/* Delete the temporaries "<name>.tmp.<pid>" (checkpoints, latest) in dir whose
 * writing process no longer exists on this host: a write killed halfway. */
int rundir_remove_stale_tmp(const char *dir);

#endif
