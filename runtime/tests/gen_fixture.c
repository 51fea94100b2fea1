/* Writes the model-builder fixture into a directory (runtime/tests/data):
 * builder_cnn.crisp, .input.npy (batch of 2) and .expected.npy computed by
 * the naive references of naive.c, not by the runtime. torch-made fixtures
 * from the Python side live next to it. Usage: gen_fixture DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_builder.h"
#include "naive.h"
#include "npy.h"

static size_t elements(const mb_value_rec *v) {
    size_t n = 1;
    for (uint32_t d = 0; d < v->rank; d++) n *= v->dims[d];
    return n;
}

static void run_op(const mb_model *m, const mb_op_rec *op, float **buf) {
    const mb_value_rec *in = &m->values[op->inputs[0]], *out = &m->values[op->output];
    const float *x = buf[op->inputs[0]];
    float *y = buf[op->output];
    const int32_t *p = op->params;
    const size_t n = elements(out);
    const int c = (int)in->dims[0], h = (int)in->dims[1], w = (int)in->dims[2];
    switch (op->kind) {
    case 1: {
        const naive_conv nc = {c, h, w, (int)m->tensors[op->weight].dims[0], p[0], p[1], p[2],
                               p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], (int)op->activation};
        naive_conv2d(&nc, x, m->tensors[op->weight].data,
                     op->bias == MB_NONE ? NULL : m->tensors[op->bias].data, y);
        break;
    }
    case 2:
        naive_linear((int)elements(in), (int)n, (int)op->activation, x,
                     m->tensors[op->weight].data,
                     op->bias == MB_NONE ? NULL : m->tensors[op->bias].data, y);
        break;
    case 3:
        for (size_t i = 0; i < n; i++)
            y[i] = naive_act((double)x[i] + buf[op->inputs[1]][i], (int)op->activation);
        break;
    case 4:
    case 5:
        for (size_t i = 0; i < n; i++) y[i] = naive_act(x[i], op->kind == 4 ? 1 : 2);
        break;
    case 6: {
        const naive_pool np = {c, h, w, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], 0, 0};
        naive_maxpool2d(&np, x, y);
        break;
    }
    case 7: {
        const naive_pool np = {c, h, w, p[0], p[1], p[2], p[3], p[4], p[5], 1, 1, p[6], p[7], p[8]};
        naive_avgpool2d(&np, x, y);
        break;
    }
    case 8: naive_adaptive_avgpool2d(c, h, w, 1, 1, x, y); break;
    case 9: naive_adaptive_avgpool2d(c, h, w, p[0], p[1], x, y); break;
    case 10: memcpy(y, x, n * sizeof *y); break;
    case 11: {
        int outer = 1, inner = 1;
        for (int d = 0; d < p[0]; d++) outer *= (int)in->dims[d];
        for (uint32_t d = (uint32_t)p[0] + 1; d < in->rank; d++) inner *= (int)in->dims[d];
        naive_softmax(outer, (int)in->dims[p[0]], inner, x, y);
        break;
    }
    default: fprintf(stderr, "gen_fixture: op kind %u has no naive reference\n", op->kind); exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_fixture DIR\n");
        return 2;
    }
    mb_model m;
    mb_sample_cnn(&m);
    enum { BATCH = 2 };
    const size_t in_n = elements(&m.values[m.input]), out_n = elements(&m.values[m.output]);
    float *input = malloc(BATCH * in_n * sizeof *input), *expected = malloc(BATCH * out_n * sizeof *expected);
    unsigned rng = 20240601u;
    for (size_t i = 0; i < BATCH * in_n; i++) {
        rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
        input[i] = (float)(rng % 20001u) / 5000.0f - 2.0f;
    }
    float *buf[MB_MAX];
    for (uint32_t v = 0; v < m.value_count; v++) buf[v] = malloc(elements(&m.values[v]) * sizeof(float));
    for (int b = 0; b < BATCH; b++) {
        memcpy(buf[m.input], input + b * in_n, in_n * sizeof(float));
        for (uint32_t k = 0; k < m.op_count; k++) run_op(&m, &m.ops[k], buf);
        memcpy(expected + b * out_n, buf[m.output], out_n * sizeof(float));
    }
    char path[1024], err[512];
    size_t size;
    uint8_t *file = mb_build(&m, &size);
    snprintf(path, sizeof path, "%s/builder_cnn.crisp", argv[1]);
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(file, 1, size, f) == size;
    ok = f != NULL && fclose(f) == 0 && ok;
    const uint64_t in_dims[4] = {BATCH, 3, 8, 8}, out_dims[2] = {BATCH, out_n};
    snprintf(path, sizeof path, "%s/builder_cnn.input.npy", argv[1]);
    ok = ok && npy_write(path, input, 4, in_dims, err, sizeof err) == 0;
    snprintf(path, sizeof path, "%s/builder_cnn.expected.npy", argv[1]);
    ok = ok && npy_write(path, expected, 2, out_dims, err, sizeof err) == 0;
    if (!ok) fprintf(stderr, "gen_fixture: cannot write %s\n", path);
    for (uint32_t v = 0; v < m.value_count; v++) free(buf[v]);
    free(input), free(expected), free(file);
    mb_free(&m);
    return ok ? 0 : 1;
}
