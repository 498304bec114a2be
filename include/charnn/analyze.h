/* analyze: find interpretable cells in a trace (Karpathy, Johnson and
 * Fei-Fei 2015): gate saturation, per-unit statistics, correlation of each
 * unit with text features (quotes, bracket depth, line position, comments,
 * word starts, user regexes), their change over training, gradient-flow decay,
 * as a table, JSON or a self-contained HTML page.
 *
 * Use: fill analyze_options (src/cli/cli_analyze.c does it from the flags
 * of `charnn analyze`) and call analyze_run, which reads the trace
 * (docs/trace-format.md) in blocks of steps, so memory grows with the hidden
 * size and the number of features but not with the length of the trace, and
 * fills an analyze_report that analyze_write_table / _json / _html print;
 * analyze_report_free releases it.
 *
 * The pieces underneath are public for tests: the text features of a token
 * stream (analyze_features_*), the streaming mean / std / saturation /
 * Pearson accumulator (analyze_stats_*) and the exponential-decay fit.
 *
 * Files: analyze.c (trace reading, the report, table and JSON),
 * analyze_features.c (features, accumulator, fit), analyze_html.c (the page).
 */
#ifndef CHARNN_ANALYZE_H
#define CHARNN_ANALYZE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- text features -------------------------------------------------------
 *
 * Each feature has one value per token, the state after reading that token
 * (what h_t, which has read token t, can know):
 *   quote          1 from an opening '"' up to the character before the
 *                  closing '"', 0 elsewhere (the closing quote is outside)
 *   bracket_depth  nesting of (, [ and { after this token, never below 0
 *   line_pos       characters since the last newline (0 at the newline; the
 *                  text starts as if after a newline)
 *   comment        1 from the '*' of "/ *" (written without the space) through
 *                  the '*' of the closing "* /", 0 elsewhere
 *   word_start     1 where this token is alphanumeric and the previous one is
 *                  not (or there is none); alphanumeric: ASCII letters and
 *                  digits, and characters beyond ASCII except punctuation and
 *                  symbol blocks (Latin-1 signs, U+2000-U+2BFF, CJK punctuation,
 *                  fullwidth signs, emoji)
 *   user features  1 inside a match of a POSIX extended regex (REG_NEWLINE:
 *                  '^' and '$' work per line), 0 elsewhere; matches are taken
 *                  left to right without overlap over the UTF-8 text and a
 *                  token counts when any of its bytes is matched. Matching
 *                  looks ANALYZE_REGEX_LOOKAHEAD tokens beyond each block, so
 *                  a match longer than that may be cut. U+0000 is matched as
 *                  U+FFFD (regexec stops at a NUL byte).
 * A text starts outside quotes and comments, at depth 0, as if after a
 * newline. A trace that begins mid-text (a validation split) starts from the
 * state the text before it leaves: analyze reads that text from the trace's
 * `source` at token offset `begin` (analyze_context_state) and starts the
 * features there (analyze_features_start_from). Without it a trace that
 * begins inside a quote would see the quote feature inverted throughout.
 */
enum {
    ANALYZE_FEAT_QUOTE,
    ANALYZE_FEAT_BRACKET_DEPTH,
    ANALYZE_FEAT_LINE_POS,
    ANALYZE_FEAT_COMMENT,
    ANALYZE_FEAT_WORD_START,
    ANALYZE_N_BUILTIN
};

#define ANALYZE_MAX_FEATURES 32
#define ANALYZE_MAX_USER_FEATURES (ANALYZE_MAX_FEATURES - ANALYZE_N_BUILTIN)
#define ANALYZE_MAX_LAYERS 16
#define ANALYZE_NAME_MAX 48
#define ANALYZE_REGEX_LOOKAHEAD 65536

/* Name of built-in feature k ("quote", "bracket_depth", ...). */
const char *analyze_builtin_name(int k);

/* A user feature: --feature NAME=REGEX. */
typedef struct {
    char name[ANALYZE_NAME_MAX];
    const char *regex; /* borrowed */
} analyze_feature_spec;

/* Split "NAME=REGEX" (NAME: letters, digits, '_', '-'; not a built-in name).
 * 0, or -1 with a message. */
int analyze_feature_parse(const char *arg, analyze_feature_spec *out);
/* Compile the regex once to check it. 0, or -1 with the regex library's message. */
int analyze_feature_check(const analyze_feature_spec *spec);

/* Reads count tokens from position start into out; 0 or -1 with a message. */
typedef int (*analyze_token_reader)(void *ctx, int64_t start, int64_t count, int32_t *out);

typedef struct analyze_features analyze_features;

/* Features of a text of n_tokens tokens whose ids index symbols (n_symbols
 * code points, or bytes when bytes_mode), read through `read`. The built-in
 * features come first, then the user's in order. 0, or -1 with a message. */
int analyze_features_open(analyze_features **out, const uint32_t *symbols, int n_symbols,
                          int bytes_mode, int64_t n_tokens, analyze_token_reader read,
                          void *ctx, const analyze_feature_spec *user, int n_user);
int analyze_features_count(const analyze_features *f);
const char *analyze_features_name(const analyze_features *f, int j);
/* The values at positions [start, start + rows), row-major out (rows, count).
 * Blocks must come in order from 0 without gaps. 0, or -1 with a message
 * (a failed read or a token id outside the vocabulary). */
int analyze_features_next(analyze_features *f, int64_t start, int rows, double *out);
void analyze_features_free(analyze_features *f);

/* The built-in features' state after a stretch of text (and the symbol
 * before the next one, which tells a regex whether '^' matches there). */
typedef struct {
    int quote, depth, in_comment, prev_slash, prev_star, prev_alnum;
    int64_t col;
    uint32_t prev_symbol;
} analyze_text_state;

/* The state at the start of a text. */
void analyze_text_state_init(analyze_text_state *s);
/* Advance s over n symbols (code points, or bytes when bytes_mode). */
void analyze_text_state_feed(analyze_text_state *s, const uint32_t *symbols, int64_t n,
                             int bytes_mode);
/* Start f's features from s instead of the start of a text; before the first block. */
void analyze_features_start_from(analyze_features *f, const analyze_text_state *s);

/* The state the text before a trace leaves: the first `begin` tokens of
 * `source` (a text file or prepared corpus, opened with the trace's
 * vocabulary; a relative path that does not open is also tried next to
 * trace_path), after checking that the source still holds the trace's text
 * at `begin` (its first tokens, through read / ctx). 0, or -1 with a message
 * saying why the context cannot be had. */
int analyze_context_state(const char *source, const char *trace_path, int64_t begin,
                          const uint32_t *symbols, int n_symbols, int bytes_mode,
                          int64_t n_tokens, analyze_token_reader read, void *ctx,
                          analyze_text_state *out);

/* The unit the page opens on: the feature whose top unit has the highest |r|
 * (the first such feature on a tie), or -1 when no feature correlates. */
struct analyze_report;
int analyze_best_feature(const struct analyze_report *r);

/* All features of a UTF-8 text (invalid UTF-8 is an error): *out (n, count)
 * with *n_out tokens and *count features, caller frees *out. 0 or -1. */
int analyze_text_features(const char *text, size_t len, const analyze_feature_spec *user,
                          int n_user, double **out, int64_t *n_out, int *count);

/* ---- streaming statistics ------------------------------------------------
 *
 * Per unit: mean, standard deviation (population), the fraction of rows
 * below lo and above hi (saturation; lo > hi counts nothing), and Pearson's r
 * with each of `features` columns. Sums are kept in double around the first
 * row's values (shifted sums), so long traces and large cell states do not
 * cancel. */
typedef struct {
    int units, features;
    int64_t n;
    double lo, hi;
    double *shift, *fshift;   /* (units), (features): the first row */
    double *sum, *sumsq;      /* (units) of x - shift */
    double *fsum, *fsumsq;    /* (features) of f - fshift */
    double *cross;            /* (features, units) of (f - fshift)(x - shift) */
    int64_t *left, *right;    /* (units) rows below lo, above hi */
    double *xbuf, *fbuf;      /* scratch, (cap, units) and (cap, features) */
    int cap;
} analyze_stats;

void analyze_stats_init(analyze_stats *s, int units, int features, double lo, double hi);
/* Add rows of x (rows, units) and f (rows, features; NULL when features == 0). */
void analyze_stats_add(analyze_stats *s, const float *x, const double *f, int rows);
double analyze_stats_mean(const analyze_stats *s, int unit);
double analyze_stats_std(const analyze_stats *s, int unit);
double analyze_stats_feature_mean(const analyze_stats *s, int feature);
double analyze_stats_feature_std(const analyze_stats *s, int feature);
double analyze_stats_left(const analyze_stats *s, int unit);
double analyze_stats_right(const analyze_stats *s, int unit);
/* Pearson r of unit with feature; NaN when either is constant. */
double analyze_stats_r(const analyze_stats *s, int feature, int unit);
void analyze_stats_free(analyze_stats *s);

/* Least squares of log(norm[d]) = log_a - rate * d over the d in [0, n) with a
 * finite norm[d] > 0. Returns the points used; with fewer than 2, rate and
 * log_a are NaN. */
int analyze_fit_decay(const double *norm, int n, double *rate, double *log_a);

/* ---- the analysis ------------------------------------------------------- */

typedef struct {
    const char *trace;                /* TRACE: kind "text" or "probe" */
    const char *probe;                /* --probe, or NULL */
    const analyze_feature_spec *user; /* --feature, n_user of them */
    int n_user;
    int top_k;                        /* units kept per feature */
    int unit_layer;                   /* --unit L:U[:h|c]; unit_layer < 0: not given */
    int unit_index;
    int unit_state;                   /* 0 h, 1 c */
    int excerpt;                      /* characters of text kept for the page */
} analyze_options;

/* The states and gates of one layer: "h", "c" (LSTM), then the gates in the
 * order of the trace's `gates` attribute. */
#define ANALYZE_MAX_SERIES 6

typedef struct {
    char name[4];
    int is_gate;
    double lo, hi;        /* saturation thresholds: 0.1 / 0.9 of the gate's range */
    double *mean, *std;   /* (H) */
    double *left, *right; /* (H) saturated fractions; gates only */
    double *r;            /* (F, H) Pearson r with each feature; h and c only, NaN = undefined */
} analyze_series;

/* One unit: layer, series (0 h, 1 c), index; r with the feature it was picked for. */
typedef struct {
    int layer, series, unit;
    double r;
} analyze_pick;

typedef struct {
    char name[ANALYZE_NAME_MAX];
    char *regex;       /* owned; NULL for a built-in */
    double mean, std;
    int n_top;
    analyze_pick *top; /* (n_top) by |r|, largest first, over every layer and state */
    int n_top_by[ANALYZE_MAX_LAYERS][2];
    analyze_pick *top_by[ANALYZE_MAX_LAYERS][2]; /* the same within layer k, state h / c */
} analyze_feature_result;

typedef struct {
    double *norm;     /* (chunk_len) mean over chunks of the norm at distance d */
    int n_fit;
    double rate;      /* per step; NaN without a fit */
    double log_a;
    double half_life; /* ln 2 / rate; INFINITY when rate <= 0 */
} analyze_decay;

typedef struct analyze_report {
    /* the trace */
    char trace[1024], kind[16], cell[16], model[1024], source[1024], vocab_mode[16];
    int64_t model_step;
    int layers, hidden, vocab_size;
    int64_t n_steps;      /* positions analysed */
    int64_t probe_step;   /* a probe trace as TRACE: the training step analysed (its last) */
    /* features and units */
    int n_features;
    analyze_feature_result feature[ANALYZE_MAX_FEATURES];
    int n_series;         /* per layer */
    analyze_series series[ANALYZE_MAX_LAYERS][ANALYZE_MAX_SERIES];
    analyze_pick unit;    /* the shown unit: --unit, or the best find (analyze_best_feature) */
    int has_unit;
    int unit_feature;     /* the feature the shown unit was picked for; -1 with --unit */
    /* where the text features start (text traces that begin mid-text) */
    int64_t begin;        /* token offset of the trace's first step in `source` */
    int context;          /* ANALYZE_CONTEXT_* */
    char context_note[1200]; /* why the context is missing (ANALYZE_CONTEXT_MISSING) */
    /* the excerpt for the page: the first n_excerpt symbols and activations */
    int64_t n_excerpt;
    uint32_t *excerpt;    /* (n_excerpt) code points, or bytes when bytes_mode */
    int bytes_mode;
    float *excerpt_unit;  /* (n_excerpt) activation of `unit` */
    float *excerpt_top;   /* (F, n_excerpt) of each feature's top unit (NaN without one) */
    /* gradient flow (/grads) */
    int has_grads, has_dc, chunk_len;
    int64_t n_chunks;
    analyze_decay dh[ANALYZE_MAX_LAYERS], dc[ANALYZE_MAX_LAYERS];
    /* correlation over training (a probe trace) */
    int has_probe;
    char probe[1024];
    int n_probe_steps;
    int64_t *probe_steps;  /* (S) */
    analyze_pick probe_unit[ANALYZE_MAX_FEATURES];
    double *probe_r;       /* (F, S) r of probe_unit[j] with feature j at each entry */
} analyze_report;

enum {
    ANALYZE_CONTEXT_NONE,   /* the trace starts its text (begin 0, or a probe trace) */
    ANALYZE_CONTEXT_READ,   /* the features start from the text before begin */
    ANALYZE_CONTEXT_MISSING /* that text could not be read: they start from nothing */
};

/* Run the analysis. 0, or -1 with a message (an unreadable or malformed
 * trace: "'x.h5' is not a charnn trace ..."); ANALYZE_BAD_UNIT when --unit
 * is outside the trace's layers or units. */
#define ANALYZE_BAD_UNIT (-2)
int analyze_run(const analyze_options *o, analyze_report *r);
void analyze_report_free(analyze_report *r);

void analyze_write_table(FILE *out, const analyze_report *r);
/* One JSON object (undefined numbers are null):
 *   trace, kind, cell, layers, hidden, vocab_size, vocab_mode, model, model_step, source,
 *   n_steps, [probe_step],
 *   features:     [{name, regex, mean, std}]
 *   correlations: [{feature, top: [{layer, state, unit, r}], by_layer: [{layer, state, top}]}]
 *   unit:         {layer, state, unit, feature (picked for, or null with --unit), mean, std,
 *                  r: {feature: r}} or null
 *   context:      {begin, read (true / false / null when not needed), note}
 *   saturation:   [{layer, gate, lo, hi, left_mean, right_mean, left: [H], right: [H]}]
 *   unit_stats:   [{layer, series, mean: [H], std: [H], r: {feature: [H]} (h and c)}]
 *   gradient_flow: {chunk_len, chunks, layers: [{layer, dh: {norm: [L], fit_points, rate,
 *                  half_life}, dc: ...}]} or null
 *   probe:        {trace, steps: [S], series: [{feature, layer, state, unit, r: [S]}]} or null */
void analyze_write_json(FILE *out, const analyze_report *r);
/* The self-contained page (inline CSS and SVG, no scripts). 0, or -1 with a message. */
int analyze_write_html(const char *path, const analyze_report *r);

/* A classifier's trace (kind "classify", trace.h): accuracy of the
 * prediction after 25/50/75/100% of each example, where it settles on its
 * final class, and the top_k units whose final state correlates most with
 * each class; printed to out as a table or one JSON object. 1 when path is
 * not a classify trace (nothing printed), 0, or -1 with a message. */
int analyze_classify_run(const char *path, int top_k, int json, FILE *out);
/* The top_k units of largest |r| for each of K targets from corr (L, D, K, H)
 * (layer l's, direction d's (K, H) correlations of its H units with the K
 * targets, named by names; D = 2 for a bidirectional model, d = 1 reverse):
 * one line per target, or with json one object {"name":[{"layer","direction",
 * "unit","r"}, ...], ...}. only: -1 lists every target; 0 or 1: the targets
 * are classes, and with two only that one is listed (the other's r is its
 * negative). */
void analyze_units_write(FILE *out, int json, const char *const *names, int K, int only,
                         const float *corr, int L, int D, int H, int top_k);
/* `charnn analyze` on a trace of a conditional generator (kind "generate":
 * loss per character overall and per class, the units that follow each
 * condition class or dimension) or of a vector classifier (kind "features":
 * accuracy, loss, the units that follow each class); trace_cond.h. 1 when
 * path is neither (nothing printed), 0, or -1 with a message. */
int analyze_cond_run(const char *path, int top_k, int json, FILE *out);

/* A tagger's trace (kind "tag", trace.h): the accuracy over the characters
 * with a gold tag, per tag how often it is true, predicted and found, for a
 * spacing model (tags B, I) the precision, recall and F1 of the predicted
 * spaces, and the top_k units (layer, direction, unit) whose h correlates
 * most with each tag (two tags: one list, the other's r is the negative);
 * printed to out as a table or one JSON object. 1 when path is not a tag
 * trace (nothing printed), 0, or -1 with a message. */
int analyze_tag_run(const char *path, int top_k, int json, FILE *out);

#endif
