/* cli: the `charnn` command line: subcommands, their flags (with sane
 * defaults), usage screens, and exit statuses (0 ok, 1 error, 2 usage,
 * 3 diverged, 75 stopped by a signal after checkpointing). */
#ifndef CHARNN_CLI_H
#define CHARNN_CLI_H

int cli_main(int argc, char **argv);
/* `charnn report` (src/cli/cli_report.c). */
int cli_report(int argc, char **argv);

#endif
