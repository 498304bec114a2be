/* `charnn analyze` on a tagger's trace (kind "tag", written by trace_tag.c):
 * the per-character accuracy, per tag how often it is true, predicted and
 * found, for a spacing model the precision, recall and F1 of the predicted
 * spaces, and which units' h follow each tag (for spacing: which fire before
 * a space), in either direction of a bidirectional model. See analyze.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charnn/analyze.h"
#include "charnn/common.h"
#include "charnn/h5io.h"

enum { AT_BLOCK = 65536 }; /* positions read per block */

static int read_i64(const char *path, hid_t fid, const char *name, int64_t *out)
{
    int rc = h5io_attr_read_num(path, fid, "", name, H5T_NATIVE_INT64, 1, out);
    if (rc == 0)
        return cn_err("'%s' is damaged: missing attribute %s", path, name);
    return rc < 0 ? -1 : 0;
}

/* counts (K, K): gold row, predicted column, over the characters with a gold
 * tag, read from /tags and /pred in blocks. */
static int count_tags(const char *path, hid_t fid, int64_t N, int K, int64_t *counts)
{
    int32_t *gold = cn_xmalloc(AT_BLOCK * sizeof *gold);
    int32_t *pred = cn_xmalloc(AT_BLOCK * sizeof *pred);
    const int64_t want[1] = {N};
    hid_t dg = h5io_dataset_open(path, fid, "/tags", H5P_DEFAULT, 1, want, NULL);
    hid_t dp = dg < 0 ? H5I_INVALID_HID
                      : h5io_dataset_open(path, fid, "/pred", H5P_DEFAULT, 1, want, NULL);
    int rc = dg < 0 || dp < 0 ? -1 : 0;
    for (int64_t at = 0; rc == 0 && at < N; at += AT_BLOCK) {
        hsize_t start[1] = {(hsize_t)at}, count[1] = {(hsize_t)(N - at < AT_BLOCK ? N - at
                                                                                   : AT_BLOCK)};
        if (h5io_dataset_read_box(path, "/tags", dg, H5T_NATIVE_INT32, 1, start, count,
                                  H5P_DEFAULT, gold) < 0 ||
            h5io_dataset_read_box(path, "/pred", dp, H5T_NATIVE_INT32, 1, start, count,
                                  H5P_DEFAULT, pred) < 0) {
            rc = -1;
            break;
        }
        for (hsize_t i = 0; i < count[0]; i++) {
            if (gold[i] < -1 || gold[i] >= K || pred[i] < 0 || pred[i] >= K) {
                rc = cn_err("'%s' is damaged: a tag out of range at step %lld", path,
                            (long long)(at + (int64_t)i));
                break;
            }
            if (gold[i] >= 0)
                counts[(size_t)gold[i] * K + pred[i]]++;
        }
    }
    if (dg >= 0)
        H5Dclose(dg);
    if (dp >= 0)
        H5Dclose(dp);
    free(gold);
    free(pred);
    return rc;
}

int analyze_tag_run(const char *path, int top_k, int json, FILE *out)
{
    /* anything but a readable tag trace goes on to the other analyses */
    h5io_silence();
    if (!h5io_is_hdf5(path))
        return 1;
    hid_t fid = h5io_file_open(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fid < 0)
        return 1;
    char kind[32] = "", cell[16] = "", model[1024] = "", corr_with[16] = "";
    int rc = h5io_attr_read_str(path, fid, "", "kind", kind, sizeof kind);
    if (rc <= 0 || strcmp(kind, "tag") != 0) {
        H5Fclose(fid);
        return 1;
    }
    int64_t L = 0, H = 0, D = 0, K = 0, E = 0, N = 0, step = 0, spacing = 0;
    char **names = NULL;
    size_t n_names = 0;
    float *corr = NULL;
    int64_t *counts = NULL;
    rc = -1;
    if (read_i64(path, fid, "layers", &L) < 0 || read_i64(path, fid, "hidden", &H) < 0 ||
        read_i64(path, fid, "directions", &D) < 0 || read_i64(path, fid, "n_tags", &K) < 0 ||
        read_i64(path, fid, "n_examples", &E) < 0 || read_i64(path, fid, "n_steps", &N) < 0 ||
        read_i64(path, fid, "model_step", &step) < 0 ||
        read_i64(path, fid, "spacing", &spacing) < 0 ||
        h5io_attr_read_str(path, fid, "", "cell", cell, sizeof cell) < 0 ||
        h5io_attr_read_str(path, fid, "", "model", model, sizeof model) < 0 ||
        h5io_attr_read_str(path, fid, "", "corr_with", corr_with, sizeof corr_with) < 0)
        goto done;
    if (L < 1 || L > ANALYZE_MAX_LAYERS || H < 1 || (D != 1 && D != 2) || K < 2 || K > 4096 ||
        E < 1 || N < E) {
        cn_err("'%s' is damaged: a tag trace of %lld layers, %lld units, %lld directions, %lld "
               "tags, %lld examples and %lld steps",
               path, (long long)L, (long long)H, (long long)D, (long long)K, (long long)E,
               (long long)N);
        goto done;
    }
    if (h5io_dataset_read_strings(path, fid, "/tag_names", &names, &n_names) < 0)
        goto done;
    if ((int64_t)n_names != K) {
        cn_err("'%s' is damaged: %zu tag names for %lld tags", path, n_names, (long long)K);
        goto done;
    }
    corr = cn_xmalloc((size_t)(L * D * K * H) * sizeof *corr);
    for (int64_t l = 0; l < L; l++)
        for (int64_t d = 0; d < D; d++) {
            char name[64];
            snprintf(name, sizeof name, "/layer%lld/tag_corr%s", (long long)l,
                     d ? "_reverse" : "");
            hsize_t dc[2] = {(hsize_t)K, (hsize_t)H};
            if (h5io_dataset_read(path, fid, name, H5T_NATIVE_FLOAT, H5T_FLOAT, 2, dc,
                                  corr + (size_t)(l * D + d) * K * H) < 0)
                goto done;
        }
    counts = cn_xcalloc((size_t)(K * K), sizeof *counts);
    if (count_tags(path, fid, N, (int)K, counts) != 0)
        goto done;
    int64_t tagged = 0, right = 0;
    for (int64_t g = 0; g < K; g++)
        for (int64_t p = 0; p < K; p++) {
            tagged += counts[g * K + p];
            right += g == p ? counts[g * K + p] : 0;
        }
    /* spacing: tag 0 is B, a space follows */
    const int64_t sp_hit = counts[0], sp_true = counts[0] + counts[1],
                  sp_pred = counts[0] + counts[K];
    const double prec = sp_pred ? (double)sp_hit / (double)sp_pred : 0.0,
                 rec = sp_true ? (double)sp_hit / (double)sp_true : 0.0,
                 f1 = prec + rec > 0.0 ? 2.0 * prec * rec / (prec + rec) : 0.0;
    if (json) {
        fprintf(out, "{\"trace\":");
        cn_json_string(out, path);
        fprintf(out, ",\"kind\":\"tag\",\"model\":");
        cn_json_string(out, model);
        fprintf(out, ",\"model_step\":%lld,\"cell\":\"%s\",\"layers\":%lld,\"hidden\":%lld,"
                     "\"directions\":%lld,\"examples\":%lld,\"steps\":%lld,\"tagged\":%lld,"
                     "\"accuracy\":",
                (long long)step, cell, (long long)L, (long long)H, (long long)D, (long long)E,
                (long long)N, (long long)tagged);
        if (tagged)
            fprintf(out, "%.6f", (double)right / (double)tagged);
        else
            fprintf(out, "null");
        fprintf(out, ",\"tags\":{");
        for (int64_t g = 0; g < K; g++) {
            int64_t gold = 0, pred = 0;
            for (int64_t p = 0; p < K; p++) {
                gold += counts[g * K + p];
                pred += counts[p * K + g];
            }
            fprintf(out, "%s", g ? "," : "");
            cn_json_string(out, names[g]);
            fprintf(out, ":{\"gold\":%lld,\"predicted\":%lld,\"correct\":%lld}", (long long)gold,
                    (long long)pred, (long long)counts[g * K + g]);
        }
        fprintf(out, "},\"spaces\":");
        if (spacing && tagged)
            fprintf(out, "{\"precision\":%.6f,\"recall\":%.6f,\"f1\":%.6f,\"true\":%lld,"
                         "\"predicted\":%lld}",
                    prec, rec, f1, (long long)sp_true, (long long)sp_pred);
        else
            fprintf(out, "null");
        fprintf(out, ",\"corr_with\":");
        cn_json_string(out, corr_with);
        fprintf(out, ",\"units\":");
    } else {
        fprintf(out, "trace '%s' (tag; %s, %lld x %lld, %s, model '%s' at step %lld): %lld "
                     "examples, %lld characters, %lld tags\n",
                path, cell, (long long)L, (long long)H,
                D == 2 ? "bidirectional" : "unidirectional", model, (long long)step,
                (long long)E, (long long)N, (long long)K);
        if (tagged)
            fprintf(out, "accuracy %.4f over %lld characters with a gold tag\n",
                    (double)right / (double)tagged, (long long)tagged);
        else
            fprintf(out, "no gold tags: the units are correlated with the predicted tags\n");
        for (int64_t g = 0; tagged && g < K; g++) {
            int64_t gold = 0, pred = 0;
            for (int64_t p = 0; p < K; p++) {
                gold += counts[g * K + p];
                pred += counts[p * K + g];
            }
            fprintf(out, "  tag %-8s %lld true, %lld predicted, %lld found (recall %.4f)\n",
                    names[g], (long long)gold, (long long)pred, (long long)counts[g * K + g],
                    gold ? (double)counts[g * K + g] / (double)gold : 0.0);
        }
        if (spacing && tagged)
            fprintf(out, "spaces (tag B): precision %.4f recall %.4f F1 %.4f (%lld true, %lld "
                         "predicted)\n",
                    prec, rec, f1, (long long)sp_true, (long long)sp_pred);
        fprintf(out, "units whose h follows a tag (Pearson r over the characters, with the %s "
                     "tag)%s:\n",
                strcmp(corr_with, "pred") == 0 ? "predicted" : "gold",
                K == 2 ? "; with two tags the other tag's r is the negative" : "");
    }
    /* two tags: tag 0's alone (for spacing B, a space follows); tag 1's r is its negative */
    analyze_units_write(out, json, (const char *const *)names, (int)K, 0, corr, (int)L, (int)D,
                        (int)H, top_k);
    if (json)
        fprintf(out, "}\n");
    rc = 0;
done:
    H5Fclose(fid);
    if (names)
        h5io_strings_free(names, n_names);
    free(corr);
    free(counts);
    return rc;
}
