/* Line plots as inline SVG and the other shared pieces of charnn's HTML
 * pages. See htmlplot.h. */
#include "charnn/htmlplot.h"

#include <math.h>
#include <stdlib.h>

#include "charnn/common.h"

const char *const htmlplot_palette[HTMLPLOT_N_PALETTE] = {
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

void htmlplot_escape(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '&')
            fputs("&amp;", out);
        else if (*s == '<')
            fputs("&lt;", out);
        else if (*s == '>')
            fputs("&gt;", out);
        else if (*s == '"')
            fputs("&quot;", out);
        else
            fputc(*s, out);
    }
}

void htmlplot_base_style(FILE *out)
{
    fputs("body{font-family:sans-serif;margin:24px;color:#222;background:#fff;max-width:1150px}\n"
          "h1{font-size:20px}h2{font-size:17px;margin-top:28px}h3{font-size:14px;margin:4px 0}\n"
          ".meta{color:#555;font-size:13px}.note{color:#666;font-size:12px}\n"
          ".plots{display:flex;flex-wrap:wrap;gap:14px}\n"
          "figure{margin:0}figcaption{font-size:12px;text-align:center;color:#444}\n"
          "svg{background:#fff}svg text{font-size:11px;font-family:sans-serif;fill:#333}\n"
          ".axis{stroke:#888;stroke-width:1}.grid{stroke:#eee;stroke-width:1}\n",
          out);
}

/* Margins around the plotting area. */
enum { PLOT_ML = 64, PLOT_MR = 16, PLOT_MT = 12, PLOT_MB = 42 };

typedef struct {
    double x0, x1, y0, y1; /* data range; y in log10 units on a log axis */
    double left, top, w, h;
    int logy;
} plot_map;

static double map_x(const plot_map *m, double x)
{
    return m->left + (x - m->x0) / (m->x1 - m->x0) * m->w;
}

static double map_y(const plot_map *m, double y)
{
    double v = m->logy ? log10(y) : y;
    return m->top + (m->y1 - v) / (m->y1 - m->y0) * m->h;
}

static int drawable(const plot_map *m, double x, double y)
{
    return isfinite(x) && isfinite(y) && (!m->logy || y > 0);
}

/* A tick spacing of 1, 2 or 5 times a power of ten giving about `want` ticks. */
static double nice_step(double range, int want)
{
    double raw = range / want, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void tick_label(char *buf, size_t n, double v, double step)
{
    if (fabs(v) < step * 1e-9)
        v = 0;
    if (fabs(v) >= 1e6)
        snprintf(buf, n, "%gM", v / 1e6);
    else if (fabs(v) >= 1e4)
        snprintf(buf, n, "%gk", v / 1e3);
    else if (v != 0 && fabs(v) < 1e-3)
        snprintf(buf, n, "%.3g", v);
    else if (step >= 1)
        snprintf(buf, n, "%.0f", v);
    else
        snprintf(buf, n, "%.*f", (int)ceil(-log10(step) - 1e-9), v);
}

/* Indices of the points to draw: all, or the lowest and highest of each bucket. */
static int pick_points(const htmlplot_series *s, const plot_map *m, int *idx)
{
    int k = 0;
    if (s->n <= HTMLPLOT_MAX_POINTS) {
        for (int i = 0; i < s->n; i++)
            idx[k++] = i;
        return k;
    }
    int buckets = HTMLPLOT_MAX_POINTS / 2;
    for (int b = 0, i = 0; b < buckets; b++) {
        int end = (int)((int64_t)s->n * (b + 1) / buckets);
        int lo = -1, hi = -1;
        for (; i < end; i++) {
            if (!drawable(m, s->x[i], s->y[i]))
                continue;
            if (lo < 0 || s->y[i] < s->y[lo])
                lo = i;
            if (hi < 0 || s->y[i] > s->y[hi])
                hi = i;
        }
        if (lo < 0)
            continue;
        idx[k++] = lo < hi ? lo : hi;
        if (lo != hi)
            idx[k++] = lo < hi ? hi : lo;
    }
    return k;
}

static void draw_series(FILE *out, const htmlplot_series *s, const plot_map *m, int *idx)
{
    int k = pick_points(s, m, idx);
    fprintf(out, "<path class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s d=\"",
            s->color, s->dashed ? " stroke-dasharray=\"6 3\"" : "");
    int pen = 0;
    for (int j = 0; j < k; j++) {
        int i = idx[j];
        if (!drawable(m, s->x[i], s->y[i])) {
            pen = 0;
            continue;
        }
        fprintf(out, "%c%.1f,%.1f", pen ? 'L' : 'M', map_x(m, s->x[i]), map_y(m, s->y[i]));
        pen = 1;
    }
    fputs("\">", out);
    if (s->label) {
        fputs("<title>", out);
        htmlplot_escape(out, s->label);
        fputs("</title>", out);
    }
    fputs("</path>\n", out);
    if (!s->markers)
        return;
    for (int j = 0; j < k; j++) {
        int i = idx[j];
        if (drawable(m, s->x[i], s->y[i]))
            fprintf(out, "<circle class=\"marker\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>",
                    map_x(m, s->x[i]), map_y(m, s->y[i]), s->color);
    }
    fputs("\n", out);
}

void htmlplot_lines(FILE *out, const htmlplot_frame *f, const htmlplot_series *s, int n_series)
{
    plot_map m = {INFINITY, -INFINITY, INFINITY, -INFINITY, PLOT_ML, PLOT_MT,
                  f->width - PLOT_ML - PLOT_MR, f->height - PLOT_MT - PLOT_MB, f->logy};
    int max_n = 1;
    for (int k = 0; k < n_series; k++) {
        max_n = s[k].n > max_n ? s[k].n : max_n;
        for (int i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!drawable(&m, x, y))
                continue;
            double v = f->logy ? log10(y) : y;
            m.x0 = x < m.x0 ? x : m.x0;
            m.x1 = x > m.x1 ? x : m.x1;
            m.y0 = v < m.y0 ? v : m.y0;
            m.y1 = v > m.y1 ? v : m.y1;
        }
    }
    int empty = !(m.x0 <= m.x1);
    if (empty) {
        m.x0 = 0;
        m.x1 = 1;
        m.y0 = 0;
        m.y1 = 1;
    }
    if (f->ymin < f->ymax) {
        m.y0 = f->logy ? log10(f->ymin) : f->ymin;
        m.y1 = f->logy ? log10(f->ymax) : f->ymax;
    }
    if (m.x1 <= m.x0)
        m.x1 = m.x0 + 1;
    if (f->logy) {
        m.y0 = floor(m.y0);
        m.y1 = ceil(m.y1);
        if (m.y1 <= m.y0)
            m.y1 = m.y0 + 1;
    } else if (!(f->ymin < f->ymax)) {
        double pad = (m.y1 - m.y0) * 0.05;
        if (pad <= 0)
            pad = fabs(m.y0) > 0 ? fabs(m.y0) * 0.05 : 0.5;
        m.y0 -= pad;
        m.y1 += pad;
    }

    fputs("<svg", out);
    if (f->id)
        fprintf(out, " id=\"%s\"", f->id);
    fprintf(out,
            " class=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\">\n",
            f->cls ? f->cls : "line-plot", f->width, f->height, f->width, f->height);
    char lab[48];
    /* y grid and labels */
    if (f->logy) {
        int every = (int)ceil((m.y1 - m.y0) / 8);
        for (double e = m.y0; e <= m.y1 + 1e-9; e += every) {
            double y = m.top + (m.y1 - e) / (m.y1 - m.y0) * m.h;
            fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                    m.left, y, m.left + m.w, y);
            fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n",
                    m.left - 4, y + 4, (int)e);
            /* a few decades: lighter lines at 2 and 5 times each */
            for (int k = 0; every == 1 && m.y1 - m.y0 <= 3 && k < 2 && e < m.y1; k++) {
                double ym = m.top + (m.y1 - e - log10(k ? 5.0 : 2.0)) / (m.y1 - m.y0) * m.h;
                fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                             "y2=\"%.1f\" stroke-dasharray=\"2 3\"/>",
                        m.left, ym, m.left + m.w, ym);
            }
        }
    } else {
        double st = nice_step(m.y1 - m.y0, 5);
        for (double v = ceil(m.y0 / st) * st; v <= m.y1 + st * 1e-9; v += st) {
            double y = m.top + (m.y1 - v) / (m.y1 - m.y0) * m.h;
            tick_label(lab, sizeof lab, v, st);
            fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                    m.left, y, m.left + m.w, y);
            fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", m.left - 4,
                    y + 4, lab);
        }
    }
    /* x ticks */
    double xs = nice_step(m.x1 - m.x0, 5);
    for (double v = ceil(m.x0 / xs) * xs; v <= m.x1 + xs * 1e-9; v += xs) {
        tick_label(lab, sizeof lab, v, xs);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>",
                map_x(&m, v), m.top + m.h + 14, lab);
    }
    fprintf(out, "\n<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
            m.left, m.top + m.h, m.left + m.w, m.top + m.h);
    fprintf(out, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", m.left,
            m.top, m.left, m.top + m.h);
    if (f->xlabel) {
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", m.left + m.w / 2,
                f->height - 6);
        htmlplot_escape(out, f->xlabel);
        fputs("</text>\n", out);
    }
    if (f->ylabel) {
        double cy = m.top + m.h / 2;
        fprintf(out, "<text x=\"12\" y=\"%.1f\" text-anchor=\"middle\" "
                     "transform=\"rotate(-90 12 %.1f)\">",
                cy, cy);
        htmlplot_escape(out, f->ylabel);
        fputs("</text>\n", out);
    }
    if (empty) {
        fprintf(out, "<text class=\"no-data\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no "
                     "data</text>\n",
                m.left + m.w / 2, m.top + m.h / 2);
    } else {
        int *idx = cn_xmalloc((size_t)max_n * sizeof *idx);
        for (int k = 0; k < n_series; k++)
            draw_series(out, &s[k], &m, idx);
        free(idx);
    }
    fputs("</svg>\n", out);
}
