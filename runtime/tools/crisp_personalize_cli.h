/* crisp-personalize's logic as a function, so tests drive it in-process. */
#ifndef CRISP_PERSONALIZE_CLI_H
#define CRISP_PERSONALIZE_CLI_H

#include <stdio.h>

/* Exit codes as crisp-run: 0 success, 1 a runtime error (message on err),
 * 2 a usage error. */
int crisp_personalize_main(int argc, char **argv, FILE *out, FILE *err);

#endif
