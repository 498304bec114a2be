/* Hidden-state traces. See trace.h. */
#include "charnn/trace.h"

#include <stdio.h>

int trace_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "charnn: trace is not available in this build yet\n");
    return 1;
}
