/* `charnn analyze` on a classifier's trace (kind "classify", written by
 * trace_classify.c): how accurate the prefixes are, where each example's
 * prediction settles, and which units' final states follow each class (the
 * "sentiment unit"). See analyze.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/analyze.h"
#include "charnn/common.h"
#include "charnn/h5io.h"
#include "charnn/kernels.h"

static int read_i64(const char *path, hid_t fid, const char *name, int64_t *out)
{
    int rc = h5io_attr_read_num(path, fid, "", name, H5T_NATIVE_INT64, 1, out);
    if (rc == 0)
        return cn_err("'%s' is damaged: missing attribute %s", path, name);
    return rc < 0 ? -1 : 0;
}

typedef struct {
    int layer, dir, unit; /* dir: 0 forward, 1 reverse */
    float r;
} unit_r;

static int unit_cmp(const void *pa, const void *pb)
{
    const unit_r *a = pa, *b = pb;
    float x = fabsf(a->r), y = fabsf(b->r);
    return x > y ? -1 : x < y;
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

void analyze_units_write(FILE *out, int json, const char *const *names, int K, int only,
                         const float *corr, int L, int D, int H, int top_k)
{
    const int n_units = L * D * H, top = top_k < n_units ? top_k : n_units;
    const int one = only >= 0 && K == 2; /* two classes: one's r is minus the other's */
    unit_r *units = cn_xmalloc((size_t)n_units * sizeof *units);
    if (json)
        fprintf(out, "{");
    for (int c = one ? only : 0, i = 0; c < (one ? only + 1 : K); c++, i++) {
        int n = 0;
        for (int l = 0; l < L; l++)
            for (int d = 0; d < D; d++)
                for (int j = 0; j < H; j++)
                    units[n++] = (unit_r){l, d, j, corr[(((size_t)l * D + d) * K + c) * H + j]};
        qsort(units, (size_t)n, sizeof *units, unit_cmp);
        if (json) {
            fprintf(out, "%s", i ? "," : "");
            cn_json_string(out, names[c]);
            fprintf(out, ":[");
            for (int k = 0; k < top; k++)
                fprintf(out, "%s{\"layer\":%d,\"direction\":\"%s\",\"unit\":%d,\"r\":%.4f}",
                        k ? "," : "", units[k].layer, units[k].dir ? "reverse" : "forward",
                        units[k].unit, (double)units[k].r);
            fprintf(out, "]");
        } else {
            fprintf(out, "  %-16s", names[c]);
            for (int k = 0; k < top; k++)
                fprintf(out, "%s layer %d%s unit %d r %+.3f", k ? "," : "", units[k].layer,
                        units[k].dir ? " reverse" : "", units[k].unit, (double)units[k].r);
            fprintf(out, "\n");
        }
    }
    if (json)
        fprintf(out, "}");
    free(units);
}

int analyze_classify_run(const char *path, int top_k, int json, FILE *out)
{
    /* anything but a readable classify trace goes to the text analysis, which
       names what is wrong with it in its own words */
    h5io_silence();
    if (!h5io_is_hdf5(path))
        return 1;
    hid_t fid = h5io_file_open(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fid < 0)
        return 1;
    char kind[32] = "", cell[16] = "", model[1024] = "";
    int rc = h5io_attr_read_str(path, fid, "", "kind", kind, sizeof kind);
    if (rc <= 0 || strcmp(kind, "classify") != 0) {
        H5Fclose(fid);
        return 1;
    }
    int64_t L = 0, H = 0, C = 0, E = 0, N = 0, step = 0, D = 1;
    char **names = NULL;
    size_t n_names = 0;
    int64_t *off = NULL;
    int32_t *lab = NULL;
    float *prob = NULL, *corr = NULL;
    double *settle = NULL;
    rc = -1;
    if (read_i64(path, fid, "layers", &L) < 0 || read_i64(path, fid, "hidden", &H) < 0 ||
        read_i64(path, fid, "n_classes", &C) < 0 || read_i64(path, fid, "n_examples", &E) < 0 ||
        read_i64(path, fid, "n_steps", &N) < 0 || read_i64(path, fid, "model_step", &step) < 0 ||
        h5io_attr_read_str(path, fid, "", "cell", cell, sizeof cell) < 0 ||
        h5io_attr_read_str(path, fid, "", "model", model, sizeof model) < 0 ||
        h5io_attr_read_num(path, fid, "", "directions", H5T_NATIVE_INT64, 1, &D) < 0)
        goto done; /* no directions attribute: a trace of before bidirectional models, 1 */
    if (L < 1 || H < 1 || C < 2 || E < 1 || N < E || D < 1 || D > 2) {
        cn_err("'%s' is damaged: a classify trace of %lld layers, %lld units, %lld directions, "
               "%lld classes, %lld examples and %lld steps",
               path, (long long)L, (long long)H, (long long)D, (long long)C, (long long)E,
               (long long)N);
        goto done;
    }
    off = cn_xmalloc((size_t)(E + 1) * sizeof *off);
    lab = cn_xmalloc((size_t)E * sizeof *lab);
    prob = cn_xmalloc((size_t)N * (size_t)C * sizeof *prob);
    corr = cn_xmalloc((size_t)(L * D) * (size_t)C * (size_t)H * sizeof *corr);
    hsize_t de1[1] = {(hsize_t)E + 1}, de[1] = {(hsize_t)E}, dp[2] = {(hsize_t)N, (hsize_t)C},
            dc[2] = {(hsize_t)C, (hsize_t)H};
    if (h5io_dataset_read(path, fid, "/offsets", H5T_NATIVE_INT64, H5T_INTEGER, 1, de1, off) < 0 ||
        h5io_dataset_read(path, fid, "/labels", H5T_NATIVE_INT32, H5T_INTEGER, 1, de, lab) < 0 ||
        h5io_dataset_read(path, fid, "/prob", H5T_NATIVE_FLOAT, H5T_FLOAT, 2, dp, prob) < 0 ||
        h5io_dataset_read_strings(path, fid, "/label_names", &names, &n_names) < 0)
        goto done;
    for (int64_t l = 0; l < L; l++)
        for (int64_t d = 0; d < D; d++) {
            char name[64];
            snprintf(name, sizeof name, "/layer%lld/label_corr%s", (long long)l,
                     d ? "_reverse" : "");
            if (h5io_dataset_read(path, fid, name, H5T_NATIVE_FLOAT, H5T_FLOAT, 2, dc,
                                  corr + (size_t)(l * D + d) * C * H) < 0)
                goto done;
        }
    if ((int64_t)n_names != C || off[0] != 0 || off[E] != N) {
        cn_err("'%s' is damaged: its offsets or label names do not match its attributes", path);
        goto done;
    }
    /* prefixes: accuracy after 25/50/75/100% of each example; where the
     * prediction settles on its final class */
    static const double frac[4] = {0.25, 0.5, 0.75, 1.0};
    int64_t right[4] = {0, 0, 0, 0};
    settle = cn_xmalloc((size_t)E * sizeof *settle);
    double settle_sum = 0.0;
    for (int64_t e = 0; e < E; e++) {
        const int64_t b = off[e], n = off[e + 1] - b;
        if (n < 1 || off[e + 1] > N || lab[e] < 0 || lab[e] >= C) {
            cn_err("'%s' is damaged: example %lld has bad offsets or label", path, (long long)e);
            goto done;
        }
        for (int f = 0; f < 4; f++) {
            int64_t t = (int64_t)ceil(frac[f] * (double)n) - 1;
            right[f] += kern_argmax(prob + (size_t)(b + t) * C, (int)C) == lab[e];
        }
        const int final = kern_argmax(prob + (size_t)(b + n - 1) * C, (int)C);
        int64_t t = n - 1;
        while (t > 0 && kern_argmax(prob + (size_t)(b + t - 1) * C, (int)C) == final)
            t--;
        settle[e] = (double)(t + 1) / (double)n;
        settle_sum += settle[e];
    }
    qsort(settle, (size_t)E, sizeof *settle, cmp_double);
    const double settle_median = settle[E / 2];
    if (json) {
        fprintf(out, "{\"trace\":");
        cn_json_string(out, path);
        fprintf(out, ",\"kind\":\"classify\",\"model\":");
        cn_json_string(out, model);
        fprintf(out, ",\"model_step\":%lld,\"examples\":%lld,\"steps\":%lld,\"classes\":%lld,"
                     "\"prefix_accuracy\":{",
                (long long)step, (long long)E, (long long)N, (long long)C);
        for (int f = 0; f < 4; f++)
            fprintf(out, "%s\"%.2f\":%.6f", f ? "," : "", frac[f], (double)right[f] / (double)E);
        fprintf(out, "},\"settle_mean\":%.6f,\"settle_median\":%.6f,\"units\":",
                settle_sum / (double)E, settle_median);
    } else {
        fprintf(out, "trace '%s' (classify; %s, %lld x %lld%s, model '%s' at step %lld): %lld "
                     "examples, %lld characters, %lld classes\n",
                path, cell, (long long)L, (long long)H, D == 2 ? ", bidirectional" : "", model,
                (long long)step, (long long)E, (long long)N, (long long)C);
        fprintf(out, "accuracy of the prediction after 25%% / 50%% / 75%% / all of each example: "
                     "%.4f / %.4f / %.4f / %.4f\n",
                (double)right[0] / E, (double)right[1] / E, (double)right[2] / E,
                (double)right[3] / E);
        fprintf(out, "the prediction settles on its final class after %.0f%% of an example on "
                     "average (median %.0f%%)\n",
                100.0 * settle_sum / (double)E, 100.0 * settle_median);
        fprintf(out, "units whose final state follows a class (Pearson r over the examples)%s:\n",
                C == 2 ? "; with two classes the other class's r is the negative" : "");
    }
    analyze_units_write(out, json, (const char *const *)names, (int)C, 1, corr, (int)L, (int)D,
                        (int)H, top_k);
    if (json)
        fprintf(out, "}\n");
    rc = 0;
done:
    H5Fclose(fid);
    if (names)
        h5io_strings_free(names, n_names);
    free(off);
    free(lab);
    free(prob);
    free(corr);
    free(settle);
    return rc;
}
