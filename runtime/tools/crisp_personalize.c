/* crisp-personalize MODEL.crisp (--npy X.npy --labels Y.npy [--names a,b,c] | --classes LIST)
 *                   --out NEW.crisp [--epochs E] [--l2 L] [--threads T] [--seed S]
 *                   [--min-coverage F] [--imprint-only] */
#include <stdio.h>

#include "crisp_personalize_cli.h"

int main(int argc, char **argv) { return crisp_personalize_main(argc, argv, stdout, stderr); }
