/* The table of heads and what every head shares: names, the output
 * distribution callers read, and the loss mask. See head.h. */
#include <string.h>

#include "charnn/common.h"
#include "charnn/head.h"

static const struct {
    head_kind kind;
    const head_ops *ops;
} head_table[] = {
    {HEAD_LM, &head_lm_ops},
    {HEAD_CLASSIFY, &head_classify_ops},
    {HEAD_SEQ2SEQ, &head_seq2seq_ops},
    {HEAD_TAG, &head_tag_ops},
};
enum { HEAD_KINDS = sizeof head_table / sizeof head_table[0] };

static const char *const pool_names[] = {"last", "mean", "max"};
enum { POOL_KINDS = sizeof pool_names / sizeof pool_names[0] };

const head_ops *head_for(head_kind kind)
{
    for (int i = 0; i < HEAD_KINDS; i++)
        if (head_table[i].kind == kind)
            return head_table[i].ops;
    return NULL;
}

int head_parse(const char *name)
{
    for (int i = 0; i < HEAD_KINDS; i++)
        if (strcmp(head_table[i].ops->name, name) == 0)
            return (int)head_table[i].kind;
    return -1;
}

const char *head_name(head_kind kind)
{
    const head_ops *ops = head_for(kind);
    return ops ? ops->name : "unknown";
}

int head_pool_parse(const char *name)
{
    for (int i = 0; i < POOL_KINDS; i++)
        if (strcmp(pool_names[i], name) == 0)
            return i;
    return -1;
}

const char *head_pool_name(head_pool pool)
{
    return (int)pool >= 0 && (int)pool < POOL_KINDS ? pool_names[pool] : "unknown";
}

const float *head_output(const model_work *w, size_t n)
{
    CHARNN_ASSERT(n < (size_t)w->head.n);
    return w->head.prob + n * (size_t)w->head.K;
}

float head_target_prob(const model_work *w, size_t n, int32_t y)
{
    CHARNN_ASSERT(y >= 0 && y < w->head.K);
    return head_output(w, n)[y];
}

double head_mask_loss(const model_work *w, size_t n)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (w->mask)
            w->head.loss[i] *= w->mask[i];
        total += w->head.loss[i];
    }
    return total;
}

void head_mask_rows(const model_work *w, float *dlogits, size_t n, int K)
{
    if (!w->mask)
        return;
    for (size_t i = 0; i < n; i++) {
        const float m = w->mask[i];
        for (int k = 0; k < K; k++)
            dlogits[i * (size_t)K + k] *= m;
    }
}
