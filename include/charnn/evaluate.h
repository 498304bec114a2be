/* evaluate: the loss of a model over the chunks of a batch plan, summed
 * exactly over all ranks (sums of losses and of token counts, never a mean of
 * means), and the metrics derived from it. */
#ifndef CHARNN_EVALUATE_H
#define CHARNN_EVALUATE_H

#include <stdint.h>

#include "charnn/data.h"
#include "charnn/model.h"

typedef struct {
    double loss_sum; /* nats, all ranks */
    int64_t tokens;  /* targets, all ranks (classify: examples) */
    int64_t correct; /* targets whose most probable output is right, all ranks; -1 when
                        not measured (lm) */
} eval_result;

/* correct / tokens, NaN when not measured. */
double eval_accuracy(const eval_result *r);

/* Mean loss (nats per token), bits per character, perplexity. */
double eval_mean(const eval_result *r);
double eval_bpc(const eval_result *r);
double eval_perplexity(const eval_result *r);

/* The language model's loss: run chunks [0, max_chunks) (0 = all) of plan p
 * from a zero state, carrying the state from chunk to chunk, each position's
 * target the next character. w must hold (p->T, p->n_streams); s has
 * p->n_streams streams; win holds (T+1)*B ids and scratch T+1. Collective:
 * every rank must call it with plans of the same shape. */
int eval_plan(const model *m, model_work *w, model_state *s, const batch_plan *p,
              data_source *src, int64_t max_chunks, int32_t *win, int32_t *scratch,
              eval_result *out);

/* Streams per rank for evaluating a split of n tokens with chunks of T: at
 * most `batch`, fewer when the split is short, at least 1. */
int eval_streams_per_rank(size_t n, int T, int batch, int nranks);


/* `charnn eval`: the loss of a saved model on a split of a text file or a
 * prepared corpus (a text's split fractions are the model's own, so "test" is
 * the test text it never saw; a corpus has its split stored) or on all of it. */
typedef struct {
    const char *model_path;
    const char *data_path;
    int split;   /* SPLIT_* */
    int batch;   /* streams per rank, 0 = the model's training batch */
    int seq;     /* chunk length, 0 = the model's */
    int threads;
    int json;    /* print one JSON object instead of text */
} eval_options;

/* Prints the result (rank 0). 0, or -1 with a message. Collective. */
int eval_run(const eval_options *o);

#endif
