/* Attention of decoder states over encoder states; see attention.h. Scores
 * and contexts are per-row GEMMs on the time-major tensors (leading dimension
 * B * H); the additive score is a loop (its tanh is recomputed in backward
 * rather than stored: T * S * B * H floats would dwarf the rest). */
#include "attention.h"

#include <math.h>
#include <string.h>

#include "charnn/kernels.h"
#include "charnn/seq2seq.h"

static int row_len(const attn_io *io, const attn_params *p, int b)
{
    return io->len ? io->len[b] : p->S;
}

static float additive_score(const attn_params *p, const float *k, const float *q)
{
    float e = 0.0f;
    for (int j = 0; j < p->H; j++)
        e += p->v[j] * tanhf(k[j] + q[j]);
    return e;
}

void attn_forward(const attn_params *p, const attn_io *io)
{
    const int T = p->T, S = p->S, B = p->B, H = p->H;
    const int ld = B * H;
    const float *keys = io->enc;
    if (p->kind == SEQ2SEQ_ATTN_GENERAL) {
        kern_gemm(0, 1, S * B, H, H, 1.0f, io->enc, H, p->wa, H, 0.0f, io->keys, H);
        keys = io->keys;
    } else if (p->kind == SEQ2SEQ_ATTN_ADDITIVE) {
        kern_gemm(0, 1, S * B, H, H, 1.0f, io->enc, H, p->we, H, 0.0f, io->keys, H);
        for (size_t n = 0; n < (size_t)T * B; n++)
            memcpy(io->q + n * H, p->bd, (size_t)H * sizeof(float));
        kern_gemm(0, 1, T * B, H, H, 1.0f, io->dec, H, p->wd, H, 1.0f, io->q, H);
    }
    if (p->kind == SEQ2SEQ_ATTN_ADDITIVE) {
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                for (int s = 0; s < row_len(io, p, b); s++)
                    io->a[((size_t)b * T + t) * S + s] =
                        additive_score(p, io->keys + ((size_t)s * B + b) * H,
                                       io->q + ((size_t)t * B + b) * H);
    } else {
        for (int b = 0; b < B; b++)
            kern_gemm(0, 1, T, S, H, 1.0f, io->dec + (size_t)b * H, ld, keys + (size_t)b * H, ld,
                      0.0f, io->a + (size_t)b * T * S, S);
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const int n = row_len(io, p, b);
        for (int t = 0; t < T; t++) {
            float *r = io->a + ((size_t)b * T + t) * S;
            float mx = -INFINITY, sum = 0.0f;
            for (int s = 0; s < n; s++)
                mx = r[s] > mx ? r[s] : mx;
            for (int s = 0; s < n; s++) {
                r[s] = expf(r[s] - mx);
                sum += r[s];
            }
            for (int s = 0; s < n; s++)
                r[s] /= sum;
            for (int s = n; s < S; s++)
                r[s] = 0.0f;
        }
    }
    for (int b = 0; b < B; b++)
        kern_gemm(0, 0, T, H, S, 1.0f, io->a + (size_t)b * T * S, S, io->enc + (size_t)b * H, ld,
                  0.0f, io->ctx + (size_t)b * H, ld);
}

void attn_backward(const attn_params *p, const attn_grads *g, const attn_io *io,
                   const float *dctx, float *ddec, float *denc, float *da, float *dkeys,
                   float *dq, float *dv)
{
    const int T = p->T, S = p->S, B = p->B, H = p->H;
    const int ld = B * H;
    for (int b = 0; b < B; b++) {
        const float *ab = io->a + (size_t)b * T * S;
        kern_gemm(0, 1, T, S, H, 1.0f, dctx + (size_t)b * H, ld, io->enc + (size_t)b * H, ld,
                  0.0f, da + (size_t)b * T * S, S);
        kern_gemm(1, 0, S, H, T, 1.0f, ab, S, dctx + (size_t)b * H, ld, 1.0f,
                  denc + (size_t)b * H, ld);
    }
    /* softmax backward: dscore = a * (da - sum_s a da); 0 over padding */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const float *ar = io->a + ((size_t)b * T + t) * S;
            float *dr = da + ((size_t)b * T + t) * S;
            float dot = 0.0f;
            for (int s = 0; s < S; s++)
                dot += ar[s] * dr[s];
            for (int s = 0; s < S; s++)
                dr[s] = ar[s] * (dr[s] - dot);
        }
    }
    if (p->kind == SEQ2SEQ_ATTN_DOT || p->kind == SEQ2SEQ_ATTN_GENERAL) {
        const float *keys = p->kind == SEQ2SEQ_ATTN_DOT ? io->enc : io->keys;
        float *dk = p->kind == SEQ2SEQ_ATTN_DOT ? denc : dkeys;
        const float beta = p->kind == SEQ2SEQ_ATTN_DOT ? 1.0f : 0.0f;
        for (int b = 0; b < B; b++) {
            const float *ds = da + (size_t)b * T * S;
            kern_gemm(0, 0, T, H, S, 1.0f, ds, S, keys + (size_t)b * H, ld, 1.0f,
                      ddec + (size_t)b * H, ld);
            kern_gemm(1, 0, S, H, T, 1.0f, ds, S, io->dec + (size_t)b * H, ld, beta,
                      dk + (size_t)b * H, ld);
        }
        if (p->kind == SEQ2SEQ_ATTN_GENERAL) {
            kern_gemm(1, 0, H, H, S * B, 1.0f, dkeys, H, io->enc, H, 1.0f, g->wa, H);
            kern_gemm(0, 0, S * B, H, H, 1.0f, dkeys, H, p->wa, H, 1.0f, denc, H);
        }
        return;
    }
    memset(dkeys, 0, (size_t)S * B * H * sizeof(float));
    memset(dq, 0, (size_t)T * B * H * sizeof(float));
    memset(dv, 0, (size_t)B * H * sizeof(float));
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *dvb = dv + (size_t)b * H;
        for (int t = 0; t < T; t++) {
            const float *q = io->q + ((size_t)t * B + b) * H;
            float *dqr = dq + ((size_t)t * B + b) * H;
            for (int s = 0; s < row_len(io, p, b); s++) {
                const float ds = da[((size_t)b * T + t) * S + s];
                if (ds == 0.0f)
                    continue;
                const float *k = io->keys + ((size_t)s * B + b) * H;
                float *dkr = dkeys + ((size_t)s * B + b) * H;
                for (int j = 0; j < H; j++) {
                    const float z = tanhf(k[j] + q[j]);
                    const float gz = ds * p->v[j] * (1.0f - z * z);
                    dvb[j] += ds * z;
                    dkr[j] += gz;
                    dqr[j] += gz;
                }
            }
        }
    }
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++)
            g->v[j] += dv[(size_t)b * H + j];
    kern_gemm(1, 0, H, H, S * B, 1.0f, dkeys, H, io->enc, H, 1.0f, g->we, H);
    kern_gemm(0, 0, S * B, H, H, 1.0f, dkeys, H, p->we, H, 1.0f, denc, H);
    kern_gemm(1, 0, H, H, T * B, 1.0f, dq, H, io->dec, H, 1.0f, g->wd, H);
    kern_sum_rows(g->bd, dq, (size_t)T * B, H);
    kern_gemm(0, 0, T * B, H, H, 1.0f, dq, H, p->wd, H, 1.0f, ddec, H);
}
