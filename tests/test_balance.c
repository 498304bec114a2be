/* balance: parsing --balance, the split of S streams by weights (against an
 * exhaustive search), and when auto mode decides to move streams. Moving the
 * carried states between ranks is tested under MPI in mpi_balance.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/balance.h"
#include "charnn/common.h"
#include "testlib.h"

static void test_parse(void)
{
    balance_mode mode = BALANCE_AUTO;
    double *w = NULL;
    CU_ASSERT_EQUAL(balance_parse("off", 4, &mode, &w), 0);
    CU_ASSERT_EQUAL(mode, BALANCE_OFF);
    CU_ASSERT_PTR_NULL(w);
    CU_ASSERT_EQUAL(balance_parse("", 4, &mode, &w), 0);
    CU_ASSERT_EQUAL(mode, BALANCE_OFF);
    CU_ASSERT_EQUAL(balance_parse("auto", 4, &mode, &w), 0);
    CU_ASSERT_EQUAL(mode, BALANCE_AUTO);
    CU_ASSERT_PTR_NULL(w);
    CU_ASSERT_EQUAL(balance_parse("1,2.5,0.5", 3, &mode, &w), 0);
    CU_ASSERT_EQUAL(mode, BALANCE_WEIGHTS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_DOUBLE_EQUAL(w[0], 1.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(w[1], 2.5, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(w[2], 0.5, 0.0);
    free(w);

    CU_ASSERT_EQUAL(balance_parse("1,2", 3, &mode, &w), -1);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(), "--balance '1,2' gives 2 weights for 3 ranks");
    CU_ASSERT_EQUAL(balance_parse("1,2,3", 2, &mode, &w), -1);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(), "--balance '1,2,3' gives 3 weights for 2 ranks");
    static const char *const bad[] = {"1,-2", "1,0", "1,,2", "1,2,", "fast", "1;2", "nan,1",
                                      "inf,1", "2x,1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        w = NULL;
        CU_ASSERT_EQUAL(balance_parse(bad[i], 2, &mode, &w), -1);
        CU_ASSERT_PTR_NULL(w);
        CU_ASSERT_PTR_NOT_NULL(strstr(cn_errmsg(), "expected off, auto, or one positive weight"));
        CU_ASSERT_PTR_NOT_NULL(strstr(cn_errmsg(), bad[i]));
    }
}

/* The smallest max_r c[r] / w[r] over every split of S into R counts in [lo, hi]. */
static double best_by_search(int R, int S, const double *w, int lo, int hi, int *c, int r)
{
    if (r == R - 1) {
        c[r] = S;
        if (S < lo || S > hi)
            return INFINITY;
        double t = 0.0;
        for (int q = 0; q < R; q++)
            t = fmax(t, c[q] / w[q]);
        return t;
    }
    double best = INFINITY;
    for (int k = lo; k <= hi && k <= S; k++) {
        c[r] = k;
        best = fmin(best, best_by_search(R, S - k, w, lo, hi, c, r + 1));
    }
    return best;
}

static void test_split_vs_search(void)
{
    unsigned long long s = 12345;
    int cases = 0;
    for (int R = 1; R <= 4; R++)
        for (int S = R; S <= 14; S++)
            for (int trial = 0; trial < 6; trial++) {
                double w[4];
                for (int r = 0; r < R; r++) {
                    s = s * 6364136223846793005ull + 1442695040888963407ull;
                    w[r] = 0.25 + (double)(s >> 40) / (double)(1ull << 24) * 3.0;
                }
                const int lo = trial % 2, hi = (S + R - 1) / R + 2 + trial;
                if (R * lo > S || S > R * hi)
                    continue;
                int got[4], scratch[4];
                balance_split(R, S, w, lo, hi, got);
                int sum = 0;
                for (int r = 0; r < R; r++) {
                    CU_ASSERT(got[r] >= lo && got[r] <= hi);
                    sum += got[r];
                }
                CU_ASSERT_EQUAL(sum, S);
                double best = best_by_search(R, S, w, lo, hi, scratch, 0);
                CU_ASSERT_DOUBLE_EQUAL(balance_step_time(R, got, w), best, 1e-12);
                cases++;
            }
    CU_ASSERT(cases > 200);
}

static void test_split_cases(void)
{
    int c[4];
    const double even[4] = {1, 1, 1, 1}, w13[2] = {1, 3};
    balance_split(4, 64, even, 1, 64, c);
    for (int r = 0; r < 4; r++)
        CU_ASSERT_EQUAL(c[r], 16);
    balance_split(2, 8, w13, 1, 7, c);
    CU_ASSERT_EQUAL(c[0], 2);
    CU_ASSERT_EQUAL(c[1], 6);
    /* the cap holds the fast rank back */
    balance_split(2, 8, w13, 1, 5, c);
    CU_ASSERT_EQUAL(c[0], 3);
    CU_ASSERT_EQUAL(c[1], 5);
    /* ties go to the lower rank */
    balance_split(2, 5, even, 1, 5, c);
    CU_ASSERT_EQUAL(c[0], 3);
    CU_ASSERT_EQUAL(c[1], 2);
}

static void test_choose(void)
{
    const int cur[2] = {32, 32};
    int out[2];
    /* within a stream's worth of each other: no move */
    const double close[2] = {100.0, 100.5};
    CU_ASSERT_EQUAL(balance_choose(2, 64, close, cur, 1, 40, 0.01, out), 0);
    CU_ASSERT(out[0] == 32 && out[1] == 32);
    /* rank 1 20% faster: 29 + 35 (29/100 = 0.29, 35/120 = 0.292 against 32/100) */
    const double skew[2] = {100.0, 120.0};
    CU_ASSERT_EQUAL(balance_choose(2, 64, skew, cur, 1, 40, 0.01, out), 1);
    CU_ASSERT_EQUAL(out[0], 29);
    CU_ASSERT_EQUAL(out[1], 35);
    CU_ASSERT(balance_step_time(2, out, skew) < 0.99 * balance_step_time(2, cur, skew));
    /* a gain below min_gain is not worth a move */
    const double slight[2] = {100.0, 107.0}; /* 31 + 33: 0.31 against 0.32, 3% */
    CU_ASSERT_EQUAL(balance_choose(2, 64, slight, cur, 1, 40, 0.05, out), 0);
    CU_ASSERT(out[0] == 32 && out[1] == 32);
    CU_ASSERT_EQUAL(balance_choose(2, 64, slight, cur, 1, 40, 0.01, out), 1);
    CU_ASSERT(out[0] == 31 && out[1] == 33);
    /* the cap: at most 40 streams however fast */
    const double lopsided[2] = {10.0, 1000.0};
    CU_ASSERT_EQUAL(balance_choose(2, 64, lopsided, cur, 1, 40, 0.01, out), 1);
    CU_ASSERT(out[0] == 24 && out[1] == 40);
    /* no measurement (a rank without compute time): no move */
    const double missing[2] = {100.0, 0.0}, bad[2] = {NAN, 100.0};
    CU_ASSERT_EQUAL(balance_choose(2, 64, missing, cur, 1, 40, 0.01, out), 0);
    CU_ASSERT_EQUAL(balance_choose(2, 64, bad, cur, 1, 40, 0.01, out), 0);
    CU_ASSERT(out[0] == 32 && out[1] == 32);
}

static void test_first(void)
{
    const int c[4] = {3, 0, 5, 2};
    CU_ASSERT_EQUAL(balance_first(c, 0), 0);
    CU_ASSERT_EQUAL(balance_first(c, 1), 3);
    CU_ASSERT_EQUAL(balance_first(c, 2), 3);
    CU_ASSERT_EQUAL(balance_first(c, 3), 8);
    CU_ASSERT_EQUAL(balance_first(c, 4), 10);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("balance");
    testlib_add(s, "parse --balance", test_parse);
    testlib_add(s, "split vs exhaustive search", test_split_vs_search);
    testlib_add(s, "split cases", test_split_cases);
    testlib_add(s, "auto: when to move", test_choose);
    testlib_add(s, "first stream of a rank", test_first);
    return testlib_run(argc, argv);
}
