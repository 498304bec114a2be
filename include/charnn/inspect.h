/* inspect: what a checkpoint holds, for people and for scripts. */
#ifndef CHARNN_INSPECT_H
#define CHARNN_INSPECT_H

#include <stdio.h>

typedef struct {
    const char *path; /* a model or checkpoint written by train */
    int json;         /* 1: one JSON object instead of the table */
} inspect_options;

/* Read and verify the checkpoint at o->path and print to out its metadata,
 * hyperparameters, progress, and per-tensor parameter counts and norms. 0,
 * or -1 with a message. */
int inspect_run(const inspect_options *o, FILE *out);

#endif
