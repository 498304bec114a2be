/* --init-from: a fresh run (step 0, new optimizer state, the schedule from its
 * start) whose parameters start from a trained model's. See trainer.h.
 *
 * Before the task opens the data, the source model decides the shape (cell,
 * layers, hidden, embed; a flag that disagrees is an error naming both) and
 * the vocabulary: the model's, or with --extend-vocab the sorted union of the
 * model's and the data's symbols. Without it, a symbol of the data the model
 * cannot represent is an error naming the file, line and symbol.
 *
 * After the model is built and initialised uniformly, every tensor the source
 * has under the same name is copied: the recurrent stack as it is, the rows of
 * the vocabulary-indexed tensors (embedding.weight, one-hot weight_ih_l0, and
 * the language model's decoder) by symbol, so an extended vocabulary keeps the
 * uniform init in the rows of its new symbols. A head of another kind (a
 * classifier started from a language model) or over other labels starts
 * fresh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/ckpt.h"
#include "charnn/corpus.h"
#include "charnn/data.h"
#include "charnn/examples.h"
#include "charnn/mlp.h"
#include "trainer.h"

/* The shape flags given on the command line must agree with the model's. */
static int check_shape(const run_config *c, const model_config *a, const char *path)
{
    if ((c->given & CONFIG_GIVEN_CELL) && c->model.cell != a->cell)
        return cn_err("--init-from '%s' has cell %s, this run asks for --cell %s", path,
                      cell_name(a->cell), cell_name(c->model.cell));
    if ((c->given & CONFIG_GIVEN_LAYERS) && c->model.layers != a->layers)
        return cn_err("--init-from '%s' has %d layers, this run asks for --layers %d", path,
                      a->layers, c->model.layers);
    if ((c->given & CONFIG_GIVEN_HIDDEN) && c->model.hidden != a->hidden)
        return cn_err("--init-from '%s' has hidden size %d, this run asks for --hidden %d", path,
                      a->hidden, c->model.hidden);
    if ((c->given & CONFIG_GIVEN_EMBED) && c->model.embed != a->embed)
        return cn_err("--init-from '%s' has embedding size %d, this run asks for --embed %d",
                      path, a->embed, c->model.embed);
    if ((c->given & CONFIG_GIVEN_ACTIVATION) && c->model.mlp_act != a->mlp_act)
        return cn_err("--init-from '%s' has activation %s, this run asks for --activation %s",
                      path, mlp_act_name(a->mlp_act), mlp_act_name(c->model.mlp_act));
    return 0;
}

/* The sorted union of a and b into out. */
static int vocab_union(vocab *out, const vocab *a, const vocab *b)
{
    uint32_t *s = cn_xmalloc(((size_t)a->size + (size_t)b->size) * sizeof *s);
    int i = 0, j = 0, n = 0;
    while (i < a->size || j < b->size) {
        if (j >= b->size || (i < a->size && a->symbols[i] < b->symbols[j]))
            s[n++] = a->symbols[i++];
        else if (i >= a->size || b->symbols[j] < a->symbols[i])
            s[n++] = b->symbols[j++];
        else {
            s[n++] = a->symbols[i++];
            j++;
        }
    }
    int rc = vocab_from_symbols(out, a->mode, s, n);
    free(s);
    return rc;
}

/* The symbols of the training data into dv: a text file's (with the text
 * itself in *text, for the line of an error), a prepared corpus's vocabulary. */
static int data_symbols(const run_config *c, vocab_mode mode, vocab *dv, uint8_t **text,
                        size_t *len)
{
    *text = NULL;
    if (corpus_is_prepared(c->data)) {
        data_source src;
        data_splits sp;
        memset(dv, 0, sizeof *dv);
        if (data_source_open_prepared(&src, c->data, dv, &sp) != 0)
            return -1;
        data_source_close(&src);
        if (dv->mode != mode)
            return cn_err("'%s' is a %s corpus, the --init-from model has a %s vocabulary",
                          c->data, dv->mode == VOCAB_BYTES ? "byte" : "code-point",
                          mode == VOCAB_BYTES ? "byte" : "code-point");
        return 0;
    }
    if (data_read_file(c->data, text, len) != 0)
        return -1;
    return vocab_build(dv, *text, *len, mode, c->data);
}

/* The first symbol of dv outside mv, as an error (prepared corpora have no
 * lines to name). */
static int missing_symbol(const vocab *mv, const vocab *dv, const char *data)
{
    for (int i = 0; i < dv->size; i++)
        if (vocab_id(mv, dv->symbols[i]) < 0) {
            char where[CONFIG_PATH_MAX + 32];
            snprintf(where, sizeof where, "'%s' (a prepared corpus)", data);
            return vocab_err_missing_at(mv, where, dv->symbols[i]);
        }
    return 0;
}

int train_init_read(trainer *t, ckpt_data *src)
{
    run_config *c = &t->cfg;
    const char *path = c->init_from;
    vocab dv, ext;
    uint8_t *text = NULL;
    size_t len = 0;
    memset(&dv, 0, sizeof dv);
    memset(&ext, 0, sizeof ext);
    int rc = -1;
    if (ckpt_verify(path, NULL) != 0 || ckpt_read(path, src) != 0)
        return cn_err_context("--init-from");
    if (check_shape(c, &src->cfg.model, path) != 0)
        return -1;
    if ((c->given & CONFIG_GIVEN_BYTES) && c->vocab_mode != src->voc.mode)
        return cn_err("--init-from '%s' has a %s vocabulary, this run asks for %s", path,
                      src->voc.mode == VOCAB_BYTES ? "byte" : "code-point",
                      c->vocab_mode == VOCAB_BYTES ? "--bytes" : "code points");
    c->model.cell = src->cfg.model.cell;
    c->model.layers = src->cfg.model.layers;
    c->model.hidden = src->cfg.model.hidden;
    c->model.embed = src->cfg.model.embed;
    c->model.mlp_act = src->cfg.model.mlp_act;
    c->vocab_mode = src->voc.mode;
    if (strcmp(c->task, CKPT_TASK_LM) != 0) {
        /* tasks of examples read them with the model's vocabulary (examples_open maps the
         * file's ids and names a symbol it lacks); --extend-vocab adds the file's symbols */
        if (c->extend_vocab) {
            if (!examples_is_examples_file(c->data)) {
                cn_err("--extend-vocab with --task %s needs an examples file (charnn prepare "
                       "--task %s), not '%s'",
                       c->task, c->task, c->data);
                goto done;
            }
            examples_file ex;
            if (examples_open(&ex, c->data, &dv) != 0)
                goto done;
            examples_close(&ex);
            rc = vocab_union(&t->voc, &src->voc, &dv);
            goto done;
        }
        rc = vocab_from_symbols(&t->voc, src->voc.mode, src->voc.symbols, src->voc.size);
        goto done;
    }
    if (data_symbols(c, src->voc.mode, &dv, &text, &len) != 0)
        goto done;
    if (c->extend_vocab) {
        if (vocab_union(&ext, &src->voc, &dv) != 0)
            goto done;
        if (!text && !vocab_equal(&ext, &dv)) {
            cn_err("'%s' is a prepared corpus with its own token ids, which lacks symbols of "
                   "--init-from '%s': give the text file to --extend-vocab",
                   c->data, path);
            goto done;
        }
        t->voc = ext;
        memset(&ext, 0, sizeof ext);
        rc = 0;
        goto done;
    }
    if (text) {
        if (vocab_check_text(&src->voc, text, len, c->data) != 0) {
            cn_err_context("--init-from '%s' (--extend-vocab adds what it lacks)", path);
            goto done;
        }
    } else if (missing_symbol(&src->voc, &dv, c->data) != 0) {
        cn_err_context("--init-from '%s' (--extend-vocab adds what it lacks)", path);
        goto done;
    } else if (!vocab_equal(&src->voc, &dv)) {
        cn_err("'%s' is a prepared corpus with its own token ids, and its vocabulary is not "
               "the one of --init-from '%s': give the text file instead",
               c->data, path);
        goto done;
    }
    rc = vocab_from_symbols(&t->voc, src->voc.mode, src->voc.symbols, src->voc.size);
done:
    free(text);
    vocab_free(&dv);
    vocab_free(&ext);
    return rc;
}

/* Whether tensor `name` of m has one slab row per vocabulary symbol. */
static int vocab_indexed(const model *m, const char *name)
{
    if (strcmp(name, "embedding.weight") == 0)
        return 1;
    if (strcmp(name, "weight_ih_l0") == 0)
        return m->cfg.embed == 0; /* stored (V, G*H) with one-hot input */
    return m->cfg.head.kind == HEAD_LM &&
           (strcmp(name, "decoder.weight") == 0 || strcmp(name, "decoder.bias") == 0);
}

static int same_labels(const task *tk, const ckpt_data *src)
{
    if (tk->n_labels != src->task.n_labels)
        return 0;
    for (int i = 0; i < tk->n_labels; i++)
        if (strcmp(tk->labels[i], src->task.labels[i]) != 0)
            return 0;
    return 1;
}

void train_init_copy(trainer *t, const ckpt_data *src)
{
    model *m = &t->m;
    const model *s = &src->m;
    const int head_same = m->cfg.head.kind == s->cfg.head.kind &&
                          (m->cfg.head.kind == HEAD_LM || same_labels(&t->task, src));
    int copied = 0, fresh_rows = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const model_tensor *dt = &m->tensor[i];
        const model_tensor *st = model_find_tensor(s, dt->name);
        const int in_head = dt->bucket == 0;
        if (!st || (in_head && !head_same))
            continue;
        if (!vocab_indexed(m, dt->name)) {
            CHARNN_ASSERT(st->size == dt->size && st->transposed == dt->transposed);
            memcpy(m->params + dt->offset, s->params + st->offset, dt->size * sizeof(float));
            copied++;
            continue;
        }
        /* one slab row per symbol: copy each known symbol's row */
        const int V = m->cfg.vocab, SV = s->cfg.vocab;
        const size_t row = dt->size / (size_t)V;
        CHARNN_ASSERT(st->size / (size_t)SV == row);
        for (int v = 0; v < V; v++) {
            int sv = vocab_id(&src->voc, t->voc.symbols[v]);
            if (sv < 0) {
                fresh_rows++;
                continue;
            }
            memcpy(m->params + dt->offset + (size_t)v * row,
                   s->params + st->offset + (size_t)sv * row, row * sizeof(float));
        }
        copied++;
    }
    train_say(t, "initialised %d of %d tensors from '%s'%s", copied, m->n_tensors,
              t->cfg.init_from, head_same ? "" : " (the head starts fresh)");
    if (fresh_rows)
        train_say(t, "; %d new symbols start fresh", t->voc.size - src->voc.size);
    train_say(t, "\n");
}
