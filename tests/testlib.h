/* testlib: the shared CUnit runner and helpers for charnn's tests.
 *
 * Each tests/test_*.c registers its suites and ends main() with
 * `return testlib_run(argc, argv);`, which runs everything and returns the
 * number of failures (CU_basic_run_tests alone returns success even when an
 * assertion fails). */
#ifndef CHARNN_TESTLIB_H
#define CHARNN_TESTLIB_H

#include <CUnit/Basic.h>
#include <hdf5.h>
#include <stddef.h>

/* Start CUnit and add a suite; aborts on registry failure. */
CU_pSuite testlib_suite(const char *name);
/* Add a test to a suite; aborts on failure. */
void testlib_add(CU_pSuite s, const char *name, void (*fn)(void));
/* Run all registered tests verbosely; returns failures (0 = pass). */
int testlib_run(int argc, char **argv);

/* testlib_run for MPI programs: rank 0 prints the summary, the others run
 * silently; the failure count is summed over ranks so every rank exits alike. */
int testlib_run_mpi(void);

/* Largest |a[i]-b[i]| / max(1, |b[i]|) over n elements. */
double testlib_max_rel_diff(const float *a, const float *b, size_t n);
/* Fill with uniform values in [-scale, scale] from a seeded generator. */
void testlib_fill_uniform(float *x, size_t n, float scale, unsigned long long seed);
/* Write text to a fresh file under the test's working directory; returns the path
 * (static storage, overwritten by the next call). */
const char *testlib_write_file(const char *name, const void *data, size_t len);
/* Create (and empty) a scratch directory named `name`; returns its path. */
const char *testlib_scratch_dir(const char *name);
/* Run a shell command, return its exit status (or -1). */
int testlib_system(const char *fmt, ...);
/* Dataset `name` of `path` read as native type `type`, malloc'd; its rank into
 * *rank and its dimensions into dims. NULL if absent or unreadable. */
void *testlib_read_dset(const char *path, const char *name, hid_t type, int *rank,
                        hsize_t *dims);

/* UNDER_ASAN: 1 in a sanitizer build. AddressSanitizer's shadow memory and
 * quarantine of freed blocks grow the resident set with the work done, so
 * memory bounds are not checked there. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#endif
