/* The page of `charnn analyze --html`: one self-contained file (inline CSS
 * and SVG, no scripts, nothing fetched) with the text coloured by a unit's
 * activation (blue for negative, white for zero, red for positive, as in
 * Karpathy et al. 2015), one panel per feature with its top unit, the gate
 * saturation scatter plots, the gradient norm against distance, and the
 * correlation over training. The page opens on its best find, the unit with
 * the highest |r| over all features (or the --unit asked for). Stable ids and
 * classes for tests and styling: #best-find, #text-unit, #context-note,
 * .feature-panel, .saturation-plot, #gradient-flow, #probe-plot.
 * See analyze.h. */
#include "charnn/analyze.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/htmlplot.h"
#include "charnn/vocab.h"

/* Colour levels each side of zero; runs of equal level share one span. */
#define HTML_LEVELS 16
/* Characters in each feature's panel (the main text shows all of the excerpt). */
#define HTML_PANEL_CHARS 1000

/* One symbol of the text, escaped; controls and stray bytes as a middle dot. */
static void html_symbol(FILE *out, uint32_t c, int bytes_mode)
{
    char buf[4];
    if (c == '\n' || c == '\t') {
        fputc((int)c, out);
    } else if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0) || (bytes_mode && c >= 0x80)) {
        fputs("\xC2\xB7", out);
    } else if (c == '&') {
        fputs("&amp;", out);
    } else if (c == '<') {
        fputs("&lt;", out);
    } else if (c == '>') {
        fputs("&gt;", out);
    } else {
        int n = utf8_encode(c, buf);
        fwrite(buf, 1, (size_t)n, out);
    }
}

static int level_of(float v, double scale)
{
    if (!isfinite(v))
        return 0;
    double t = v / scale;
    t = t > 1 ? 1 : t < -1 ? -1 : t;
    return (int)lround(t * HTML_LEVELS);
}

/* The excerpt as spans of class "vN" (N in -HTML_LEVELS..HTML_LEVELS). */
static void html_colored_text(FILE *out, const analyze_report *r, const float *act, int64_t n,
                              const char *id)
{
    double scale = 1.0; /* tanh states keep their own scale; a cell state is scaled to its max */
    for (int64_t t = 0; t < n; t++)
        if (isfinite(act[t]) && fabs(act[t]) > scale)
            scale = fabs(act[t]);
    fprintf(out, "<pre class=\"text\"%s%s%s>", id ? " id=\"" : "", id ? id : "", id ? "\"" : "");
    int open = 0, level = 0;
    for (int64_t t = 0; t < n; t++) {
        int lv = level_of(act[t], scale);
        if (!open || lv != level) {
            if (open)
                fputs("</span>", out);
            fprintf(out, "<span class=\"v%d\">", lv);
            open = 1;
            level = lv;
        }
        html_symbol(out, r->excerpt[t], r->bytes_mode);
    }
    if (open)
        fputs("</span>", out);
    fputs("</pre>\n", out);
    if (scale > 1.0)
        fprintf(out, "<p class=\"note\">colours scaled to the largest |value|, %.3g</p>\n", scale);
}

static void unit_text(char *buf, size_t n, const analyze_report *r, const analyze_pick *pk)
{
    snprintf(buf, n, "%d:%d:%s", pk->layer, pk->unit, r->series[pk->layer][pk->series].name);
}

static void html_style(FILE *out)
{
    fputs("<style>\n", out);
    htmlplot_base_style(out);
    fputs("pre.text{font-family:monospace;font-size:13px;line-height:1.45;white-space:pre-wrap;"
          "word-break:break-all;border:1px solid #ccc;padding:8px;margin:6px 0}\n"
          ".feature-panel{border:1px solid #ddd;border-radius:4px;margin:10px 0;padding:6px 10px}\n"
          ".feature-panel pre.text{max-height:220px;overflow:hidden}\n"
          ".legend span{display:inline-block;width:18px;height:12px;vertical-align:middle}\n"
          "table.sat{border-collapse:collapse;font-size:12px}table.sat td,table.sat th{"
          "border:1px solid #ddd;padding:2px 6px;text-align:right}\n",
          out);
    /* blue (negative) - white - red (positive) */
    static const int neg[3] = {33, 102, 172}, pos[3] = {214, 39, 40};
    for (int lv = -HTML_LEVELS; lv <= HTML_LEVELS; lv++) {
        double t = (double)(lv < 0 ? -lv : lv) / HTML_LEVELS;
        const int *to = lv < 0 ? neg : pos;
        int c[3];
        for (int i = 0; i < 3; i++)
            c[i] = (int)lround(255 - t * (255 - to[i]));
        fprintf(out, ".v%d{background:#%02x%02x%02x}\n", lv, c[0], c[1], c[2]);
    }
    fputs("</style>\n", out);
}

static void html_legend(FILE *out)
{
    fputs("<div class=\"legend\">negative ", out);
    for (int lv = -HTML_LEVELS; lv <= HTML_LEVELS; lv += 4)
        fprintf(out, "<span class=\"v%d\"></span>", lv);
    fputs(" positive</div>\n", out);
}

/* Scatter of (left, right) saturated fractions of every unit of one gate. */
static void html_saturation_plot(FILE *out, const analyze_report *r, int k, int s)
{
    const analyze_series *se = &r->series[k][s];
    const double W = 230, Hh = 230, m = 34, plot = W - m - 10;
    fprintf(out,
            "<figure><svg class=\"saturation-plot\" id=\"saturation-%d-%s\" "
            "xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\">\n",
            k, se->name, W, Hh, W, Hh);
    for (int i = 0; i <= 4; i++) {
        double f = i / 4.0, x = m + f * plot, y = 10 + (1 - f) * plot;
        fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"10\" x2=\"%.1f\" y2=\"%.1f\"/>", x, x,
                10 + plot);
        fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", m, y,
                m + plot, y);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.2g</text>", x,
                10 + plot + 12, f);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.2g</text>\n", m - 3, y + 4,
                f);
    }
    fprintf(out, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", m,
            10 + plot, m + plot, 10 + plot);
    fprintf(out, "<line class=\"axis\" x1=\"%.1f\" y1=\"10\" x2=\"%.1f\" y2=\"%.1f\"/>\n", m, m,
            10 + plot);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">left-saturated</text>",
            m + plot / 2, Hh - 2);
    fprintf(out,
            "<text x=\"10\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 10 %.1f)\">"
            "right-saturated</text>\n",
            10 + plot / 2, 10 + plot / 2);
    const char *color = htmlplot_palette[k % HTMLPLOT_N_PALETTE];
    for (int u = 0; u < r->hidden; u++) {
        if (!isfinite(se->left[u]) || !isfinite(se->right[u]))
            continue;
        fprintf(out,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\" fill-opacity=\"0.55\">"
                "<title>unit %d: left %.3f, right %.3f</title></circle>\n",
                m + se->left[u] * plot, 10 + (1 - se->right[u]) * plot, color, u, se->left[u],
                se->right[u]);
    }
    fprintf(out, "</svg><figcaption>layer %d, gate %s</figcaption></figure>\n", k, se->name);
}

/* Gradient norm against distance, log scale, one line per layer and state. */
static void html_gradient_plot(FILE *out, const analyze_report *r)
{
    const double W = 700, Hh = 330, ml = 64, mr = 240, mt = 12, mb = 40;
    const double pw = W - ml - mr, ph = Hh - mt - mb;
    int L = r->chunk_len;
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < r->layers; k++)
        for (int c = 0; c < 1 + r->has_dc; c++) {
            const analyze_decay *d = c ? &r->dc[k] : &r->dh[k];
            for (int i = 0; i < L; i++)
                if (d->norm[i] > 0 && isfinite(d->norm[i])) {
                    lo = d->norm[i] < lo ? d->norm[i] : lo;
                    hi = d->norm[i] > hi ? d->norm[i] : hi;
                }
        }
    if (!(lo <= hi)) {
        lo = 1e-3;
        hi = 1;
    }
    double ylo = floor(log10(lo)), yhi = ceil(log10(hi));
    if (yhi <= ylo)
        yhi = ylo + 1;
    double xmax = L > 1 ? L - 1 : 1;
    fprintf(out,
            "<svg id=\"gradient-flow\" class=\"line-plot\" xmlns=\"http://www.w3.org/2000/svg\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n",
            W, Hh, W, Hh);
    int step = (int)ceil((yhi - ylo) / 8);
    for (double e = ylo; e <= yhi; e += step) {
        double y = mt + (yhi - e) / (yhi - ylo) * ph;
        fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", ml,
                y, ml + pw, y);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n", ml - 4, y + 4,
                (int)e);
    }
    for (int i = 0; i <= 4; i++) {
        double dv = xmax * i / 4.0, x = ml + dv / xmax * pw;
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>", x,
                mt + ph + 14, dv);
    }
    fprintf(out, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", ml,
            mt + ph, ml + pw, mt + ph);
    fprintf(out, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", ml, mt,
            ml, mt + ph);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">distance from the "
                 "differentiated step</text>\n",
            ml + pw / 2, Hh - 6);
    int line = 0;
    for (int k = 0; k < r->layers; k++)
        for (int c = 0; c < 1 + r->has_dc; c++, line++) {
            const analyze_decay *d = c ? &r->dc[k] : &r->dh[k];
            const char *color = htmlplot_palette[k % HTMLPLOT_N_PALETTE];
            fprintf(out,
                    "<polyline class=\"grad-line\" fill=\"none\" stroke=\"%s\" "
                    "stroke-width=\"2\"%s points=\"",
                    color, c ? " stroke-dasharray=\"6 3\"" : "");
            for (int i = 0; i < L; i++) {
                if (!(d->norm[i] > 0) || !isfinite(d->norm[i]))
                    continue;
                double x = ml + (L > 1 ? i / xmax : 0) * pw;
                double y = mt + (yhi - log10(d->norm[i])) / (yhi - ylo) * ph;
                fprintf(out, "%.1f,%.1f ", x, y);
            }
            fputs("\"/>\n", out);
            double ly = mt + 14 + 30 * line;
            fprintf(out,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                    "stroke-width=\"2\"%s/>",
                    ml + pw + 12, ly, ml + pw + 36, ly, color,
                    c ? " stroke-dasharray=\"6 3\"" : "");
            fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">layer %d %s</text>", ml + pw + 42, ly + 4, k,
                    c ? "c" : "h");
            if (isfinite(d->rate))
                fprintf(out,
                        "<text x=\"%.1f\" y=\"%.1f\">rate %.3g/step, half-life %.3g steps</text>\n",
                        ml + pw + 42, ly + 17, d->rate, d->half_life);
            else
                fputs("\n", out);
        }
    fputs("</svg>\n", out);
}

/* r of each feature's unit over the training steps of the probe trace. */
static void html_probe_plot(FILE *out, const analyze_report *r)
{
    const double W = 640, Hh = 300, ml = 50, mr = 170, mt = 12, mb = 40;
    const double pw = W - ml - mr, ph = Hh - mt - mb;
    int S = r->n_probe_steps;
    double x0 = (double)r->probe_steps[0], x1 = (double)r->probe_steps[S - 1];
    if (x1 <= x0)
        x1 = x0 + 1;
    fprintf(out,
            "<svg id=\"probe-plot\" class=\"line-plot\" xmlns=\"http://www.w3.org/2000/svg\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n",
            W, Hh, W, Hh);
    for (int i = 0; i <= 4; i++) {
        double v = 1 - i * 0.5, y = mt + (1 - v) / 2 * ph;
        fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", ml,
                y, ml + pw, y);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%+.1f</text>\n", ml - 4,
                y + 4, v);
        double sv = x0 + (x1 - x0) * i / 4.0;
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>",
                ml + i / 4.0 * pw, mt + ph + 14, sv);
    }
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">training step</text>\n",
            ml + pw / 2, Hh - 6);
    for (int j = 0; j < r->n_features; j++) {
        const char *color = htmlplot_palette[j % HTMLPLOT_N_PALETTE];
        fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
        for (int e = 0; e < S; e++) {
            double v = r->probe_r[(size_t)j * (size_t)S + (size_t)e];
            if (!isfinite(v))
                continue;
            double x = ml + ((double)r->probe_steps[e] - x0) / (x1 - x0) * pw;
            fprintf(out, "%.1f,%.1f ", x, mt + (1 - v) / 2 * ph);
        }
        fputs("\"/>", out);
        double ly = mt + 10 + 18 * j;
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                     "stroke-width=\"2\"/><text x=\"%.1f\" y=\"%.1f\">",
                ml + pw + 10, ly, ml + pw + 30, ly, color, ml + pw + 36, ly + 4);
        htmlplot_escape(out, r->feature[j].name);
        fputs("</text>\n", out);
    }
    fputs("</svg>\n", out);
}

int analyze_write_html(const char *path, const analyze_report *r)
{
    FILE *out = fopen(path, "w");
    if (!out)
        return cn_err("cannot write '%s': %s", path, strerror(errno));
    char lab[64];
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>charnn "
          "analyze: ",
          out);
    htmlplot_escape(out, r->trace);
    fputs("</title>\n", out);
    html_style(out);
    fputs("</head><body>\n<h1>Interpretable cells: ", out);
    htmlplot_escape(out, r->trace);
    fprintf(out, "</h1>\n<p class=\"meta\">%s trace of a %s with %d layer%s of %d units, %lld "
                 "characters",
            r->kind, r->cell, r->layers, r->layers == 1 ? "" : "s", r->hidden,
            (long long)r->n_steps);
    if (r->model[0]) {
        fputs("; model ", out);
        htmlplot_escape(out, r->model);
        fprintf(out, " at step %lld", (long long)r->model_step);
    }
    if (r->source[0]) {
        fputs("; text from ", out);
        htmlplot_escape(out, r->source);
        if (r->begin > 0)
            fprintf(out, " at token %lld", (long long)r->begin);
    }
    fputs(".</p>\n", out);
    if (r->context == ANALYZE_CONTEXT_READ) {
        fputs("<p class=\"note\" id=\"context-note\">The trace begins mid-text: the quote, "
              "bracket and comment features start from the text before it.</p>\n",
              out);
    } else if (r->context == ANALYZE_CONTEXT_MISSING) {
        fputs("<p class=\"note\" id=\"context-note\"><b>The trace begins mid-text, but the text "
              "before it could not be read</b> (",
              out);
        htmlplot_escape(out, r->context_note);
        fputs("): the features start as at the start of a text, so a quote or comment open "
              "there is missed (and the quote feature may be inverted).</p>\n",
              out);
    }

    int64_t n = r->n_excerpt;
    fputs("<section id=\"text-section\">\n", out);
    if (r->has_unit) {
        unit_text(lab, sizeof lab, r, &r->unit);
        const analyze_series *se = &r->series[r->unit.layer][r->unit.series];
        if (r->unit_feature >= 0) {
            fprintf(out, "<h2 id=\"best-find\">Best find: unit %s tracks ", lab);
            htmlplot_escape(out, r->feature[r->unit_feature].name);
            fprintf(out, ", r = %+.3f</h2>\n<p class=\"meta\">The highest |r| of any unit with "
                         "any feature, shown over the first %lld characters. ",
                    r->unit.r, (long long)n);
        } else {
            fprintf(out, "<h2>Unit %s over the first %lld characters</h2>\n<p class=\"meta\">",
                    lab, (long long)n);
        }
        for (int j = 0; j < r->n_features; j++) {
            double v = se->r[(size_t)j * (size_t)r->hidden + (size_t)r->unit.unit];
            fputs(j ? ", " : "Pearson r with ", out);
            htmlplot_escape(out, r->feature[j].name);
            if (isfinite(v))
                fprintf(out, " %+.3f", v);
            else
                fputs(" n/a", out);
        }
        fputs(".</p>\n", out);
        html_legend(out);
        html_colored_text(out, r, r->excerpt_unit, n, "text-unit");
    } else {
        fputs("<h2>Text</h2>\n<p class=\"note\">no unit correlates with any feature (every "
              "feature is constant over this text)</p>\n",
              out);
        html_colored_text(out, r, r->excerpt_unit, n, "text-unit");
    }
    fputs("</section>\n<section id=\"features\">\n<h2>The top unit of each feature</h2>\n", out);
    int64_t np = n < HTML_PANEL_CHARS ? n : HTML_PANEL_CHARS;
    for (int j = 0; j < r->n_features; j++) {
        const analyze_feature_result *fr = &r->feature[j];
        fputs("<div class=\"feature-panel\" id=\"feature-", out);
        htmlplot_escape(out, fr->name);
        fputs("\"><h3>", out);
        htmlplot_escape(out, fr->name);
        if (fr->regex) {
            fputs(" (/", out);
            htmlplot_escape(out, fr->regex);
            fputs("/)", out);
        }
        if (fr->n_top == 0) {
            fputs(": constant over the text, no correlation</h3></div>\n", out);
            continue;
        }
        unit_text(lab, sizeof lab, r, &fr->top[0]);
        fprintf(out, ": unit %s, r = %+.3f</h3>\n", lab, fr->top[0].r);
        html_colored_text(out, r, r->excerpt_top + (size_t)j * (size_t)n, np, NULL);
        fputs("</div>\n", out);
    }
    fputs("</section>\n", out);

    int any_gate = 0;
    for (int s = 0; s < r->n_series; s++)
        any_gate |= r->series[0][s].is_gate;
    if (any_gate) {
        fputs("<section id=\"saturation\">\n<h2>Gate saturation</h2>\n<p class=\"meta\">One point "
              "per unit: the fraction of steps its gate is left-saturated (below 0.1 of its "
              "range) against right-saturated (above 0.9).</p>\n",
              out);
        for (int k = 0; k < r->layers; k++) {
            fputs("<div class=\"plots\">\n", out);
            for (int s = 0; s < r->n_series; s++)
                if (r->series[k][s].is_gate)
                    html_saturation_plot(out, r, k, s);
            fputs("</div>\n", out);
        }
        fputs("</section>\n", out);
    }
    if (r->has_grads) {
        fprintf(out, "<section id=\"gradient-section\">\n<h2>Gradient flow</h2>\n<p "
                     "class=\"meta\">Mean over %lld chunks of the norm of the gradient of the "
                     "loss at a chunk's last step with respect to the state d steps earlier "
                     "(log scale; dashed: LSTM cell state).</p>\n",
                (long long)r->n_chunks);
        html_gradient_plot(out, r);
        fputs("</section>\n", out);
    }
    if (r->has_probe) {
        fputs("<section id=\"probe-section\">\n<h2>Correlation over training</h2>\n<p "
              "class=\"meta\">Pearson r of each feature's unit on the probe text ",
              out);
        htmlplot_escape(out, r->probe);
        fputs(".</p>\n", out);
        html_probe_plot(out, r);
        fputs("</section>\n", out);
    }
    fputs("</body></html>\n", out);
    int bad = ferror(out);
    if (fclose(out) != 0 || bad)
        return cn_err("cannot write '%s': %s", path, strerror(errno ? errno : EIO));
    return 0;
}
