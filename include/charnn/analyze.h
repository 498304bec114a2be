/* analyze: find interpretable cells in a trace (Karpathy, Johnson and
 * Fei-Fei 2015): gate saturation, per-unit statistics, correlation of each
 * unit with text features (quotes, bracket depth, line position, comments,
 * word starts, user regexes), their change over training, gradient-flow decay,
 * as a table, JSON or a self-contained HTML page. */
#ifndef CHARNN_ANALYZE_H
#define CHARNN_ANALYZE_H

/* `charnn analyze TRACE ...`: parses its flags and runs; returns the exit status. */
int analyze_main(int argc, char **argv);

#endif
