/* A classifier's numbers from its confusion matrix. See classmetrics.h. */
#include "charnn/classmetrics.h"

#include <math.h>
#include <stdlib.h>

#include "charnn/common.h"

void classmetrics_init(classmetrics *cm, int classes)
{
    CHARNN_ASSERT(classes >= 1);
    cm->classes = classes;
    cm->counts = cn_xcalloc((size_t)classes * classes + 2, sizeof *cm->counts);
}

void classmetrics_free(classmetrics *cm)
{
    free(cm->counts);
    cm->counts = NULL;
    cm->classes = 0;
}

void classmetrics_add(classmetrics *cm, int truth, int predicted, double loss)
{
    const int C = cm->classes;
    CHARNN_ASSERT(truth >= 0 && truth < C && predicted >= 0 && predicted < C);
    cm->counts[(size_t)truth * C + predicted] += 1.0;
    cm->counts[(size_t)C * C] += loss;
    cm->counts[(size_t)C * C + 1] += 1.0;
}

double *classmetrics_counts(classmetrics *cm)
{
    return cm->counts;
}

int classmetrics_count_len(const classmetrics *cm)
{
    return cm->classes * cm->classes + 2;
}

static double ratio(int64_t num, int64_t den)
{
    return den > 0 ? (double)num / (double)den : 0.0;
}

void classmetrics_summarize(const classmetrics *cm, classmetrics_summary *s)
{
    const int C = cm->classes;
    s->classes = C;
    s->n = (int64_t)cm->counts[(size_t)C * C + 1];
    s->precision = cn_xcalloc((size_t)C, sizeof *s->precision);
    s->recall = cn_xcalloc((size_t)C, sizeof *s->recall);
    s->f1 = cn_xcalloc((size_t)C, sizeof *s->f1);
    s->support = cn_xcalloc((size_t)C, sizeof *s->support);
    s->predicted = cn_xcalloc((size_t)C, sizeof *s->predicted);
    s->confusion = cn_xcalloc((size_t)C * C, sizeof *s->confusion);
    int64_t correct = 0;
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) {
            int64_t k = (int64_t)cm->counts[(size_t)i * C + j];
            s->confusion[(size_t)i * C + j] = k;
            s->support[i] += k;
            s->predicted[j] += k;
            if (i == j)
                correct += k;
        }
    s->used = 0;
    double sp = 0.0, sr = 0.0, sf = 0.0, wf = 0.0;
    for (int c = 0; c < C; c++) {
        const int64_t tp = s->confusion[(size_t)c * C + c];
        s->precision[c] = ratio(tp, s->predicted[c]);
        s->recall[c] = ratio(tp, s->support[c]);
        const double pr = s->precision[c] + s->recall[c];
        s->f1[c] = pr > 0.0 ? 2.0 * s->precision[c] * s->recall[c] / pr : 0.0;
        if (s->support[c] > 0 || s->predicted[c] > 0) {
            s->used++;
            sp += s->precision[c];
            sr += s->recall[c];
            sf += s->f1[c];
        }
        wf += s->f1[c] * (double)s->support[c];
    }
    if (s->n == 0) {
        s->loss = s->accuracy = s->macro_precision = s->macro_recall = s->macro_f1 =
            s->weighted_f1 = NAN;
        return;
    }
    s->loss = cm->counts[(size_t)C * C] / (double)s->n;
    s->accuracy = (double)correct / (double)s->n;
    s->macro_precision = sp / s->used;
    s->macro_recall = sr / s->used;
    s->macro_f1 = sf / s->used;
    s->weighted_f1 = wf / (double)s->n;
}

void classmetrics_summary_free(classmetrics_summary *s)
{
    free(s->precision);
    free(s->recall);
    free(s->f1);
    free(s->support);
    free(s->predicted);
    free(s->confusion);
    s->precision = s->recall = s->f1 = NULL;
    s->support = s->predicted = s->confusion = NULL;
}
