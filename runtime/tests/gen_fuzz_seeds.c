/* Writes fuzzer seeds using the 1.1 encodings into DIR: the float32,
 * hybrid and int8 sample CNNs (the float32 one also with a PREP section) and
 * a 1.0 file. Usage: gen_fuzz_seeds DIR */
#include <stdio.h>
#include <stdlib.h>

#include "sample_models.h"

static int write(const char *dir, const char *name, mb_model *m) {
    char path[1024];
    size_t size;
    uint8_t *file = mb_build(m, &size);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(file, 1, size, f) == size;
    ok = f != NULL && fclose(f) == 0 && ok;
    if (!ok) fprintf(stderr, "gen_fuzz_seeds: cannot write %s\n", path);
    free(file);
    mb_free(m);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_fuzz_seeds DIR\n");
        return 2;
    }
    mb_model m;
    int ok = 1;
    mb_sample_hybrid_cnn(&m);
    ok &= write(argv[1], "seed_hybrid_cnn.crisp", &m);
    mb_sample_qcnn(&m);
    ok &= write(argv[1], "seed_int8_cnn.crisp", &m);
    mb_sample_cnn(&m);
    ok &= write(argv[1], "seed_builder_cnn_1_1.crisp", &m);
    /* PREP for the sample CNN's (3,8,8) input: shorter side 10, centre crop, BGR. */
    static const uint8_t prep[64] = {
        64, 0, 0, 0, 3, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0,
        0x81, 0x80, 0x80, 0x3B,                                             /* scale 1/255 */
        0xEC, 0x51, 0xF8, 0x3E, 0xD5, 0x78, 0xE9, 0x3E, 0x3B, 0xDF, 0xCF, 0x3E, /* mean */
        0xFA, 0x7E, 0x6A, 0x3E, 0x42, 0x60, 0x65, 0x3E, 0x66, 0x66, 0x66, 0x3E, /* std */
        0, 0, 0, 0, 0, 0, 0, 0};
    mb_sample_cnn(&m);
    mb_add_section(&m, 0x50455250u /* PREP */, 0, prep, sizeof prep);
    ok &= write(argv[1], "seed_builder_cnn_prep.crisp", &m);
    mb_sample_cnn(&m);
    m.version_minor = 0;
    ok &= write(argv[1], "seed_builder_cnn_1_0.crisp", &m);
    return ok ? 0 : 1;
}
