/* Fast kernels (CBLAS + OpenMP) and their naive references. See kernels.h. */
#include "charnn/kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cellmath.h"
#include "charnn/common.h"

void kern_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (kern_get_precision() == KERN_BF16) {
        kern_gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
                ldc);
}

void kern_gemm_naive(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                float a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += (double)a * (double)b;
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
    }
}

void kern_gather_rows(float *out, const float *table, const int32_t *ids, size_t N, int D,
                      const float *bias)
{
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *row = table + (size_t)ids[n] * D;
        float *o = out + n * D;
        if (bias) {
#pragma omp simd
            for (int d = 0; d < D; d++)
                o[d] = row[d] + bias[d];
        } else {
            memcpy(o, row, (size_t)D * sizeof *o);
        }
    }
}

void kern_gather_rows_naive(float *out, const float *table, const int32_t *ids, size_t N, int D,
                            const float *bias)
{
    for (size_t n = 0; n < N; n++)
        for (int d = 0; d < D; d++)
            out[n * D + d] = table[(size_t)ids[n] * D + d] + (bias ? bias[d] : 0.0f);
}

/* Threads own disjoint column blocks and walk all rows in order, so the sums
 * are race-free and do not depend on the thread count. */
void kern_scatter_add_rows(float *dtable, const float *dout, const int32_t *ids, size_t N, int D)
{
    enum { COLS = 64 };
    int nblocks = (D + COLS - 1) / COLS;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblocks; blk++) {
        int d0 = blk * COLS, d1 = d0 + COLS < D ? d0 + COLS : D;
        for (size_t n = 0; n < N; n++) {
            float *dst = dtable + (size_t)ids[n] * D;
            const float *src = dout + n * D;
#pragma omp simd
            for (int d = d0; d < d1; d++)
                dst[d] += src[d];
        }
    }
}

void kern_scatter_add_rows_naive(float *dtable, const float *dout, const int32_t *ids, size_t N,
                                 int D)
{
    for (size_t n = 0; n < N; n++)
        for (int d = 0; d < D; d++)
            dtable[(size_t)ids[n] * D + d] += dout[n * D + d];
}

void kern_add_bias(float *y, const float *bias, size_t N, int D)
{
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        float *r = y + n * D;
#pragma omp simd
        for (int d = 0; d < D; d++)
            r[d] += bias[d];
    }
}

void kern_sum_rows(float *dbias, const float *dy, size_t N, int D)
{
    enum { COLS = 64 };
    int nblocks = (D + COLS - 1) / COLS;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblocks; blk++) {
        int d0 = blk * COLS, d1 = d0 + COLS < D ? d0 + COLS : D;
        float acc[COLS];
        for (int d = d0; d < d1; d++)
            acc[d - d0] = 0.0f;
        for (size_t n = 0; n < N; n++) {
            const float *r = dy + n * D;
#pragma omp simd
            for (int d = d0; d < d1; d++)
                acc[d - d0] += r[d];
        }
        for (int d = d0; d < d1; d++)
            dbias[d] += acc[d - d0];
    }
}

void kern_sum_rows_naive(float *dbias, const float *dy, size_t N, int D)
{
    for (int d = 0; d < D; d++) {
        double acc = 0.0;
        for (size_t n = 0; n < N; n++)
            acc += dy[n * D + d];
        dbias[d] += (float)acc;
    }
}

double kern_softmax_xent(float *logits, const int32_t *y, size_t N, int V, float *row_loss)
{
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        float *z = logits + n * V;
        float mx = z[0];
        for (int v = 1; v < V; v++)
            mx = z[v] > mx ? z[v] : mx;
        float zy = y ? z[y[n]] - mx : 0.0f;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int v = 0; v < V; v++) {
            z[v] = cn_expf(z[v] - mx);
            sum += z[v];
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int v = 0; v < V; v++)
            z[v] *= inv;
        /* -log p_y = log(sum exp(z - max)) - (z_y - max) */
        row_loss[n] = y ? logf(sum) - zy : 0.0f;
    }
    double total = 0.0;
    for (size_t n = 0; n < N; n++)
        total += row_loss[n];
    return total;
}

int kern_argmax(const float *p, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (p[i] > p[best])
            best = i;
    return best;
}

double kern_softmax_xent_naive(float *logits, const int32_t *y, size_t N, int V, float *row_loss)
{
    double total = 0.0;
    for (size_t n = 0; n < N; n++) {
        float *z = logits + n * V;
        double mx = z[0];
        for (int v = 1; v < V; v++)
            if (z[v] > mx)
                mx = z[v];
        double sum = 0.0;
        for (int v = 0; v < V; v++)
            sum += exp((double)z[v] - mx);
        double loss = y ? log(sum) - ((double)z[y[n]] - mx) : 0.0;
        for (int v = 0; v < V; v++)
            z[v] = (float)(exp((double)z[v] - mx) / sum);
        row_loss[n] = (float)loss;
        total += row_loss[n];
    }
    return total;
}

void kern_softmax_xent_backward(float *probs, const int32_t *y, size_t N, int V, float scale)
{
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        float *p = probs + n * V;
        p[y[n]] -= 1.0f;
#pragma omp simd
        for (int v = 0; v < V; v++)
            p[v] *= scale;
    }
}

/* Fixed blocks summed separately, then combined in block order: the same
 * result for any number of threads. */
double kern_sumsq(const float *x, size_t n)
{
    enum { BLOCKS = 256 };
    double part[BLOCKS];
    size_t per = (n + BLOCKS - 1) / BLOCKS;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < BLOCKS; b++) {
        size_t i0 = (size_t)b * per, i1 = i0 + per < n ? i0 + per : n;
        double acc = 0.0;
        for (size_t i = i0; i < i1; i++)
            acc += (double)x[i] * (double)x[i];
        part[b] = acc;
    }
    double total = 0.0;
    for (int b = 0; b < BLOCKS; b++)
        total += part[b];
    return total;
}

void kern_scale(float *x, size_t n, float s)
{
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++)
        x[i] *= s;
}

int kern_all_finite(const float *x, size_t n)
{
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad)
    for (size_t i = 0; i < n; i++)
        bad |= !isfinite(x[i]);
    return !bad;
}

void kern_dropout(float *x, size_t n, float p, uint64_t key)
{
    if (p <= 0.0f)
        return;
    float keep = 1.0f - p, scale = 1.0f / keep;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        x[i] = cn_hash_uniform(key, i) < keep ? x[i] * scale : 0.0f;
}

void kern_dropout_backward(float *dx, size_t n, float p, uint64_t key)
{
    kern_dropout(dx, n, p, key);
}
