/* task_examples (src/tasks/task_examples.h), the checkpoint record and resume
 * of the example tasks: the three record layouts hold exactly what the tasks
 * have always written (checkpoints of every charnn resume), the resume takes
 * the checkpoint's global batch from the record only where the record holds
 * it, re-derives the cursor when the global batch changed, compares the labels
 * by name and order, and the cursor rolls over at an epoch's end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/tasks/task_examples.h"
#include "charnn/common.h"
#include "testlib.h"

#define L 2
#define H 3

typedef struct {
    task_examples shared;
    exorder order;
} fake_task;

/* A task over 10 examples of G rows a step (3 batches an epoch at G = 4). */
static fake_task *fake_open(task *t, int G, task_record record, cell_kind cell)
{
    memset(t, 0, sizeof *t);
    fake_task *k = task_examples_alloc(t, sizeof *k, 0, 1);
    CU_ASSERT_PTR_EQUAL(t->impl, k);
    uint32_t len[10];
    for (int i = 0; i < 10; i++)
        len[i] = 1;
    CU_ASSERT_FATAL(exorder_init(&k->order, 10, len, G, 0, 1, 7) == 0);
    model_config mc = {0};
    mc.layers = L;
    mc.hidden = H;
    mc.cell = cell;
    task_examples_init(&k->shared, &k->order, G, record, &mc);
    return k;
}

static void fake_close(task *t)
{
    fake_task *k = t->impl;
    exorder_free(&k->order);
    task_examples_free(t);
    CU_ASSERT_PTR_NULL(t->impl);
    CU_ASSERT_PTR_NULL(t->labels);
}

/* Pack a record at chunk 2 into a buffer of garbage and view it. */
static void pack_view(task *t, ckpt_rank *v, unsigned char *buf, size_t *bytes)
{
    train_progress prog = {0};
    prog.chunk = 2;
    *bytes = task_examples_state_bytes(t);
    memset(buf, 0xab, 512);
    task_examples_state_pack(t, &prog, buf);
    memset(v, 0, sizeof *v);
    task_examples_state_view(t, buf, v);
    CU_ASSERT_EQUAL(v->layers, L);
    CU_ASSERT_EQUAL(v->hidden, H);
}

static int zeros(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0f)
            return 0;
    return 1;
}

static void test_layouts(void)
{
    static const cell_kind cells[2] = {CELL_LSTM, CELL_GRU};
    for (int i = 0; i < 2; i++) {
        const int lstm = cells[i] == CELL_LSTM;
        unsigned char buf[512];
        size_t bytes;
        ckpt_rank v;
        task t;

        /* classify, tag: (1) the global batch, then h (and c) (L, 1, H) zeros */
        fake_open(&t, 4, TASK_RECORD_GLOBAL_BATCH, cells[i]);
        pack_view(&t, &v, buf, &bytes);
        CU_ASSERT_EQUAL(bytes, sizeof(uint64_t) + (lstm ? 2 : 1) * L * H * sizeof(float));
        CU_ASSERT_EQUAL(v.batch, 1);
        CU_ASSERT_PTR_EQUAL(v.cursor, buf);
        CU_ASSERT_EQUAL(v.cursor[0], 4);
        CU_ASSERT_PTR_EQUAL(v.h, buf + sizeof(uint64_t));
        CU_ASSERT(zeros(v.h, L * H));
        if (lstm) {
            CU_ASSERT_PTR_EQUAL(v.c, v.h + L * H);
            CU_ASSERT(zeros(v.c, L * H));
        } else {
            CU_ASSERT_PTR_NULL(v.c);
        }
        fake_close(&t);

        /* generate, classify --features: (1) the next batch, then the zeros */
        fake_open(&t, 4, TASK_RECORD_NEXT_BATCH, cells[i]);
        pack_view(&t, &v, buf, &bytes);
        CU_ASSERT_EQUAL(bytes, sizeof(uint64_t) + (lstm ? 2 : 1) * L * H * sizeof(float));
        CU_ASSERT_EQUAL(v.batch, 1);
        CU_ASSERT_EQUAL(v.cursor[0], 2);
        CU_ASSERT(zeros(v.h, L * H));
        CU_ASSERT(lstm ? v.c == v.h + L * H && zeros(v.c, L * H) : v.c == NULL);
        fake_close(&t);

        /* seq2seq: empty cursor, h and c (L, 0, H); c present for the LSTM */
        fake_open(&t, 4, TASK_RECORD_EMPTY, cells[i]);
        pack_view(&t, &v, buf, &bytes);
        CU_ASSERT_EQUAL(bytes, 0);
        CU_ASSERT_EQUAL(v.batch, 0);
        CU_ASSERT_PTR_EQUAL(v.cursor, buf);
        CU_ASSERT_PTR_EQUAL(v.h, buf);
        CU_ASSERT_PTR_EQUAL(v.c, lstm ? (float *)(void *)buf : NULL);
        CU_ASSERT_EQUAL(buf[0], 0xab);
        fake_close(&t);
    }
}

/* A checkpoint of nranks x rows whose rank 0 record holds `cursor`. */
static void fake_ckpt(ckpt_data *d, ckpt_rank *r, uint64_t *cursor, int nranks, int rows)
{
    memset(d, 0, sizeof *d);
    memset(r, 0, sizeof *r);
    r->batch = 1;
    r->cursor = cursor;
    d->nranks = 1;
    d->ranks = r;
    d->cfg.nranks = nranks;
    d->cfg.batch = rows;
}

static void test_resume(void)
{
    task t;
    ckpt_data d;
    ckpt_rank r;
    train_progress prog = {0};
    int64_t old_G = -1;

    /* no checkpoint: nothing moves, nothing to say */
    fake_open(&t, 4, TASK_RECORD_GLOBAL_BATCH, CELL_GRU);
    prog.chunk = 6;
    CU_ASSERT_PTR_NULL(task_examples_resume(&t, &prog, &old_G));
    CU_ASSERT_EQUAL(prog.chunk, 6);

    /* the record's G (8) wins over the config's (2 x 2); 8 -> 4 rows: batch 6 -> 12 */
    uint64_t G8 = 8;
    fake_ckpt(&d, &r, &G8, 2, 2);
    task_examples_state_load(&t, &d, &prog, "a/ckpt.h5");
    const char *path = task_examples_resume(&t, &prog, &old_G);
    CU_ASSERT_STRING_EQUAL(path ? path : "", "a/ckpt.h5");
    CU_ASSERT_EQUAL(old_G, 8);
    CU_ASSERT_EQUAL(prog.chunk, 12);
    CU_ASSERT_PTR_NULL(task_examples_resume(&t, &prog, &old_G)); /* said once */
    fake_close(&t);

    /* the next-batch record holds the chunk (6), not G: G is the config's 1 x 4, the same */
    fake_open(&t, 4, TASK_RECORD_NEXT_BATCH, CELL_LSTM);
    uint64_t chunk6 = 6;
    fake_ckpt(&d, &r, &chunk6, 1, 4);
    prog.chunk = 6;
    task_examples_state_load(&t, &d, &prog, "b.h5");
    CU_ASSERT_PTR_NOT_NULL(task_examples_resume(&t, &prog, NULL));
    CU_ASSERT_EQUAL(prog.chunk, 6);
    fake_close(&t);

    /* no row (seq2seq): the config's 1 x 2 -> 4 rows: batch 6 -> 3 */
    fake_open(&t, 4, TASK_RECORD_EMPTY, CELL_LSTM);
    fake_ckpt(&d, &r, NULL, 1, 2);
    r.batch = 0;
    prog.chunk = 6;
    task_examples_state_load(&t, &d, &prog, "c.h5");
    CU_ASSERT_PTR_NOT_NULL(task_examples_resume(&t, &prog, &old_G));
    CU_ASSERT_EQUAL(old_G, 2);
    CU_ASSERT_EQUAL(prog.chunk, 3);
    fake_close(&t);
}

static void test_labels(void)
{
    static char *const mine[2] = {"neg", "pos"}, *const swapped[2] = {"pos", "neg"};
    uint64_t G = 4;
    train_progress prog = {0};
    ckpt_data d;
    ckpt_rank r;
    task t;
    fake_open(&t, 4, TASK_RECORD_GLOBAL_BATCH, CELL_GRU);
    task_examples_copy_labels(&t, 2, mine);
    CU_ASSERT_EQUAL(t.n_labels, 2);
    CU_ASSERT_PTR_NOT_EQUAL(t.labels[0], mine[0]);
    fake_ckpt(&d, &r, &G, 1, 4);
    d.task.n_labels = 2;
    d.task.labels = (char **)mine;
    task_examples_state_load(&t, &d, &prog, "x.h5");
    CU_ASSERT(task_examples_labels_match(&t));
    d.task.labels = (char **)swapped;
    task_examples_state_load(&t, &d, &prog, "x.h5");
    CU_ASSERT(!task_examples_labels_match(&t));
    d.task.labels = (char **)mine;
    d.task.n_labels = 1;
    task_examples_state_load(&t, &d, &prog, "x.h5");
    CU_ASSERT(!task_examples_labels_match(&t));
    fake_close(&t);
}

static void test_next(void)
{
    task t;
    fake_task *k = fake_open(&t, 4, TASK_RECORD_NEXT_BATCH, CELL_GRU);
    CU_ASSERT_EQUAL(task_examples_batches_per_epoch(&t), 3);
    train_progress prog = {0};
    prog.epoch = 0;
    prog.chunk = 2;
    CU_ASSERT_PTR_EQUAL(task_examples_next(&t, &prog), exorder_batch(&k->order, 0, 2));
    CU_ASSERT(prog.epoch == 0 && prog.chunk == 3);
    const size_t *rows = task_examples_next(&t, &prog); /* the epoch's end rolls over */
    CU_ASSERT(prog.epoch == 1 && prog.chunk == 1);
    CU_ASSERT_PTR_EQUAL(rows, exorder_batch(&k->order, 1, 0));
    fake_close(&t);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("task_examples");
    testlib_add(s, "the three record layouts", test_layouts);
    testlib_add(s, "resume: the checkpoint's global batch and the cursor", test_resume);
    testlib_add(s, "resume: labels by name and order", test_labels);
    testlib_add(s, "the cursor rolls over at an epoch's end", test_next);
    return testlib_run(argc, argv);
}
