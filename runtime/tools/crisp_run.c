/* crisp-run MODEL INPUT.npy [--top-k K] [--output OUT.npy] [--repeat N] [--threads N] */
#include <stdio.h>

#include "crisp_run_cli.h"

int main(int argc, char **argv) { return crisp_run_main(argc, argv, stdout, stderr); }
