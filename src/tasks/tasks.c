/* The table of tasks. See task.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "charnn/task.h"

static const task_ops *const task_table[] = {&task_lm_ops,       &task_classify_ops,
                                             &task_tag_ops,      &task_seq2seq_ops,
                                             &task_generate_ops, &task_features_ops};
enum { TASK_KINDS = sizeof task_table / sizeof task_table[0] };

const task_ops *task_find(const char *name)
{
    for (int i = 0; i < TASK_KINDS; i++)
        if (strcmp(task_table[i]->name, name) == 0)
            return task_table[i];
    return NULL;
}

const char *task_names(void)
{
    static char names[256];
    if (!names[0])
        for (int i = 0; i < TASK_KINDS; i++) {
            size_t n = strlen(names);
            snprintf(names + n, sizeof names - n, "%s%s", i ? " | " : "", task_table[i]->name);
        }
    return names;
}

void task_say(const task *t, const char *fmt, ...)
{
    if (t->rank != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}
