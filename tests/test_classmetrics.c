/* classmetrics against values worked out by hand (and as scikit-learn's
 * precision_recall_fscore_support / f1_score(average="macro") give them). */
#include <math.h>

#include "charnn/classmetrics.h"
#include "testlib.h"

#define TOL 1e-12

static void add_all(classmetrics *cm, const int *truth, const int *pred, const double *loss,
                    int n)
{
    for (int i = 0; i < n; i++)
        classmetrics_add(cm, truth[i], pred[i], loss[i]);
}

/* truth 0 0 0 1 1 2, predicted 0 0 1 1 2 2:
 *   confusion [[2 1 0] [0 1 1] [0 0 1]], support 3 2 1, predicted 2 2 2
 *   precision 1, 1/2, 1/2; recall 2/3, 1/2, 1; F1 4/5, 1/2, 2/3
 *   accuracy 4/6; macro P 2/3, macro R 13/18, macro F1 59/90,
 *   weighted F1 (12/5 + 1 + 2/3) / 6 = 61/90; loss 2.1 / 6 */
static void test_three_classes(void)
{
    const int truth[] = {0, 0, 0, 1, 1, 2}, pred[] = {0, 0, 1, 1, 2, 2};
    const double loss[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
    classmetrics cm;
    classmetrics_init(&cm, 3);
    add_all(&cm, truth, pred, loss, 6);
    classmetrics_summary s;
    classmetrics_summarize(&cm, &s);
    const int64_t conf[] = {2, 1, 0, 0, 1, 1, 0, 0, 1};
    for (int i = 0; i < 9; i++)
        CU_ASSERT_EQUAL(s.confusion[i], conf[i]);
    const double P[] = {1.0, 0.5, 0.5}, R[] = {2.0 / 3, 0.5, 1.0}, F[] = {0.8, 0.5, 2.0 / 3};
    const int64_t sup[] = {3, 2, 1};
    for (int c = 0; c < 3; c++) {
        CU_ASSERT_DOUBLE_EQUAL(s.precision[c], P[c], TOL);
        CU_ASSERT_DOUBLE_EQUAL(s.recall[c], R[c], TOL);
        CU_ASSERT_DOUBLE_EQUAL(s.f1[c], F[c], TOL);
        CU_ASSERT_EQUAL(s.support[c], sup[c]);
        CU_ASSERT_EQUAL(s.predicted[c], 2);
    }
    CU_ASSERT_EQUAL(s.n, 6);
    CU_ASSERT_EQUAL(s.used, 3);
    CU_ASSERT_DOUBLE_EQUAL(s.accuracy, 4.0 / 6, TOL);
    CU_ASSERT_DOUBLE_EQUAL(s.macro_precision, 2.0 / 3, TOL);
    CU_ASSERT_DOUBLE_EQUAL(s.macro_recall, 13.0 / 18, TOL);
    CU_ASSERT_DOUBLE_EQUAL(s.macro_f1, 59.0 / 90, TOL);
    CU_ASSERT_DOUBLE_EQUAL(s.weighted_f1, 61.0 / 90, TOL);
    CU_ASSERT_DOUBLE_EQUAL(s.loss, 2.1 / 6, TOL);
    classmetrics_summary_free(&s);
    classmetrics_free(&cm);
}

/* A fourth class nobody has or predicts leaves the macro means alone. */
static void test_absent_class(void)
{
    const int truth[] = {0, 0, 0, 1, 1, 2}, pred[] = {0, 0, 1, 1, 2, 2};
    const double loss[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
    classmetrics cm;
    classmetrics_init(&cm, 4);
    add_all(&cm, truth, pred, loss, 6);
    classmetrics_summary s;
    classmetrics_summarize(&cm, &s);
    CU_ASSERT_EQUAL(s.used, 3);
    CU_ASSERT_DOUBLE_EQUAL(s.macro_f1, 59.0 / 90, TOL);
    CU_ASSERT_DOUBLE_EQUAL(s.f1[3], 0.0, 0.0);
    CU_ASSERT_EQUAL(s.support[3], 0);
    classmetrics_summary_free(&s);
    classmetrics_free(&cm);
}

/* truth 0 1, predicted 2 1: class 0 is never predicted (precision 0 by
 * zero_division), class 2 never true (recall 0); both count in the macro F1:
 * (0 + 1 + 0) / 3, as sklearn's f1_score([0, 1], [2, 1], average="macro"). */
static void test_zero_division(void)
{
    const int truth[] = {0, 1}, pred[] = {2, 1};
    const double loss[] = {2.0, 0.5};
    classmetrics cm;
    classmetrics_init(&cm, 3);
    add_all(&cm, truth, pred, loss, 2);
    classmetrics_summary s;
    classmetrics_summarize(&cm, &s);
    CU_ASSERT_DOUBLE_EQUAL(s.precision[0], 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(s.recall[0], 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(s.precision[2], 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(s.recall[2], 0.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(s.f1[1], 1.0, TOL);
    CU_ASSERT_EQUAL(s.used, 3);
    CU_ASSERT_DOUBLE_EQUAL(s.macro_f1, 1.0 / 3, TOL);
    CU_ASSERT_DOUBLE_EQUAL(s.accuracy, 0.5, TOL);
    CU_ASSERT_DOUBLE_EQUAL(s.loss, 1.25, TOL);
    classmetrics_summary_free(&s);
    classmetrics_free(&cm);
}

/* Counts summed from two halves (as ranks all-reduce them) give the whole. */
static void test_counts_sum(void)
{
    const int truth[] = {0, 0, 0, 1, 1, 2}, pred[] = {0, 0, 1, 1, 2, 2};
    const double loss[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
    classmetrics a, b, all;
    classmetrics_init(&a, 3);
    classmetrics_init(&b, 3);
    classmetrics_init(&all, 3);
    add_all(&a, truth, pred, loss, 4);
    add_all(&b, truth + 4, pred + 4, loss + 4, 2);
    add_all(&all, truth, pred, loss, 6);
    CU_ASSERT_EQUAL(classmetrics_count_len(&a), 11);
    double *ca = classmetrics_counts(&a), *cb = classmetrics_counts(&b);
    for (int i = 0; i < classmetrics_count_len(&a); i++)
        ca[i] += cb[i];
    classmetrics_summary s, t;
    classmetrics_summarize(&a, &s);
    classmetrics_summarize(&all, &t);
    CU_ASSERT_DOUBLE_EQUAL(s.macro_f1, t.macro_f1, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(s.loss, t.loss, 1e-15);
    CU_ASSERT_EQUAL(s.n, 6);
    classmetrics_summary_free(&s);
    classmetrics_summary_free(&t);
    classmetrics_free(&a);
    classmetrics_free(&b);
    classmetrics_free(&all);
}

static void test_empty(void)
{
    classmetrics cm;
    classmetrics_init(&cm, 2);
    classmetrics_summary s;
    classmetrics_summarize(&cm, &s);
    CU_ASSERT_EQUAL(s.n, 0);
    CU_ASSERT(isnan(s.accuracy) && isnan(s.macro_f1) && isnan(s.loss));
    classmetrics_summary_free(&s);
    classmetrics_free(&cm);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("classmetrics");
    testlib_add(s, "three classes by hand", test_three_classes);
    testlib_add(s, "a class nobody has or predicts", test_absent_class);
    testlib_add(s, "zero division is 0 and counts in the macro mean", test_zero_division);
    testlib_add(s, "counts sum over parts", test_counts_sum);
    testlib_add(s, "no examples: NaN", test_empty);
    return testlib_run(argc, argv);
}
