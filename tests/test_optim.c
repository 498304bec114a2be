/* Optimizers and schedules against values worked out by hand, in double, from
 * the formulas in optim.h; and the thread-count independence of optim_step. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "charnn/common.h"
#include "charnn/optim.h"
#include "testlib.h"

/* float results against double expectations: a few float ulps of slack, relative
 * (betas and alpha are stored as floats, so 1 - 0.9f is 0.100000024) */
#define TOL 2e-6

static void assert_close(const float *got, const double *want, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++) {
        double scale = fabs(want[i]) > 1.0 ? fabs(want[i]) : 1.0;
        CU_ASSERT_DOUBLE_EQUAL((double)got[i], want[i], tol * scale);
    }
}

static void assert_lr(const sched_config *s, int64_t step, int64_t epoch, double want)
{
    double got = sched_lr(s, step, epoch);
    CU_ASSERT_DOUBLE_EQUAL(got, want, 1e-6 * fabs(want) + 1e-12);
}

static void test_names(void)
{
    for (int k = 0; k < 4; k++) {
        optim_kind ok;
        CU_ASSERT_EQUAL(optim_parse(optim_name((optim_kind)k), &ok), 0);
        CU_ASSERT_EQUAL(ok, (optim_kind)k);
        sched_kind sk;
        CU_ASSERT_EQUAL(sched_parse(sched_name((sched_kind)k), &sk), 0);
        CU_ASSERT_EQUAL(sk, (sched_kind)k);
    }
    CU_ASSERT_STRING_EQUAL(optim_name(OPTIM_SGD), "sgd");
    CU_ASSERT_STRING_EQUAL(optim_name(OPTIM_ADAM), "adam");
    CU_ASSERT_STRING_EQUAL(optim_name(OPTIM_RMSPROP), "rmsprop");
    CU_ASSERT_STRING_EQUAL(optim_name(OPTIM_ADAGRAD), "adagrad");
    CU_ASSERT_STRING_EQUAL(sched_name(SCHED_CONSTANT), "constant");
    CU_ASSERT_STRING_EQUAL(sched_name(SCHED_STEP), "step");
    CU_ASSERT_STRING_EQUAL(sched_name(SCHED_EXP), "exp");
    CU_ASSERT_STRING_EQUAL(sched_name(SCHED_COSINE), "cosine");
}

static void test_parse_unknown(void)
{
    optim_kind ok = OPTIM_RMSPROP;
    CU_ASSERT_EQUAL(optim_parse("adamw", &ok), -1);
    CU_ASSERT_EQUAL(ok, OPTIM_RMSPROP);
    CU_ASSERT_PTR_NOT_NULL(strstr(cn_errmsg(), "'adamw'"));
    CU_ASSERT_EQUAL(optim_parse("", &ok), -1);
    CU_ASSERT_EQUAL(optim_parse("SGD", &ok), -1);

    sched_kind sk = SCHED_EXP;
    CU_ASSERT_EQUAL(sched_parse("linear", &sk), -1);
    CU_ASSERT_EQUAL(sk, SCHED_EXP);
    CU_ASSERT_PTR_NOT_NULL(strstr(cn_errmsg(), "'linear'"));
    CU_ASSERT_EQUAL(sched_parse("cos", &sk), -1);
}

static void test_defaults_and_state(void)
{
    optim_config c;
    optim_config_default(&c, OPTIM_SGD);
    CU_ASSERT_EQUAL(c.kind, OPTIM_SGD);
    CU_ASSERT_EQUAL(c.momentum, 0.9f);
    CU_ASSERT_EQUAL(c.beta1, 0.9f);
    CU_ASSERT_EQUAL(c.beta2, 0.999f);
    CU_ASSERT_EQUAL(c.alpha, 0.95f);
    CU_ASSERT_EQUAL(c.eps, 1e-8f);
    CU_ASSERT_EQUAL(c.weight_decay, 0.0f);

    CU_ASSERT_EQUAL(optim_state_count(OPTIM_SGD), 1);
    CU_ASSERT_EQUAL(optim_state_count(OPTIM_ADAM), 2);
    CU_ASSERT_EQUAL(optim_state_count(OPTIM_RMSPROP), 1);
    CU_ASSERT_EQUAL(optim_state_count(OPTIM_ADAGRAD), 1);

    for (int k = 0; k < 4; k++) {
        optim o;
        optim_config_default(&c, (optim_kind)k);
        optim_init(&o, &c, 5);
        CU_ASSERT_EQUAL(o.n, 5);
        CU_ASSERT_EQUAL(o.t, 0);
        CU_ASSERT_EQUAL(o.cfg.kind, (optim_kind)k);
        int arrays = (o.m != NULL) + (o.v != NULL);
        CU_ASSERT_EQUAL(arrays, optim_state_count((optim_kind)k));
        CU_ASSERT((k == OPTIM_SGD || k == OPTIM_ADAM) == (o.m != NULL));
        CU_ASSERT((k != OPTIM_SGD) == (o.v != NULL));
        for (int i = 0; i < 5; i++) {
            if (o.m)
                CU_ASSERT_EQUAL(o.m[i], 0.0f);
            if (o.v)
                CU_ASSERT_EQUAL(o.v[i], 0.0f);
        }
        optim_free(&o);
        CU_ASSERT_PTR_NULL(o.m);
        CU_ASSERT_PTR_NULL(o.v);
    }
}

static const float P0[4] = {1.0f, -2.0f, 0.5f, 0.25f};
static const float G1[4] = {0.5f, -1.0f, 0.25f, 0.0f};
static const float G2[4] = {-0.25f, 0.75f, 0.125f, 2.0f};

static void test_sgd_momentum(void)
{
    optim_config c;
    optim_config_default(&c, OPTIM_SGD);
    optim o;
    optim_init(&o, &c, 4);
    float p[4];
    memcpy(p, P0, sizeof p);
    const double lr = 0.1, mu = 0.9;

    optim_step(&o, p, G1, 0.1f, NULL);
    /* first step: the buffer is the gradient */
    double want[4], buf[4];
    for (int i = 0; i < 4; i++) {
        buf[i] = G1[i];
        want[i] = (double)P0[i] - lr * buf[i];
    }
    assert_close(p, want, 4, TOL);
    assert_close(o.m, buf, 4, TOL);
    CU_ASSERT_DOUBLE_EQUAL(p[0], 0.95, TOL);

    optim_step(&o, p, G2, 0.1f, NULL);
    for (int i = 0; i < 4; i++) {
        buf[i] = mu * buf[i] + G2[i];
        want[i] -= lr * buf[i];
    }
    assert_close(p, want, 4, TOL);
    assert_close(o.m, buf, 4, TOL);
    /* element 0: buf = 0.45 - 0.25 = 0.2, p = 0.95 - 0.02 */
    CU_ASSERT_DOUBLE_EQUAL(p[0], 0.93, TOL);
    CU_ASSERT_EQUAL(o.t, 2);
    optim_free(&o);
}

/* One Adam(W) element written out step by step; decay is lr*wd or 0. */
typedef struct {
    double p, m, v;
} adam_ref;

static void adam_ref_step(adam_ref *r, double g, double lr, double decay, int t)
{
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    r->p -= decay * r->p;
    r->m = b1 * r->m + (1.0 - b1) * g;
    r->v = b2 * r->v + (1.0 - b2) * g * g;
    double mhat = r->m / (1.0 - pow(b1, t));
    double vhat = r->v / (1.0 - pow(b2, t));
    r->p -= lr * mhat / (sqrt(vhat) + eps);
}

static void test_adam(void)
{
    optim_config c;
    optim_config_default(&c, OPTIM_ADAM);
    optim o;
    optim_init(&o, &c, 4);
    float p[4];
    memcpy(p, P0, sizeof p);
    adam_ref r[4];
    for (int i = 0; i < 4; i++)
        r[i] = (adam_ref){P0[i], 0.0, 0.0};

    optim_step(&o, p, G1, 0.1f, NULL);
    /* g = 0.5: m = 0.05, v = 0.00025, mhat = 0.5, vhat = 0.25, so the first
     * step moves p by lr * sign(g), less a hair for eps. */
    CU_ASSERT_DOUBLE_EQUAL(o.m[0], 0.05, 0.05 * TOL);
    /* 1 - 0.999f is 1.000021e-3, so v carries that factor; it cancels in vhat */
    CU_ASSERT_DOUBLE_EQUAL(o.v[0], 0.00025, 0.00025 * 3e-5);
    CU_ASSERT_DOUBLE_EQUAL(p[0], 0.9, TOL);
    CU_ASSERT_DOUBLE_EQUAL(p[1], -1.9, TOL);
    CU_ASSERT_DOUBLE_EQUAL(p[2], 0.4, TOL);
    CU_ASSERT_EQUAL(p[3], P0[3]); /* zero gradient: exactly no move */
    double want[4];
    for (int i = 0; i < 4; i++) {
        adam_ref_step(&r[i], G1[i], 0.1, 0.0, 1);
        want[i] = r[i].p;
    }
    assert_close(p, want, 4, TOL);

    optim_step(&o, p, G2, 0.1f, NULL);
    /* element 0, g = -0.25: m = 0.045 - 0.025 = 0.02,
     * v = 0.999*0.00025 + 0.001*0.0625 = 0.00031225,
     * mhat = 0.02/0.19, vhat = 0.00031225/0.001999 */
    double mhat = 0.02 / 0.19, vhat = 0.00031225 / 0.001999;
    CU_ASSERT_DOUBLE_EQUAL(o.m[0], 0.02, 0.02 * TOL);
    CU_ASSERT_DOUBLE_EQUAL(o.v[0], 0.00031225, 0.00031225 * 3e-5);
    CU_ASSERT_DOUBLE_EQUAL(p[0], 0.9 - 0.1 * mhat / (sqrt(vhat) + 1e-8), TOL);
    for (int i = 0; i < 4; i++) {
        adam_ref_step(&r[i], G2[i], 0.1, 0.0, 2);
        want[i] = r[i].p;
    }
    assert_close(p, want, 4, TOL);
    CU_ASSERT_EQUAL(o.t, 2);
    optim_free(&o);
}

static void test_adamw_mask(void)
{
    const double lr = 0.05, wd = 0.1;
    const uint8_t mask[4] = {1, 0, 1, 0};
    for (int use_mask = 0; use_mask < 2; use_mask++) {
        optim_config c;
        optim_config_default(&c, OPTIM_ADAM);
        c.weight_decay = (float)wd;
        optim o;
        optim_init(&o, &c, 4);
        float p[4];
        memcpy(p, P0, sizeof p);
        adam_ref r[4];
        for (int i = 0; i < 4; i++)
            r[i] = (adam_ref){P0[i], 0.0, 0.0};
        for (int t = 1; t <= 2; t++) {
            const float *g = t == 1 ? G1 : G2;
            optim_step(&o, p, g, (float)lr, use_mask ? mask : NULL);
            double want[4];
            for (int i = 0; i < 4; i++) {
                int decays = !use_mask || mask[i];
                adam_ref_step(&r[i], g[i], lr, decays ? lr * wd : 0.0, t);
                want[i] = r[i].p;
            }
            assert_close(p, want, 4, TOL);
        }
        CU_ASSERT_EQUAL(o.t, 2);
        optim_free(&o);
    }

    /* one step, zero gradient: a decayed weight shrinks by exactly lr*wd, an
     * undecayed one stays bit-for-bit */
    optim_config c;
    optim_config_default(&c, OPTIM_ADAM);
    c.weight_decay = (float)wd;
    optim o;
    optim_init(&o, &c, 4);
    float p[4], zero[4] = {0};
    memcpy(p, P0, sizeof p);
    optim_step(&o, p, zero, (float)lr, mask);
    CU_ASSERT_DOUBLE_EQUAL(p[0], 1.0 * (1.0 - lr * wd), TOL);
    CU_ASSERT_EQUAL(p[1], P0[1]);
    CU_ASSERT_DOUBLE_EQUAL(p[2], 0.5 * (1.0 - lr * wd), TOL);
    CU_ASSERT_EQUAL(p[3], P0[3]);
    optim_free(&o);
}

static void test_rmsprop(void)
{
    optim_config c;
    optim_config_default(&c, OPTIM_RMSPROP);
    CU_ASSERT_EQUAL(c.alpha, 0.95f);
    optim o;
    optim_init(&o, &c, 4);
    float p[4];
    memcpy(p, P0, sizeof p);
    const double lr = 0.01, alpha = 0.95, eps = 1e-8;
    double v[4] = {0}, want[4];
    for (int i = 0; i < 4; i++)
        want[i] = P0[i];

    optim_step(&o, p, G1, (float)lr, NULL);
    /* g = 0.5: v = 0.05 * 0.25 = 0.0125, step = 0.01 * 0.5 / sqrt(0.0125) */
    CU_ASSERT_DOUBLE_EQUAL(o.v[0], 0.0125, 0.0125 * TOL);
    CU_ASSERT_DOUBLE_EQUAL(p[0], 1.0 - 0.005 / (sqrt(0.0125) + eps), TOL);
    for (int i = 0; i < 4; i++) {
        v[i] = alpha * v[i] + (1.0 - alpha) * G1[i] * G1[i];
        want[i] -= lr * G1[i] / (sqrt(v[i]) + eps);
    }
    assert_close(p, want, 4, TOL);
    assert_close(o.v, v, 4, 1e-7);

    optim_step(&o, p, G2, (float)lr, NULL);
    for (int i = 0; i < 4; i++) {
        v[i] = alpha * v[i] + (1.0 - alpha) * G2[i] * G2[i];
        want[i] -= lr * G2[i] / (sqrt(v[i]) + eps);
    }
    assert_close(p, want, 4, TOL);
    assert_close(o.v, v, 4, 1e-7);
    optim_free(&o);
}

static void test_adagrad(void)
{
    optim_config c;
    optim_config_default(&c, OPTIM_ADAGRAD);
    optim o;
    optim_init(&o, &c, 4);
    float p[4];
    memcpy(p, P0, sizeof p);
    const double lr = 0.1, eps = 1e-8;

    optim_step(&o, p, G1, (float)lr, NULL);
    /* g = 0.5: v = 0.25, p = 1 - 0.1 * 0.5 / 0.5 = 0.9 */
    CU_ASSERT_DOUBLE_EQUAL(p[0], 0.9, TOL);
    CU_ASSERT_EQUAL(p[3], P0[3]);

    optim_step(&o, p, G2, (float)lr, NULL);
    /* sums of squares accumulate: v = g1^2 + g2^2 */
    double v[4], want[4];
    for (int i = 0; i < 4; i++) {
        v[i] = (double)G1[i] * G1[i] + (double)G2[i] * G2[i];
        want[i] = P0[i] - lr * G1[i] / sqrt((double)G1[i] * G1[i] + eps) -
                  lr * G2[i] / sqrt(v[i] + eps);
    }
    assert_close(o.v, v, 4, 1e-7);
    assert_close(p, want, 4, TOL);
    /* element 0: v = 0.25 + 0.0625 = 0.3125 */
    CU_ASSERT_DOUBLE_EQUAL(o.v[0], 0.3125, 0.3125 * TOL);
    CU_ASSERT_DOUBLE_EQUAL(p[0], 0.9 + 0.025 / sqrt(0.3125 + eps), TOL);
    optim_free(&o);
}

/* The same three steps with one thread and with two must agree bit for bit. */
static void test_thread_invariance(void)
{
#ifdef _OPENMP
    const size_t n = (1u << 20) + 7; /* odd, so chunk edges and vector tails move */
    float *p0 = cn_xmalloc(n * sizeof *p0);
    float *g = cn_xmalloc(n * sizeof *g);
    float *pa = cn_xmalloc(n * sizeof *pa);
    float *pb = cn_xmalloc(n * sizeof *pb);
    uint8_t *mask = cn_xmalloc(n);
    testlib_fill_uniform(p0, n, 1.0f, 11);
    testlib_fill_uniform(g, n, 0.1f, 12);
    for (size_t i = 0; i < n; i++)
        mask[i] = (uint8_t)(g[i] > 0.0f);
    int saved = omp_get_max_threads();

    for (int k = 0; k < 4; k++) {
        optim_config c;
        optim_config_default(&c, (optim_kind)k);
        c.weight_decay = k == OPTIM_ADAM ? 0.01f : 0.0f;
        optim oa, ob;
        optim_init(&oa, &c, n);
        optim_init(&ob, &c, n);
        memcpy(pa, p0, n * sizeof *pa);
        memcpy(pb, p0, n * sizeof *pb);
        for (int s = 0; s < 3; s++) {
            float lr = 1e-3f * (float)(s + 1);
            omp_set_num_threads(1);
            optim_step(&oa, pa, g, lr, mask);
            omp_set_num_threads(2);
            optim_step(&ob, pb, g, lr, mask);
        }
        CU_ASSERT_EQUAL(memcmp(pa, pb, n * sizeof *pa), 0);
        if (oa.m)
            CU_ASSERT_EQUAL(memcmp(oa.m, ob.m, n * sizeof *oa.m), 0);
        if (oa.v)
            CU_ASSERT_EQUAL(memcmp(oa.v, ob.v, n * sizeof *oa.v), 0);
        CU_ASSERT(memcmp(pa, p0, n * sizeof *pa) != 0);
        optim_free(&oa);
        optim_free(&ob);
    }
    omp_set_num_threads(saved);
    free(p0);
    free(g);
    free(pa);
    free(pb);
    free(mask);
#endif
}

static void test_sched_constant(void)
{
    sched_config s = {.kind = SCHED_CONSTANT, .lr = 2e-3f};
    assert_lr(&s, 0, 0, 2e-3f);
    assert_lr(&s, 123456, 99, 2e-3f);
}

static void test_sched_step(void)
{
    sched_config s = {.kind = SCHED_STEP, .lr = 0.1f, .step_size = 100, .gamma = 0.5f};
    assert_lr(&s, 0, 0, 0.1f);
    assert_lr(&s, 99, 0, 0.1f);
    assert_lr(&s, 100, 0, 0.1f * 0.5);
    assert_lr(&s, 199, 5, 0.1f * 0.5);
    assert_lr(&s, 200, 0, 0.1f * 0.25);
    assert_lr(&s, 250, 0, 0.1f * 0.25);
    assert_lr(&s, 1000, 0, 0.1f * pow(0.5, 10));
    s.step_size = 0; /* no step size: constant */
    assert_lr(&s, 1000, 3, 0.1f);
}

static void test_sched_exp(void)
{
    sched_config s = {.kind = SCHED_EXP, .lr = 2e-3f, .decay_after = 10, .decay = 0.97f};
    const double lr = 2e-3f, d = 0.97f;
    assert_lr(&s, 0, 0, lr);
    assert_lr(&s, 5000, 9, lr);
    assert_lr(&s, 5000, 10, lr); /* full rate through epoch decay_after */
    assert_lr(&s, 5500, 11, lr * d);
    assert_lr(&s, 6000, 12, lr * d * d);
    assert_lr(&s, 6000, 13, lr * d * d * d);
    s.decay_after = 0;
    assert_lr(&s, 0, 0, lr);
    assert_lr(&s, 0, 1, lr * d);
}

static void test_sched_cosine(void)
{
    sched_config s = {.kind = SCHED_COSINE, .lr = 1e-3f, .warmup = 100, .total_steps = 1100,
                      .min_lr = 1e-5f};
    const double lr = 1e-3f, lo = 1e-5f;
    assert_lr(&s, 0, 0, lr / 100.0); /* warmup starts at lr/warmup, not 0 */
    assert_lr(&s, 49, 0, lr * 0.5);
    assert_lr(&s, 99, 0, lr); /* warmup ends at the full rate */
    assert_lr(&s, 100, 0, lr);
    assert_lr(&s, 350, 0, lo + 0.5 * (lr - lo) * (1.0 + sqrt(0.5))); /* progress 1/4 */
    assert_lr(&s, 600, 0, 0.5 * (lr + lo));                       /* mid-point */
    assert_lr(&s, 850, 0, lo + 0.5 * (lr - lo) * (1.0 - sqrt(0.5))); /* progress 3/4 */
    assert_lr(&s, 1100, 0, lo);
    assert_lr(&s, 5000, 0, lo); /* past the end: stays at min_lr */

    s.warmup = 0;
    s.total_steps = 10;
    assert_lr(&s, 0, 0, lr);
    assert_lr(&s, 5, 0, 0.5 * (lr + lo));
    assert_lr(&s, 10, 0, lo);

    s.total_steps = 0; /* degenerate length: straight to min_lr after step 0 */
    assert_lr(&s, 0, 0, lr);
    assert_lr(&s, 1, 0, lo);
}

/* optim_step_range (--freeze-stack): a slab whose front trains 3 steps and whose back
 * joins at the third is bit-identical to two optimizers of their own, the back's
 * first update counted as its first (Adam's bias correction); every kind. */
static void test_step_range(void)
{
    for (int k = 0; k < 4; k++) {
        optim_config c;
        optim_config_default(&c, (optim_kind)k);
        c.weight_decay = k == OPTIM_ADAM ? 0.1f : 0.0f;
        float p[6] = {0.5f, -0.25f, 0.125f, 1.0f, -2.0f, 0.75f}, front[2], back[4];
        const float g[3][6] = {{0.1f, -0.2f, 0.3f, -0.4f, 0.5f, 0.6f},
                               {-0.3f, 0.2f, 0.1f, 0.05f, -0.5f, 0.25f},
                               {0.7f, 0.1f, -0.2f, 0.3f, 0.4f, -0.1f}};
        const uint8_t mask[6] = {1, 0, 1, 1, 0, 1};
        memcpy(front, p, sizeof front);
        memcpy(back, p + 2, sizeof back);
        optim all, of, ob;
        optim_init(&all, &c, 6);
        optim_init(&of, &c, 2);
        optim_init(&ob, &c, 4);
        for (int s = 0; s < 3; s++) {
            all.t++;
            optim_step_range(&all, p, g[s], 1e-2f, mask, 0, 2, all.t);
            optim_step(&of, front, g[s], 1e-2f, mask);
            if (s == 2) {
                optim_step_range(&all, p, g[s], 1e-2f, mask, 2, 6, all.t - 2);
                optim_step(&ob, back, g[s] + 2, 1e-2f, mask + 2);
            }
        }
        CU_ASSERT_EQUAL(memcmp(p, front, sizeof front), 0);
        CU_ASSERT_EQUAL(memcmp(p + 2, back, sizeof back), 0);
        CU_ASSERT_EQUAL(all.t, 3);
        optim_free(&all);
        optim_free(&of);
        optim_free(&ob);
    }
}

int main(int argc, char **argv)
{
    CU_pSuite o = testlib_suite("optim");
    testlib_add(o, "names round-trip", test_names);
    testlib_add(o, "unknown names fail", test_parse_unknown);
    testlib_add(o, "defaults and state arrays", test_defaults_and_state);
    testlib_add(o, "sgd momentum, two steps", test_sgd_momentum);
    testlib_add(o, "adam, two steps", test_adam);
    testlib_add(o, "adamw decays only masked weights", test_adamw_mask);
    testlib_add(o, "rmsprop alpha 0.95", test_rmsprop);
    testlib_add(o, "adagrad accumulates", test_adagrad);
    testlib_add(o, "1 vs 2 threads bit-identical", test_thread_invariance);
    testlib_add(o, "a range counts its own updates", test_step_range);

    CU_pSuite s = testlib_suite("schedule");
    testlib_add(s, "constant", test_sched_constant);
    testlib_add(s, "step decay boundaries", test_sched_step);
    testlib_add(s, "exp decay after epoch", test_sched_exp);
    testlib_add(s, "cosine warmup and anneal", test_sched_cosine);
    return testlib_run(argc, argv);
}
