/* crisp-run as a function, so tests drive the tool's real code in-process. */
#ifndef CRISP_RUN_CLI_H
#define CRISP_RUN_CLI_H

#include <stdio.h>

/* Returns the process exit code: 0 ok, 1 error, 2 usage. */
int crisp_run_main(int argc, char **argv, FILE *out, FILE *err);

#endif
