/* cellmath: the scalar nonlinearities shared by the cell kernels (private). */
#ifndef CHARNN_CELLMATH_H
#define CHARNN_CELLMATH_H

#include <math.h>

static inline float cn_sigmoidf(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

#endif
