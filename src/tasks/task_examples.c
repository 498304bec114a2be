/* What the example tasks share: their checkpoint record, the mechanics of a
 * resume, the start of open and the end of close. See task_examples.h. */
#include "task_examples.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"

static task_examples *shared(const task *t)
{
    return (task_examples *)t->impl;
}

void *task_examples_alloc(task *t, size_t size, int rank, int nranks)
{
    CHARNN_ASSERT(size >= sizeof(task_examples));
    t->impl = cn_xcalloc(1, size);
    t->rank = rank;
    t->nranks = nranks;
    return t->impl;
}

void task_examples_init(task_examples *s, exorder *order, int G, task_record record,
                        const model_config *cfg)
{
    s->order = order;
    s->G = G;
    s->record = record;
    s->layers = cfg->layers;
    s->hidden = cfg->hidden;
    s->lstm = cfg->cell == CELL_LSTM;
}

void task_examples_free(task *t)
{
    for (int i = 0; t->labels && i < t->n_labels; i++)
        free(t->labels[i]);
    free(t->labels);
    t->labels = NULL;
    t->n_labels = 0;
    free(t->impl);
    t->impl = NULL;
}

void task_examples_copy_labels(task *t, int n, char *const *names)
{
    t->n_labels = n;
    t->labels = cn_xmalloc((size_t)n * sizeof *t->labels);
    for (int i = 0; i < n; i++)
        t->labels[i] = cn_xstrdup(names[i]);
}

uint64_t task_examples_batches_per_epoch(const task *t)
{
    return shared(t)->order->batches_per_epoch;
}

const size_t *task_examples_next(task *t, train_progress *prog)
{
    exorder_cursor c = {prog->epoch, prog->chunk};
    const size_t *rows = exorder_next(shared(t)->order, &c);
    prog->epoch = c.epoch;
    prog->chunk = c.batch;
    return rows;
}

/* Rows of the record: its cursor words and the zero state's batch. */
static int record_rows(const task_examples *s)
{
    return s->record == TASK_RECORD_EMPTY ? 0 : 1;
}

/* A record: the cursor (rows words), then h and c (L, rows, H), zeros. */
size_t task_examples_state_bytes(const task *t)
{
    const task_examples *s = shared(t);
    const size_t rows = (size_t)record_rows(s);
    const size_t state = (size_t)s->layers * rows * (size_t)s->hidden * sizeof(float);
    return rows * sizeof(uint64_t) + state * (s->lstm ? 2 : 1);
}

void task_examples_state_pack(const task *t, const train_progress *prog, void *rec)
{
    const task_examples *s = shared(t);
    memset(rec, 0, task_examples_state_bytes(t));
    if (s->record != TASK_RECORD_EMPTY) {
        const uint64_t cursor =
            s->record == TASK_RECORD_GLOBAL_BATCH ? (uint64_t)s->G : prog->chunk;
        memcpy(rec, &cursor, sizeof cursor);
    }
}

void task_examples_state_view(const task *t, void *rec, ckpt_rank *out)
{
    const task_examples *s = shared(t);
    const int rows = record_rows(s);
    char *h = (char *)rec + (size_t)rows * sizeof(uint64_t);
    out->batch = rows;
    out->layers = s->layers;
    out->hidden = s->hidden;
    out->cursor = (uint64_t *)rec;
    out->h = (float *)(void *)h;
    out->c = s->lstm ? out->h + (size_t)s->layers * rows * s->hidden : NULL;
}

void task_examples_state_load(task *t, const ckpt_data *d, const train_progress *prog,
                              const char *path)
{
    (void)prog;
    task_examples *s = shared(t);
    s->resume.active = 1;
    s->resume.old_G = s->record == TASK_RECORD_GLOBAL_BATCH && d->ranks && d->nranks > 0 &&
                              d->ranks[0].batch == 1
                          ? (int64_t)d->ranks[0].cursor[0]
                          : (int64_t)d->cfg.nranks * d->cfg.batch;
    s->resume.labels_ok = d->task.n_labels == t->n_labels;
    for (int c = 0; s->resume.labels_ok && c < t->n_labels; c++)
        s->resume.labels_ok = strcmp(d->task.labels[c], t->labels[c]) == 0;
    snprintf(s->resume.path, sizeof s->resume.path, "%s", path);
}

const char *task_examples_resume(task *t, train_progress *prog, int64_t *old_G)
{
    task_examples *s = shared(t);
    if (!s->resume.active)
        return NULL;
    s->resume.active = 0;
    const int64_t was = s->resume.old_G;
    if (was > 0 && was != s->G)
        prog->chunk = prog->chunk * (uint64_t)was / (uint64_t)s->G;
    if (old_G)
        *old_G = was;
    return s->resume.path;
}

int task_examples_labels_match(const task *t)
{
    return shared(t)->resume.labels_ok;
}
