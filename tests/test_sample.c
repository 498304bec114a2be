/* Sampling: temperature 0 is the argmax, top-k keeps only the k most likely,
 * temperature reshapes the distribution as p^(1/T), and draws follow it. */
#include <math.h>
#include <string.h>

#include "charnn/sample.h"
#include "testlib.h"

enum { V = 6 };
static const float probs[V] = {0.05f, 0.30f, 0.10f, 0.40f, 0.05f, 0.10f};

static void test_greedy_is_argmax(void)
{
    float sp[V];
    int32_t si[V];
    cn_rng r;
    cn_rng_seed(&r, 1);
    for (int i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(sample_pick(probs, V, 0.0, 0, &r, sp, si), 3);
    /* top-1 at any temperature is the argmax too */
    for (int i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(sample_pick(probs, V, 1.5, 1, &r, sp, si), 3);
    /* ties go to the lowest index */
    const float tie[4] = {0.1f, 0.4f, 0.4f, 0.1f};
    CU_ASSERT_EQUAL(sample_pick(tie, 4, 0.0, 0, &r, sp, si), 1);
}

/* Tiny temperatures are greedy: p^(1/T) at T = 1e-12 is far beyond float
 * range, and the draw must still be the argmax, never the first or last index */
static void test_tiny_temperature_is_greedy(void)
{
    float sp[V];
    int32_t si[V];
    cn_rng r;
    cn_rng_seed(&r, 2);
    const double temps[] = {1e-300, 1e-15, 1e-12, 1e-10, 1e-9, 1e-7, 1e-4};
    for (size_t k = 0; k < sizeof temps / sizeof *temps; k++)
        for (int i = 0; i < 100; i++) {
            CU_ASSERT_EQUAL(sample_pick(probs, V, temps[k], 0, &r, sp, si), 3);
            CU_ASSERT_EQUAL(sample_pick(probs, V, temps[k], 4, &r, sp, si), 3);
        }
}

/* Empirical frequencies over n draws against the expected distribution q:
 * every frequency within 5 standard errors. */
static void check_frequencies(double temperature, int top_k, const double *q)
{
    float sp[V];
    int32_t si[V];
    cn_rng r;
    cn_rng_seed(&r, 99);
    enum { N = 40000 };
    int count[V] = {0};
    for (int i = 0; i < N; i++)
        count[sample_pick(probs, V, temperature, top_k, &r, sp, si)]++;
    for (int v = 0; v < V; v++) {
        double f = (double)count[v] / N, se = sqrt(q[v] * (1.0 - q[v]) / N) + 1e-9;
        CU_ASSERT(fabs(f - q[v]) <= 5.0 * se);
        if (q[v] == 0.0)
            CU_ASSERT_EQUAL(count[v], 0);
    }
}

static void test_temperature_one(void)
{
    double q[V];
    for (int v = 0; v < V; v++)
        q[v] = probs[v];
    check_frequencies(1.0, 0, q);
}

static void test_temperature_half(void)
{
    double q[V], total = 0.0;
    for (int v = 0; v < V; v++)
        total += q[v] = (double)probs[v] * probs[v];
    for (int v = 0; v < V; v++)
        q[v] /= total;
    check_frequencies(0.5, 0, q);
}

static void test_top_k(void)
{
    /* top-2 keeps ids 3 (0.4) and 1 (0.3) */
    double q[V] = {0};
    q[3] = 0.4 / 0.7;
    q[1] = 0.3 / 0.7;
    check_frequencies(1.0, 2, q);
}

static void test_seed_repeats(void)
{
    float sp[V];
    int32_t si[V];
    cn_rng a, b, c;
    cn_rng_seed(&a, 5);
    cn_rng_seed(&b, 5);
    cn_rng_seed(&c, 6);
    int same = 1, differs = 0;
    for (int i = 0; i < 200; i++) {
        int x = sample_pick(probs, V, 1.0, 0, &a, sp, si);
        int y = sample_pick(probs, V, 1.0, 0, &b, sp, si);
        int z = sample_pick(probs, V, 1.0, 0, &c, sp, si);
        same &= x == y;
        differs |= x != z;
    }
    CU_ASSERT(same);
    CU_ASSERT(differs);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("sample");
    testlib_add(s, "temperature 0 and top-1 are the argmax", test_greedy_is_argmax);
    testlib_add(s, "temperatures down to 1e-300 are greedy", test_tiny_temperature_is_greedy);
    testlib_add(s, "temperature 1 follows p", test_temperature_one);
    testlib_add(s, "temperature 0.5 follows p^2", test_temperature_half);
    testlib_add(s, "top-k keeps the k most likely", test_top_k);
    testlib_add(s, "same seed, same draws", test_seed_repeats);
    return testlib_run(argc, argv);
}
