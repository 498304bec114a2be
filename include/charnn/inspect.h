/* inspect: what a checkpoint holds, for people and for scripts. */
#ifndef CHARNN_INSPECT_H
#define CHARNN_INSPECT_H

#include <stdio.h>

/* Read and verify the checkpoint at path and print its metadata,
 * hyperparameters, progress, and per-tensor parameter counts and norms, as a
 * table or (json != 0) one JSON object. 0, or -1 with a message. */
int inspect_run(const char *path, int json, FILE *out);

#endif
