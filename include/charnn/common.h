/* common: the three tiers of failure, checked allocation, and small utilities.
 *
 *  1. Bugs: CHARNN_ASSERT(cond) stays on in release builds, prints file:line
 *     and aborts.
 *  2. Resources: cn_xmalloc/cn_xcalloc never return NULL; running out of memory
 *     ends the process with one line saying how much was asked for and exit
 *     status 1 (the commands check their plan first: memplan.h).
 *  3. Bad input: library functions return int (0 ok, -1 error) after recording
 *     one lowercase line with cn_err("cannot open '%s': %s", ...). The CLI prints
 *     it with the program name and exits non-zero; nothing crashes.
 */
#ifndef CHARNN_COMMON_H
#define CHARNN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define CHARNN_ASSERT(cond)                                                   \
    do {                                                                      \
        if (!(cond))                                                          \
            cn_assert_fail(#cond, __FILE__, __LINE__);                        \
    } while (0)

#if defined(__GNUC__)
#define CN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define CN_NORETURN __attribute__((noreturn))
#else
#define CN_PRINTF(a, b)
#define CN_NORETURN
#endif

CN_NORETURN void cn_assert_fail(const char *expr, const char *file, int line);

void *cn_xmalloc(size_t n);
void *cn_xcalloc(size_t count, size_t size);
void *cn_xrealloc(void *p, size_t n);
/* n bytes aligned to `align` (a power of two, a multiple of sizeof(void *)),
 * for free(); rounds n up to a multiple of align. */
void *cn_xaligned_alloc(size_t align, size_t n);
char *cn_xstrdup(const char *s);

/* Record the current error message (per thread) and return -1. */
int cn_err(const char *fmt, ...) CN_PRINTF(1, 2);
/* The last recorded message, or "" if none. */
const char *cn_errmsg(void);
/* Prefix the recorded message with "<context>: " and return -1. */
int cn_err_context(const char *fmt, ...) CN_PRINTF(1, 2);

/* Write s as a JSON string literal (quoted, escaped) to f (a FILE *). */
void cn_json_string(void *f, const char *s);

/* Wall-clock seconds from a monotonic clock. */
double cn_now(void);

/* Counter-based random numbers: the same (key, counter) always gives the same
 * value on any thread, so dropout masks and data order do not depend on the
 * number of threads. */
uint64_t cn_hash64(uint64_t key, uint64_t counter);
/* A 64-bit hash of n bytes (FNV-1a over 8-byte words, then mixed). */
uint64_t cn_hash_bytes(const void *data, size_t n);
/* Uniform float in [0, 1) from cn_hash64. */
float cn_hash_uniform(uint64_t key, uint64_t counter);

/* A small sequential generator (xoshiro256**) whose state is four words that a
 * checkpoint can save and restore. */
typedef struct {
    uint64_t s[4];
} cn_rng;

void cn_rng_seed(cn_rng *r, uint64_t seed);
uint64_t cn_rng_next(cn_rng *r);
/* Uniform double in [0, 1). */
double cn_rng_uniform(cn_rng *r);

#endif
