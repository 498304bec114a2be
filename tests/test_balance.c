/* balance: parsing --balance, the split of S streams by weights (against an
 * exhaustive search), when auto mode decides to move streams, and auto mode
 * on synthetic step times (R ranks, each with its own balance_auto, their
 * window sums added as the all-reduce would): a slow rank is made up for at
 * the first decision, seeded jitter on equal ranks moves nothing, a speed
 * change is followed, every rank decides alike. Moving the carried states
 * between ranks is tested under MPI in mpi_equivalence.c. */
#include <math.h>
#include <stdint.h>
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

#define SIM_MAX_R 8

/* R ranks of B streams each (cap B + B/2, as task_lm gives auto mode); rank
 * r does speed0[r] rows per second before step `change` and speed1[r] from
 * it on, each step's time scaled by 1 + jitter * u, u uniform in [-1, 1). */
typedef struct {
    int R, B, steps, change;
    double jitter, window_seconds;
    const double *speed0, *speed1;
    uint64_t seed;
    /* results */
    int decisions, moves;
    int first_move, last_move; /* decision numbers (1-based), 0 when none */
    int first_move_after_change; /* decisions after the change's one, -1 when none */
    int64_t first_decision_step;
    int split[SIM_MAX_R];
} sim;

static double sim_uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / (double)(1ull << 53);
}

static void sim_run(sim *m)
{
    const int R = m->R, S = R * m->B, cap = m->B + (m->B + 1) / 2;
    balance_auto a[SIM_MAX_R];
    int out[SIM_MAX_R][SIM_MAX_R];
    double sums[2 * SIM_MAX_R], mine[2 * SIM_MAX_R];
    uint64_t rng = m->seed;
    int change_decision = -1;
    for (int r = 0; r < R; r++) {
        balance_auto_init(&a[r], R, m->window_seconds);
        m->split[r] = m->B;
    }
    m->decisions = m->moves = m->first_move = m->last_move = 0;
    m->first_move_after_change = -1;
    m->first_decision_step = 0;
    for (int step = 1; step <= m->steps; step++) {
        int due = 0;
        for (int r = 0; r < R; r++) {
            const double v = step < m->change ? m->speed0[r] : m->speed1[r];
            const double t = m->split[r] / v * (1.0 + m->jitter * (2.0 * sim_uniform(&rng) - 1.0));
            int d = balance_auto_step(&a[r], t);
            if (r > 0)
                CU_ASSERT_EQUAL(d, due); /* every rank ends its windows at the same step */
            due = d;
        }
        if (!due)
            continue;
        memset(sums, 0, sizeof sums);
        for (int r = 0; r < R; r++) {
            balance_auto_window(&a[r], r, mine);
            for (int i = 0; i < 2 * R; i++)
                sums[i] += mine[i];
        }
        int moved = 0;
        for (int r = 0; r < R; r++) {
            int mv = balance_auto_decide(&a[r], S, m->split, 1, cap, sums, out[r]);
            if (r == 0)
                moved = mv;
            /* identical inputs, identical decisions on every rank */
            CU_ASSERT_EQUAL(mv, moved);
            CU_ASSERT(memcmp(out[r], out[0], (size_t)R * sizeof out[0][0]) == 0);
        }
        m->decisions++;
        if (m->decisions == 1)
            m->first_decision_step = step;
        if (change_decision < 0 && step >= m->change)
            change_decision = m->decisions;
        int total = 0;
        for (int r = 0; r < R; r++) {
            CU_ASSERT(out[0][r] >= 1 && out[0][r] <= cap);
            total += out[0][r];
        }
        CU_ASSERT_EQUAL(total, S);
        CU_ASSERT_EQUAL(moved, memcmp(out[0], m->split, (size_t)R * sizeof out[0][0]) != 0);
        if (moved) {
            m->moves++;
            if (!m->first_move)
                m->first_move = m->decisions;
            m->last_move = m->decisions;
            if (change_decision > 0 && m->first_move_after_change < 0)
                m->first_move_after_change = m->decisions - change_decision;
            memcpy(m->split, out[0], (size_t)R * sizeof out[0][0]);
        }
    }
    for (int r = 0; r < R; r++)
        balance_auto_free(&a[r]);
}

/* The split's true step time over the best one's under the cap. */
static double sim_excess(const sim *m, const double *speed)
{
    int best[SIM_MAX_R];
    balance_split(m->R, m->R * m->B, speed, 1, m->B + (m->B + 1) / 2, best);
    return balance_step_time(m->R, m->split, speed) / balance_step_time(m->R, best, speed);
}

static void test_auto_cadence(void)
{
    const double v[2] = {1000.0, 1000.0};
    /* windows of BALANCE_EVERY_MIN steps when a second is not asked for */
    sim m = {.R = 2, .B = 16, .steps = 3 + 5 * 4, .change = 1 << 30, .speed0 = v, .speed1 = v,
             .seed = 1};
    sim_run(&m);
    CU_ASSERT_EQUAL(m.first_decision_step, BALANCE_WARMUP + BALANCE_FIRST);
    CU_ASSERT_EQUAL(m.decisions, 5);
    /* a step of 16 ms: 63 steps make a second, then BALANCE_EVERY_MAX caps it */
    m.window_seconds = 1.0;
    m.steps = 3 + 49;
    sim_run(&m);
    CU_ASSERT_EQUAL(m.decisions, 1);
    m.steps = 3 + 50;
    sim_run(&m);
    CU_ASSERT_EQUAL(m.decisions, 2);
    m.steps = 3 + 50 + 50;
    sim_run(&m);
    CU_ASSERT_EQUAL(m.decisions, 3);
    /* a step of 0.4 s: windows of 3 steps would do, BALANCE_EVERY_MIN holds */
    const double slow[2] = {40.0, 40.0};
    m.speed0 = m.speed1 = slow;
    m.steps = 3 + 5 * 3;
    sim_run(&m);
    CU_ASSERT_EQUAL(m.decisions, 4);
}

/* One rank at half speed: the first decision (after step 3, from 2 measured
 * steps) moves, to a split within 2% of the best under 5% jitter and within
 * 10% under 15%; later decisions refine it at most once, to within 6% (what
 * the noise bar lets through under 15% jitter and windows of 5 steps). */
static void test_auto_slow_rank(void)
{
    for (int R = 2; R <= 8; R *= 2)
        for (int j = 0; j < 2; j++) {
            double v[SIM_MAX_R];
            for (int r = 0; r < R; r++)
                v[r] = r == R / 2 ? 500.0 : 1000.0;
            sim m = {.R = R, .B = 32, .steps = BALANCE_WARMUP + BALANCE_FIRST, .change = 1 << 30,
                     .jitter = j ? 0.15 : 0.05, .speed0 = v, .speed1 = v, .seed = 42u + R};
            sim_run(&m);
            CU_ASSERT_EQUAL(m.decisions, 1);
            CU_ASSERT_EQUAL(m.first_move, 1);
            CU_ASSERT(m.split[R / 2] < 32);
            CU_ASSERT(sim_excess(&m, v) < (j ? 1.10 : 1.02));
            /* and it stays put afterwards */
            m.steps = 400;
            sim_run(&m);
            CU_ASSERT(m.moves >= 1 && m.moves <= 2);
            CU_ASSERT(sim_excess(&m, v) < 1.06);
        }
}

/* Equal ranks with +-15% jitter per step: no move in hundreds of decisions,
 * whatever the seed, for 2, 4 and 8 ranks. */
static void test_auto_noise(void)
{
    const double v[SIM_MAX_R] = {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000};
    for (int R = 2; R <= 8; R *= 2)
        for (uint64_t seed = 1; seed <= 5; seed++) {
            sim m = {.R = R, .B = 32, .steps = 1500, .change = 1 << 30, .jitter = 0.15,
                     .speed0 = v, .speed1 = v, .seed = seed};
            sim_run(&m);
            CU_ASSERT(m.decisions > 250);
            CU_ASSERT_EQUAL(m.moves, 0);
        }
}

/* A rank that halves its speed (or doubles it) mid-run: moves follow within
 * 3 decisions and reach a split within 5% of the best; none before. Among 8
 * ranks, one that doubles its speed promises only a 7% shorter step, which
 * the noise bar lets through later (within 25 decisions). */
static void test_auto_change(void)
{
    for (int R = 2; R <= 8; R *= 2)
        for (int dir = 0; dir < 2; dir++) {
            double v0[SIM_MAX_R], v1[SIM_MAX_R];
            for (int r = 0; r < R; r++) {
                v0[r] = 1000.0;
                v1[r] = r == 1 ? (dir ? 2000.0 : 500.0) : 1000.0;
            }
            sim m = {.R = R, .B = 32, .steps = 400, .change = 201, .jitter = 0.1, .speed0 = v0,
                     .speed1 = v1, .seed = 7u + R};
            sim_run(&m);
            CU_ASSERT(m.first_move > 40); /* none before the change (decision 41) */
            CU_ASSERT(m.first_move_after_change >= 0 &&
                      m.first_move_after_change <= (dir && R == 8 ? 25 : 3));
            CU_ASSERT(m.moves <= 3);
            CU_ASSERT(sim_excess(&m, v1) < 1.05);
        }
}

/* Random speeds that change now and then, 1 to 8 ranks, small B: every
 * decision sums to S with each rank in [1, cap] (checked in sim_run). */
static void test_auto_invariants(void)
{
    uint64_t s = 99;
    for (int R = 1; R <= SIM_MAX_R; R++)
        for (int trial = 0; trial < 4; trial++) {
            double v0[SIM_MAX_R], v1[SIM_MAX_R];
            for (int r = 0; r < R; r++) {
                v0[r] = 100.0 + 4000.0 * sim_uniform(&s);
                v1[r] = 100.0 + 4000.0 * sim_uniform(&s);
            }
            sim m = {.R = R, .B = 1 + trial * 3, .steps = 300, .change = 150, .jitter = 0.3,
                     .speed0 = v0, .speed1 = v1, .seed = s};
            sim_run(&m);
            CU_ASSERT(m.decisions > 50);
        }
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("balance");
    testlib_add(s, "parse --balance", test_parse);
    testlib_add(s, "split vs exhaustive search", test_split_vs_search);
    testlib_add(s, "split cases", test_split_cases);
    testlib_add(s, "auto: when to move", test_choose);
    testlib_add(s, "first stream of a rank", test_first);
    testlib_add(s, "auto: cadence of decisions", test_auto_cadence);
    testlib_add(s, "auto: a half-speed rank at the first decision", test_auto_slow_rank);
    testlib_add(s, "auto: jitter on equal ranks moves nothing", test_auto_noise);
    testlib_add(s, "auto: a speed change mid-run is followed", test_auto_change);
    testlib_add(s, "auto: splits sum to S, each rank in [1, cap]", test_auto_invariants);
    return testlib_run(argc, argv);
}
