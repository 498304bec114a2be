/* Text features of a token stream, the streaming statistics accumulator and
 * the decay fit of `charnn analyze`. See analyze.h. */
#include "charnn/analyze.h"

#include <cblas.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/vocab.h"

static const char *const builtin_names[ANALYZE_N_BUILTIN] = {
    "quote", "bracket_depth", "line_pos", "comment", "word_start"};

const char *analyze_builtin_name(int k)
{
    CHARNN_ASSERT(k >= 0 && k < ANALYZE_N_BUILTIN);
    return builtin_names[k];
}

int analyze_feature_parse(const char *arg, analyze_feature_spec *out)
{
    const char *eq = strchr(arg, '=');
    if (!eq)
        return cn_err("--feature '%s' is not NAME=REGEX", arg);
    size_t len = (size_t)(eq - arg);
    if (len == 0)
        return cn_err("--feature '%s' has an empty NAME", arg);
    if (len >= ANALYZE_NAME_MAX)
        return cn_err("--feature '%s': NAME is longer than %d characters", arg,
                      ANALYZE_NAME_MAX - 1);
    if (eq[1] == '\0')
        return cn_err("--feature '%s' has an empty REGEX", arg);
    for (size_t i = 0; i < len; i++) {
        char ch = arg[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        if (!ok)
            return cn_err("--feature '%s': NAME may hold letters, digits, '_' and '-' only", arg);
    }
    memcpy(out->name, arg, len);
    out->name[len] = '\0';
    for (int k = 0; k < ANALYZE_N_BUILTIN; k++)
        if (strcmp(out->name, builtin_names[k]) == 0)
            return cn_err("--feature '%s': '%s' is a built-in feature", arg, out->name);
    out->regex = eq + 1;
    return 0;
}

static int regex_compile(regex_t *re, const analyze_feature_spec *spec)
{
    int rc = regcomp(re, spec->regex, REG_EXTENDED | REG_NEWLINE);
    if (rc != 0) {
        char msg[256];
        regerror(rc, re, msg, sizeof msg);
        for (char *p = msg; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        return cn_err("invalid regex in --feature '%s=%s': %s", spec->name, spec->regex, msg);
    }
    return 0;
}

int analyze_feature_check(const analyze_feature_spec *spec)
{
    regex_t re;
    if (regex_compile(&re, spec) != 0)
        return -1;
    regfree(&re);
    return 0;
}

/* ---- features ------------------------------------------------------------ */

struct analyze_features {
    uint32_t *symbols;
    int n_symbols, bytes_mode;
    int64_t n;
    analyze_token_reader read;
    void *ctx;
    int n_user;
    char name[ANALYZE_MAX_FEATURES][ANALYZE_NAME_MAX];
    regex_t re[ANALYZE_MAX_USER_FEATURES];
    int64_t scan[ANALYZE_MAX_USER_FEATURES];     /* where the next search starts */
    int64_t mark_end[ANALYZE_MAX_USER_FEATURES]; /* tokens before this are inside a match */
    /* the built-in features' state after the previous token */
    int64_t next; /* the position the next block must start at */
    analyze_text_state st;
    /* the block's window of tokens and its UTF-8 text */
    int32_t *tok;
    size_t tok_cap;
    char *text;
    size_t text_cap;
    size_t *boff; /* (tok_cap + 1) byte offset of each window token */
};

static int is_alnum_symbol(uint32_t c, int bytes_mode)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (bytes_mode)
        return 1; /* parts of multi-byte characters */
    if ((c >= 0x80 && c <= 0xBF) || c == 0xD7 || c == 0xF7)
        return 0; /* C1 controls, Latin-1 signs */
    if ((c >= 0x2000 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F) ||
        (c >= 0xFE10 && c <= 0xFE1F) || (c >= 0xFE30 && c <= 0xFE6F) ||
        (c >= 0xFF00 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) ||
        (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65) ||
        (c >= 0x1F000 && c <= 0x1FAFF))
        return 0; /* punctuation, symbols, arrows, box drawing, emoji */
    return 1;
}

void analyze_text_state_init(analyze_text_state *s)
{
    memset(s, 0, sizeof *s);
    s->prev_symbol = '\n';
}

/* Advance s over one symbol c; the features after it into row (NULL: none). */
static void text_state_step(analyze_text_state *s, uint32_t c, int bytes_mode, double *row)
{
    if (c == '"')
        s->quote = !s->quote;
    if (c == '(' || c == '[' || c == '{')
        s->depth++;
    else if ((c == ')' || c == ']' || c == '}') && s->depth > 0)
        s->depth--;
    s->col = c == '\n' ? 0 : s->col + 1;
    if (!s->in_comment) {
        if (s->prev_slash && c == '*') {
            s->in_comment = 1;
            s->prev_star = 0; /* the opening star does not close: slash-star-slash stays open */
        }
        s->prev_slash = c == '/';
    } else if (s->prev_star && c == '/') {
        s->in_comment = 0;
        s->prev_slash = 0;
    } else {
        s->prev_star = c == '*';
    }
    int alnum = is_alnum_symbol(c, bytes_mode);
    if (row) {
        row[ANALYZE_FEAT_QUOTE] = s->quote;
        row[ANALYZE_FEAT_BRACKET_DEPTH] = s->depth;
        row[ANALYZE_FEAT_LINE_POS] = (double)s->col;
        row[ANALYZE_FEAT_COMMENT] = s->in_comment;
        row[ANALYZE_FEAT_WORD_START] = alnum && !s->prev_alnum;
    }
    s->prev_alnum = alnum;
    s->prev_symbol = c;
}

void analyze_text_state_feed(analyze_text_state *s, const uint32_t *symbols, int64_t n,
                             int bytes_mode)
{
    for (int64_t i = 0; i < n; i++)
        text_state_step(s, symbols[i], bytes_mode, NULL);
}

void analyze_features_start_from(analyze_features *f, const analyze_text_state *s)
{
    CHARNN_ASSERT(f->next == 0);
    f->st = *s;
}

int analyze_features_open(analyze_features **out, const uint32_t *symbols, int n_symbols,
                          int bytes_mode, int64_t n_tokens, analyze_token_reader read,
                          void *ctx, const analyze_feature_spec *user, int n_user)
{
    CHARNN_ASSERT(n_symbols >= 0 && n_tokens >= 0 && read != NULL);
    *out = NULL;
    if (n_user < 0 || n_user > ANALYZE_MAX_USER_FEATURES)
        return cn_err("too many --feature flags (at most %d)", ANALYZE_MAX_USER_FEATURES);
    for (int j = 0; j < n_user; j++)
        for (int k = 0; k < j; k++)
            if (strcmp(user[j].name, user[k].name) == 0)
                return cn_err("--feature '%s' is given twice", user[j].name);
    analyze_features *f = cn_xcalloc(1, sizeof *f);
    f->symbols = cn_xmalloc((size_t)(n_symbols ? n_symbols : 1) * sizeof *f->symbols);
    if (n_symbols)
        memcpy(f->symbols, symbols, (size_t)n_symbols * sizeof *symbols);
    f->n_symbols = n_symbols;
    f->bytes_mode = bytes_mode;
    f->n = n_tokens;
    f->read = read;
    f->ctx = ctx;
    analyze_text_state_init(&f->st);
    for (int k = 0; k < ANALYZE_N_BUILTIN; k++)
        snprintf(f->name[k], ANALYZE_NAME_MAX, "%s", builtin_names[k]);
    for (int j = 0; j < n_user; j++) {
        if (regex_compile(&f->re[j], &user[j]) != 0) {
            analyze_features_free(f);
            return -1;
        }
        f->n_user = j + 1;
        snprintf(f->name[ANALYZE_N_BUILTIN + j], ANALYZE_NAME_MAX, "%s", user[j].name);
    }
    *out = f;
    return 0;
}

int analyze_features_count(const analyze_features *f)
{
    return ANALYZE_N_BUILTIN + f->n_user;
}

const char *analyze_features_name(const analyze_features *f, int j)
{
    CHARNN_ASSERT(j >= 0 && j < analyze_features_count(f));
    return f->name[j];
}

void analyze_features_free(analyze_features *f)
{
    if (!f)
        return;
    for (int j = 0; j < f->n_user; j++)
        regfree(&f->re[j]);
    free(f->symbols);
    free(f->tok);
    free(f->text);
    free(f->boff);
    free(f);
}

/* Read the window's tokens, check their ids and, when regexes need it, encode
 * the window as UTF-8 with the byte offset of every token. */
static int load_window(analyze_features *f, int64_t start, int64_t count, int need_text)
{
    if ((size_t)count > f->tok_cap) {
        f->tok_cap = (size_t)count;
        f->tok = cn_xrealloc(f->tok, f->tok_cap * sizeof *f->tok);
        f->boff = cn_xrealloc(f->boff, (f->tok_cap + 1) * sizeof *f->boff);
    }
    if (count && f->read(f->ctx, start, count, f->tok) != 0)
        return -1;
    for (int64_t i = 0; i < count; i++)
        if (f->tok[i] < 0 || f->tok[i] >= f->n_symbols)
            return cn_err("token %lld is id %d, outside the vocabulary of %d symbols",
                          (long long)(start + i), (int)f->tok[i], f->n_symbols);
    if (!need_text)
        return 0;
    if ((size_t)count * 4 + 1 > f->text_cap) {
        f->text_cap = (size_t)count * 4 + 1;
        f->text = cn_xrealloc(f->text, f->text_cap);
    }
    size_t used = 0;
    for (int64_t i = 0; i < count; i++) {
        uint32_t c = f->symbols[f->tok[i]];
        f->boff[i] = used;
        if (c == 0) {
            memcpy(f->text + used, "\xEF\xBF\xBD", 3);
            used += 3;
        } else if (f->bytes_mode) {
            f->text[used++] = (char)c;
        } else {
            used += (size_t)utf8_encode(c, f->text + used);
        }
    }
    f->boff[count] = used;
    f->text[used] = '\0';
    return 0;
}

/* Index of the window token holding byte b: the last i with boff[i] <= b. */
static int64_t token_at_byte(const size_t *boff, int64_t count, size_t b)
{
    int64_t lo = 0, hi = count; /* boff[lo] <= b < boff[hi] */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (boff[mid] <= b)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* The first window token starting at or after byte b (count if none). */
static int64_t token_from_byte(const size_t *boff, int64_t count, size_t b)
{
    int64_t lo = 0, hi = count;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (boff[mid] < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* User feature j over [start, end) of a window [start, wend): out column
 * `col` of rows with stride `stride`. */
static void regex_block(analyze_features *f, int j, int64_t start, int64_t end, int64_t wend,
                        double *out, int stride, int col)
{
    int64_t wcount = wend - start;
    for (int64_t t = start; t < end; t++)
        out[(t - start) * stride + col] = t < f->mark_end[j] ? 1.0 : 0.0;
    while (f->scan[j] < end) {
        int64_t scan = f->scan[j];
        uint32_t before = scan > start ? f->symbols[f->tok[scan - 1 - start]] : f->st.prev_symbol;
        int eflags = (before == '\n' ? 0 : REG_NOTBOL) | (wend < f->n ? REG_NOTEOL : 0);
        size_t o = f->boff[scan - start];
        regmatch_t m;
        if (regexec(&f->re[j], f->text + o, 1, &m, eflags) != 0) {
            f->scan[j] = end;
            break;
        }
        size_t ms = o + (size_t)m.rm_so, me = o + (size_t)m.rm_eo;
        int64_t ts = start + token_at_byte(f->boff, wcount, ms);
        int64_t te = me > ms ? start + token_from_byte(f->boff, wcount, me) : ts;
        if (ts >= end) {
            f->scan[j] = ts; /* found again from the next block */
            break;
        }
        for (int64_t t = ts; t < te && t < end; t++)
            out[(t - start) * stride + col] = 1.0;
        if (te > f->mark_end[j])
            f->mark_end[j] = te;
        f->scan[j] = te > ts ? te : ts + 1;
    }
}

int analyze_features_next(analyze_features *f, int64_t start, int rows, double *out)
{
    CHARNN_ASSERT(start == f->next && rows >= 0 && start + rows <= f->n);
    int64_t end = start + rows;
    int64_t wend = end;
    if (f->n_user) {
        wend = end + ANALYZE_REGEX_LOOKAHEAD;
        if (wend > f->n)
            wend = f->n;
    }
    if (load_window(f, start, wend - start, f->n_user > 0) != 0)
        return -1;
    int stride = analyze_features_count(f);
    /* the line start the regexes see is the symbol before the block: take it
     * before the built-in pass moves it on */
    uint32_t before = f->st.prev_symbol;
    for (int64_t t = start; t < end; t++)
        text_state_step(&f->st, f->symbols[f->tok[t - start]], f->bytes_mode,
                        out + (t - start) * stride);
    uint32_t after = f->st.prev_symbol;
    f->st.prev_symbol = before;
    for (int j = 0; j < f->n_user; j++)
        regex_block(f, j, start, end, wend, out, stride, ANALYZE_N_BUILTIN + j);
    f->st.prev_symbol = after;
    f->next = end;
    return 0;
}

typedef struct {
    const int32_t *ids;
} memory_tokens;

static int read_memory_tokens(void *ctx, int64_t start, int64_t count, int32_t *out)
{
    const memory_tokens *m = ctx;
    memcpy(out, m->ids + start, (size_t)count * sizeof *out);
    return 0;
}

int analyze_text_features(const char *text, size_t len, const analyze_feature_spec *user,
                          int n_user, double **out, int64_t *n_out, int *count)
{
    vocab v;
    *out = NULL;
    if (vocab_build(&v, (const uint8_t *)text, len, VOCAB_CODEPOINTS, "text") != 0)
        return -1;
    int32_t *ids = cn_xmalloc((len ? len : 1) * sizeof *ids);
    size_t n = 0;
    analyze_features *f = NULL;
    int rc = -1;
    if (vocab_encode(&v, (const uint8_t *)text, len, ids, &n, "text") != 0)
        goto done;
    memory_tokens m = {ids};
    if (analyze_features_open(&f, v.symbols, v.size, 0, (int64_t)n, read_memory_tokens, &m, user,
                              n_user) != 0)
        goto done;
    *count = analyze_features_count(f);
    *out = cn_xcalloc(n ? n * (size_t)*count : 1, sizeof **out);
    *n_out = (int64_t)n;
    /* in blocks of 7, so block boundaries are crossed even in short tests */
    for (size_t s = 0; s < n; s += 7) {
        int rows = (int)(n - s < 7 ? n - s : 7);
        if (analyze_features_next(f, (int64_t)s, rows, *out + s * (size_t)*count) != 0) {
            free(*out);
            *out = NULL;
            goto done;
        }
    }
    rc = 0;
done:
    analyze_features_free(f);
    free(ids);
    vocab_free(&v);
    return rc;
}

/* ---- streaming statistics ------------------------------------------------ */

void analyze_stats_init(analyze_stats *s, int units, int features, double lo, double hi)
{
    CHARNN_ASSERT(units > 0 && features >= 0);
    memset(s, 0, sizeof *s);
    s->units = units;
    s->features = features;
    s->lo = lo > hi ? -INFINITY : lo;
    s->hi = lo > hi ? INFINITY : hi;
    size_t u = (size_t)units, fe = (size_t)(features ? features : 1);
    s->shift = cn_xcalloc(u, sizeof *s->shift);
    s->sum = cn_xcalloc(u, sizeof *s->sum);
    s->sumsq = cn_xcalloc(u, sizeof *s->sumsq);
    s->left = cn_xcalloc(u, sizeof *s->left);
    s->right = cn_xcalloc(u, sizeof *s->right);
    s->fshift = cn_xcalloc(fe, sizeof *s->fshift);
    s->fsum = cn_xcalloc(fe, sizeof *s->fsum);
    s->fsumsq = cn_xcalloc(fe, sizeof *s->fsumsq);
    s->cross = cn_xcalloc(fe * u, sizeof *s->cross);
}

void analyze_stats_add(analyze_stats *s, const float *x, const double *f, int rows)
{
    if (rows <= 0)
        return;
    int U = s->units, F = s->features;
    if (rows > s->cap) {
        s->cap = rows;
        s->xbuf = cn_xrealloc(s->xbuf, (size_t)rows * (size_t)U * sizeof *s->xbuf);
        if (F)
            s->fbuf = cn_xrealloc(s->fbuf, (size_t)rows * (size_t)F * sizeof *s->fbuf);
    }
    if (s->n == 0) {
        for (int u = 0; u < U; u++)
            s->shift[u] = x[u];
        for (int j = 0; j < F; j++)
            s->fshift[j] = f[j];
    }
    for (int t = 0; t < rows; t++) {
        const float *xr = x + (size_t)t * (size_t)U;
        double *dr = s->xbuf + (size_t)t * (size_t)U;
        for (int u = 0; u < U; u++) {
            double d = (double)xr[u] - s->shift[u];
            dr[u] = d;
            s->sum[u] += d;
            s->sumsq[u] += d * d;
            s->left[u] += xr[u] < s->lo;
            s->right[u] += xr[u] > s->hi;
        }
        for (int j = 0; j < F; j++) {
            double d = f[(size_t)t * (size_t)F + (size_t)j] - s->fshift[j];
            s->fbuf[(size_t)t * (size_t)F + (size_t)j] = d;
            s->fsum[j] += d;
            s->fsumsq[j] += d * d;
        }
    }
    if (F)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, U, rows, 1.0, s->fbuf, F, s->xbuf,
                    U, 1.0, s->cross, U);
    s->n += rows;
}

double analyze_stats_mean(const analyze_stats *s, int unit)
{
    return s->n ? s->shift[unit] + s->sum[unit] / (double)s->n : NAN;
}

static double shifted_std(double sum, double sumsq, int64_t n)
{
    if (n == 0)
        return NAN;
    double m = sum / (double)n, v = sumsq / (double)n - m * m;
    return v > 0 ? sqrt(v) : 0.0;
}

double analyze_stats_std(const analyze_stats *s, int unit)
{
    return shifted_std(s->sum[unit], s->sumsq[unit], s->n);
}

double analyze_stats_feature_mean(const analyze_stats *s, int feature)
{
    return s->n ? s->fshift[feature] + s->fsum[feature] / (double)s->n : NAN;
}

double analyze_stats_feature_std(const analyze_stats *s, int feature)
{
    return shifted_std(s->fsum[feature], s->fsumsq[feature], s->n);
}

double analyze_stats_left(const analyze_stats *s, int unit)
{
    return s->n ? (double)s->left[unit] / (double)s->n : NAN;
}

double analyze_stats_right(const analyze_stats *s, int unit)
{
    return s->n ? (double)s->right[unit] / (double)s->n : NAN;
}

double analyze_stats_r(const analyze_stats *s, int feature, int unit)
{
    double n = (double)s->n;
    double sx = s->sum[unit], sf = s->fsum[feature];
    double vx = n * s->sumsq[unit] - sx * sx;
    double vf = n * s->fsumsq[feature] - sf * sf;
    /* relative to the scale of the sums: rounding leaves a tiny positive
     * variance for a unit that is constant up to float noise */
    if (s->n < 2 || !(vx > 1e-12 * n * s->sumsq[unit]) || !(vf > 1e-12 * n * s->fsumsq[feature]))
        return NAN;
    double r = (n * s->cross[(size_t)feature * (size_t)s->units + (size_t)unit] - sf * sx) /
               sqrt(vx * vf);
    return r > 1.0 ? 1.0 : r < -1.0 ? -1.0 : r;
}

void analyze_stats_free(analyze_stats *s)
{
    free(s->shift);
    free(s->sum);
    free(s->sumsq);
    free(s->left);
    free(s->right);
    free(s->fshift);
    free(s->fsum);
    free(s->fsumsq);
    free(s->cross);
    free(s->xbuf);
    free(s->fbuf);
    memset(s, 0, sizeof *s);
}

int analyze_fit_decay(const double *norm, int n, double *rate, double *log_a)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (int d = 0; d < n; d++) {
        if (!(norm[d] > 0) || !isfinite(norm[d]))
            continue;
        double y = log(norm[d]);
        sx += d;
        sy += y;
        sxx += (double)d * d;
        sxy += d * y;
        m++;
    }
    double den = m * sxx - sx * sx;
    if (m < 2 || !(den > 0)) {
        *rate = NAN;
        *log_a = NAN;
        return m;
    }
    double slope = (m * sxy - sx * sy) / den;
    *rate = -slope;
    *log_a = (sy - slope * sx) / m;
    return m;
}

int analyze_best_feature(const analyze_report *r)
{
    int best = -1;
    for (int j = 0; j < r->n_features; j++) {
        const analyze_feature_result *fr = &r->feature[j];
        if (fr->n_top && isfinite(fr->top[0].r) &&
            (best < 0 || fabs(fr->top[0].r) > fabs(r->feature[best].top[0].r)))
            best = j;
    }
    return best;
}
