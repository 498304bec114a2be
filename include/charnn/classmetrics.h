/* classmetrics: the numbers of a classifier on labelled examples, from one
 * confusion matrix: loss, accuracy, per-class precision / recall / F1 and
 * their macro means. `charnn eval` on a classifier (evaluate.c) and its
 * --json and --html outputs read them; training's validation may too.
 *
 *   classmetrics cm;
 *   classmetrics_init(&cm, C);
 *   for each example: classmetrics_add(&cm, truth, predicted, loss);
 *   (several ranks: all-reduce classmetrics_counts(&cm) as doubles)
 *   classmetrics_summary s;
 *   classmetrics_summarize(&cm, &s); ... classmetrics_summary_free(&s);
 *
 * Definitions (scikit-learn's, zero_division=0): precision_c = TP / (TP + FP),
 * recall_c = TP / (TP + FN), F1_c = 2 P R / (P + R), each 0 when its
 * denominator is. Macro means average over the classes that occur among the
 * true or the predicted labels (sklearn's default `labels`), so a class
 * absent from a small test split does not count as F1 0. Accuracy is the
 * trace over the total. Loss is the mean cross-entropy in nats.
 *
 * Ownership: a classmetrics owns its counts; a summary owns its arrays.
 */
#ifndef CHARNN_CLASSMETRICS_H
#define CHARNN_CLASSMETRICS_H

#include <stdint.h>

typedef struct {
    int classes;         /* C */
    double *counts;      /* (C * C + 2): the confusion matrix, row = true class, column =
                            predicted, then the summed loss (nats) and the example count;
                            doubles so that one all-reduce sums them exactly (below 2^53) */
} classmetrics;

typedef struct {
    int classes;         /* C */
    int64_t n;           /* examples */
    int used;            /* classes in the macro means */
    double loss;         /* mean cross-entropy, nats */
    double accuracy;
    double macro_precision, macro_recall, macro_f1;
    double weighted_f1;  /* F1 weighted by each class's support */
    double *precision;   /* (C) */
    double *recall;      /* (C) */
    double *f1;          /* (C) */
    int64_t *support;    /* (C) true examples of each class */
    int64_t *predicted;  /* (C) examples predicted as each class */
    int64_t *confusion;  /* (C, C) row = true, column = predicted */
} classmetrics_summary;

void classmetrics_init(classmetrics *cm, int classes);
void classmetrics_free(classmetrics *cm);
/* One example: its true class, the predicted one (both in [0, C)), its loss. */
void classmetrics_add(classmetrics *cm, int truth, int predicted, double loss);
/* The counts as one array of classmetrics_count_len(cm) doubles, to be summed
 * over ranks in place. */
double *classmetrics_counts(classmetrics *cm);
int classmetrics_count_len(const classmetrics *cm);
/* The summary of cm; with no example every number is NaN. */
void classmetrics_summarize(const classmetrics *cm, classmetrics_summary *out);
void classmetrics_summary_free(classmetrics_summary *s);

#endif
