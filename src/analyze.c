/* Trace analysis. See analyze.h. */
#include "charnn/analyze.h"

#include <stdio.h>

int analyze_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "charnn: analyze is not available in this build yet\n");
    return 1;
}
