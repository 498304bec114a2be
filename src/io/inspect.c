/* `charnn inspect`. See inspect.h. */
#include "charnn/inspect.h"

#include <math.h>

#include "charnn/ckpt.h"
#include "charnn/kernels.h"
#include "charnn/mlp.h"

static double tensor_norm(const model *m, const model_tensor *t)
{
    return sqrt(kern_sumsq(m->params + t->offset, t->size));
}

static void json_number(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "%.9g", v);
    else
        fputs("null", out);
}

int inspect_run(const inspect_options *o, FILE *out)
{
    const char *path = o->path;
    ckpt_data d;
    if (ckpt_read(path, &d) != 0)
        return -1;
    const run_config *c = &d.cfg;
    const train_progress *p = &d.prog;
    if (o->json) {
        fputs("{\"path\":", out);
        cn_json_string(out, path);
        fprintf(out, ",\"format_version\":%d,\"task\":", d.format_version);
        cn_json_string(out, d.task.task);
        fputs(",\"head\":", out);
        cn_json_string(out, d.task.head);
        fputs(",\"labels\":[", out);
        for (int i = 0; i < d.task.n_labels; i++) {
            if (i)
                fputc(',', out);
            cn_json_string(out, d.task.labels[i]);
        }
        fprintf(out, "],\"cell\":\"%s\",\"layers\":%d,\"hidden\":%d,\"embed\":%d,"
                     "\"vocab_size\":%d,\"vocab_mode\":\"%s\",\"dropout\":%g,\"seq\":%d,"
                     "\"batch\":%d,\"nranks\":%d,\"optimizer\":\"%s\",\"lr\":%g,"
                     "\"schedule\":\"%s\",\"clip\":%g,\"seed\":%llu,\"step\":%lld,\"epoch\":%lld,"
                     "\"tokens_seen\":%lld,\"skipped\":%lld,\"best_val_loss\":",
                cell_name(c->model.cell), c->model.layers, c->model.hidden, c->model.embed,
                d.voc.size, d.voc.mode == VOCAB_BYTES ? "bytes" : "codepoints",
                (double)c->model.dropout, c->seq, c->batch, c->nranks,
                optim_name(c->optim.kind), (double)c->sched.lr, sched_name(c->sched.kind),
                (double)c->clip, (unsigned long long)c->seed, (long long)p->step,
                (long long)p->epoch, (long long)p->tokens_seen, (long long)p->skipped);
        json_number(out, p->best_val);
        fputs(",\"last_val_loss\":", out);
        json_number(out, p->last_val);
        fputs(",\"last_loss\":", out);
        json_number(out, p->last_loss);
        fprintf(out, ",\"has_optimizer\":%s,\"optimizer_steps\":%lld,\"ranks_saved\":%d,"
                     "\"n_params\":%zu,\"tensors\":[",
                d.has_opt ? "true" : "false", (long long)d.opt.t, d.nranks, d.m.n_params);
        for (int i = 0; i < d.m.n_tensors; i++) {
            const model_tensor *t = &d.m.tensor[i];
            fprintf(out, "%s{\"name\":\"%s\",\"shape\":[%d", i ? "," : "", t->name, t->shape[0]);
            if (t->ndim == 2)
                fprintf(out, ",%d", t->shape[1]);
            fprintf(out, "],\"count\":%zu,\"norm\":", t->size);
            json_number(out, tensor_norm(&d.m, t));
            fputc('}', out);
        }
        fputs("]}\n", out);
    } else {
        fprintf(out, "%s: charnn checkpoint\n", path);
        fprintf(out, "  format     v%d, task %s, head %s, ", d.format_version, d.task.task,
                d.task.head);
        if (d.task.n_labels == 0)
            fprintf(out, "outputs: the vocabulary\n");
        else {
            fprintf(out, "%d labels:", d.task.n_labels);
            for (int i = 0; i < d.task.n_labels && i < 8; i++)
                fprintf(out, " %s", d.task.labels[i]);
            fprintf(out, "%s\n", d.task.n_labels > 8 ? " ..." : "");
        }
        if (c->model.layers == 0)
            fprintf(out, "  model      MLP (no recurrent stack), %d features -> %d %s -> %d "
                         "classes\n",
                    c->model.cond.dim, c->model.hidden, mlp_act_name(c->model.mlp_act),
                    c->model.head.classes);
        else
            fprintf(out, "  model      %s, %d layers x %d hidden, %s, vocabulary %d (%s), dropout "
                         "%g\n",
                    cell_name(c->model.cell), c->model.layers, c->model.hidden,
                    c->model.embed ? "embedding" : "one-hot input", d.voc.size,
                    d.voc.mode == VOCAB_BYTES ? "bytes" : "code points", (double)c->model.dropout);
        fprintf(out, "  training   seq %d, batch %d x %d rank%s, %s lr %g (%s schedule), clip %g, "
                     "seed %llu\n",
                c->seq, c->batch, c->nranks, c->nranks == 1 ? "" : "s",
                optim_name(c->optim.kind), (double)c->sched.lr, sched_name(c->sched.kind),
                (double)c->clip, (unsigned long long)c->seed);
        fprintf(out, "  data       %s (val %.3g, test %.3g)\n", c->data, c->val_frac, c->test_frac);
        fprintf(out, "  progress   step %lld, epoch %lld, %lld tokens seen, %lld skipped steps\n",
                (long long)p->step, (long long)p->epoch, (long long)p->tokens_seen,
                (long long)p->skipped);
        fprintf(out, "  losses     last train %.4f, last val %.4f, best val %.4f (nats/char)\n",
                p->last_loss, p->last_val, p->best_val);
        fprintf(out, "  state      optimizer %s (%lld updates), stream state of %d rank%s\n",
                d.has_opt ? "saved" : "absent", (long long)d.opt.t, d.nranks,
                d.nranks == 1 ? "" : "s");
        fprintf(out, "  parameters %zu\n", d.m.n_params);
        fprintf(out, "    %-20s %-14s %10s %12s\n", "tensor", "shape", "count", "norm");
        for (int i = 0; i < d.m.n_tensors; i++) {
            const model_tensor *t = &d.m.tensor[i];
            char shape[32];
            if (t->ndim == 2)
                snprintf(shape, sizeof shape, "%d x %d", t->shape[0], t->shape[1]);
            else
                snprintf(shape, sizeof shape, "%d", t->shape[0]);
            fprintf(out, "    %-20s %-14s %10zu %12.4f\n", t->name, shape, t->size,
                    tensor_norm(&d.m, t));
        }
    }
    ckpt_data_free(&d);
    return 0;
}
