/* kernels: the tensor math under the model, each fast kernel beside a naive
 * reference that the tests compare it with.
 *
 * Matrices are row-major float arrays; shapes are given as (rows, cols).
 * Fast kernels use CBLAS for products and OpenMP for elementwise loops; every
 * reduction runs in a fixed order so results do not depend on the thread count.
 * Nothing here allocates, except kern_gemm_bf16's packing buffer (below).
 *
 * Precision: the model's products (kern_gemm, kern_gemm_packed) run in FP32 or,
 * after kern_set_precision(KERN_BF16), with bf16 operands and FP32 accumulation
 * (kernels_bf16.c, AVX512_BF16). The setting is process-wide, set once before
 * any product (the CLI's --precision); everything else stays FP32. The _naive
 * references are always FP32.
 */
#ifndef CHARNN_KERNELS_H
#define CHARNN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* C (M, N) = alpha * op(A) op(B) + beta * C, op = transpose when trans_* != 0.
 * A is (M, K) or, transposed, (K, M); B is (K, N) or (N, K). */
void kern_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc);
void kern_gemm_naive(int trans_a, int trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta,
                     float *C, int ldc);

/* out (N, D) = table[ids[n], :] + bias (bias may be NULL): a one-hot input
 * times a weight matrix, without the product. */
void kern_gather_rows(float *out, const float *table, const int32_t *ids, size_t N, int D,
                      const float *bias);
void kern_gather_rows_naive(float *out, const float *table, const int32_t *ids, size_t N,
                            int D, const float *bias);

/* dtable[ids[n], :] += dout[n, :] for n < N: the backward of the gather.
 * Threads split the columns, so no two threads touch one element. */
void kern_scatter_add_rows(float *dtable, const float *dout, const int32_t *ids, size_t N,
                           int D);
void kern_scatter_add_rows_naive(float *dtable, const float *dout, const int32_t *ids,
                                 size_t N, int D);

/* Products against one weight matrix used for many steps (the recurrent
 * step's W_hh), packed once into panels (kernels_packed.c). B (K, N) is
 * W^T with W (N, K) when trans, else W (K, N). panels: 64-byte aligned, at
 * least kern_pack_floats(N, K) floats, or NULL; without it, or without
 * AVX-512, kern_gemm_packed calls kern_gemm with W as it is. */
typedef struct {
    const float *w;
    int n, k, trans, packed;
    int bf16; /* the panels hold bf16 pairs (kern_pack_bf16) */
    float *panels;
} kern_packed;
size_t kern_pack_floats(int N, int K);
/* Floats kern_pack's panels need at the precision set now: kern_pack_floats,
 * or in bf16 kern_pack_bf16_words (half as many). A buffer sized by it serves
 * while the precision stays what it was. */
size_t kern_pack_need(int N, int K);
/* 1 when this CPU runs the AVX-512 panels (checked at run time, also in a
 * portable build) and CHARNN_AVX512=0 is not set in the environment. */
int kern_packed_available(void);
/* What the step products run on, for the logs: "AVX-512 packed W_hh", or
 * "BLAS sgemm (...)" with the reason. */
const char *kern_packed_name(void);
void kern_pack(kern_packed *p, const float *w, int N, int K, int trans, float *panels);
/* C (M, N) = A (M, K) B + beta C, beta 0 or 1. With the panels, per element
 * the same sum order for any thread count and any M; the BLAS fallback gives
 * what OpenBLAS gives. */
void kern_gemm_packed(int M, const float *A, int lda, const kern_packed *p, float beta, float *C,
                      int ldc);

/* ---- bf16 (kernels_bf16.c) ---- */
typedef enum { KERN_F32 = 0, KERN_BF16 = 1 } kern_precision;
/* "f32", "bf16" */
const char *kern_precision_name(kern_precision p);
/* 0 and *out set, or -1 for an unknown name. */
int kern_precision_parse(const char *name, kern_precision *out);
/* NULL when this CPU runs the bf16 products, else the name of the first
 * instruction set it lacks ("avx512f", "avx512bw", "avx512vl", "avx512_bf16").
 * CHARNN_AVX512_BF16=0 in the environment hides avx512_bf16 (a test hook). */
const char *kern_bf16_missing(void);
/* The precision of the model's products from now on: 0, or -1 with the
 * message (cn_err) "--precision bf16 needs a CPU with AVX512_BF16 (this one has
 * no ...)". Nothing falls back: bf16 runs in bf16 or not at all. */
int kern_set_precision(kern_precision p);
kern_precision kern_get_precision(void);
/* x rounded to bf16 (nearest even, denormals to zero) and back: what the
 * products see of an operand. */
float kern_bf16_round(float x);
/* kern_gemm with both operands rounded to bf16 and FP32 sums; each element of
 * C summed in one fixed order for any thread count. Needs the CPU
 * (kern_bf16_missing() == NULL); not from inside a parallel region. Packs
 * into one buffer kept for the process, allocated on first use and grown to
 * the largest product: B's panels for 1024 k's (1024 x N bf16) and the rows of
 * A for them (64 x 1024 per thread, or all M x 1024 when trans_a). */
void kern_gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* 32-bit words of bf16 panels for B (K, N): fewer than kern_pack_floats(N, K). */
size_t kern_pack_bf16_words(int N, int K);
/* kern_pack into bf16 panels (panels: 64-byte aligned, kern_pack_floats(N, K)
 * floats); kern_pack does this itself in bf16 precision. */
void kern_pack_bf16(kern_packed *p, const float *w, int N, int K, int trans, float *panels);
/* kern_gemm_packed on bf16 panels. */
void kern_gemm_packed_bf16(int M, const float *A, int lda, const kern_packed *p, float beta,
                           float *C, int ldc);

/* y (N, D) += bias (D) on every row. */
void kern_add_bias(float *y, const float *bias, size_t N, int D);
/* dbias (D) += sum over rows of dy (N, D), each column summed in row order. */
void kern_sum_rows(float *dbias, const float *dy, size_t N, int D);
void kern_sum_rows_naive(float *dbias, const float *dy, size_t N, int D);

/* Softmax cross-entropy over rows of logits (N, V) with targets y (N).
 * Overwrites logits with the probabilities and writes each row's loss in nats
 * to row_loss (N). Returns the sum of the row losses (summed in row order). */
double kern_softmax_xent(float *logits, const int32_t *y, size_t N, int V, float *row_loss);
double kern_softmax_xent_naive(float *logits, const int32_t *y, size_t N, int V,
                               float *row_loss);
/* Turn the probabilities left by kern_softmax_xent into dlogits = scale * (p - onehot(y)). */
void kern_softmax_xent_backward(float *probs, const int32_t *y, size_t N, int V, float scale);

/* The index of the largest of p's n entries, the lowest one on a tie. */
int kern_argmax(const float *p, int n);

/* Sum of squares of x (n), in double, in an order independent of the thread count. */
double kern_sumsq(const float *x, size_t n);
/* x *= s */
void kern_scale(float *x, size_t n, float s);
/* 1 if every element is finite. */
int kern_all_finite(const float *x, size_t n);

/* Inverted dropout, mask from (key, index): out = x / keep or 0, in place.
 * p is the drop probability; p == 0 leaves x untouched. */
void kern_dropout(float *x, size_t n, float p, uint64_t key);
/* Multiply dx by the same mask kern_dropout(·, n, p, key) used. */
void kern_dropout_backward(float *dx, size_t n, float p, uint64_t key);

#endif
