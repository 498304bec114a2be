/* htmlplot: the pieces charnn's self-contained HTML pages share (`analyze
 * --html`, `report --html`): HTML escaping, one colour palette, and line
 * plots drawn as inline SVG with linear or logarithmic axes. Nothing here
 * emits a script or refers to anything outside the page.
 *
 * Use: fill an htmlplot_frame (size, labels, axis kinds, optional fixed y
 * range) and an array of htmlplot_series (borrowed x/y arrays), then call
 * htmlplot_lines, which writes one <svg> element to the page being written.
 * Each series becomes one <path class="series"> (gaps where a value is not
 * finite, or not positive on a log axis) with its label as a <title>, plus
 * <circle class="marker"> elements when markers are asked for.
 */
#ifndef CHARNN_HTMLPLOT_H
#define CHARNN_HTMLPLOT_H

#include <stdio.h>

#define HTMLPLOT_N_PALETTE 8
/* Distinct colours for lines and runs; index modulo HTMLPLOT_N_PALETTE. */
extern const char *const htmlplot_palette[HTMLPLOT_N_PALETTE];

/* Lines longer than this are reduced to the lowest and highest point of each
 * of HTMLPLOT_MAX_POINTS / 2 buckets along x, so spikes stay visible. */
#define HTMLPLOT_MAX_POINTS 2000

/* Write s with &, <, > and " escaped. */
void htmlplot_escape(FILE *out, const char *s);

/* The CSS rules every page shares (body, headings, .meta, .note, .plots,
 * figure, svg text, .axis, .grid), to write inside the page's <style>. */
void htmlplot_base_style(FILE *out);

typedef struct {
    const double *x, *y; /* (n), x ascending */
    int n;
    const char *color;
    int dashed;          /* 1: a dashed line */
    int markers;         /* 1: also a circle at every point (at most HTMLPLOT_MAX_POINTS) */
    const char *label;   /* the <title> of the line, or NULL */
} htmlplot_series;

typedef struct {
    const char *id;           /* id of the <svg>, or NULL */
    const char *cls;          /* class of the <svg>, or NULL ("line-plot") */
    double width, height;     /* pixels */
    const char *xlabel, *ylabel;
    int logy;                 /* 1: logarithmic y axis with decade ticks */
    double ymin, ymax;        /* fixed y range when ymin < ymax; otherwise from the data */
} htmlplot_frame;

/* One line plot as an <svg> element; a plot without a single drawable point
 * shows its axes and "no data". */
void htmlplot_lines(FILE *out, const htmlplot_frame *f, const htmlplot_series *s, int n_series);

#endif
