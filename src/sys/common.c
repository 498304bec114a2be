#include "charnn/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Thread_local char cn_errbuf[1024];

void cn_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "charnn: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
    fflush(stderr);
    abort();
}

/* Out of memory is the machine's limit, not a bug: one line and exit status 1
 * (the README's "error"), never abort's SIGABRT and core dump. */
CN_NORETURN static void cn_oom(size_t n)
{
    fprintf(stderr, "charnn: out of memory: cannot allocate %.1f MiB (%zu bytes)\n",
            (double)n / (1024.0 * 1024.0), n);
    fflush(stderr);
    exit(1);
}

void *cn_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        cn_oom(n);
    return p;
}

void *cn_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        cn_oom(count * size);
    return p;
}

void *cn_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        cn_oom(n);
    return q;
}

void *cn_xaligned_alloc(size_t align, size_t n)
{
    size_t bytes = n / align * align < n ? (n / align + 1) * align : n;
    void *p = aligned_alloc(align, bytes ? bytes : align);
    if (!p)
        cn_oom(bytes);
    return p;
}

char *cn_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = cn_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

int cn_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cn_errbuf, sizeof cn_errbuf, fmt, ap);
    va_end(ap);
    return -1;
}

int cn_err_context(const char *fmt, ...)
{
    char old[sizeof cn_errbuf];
    memcpy(old, cn_errbuf, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cn_errbuf, sizeof cn_errbuf, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof cn_errbuf)
        snprintf(cn_errbuf + n, sizeof cn_errbuf - (size_t)n, ": %.*s",
                 (int)(sizeof cn_errbuf - (size_t)n), old);
    return -1;
}

const char *cn_errmsg(void)
{
    return cn_errbuf;
}

void cn_json_string(void *fp, const char *s)
{
    FILE *f = fp;
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

double cn_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t cn_splitmix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t cn_hash64(uint64_t key, uint64_t counter)
{
    return cn_splitmix(cn_splitmix(key) ^ counter);
}

uint64_t cn_hash_bytes(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return cn_splitmix(h ^ n);
}

float cn_hash_uniform(uint64_t key, uint64_t counter)
{
    return (float)(cn_hash64(key, counter) >> 40) * (1.0f / 16777216.0f);
}

void cn_rng_seed(cn_rng *r, uint64_t seed)
{
    uint64_t z = seed;
    for (int i = 0; i < 4; i++) {
        z = cn_splitmix(z);
        r->s[i] = z;
    }
}

static inline uint64_t cn_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t cn_rng_next(cn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = cn_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = cn_rotl(s[3], 45);
    return result;
}

double cn_rng_uniform(cn_rng *r)
{
    return (double)(cn_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}
