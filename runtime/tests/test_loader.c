/* Loading and running valid models: info, labels, provenance, file vs
 * buffer, batches, session_run argument errors. Malformed files are in
 * test_loader_bad.c. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader_check.h"
#include "model_builder.h"

void test_loader_hybrid(void);

CHECK_DEFINE_COUNTERS;

static void test_info_and_labels(crisp_model *m) {
    crisp_model_info info;
    CHECK(crisp_model_get_info(m, &info) == CRISP_OK, "get_info");
    CHECK(info.format_major == 1 && info.format_minor == 1, "format %u.%u", info.format_major,
          info.format_minor);
    CHECK(info.input_rank == 3 && info.input_dims[0] == 3 && info.input_dims[1] == 8 &&
              info.input_dims[2] == 8 && info.input_elements == 192,
          "input shape");
    CHECK(info.output_rank == 1 && info.output_dims[0] == 10 && info.output_elements == 10,
          "output shape");
    CHECK(info.op_count == 14 && info.value_count == 15 && info.tensor_count == 7, "counts %u %u %u",
          info.op_count, info.value_count, info.tensor_count);
    /* conv1 8*8*8*27 + depthwise 8*4*4*9 + conv2 12*3*2*24 + linear 120 */
    CHECK(info.macs == 13824 + 1152 + 1728 + 120 && info.effective_macs == info.macs,
          "macs %llu effective %llu", (unsigned long long)info.macs,
          (unsigned long long)info.effective_macs);
    CHECK(info.arena_bytes > 0 && info.arena_bytes < info.naive_bytes, "arena %llu naive %llu",
          (unsigned long long)info.arena_bytes, (unsigned long long)info.naive_bytes);
    CHECK(info.label_count == 10, "labels %u", info.label_count);
    int32_t id;
    const char *name;
    CHECK(crisp_model_get_label(m, 2, &id, &name) == CRISP_OK && id == 114 &&
              strcmp(name, "caf\xc3\xa9") == 0,
          "label 2");
    CHECK(crisp_model_get_label(m, 9, &id, &name) == CRISP_OK && name[0] == '\0', "empty name");
    CHECK(crisp_model_get_label(m, 10, &id, &name) == CRISP_ERR_ARGUMENT &&
              strstr(crisp_last_error(), "out of range"),
          "label 10: %s", crisp_last_error());
    CHECK(crisp_model_get_label(NULL, 0, &id, &name) == CRISP_ERR_ARGUMENT, "label NULL model");
    const char *json;
    size_t len;
    CHECK(crisp_model_get_provenance(m, &json, &len) == CRISP_OK && strstr(json, "model_builder") &&
              len == strlen(json),
          "provenance");
    CHECK(crisp_model_get_info(NULL, &info) == CRISP_ERR_ARGUMENT, "info NULL");
}

static void test_run(crisp_model *from_buffer, crisp_model *from_file) {
    crisp_session *a, *b;
    CHECK(crisp_session_create(from_buffer, &a) == CRISP_OK, "session a");
    CHECK(crisp_session_create(from_file, &b) == CRISP_OK, "session b");
    float x[3 * 192], y[30], z[10];
    unsigned rng = 5;
    for (int i = 0; i < 3 * 192; i++) x[i] = check_rand_float(&rng) * 3;
    CHECK(crisp_session_run(a, x, 3 * 192, y, 30) == CRISP_OK, "batch run: %s", crisp_last_error());
    for (int s = 0; s < 3; s++) {
        CHECK(crisp_session_run(b, x + 192 * s, 192, z, 10) == CRISP_OK, "single run");
        CHECK(memcmp(z, y + 10 * s, sizeof z) == 0, "sample %d of the batch differs from a single run", s);
        double sum = 0;
        for (int k = 0; k < 10; k++) sum += z[k];
        CHECK(fabs(sum - 1) < 1e-5, "softmax sums to %g", sum);
    }
    CHECK(crisp_session_run(NULL, x, 192, y, 10) == CRISP_ERR_ARGUMENT, "NULL session");
    CHECK(crisp_session_run(a, NULL, 192, y, 10) == CRISP_ERR_ARGUMENT, "NULL input");
    CHECK(crisp_session_run(a, x, 192, NULL, 10) == CRISP_ERR_ARGUMENT, "NULL output");
    CHECK(crisp_session_run(a, x, 191, y, 10) == CRISP_ERR_SHAPE &&
              strstr(crisp_last_error(),
                     "input has 191 floats; the model takes a multiple of 192 = (3,8,8) per sample"),
          "short input: %s", crisp_last_error());
    CHECK(crisp_session_run(a, x, 0, y, 10) == CRISP_ERR_SHAPE, "empty input");
    CHECK(crisp_session_run(a, x, 192, y, 9) == CRISP_ERR_SHAPE &&
              strstr(crisp_last_error(), "output has 9 floats"),
          "short output: %s", crisp_last_error());
    CHECK(crisp_session_run(a, x, 384, y, 10) == CRISP_ERR_SHAPE, "batch 2 into 1 output");
    CHECK(crisp_session_run(a, x, 192, y, 20) == CRISP_ERR_SHAPE, "output too large");
    crisp_session *none = (crisp_session *)1;
    CHECK(crisp_session_create(NULL, &none) == CRISP_ERR_ARGUMENT && none == NULL, "NULL model");
    crisp_session_free(a);
    crisp_session_free(b);
    crisp_session_free(NULL);
}

/* input (4) -> linear (3) relu -> add with itself -> relu6: checked by hand. */
static void test_hand_model(void) {
    mb_model mb;
    mb_init(&mb);
    const uint32_t x = mb_value(&mb, 1, 4, 0, 0, 0), h = mb_value(&mb, 1, 3, 0, 0, 0);
    const uint32_t s = mb_value(&mb, 1, 3, 0, 0, 0), o = mb_value(&mb, 1, 3, 0, 0, 0);
    const float w[12] = {1, 0, 0, 0, 0, 1, 1, 0, -1, -1, -1, -1}, b[3] = {0.5f, 1, 0};
    const uint32_t wt = mb_tensor(&mb, 2, 3, 4, 0, 0, w), bt = mb_tensor(&mb, 1, 3, 0, 0, 0, b);
    mb_op(&mb, 2, 1, x, MB_NONE, h, wt, bt, NULL);
    mb_op(&mb, 3, 0, h, h, s, MB_NONE, MB_NONE, NULL);
    mb_op(&mb, 5, 0, s, MB_NONE, o, MB_NONE, MB_NONE, NULL);
    mb.input = x, mb.output = o;
    size_t n;
    uint8_t *f = mb_build(&mb, &n);
    crisp_model *m;
    crisp_session *se;
    CHECK(crisp_model_load_buffer(f, n, &m) == CRISP_OK, "hand model: %s", crisp_last_error());
    CHECK(crisp_session_create(m, &se) == CRISP_OK, "hand session");
    const float in[4] = {2, 1, 0.5f, 3};
    float out[3];
    CHECK(crisp_session_run(se, in, 4, out, 3) == CRISP_OK, "hand run");
    /* h = relu(2.5, 2.5, -6.5) = (2.5, 2.5, 0); relu6(2h) = (5, 5, 0) */
    CHECK(out[0] == 5 && out[1] == 5 && out[2] == 0, "hand outputs %g %g %g", out[0], out[1], out[2]);
    const char *json;
    CHECK(crisp_model_get_provenance(m, &json, NULL) == CRISP_OK && json[0] == '\0', "no PROV");
    int32_t id;
    const char *name;
    CHECK(crisp_model_get_label(m, 0, &id, &name) == CRISP_ERR_ARGUMENT, "no LABL");
    crisp_session_free(se);
    crisp_model_free(m);
    free(f);
    mb_free(&mb);
}

static void *other_thread(void *arg) {
    (void)arg;
    crisp_model *m;
    crisp_model_load_buffer("nope", 4, &m);
    return NULL;
}

static void test_api_basics(void) {
    CHECK(strcmp(crisp_version(), "0.1.0") == 0, "version %s", crisp_version());
    CHECK(strcmp(crisp_status_name(CRISP_ERR_CHECKSUM), "CRISP_ERR_CHECKSUM") == 0, "status name");
    crisp_model *m = (crisp_model *)1;
    CHECK(crisp_model_load_file("/nonexistent/model.crisp", &m) == CRISP_ERR_IO && m == NULL &&
              strstr(crisp_last_error(), "/nonexistent/model.crisp"),
          "missing file: %s", crisp_last_error());
    CHECK(crisp_model_load_file("/", &m) == CRISP_ERR_IO, "directory");
    CHECK(crisp_model_load_file(NULL, &m) == CRISP_ERR_ARGUMENT, "NULL path");
    CHECK(crisp_model_load_buffer(NULL, 10, &m) == CRISP_ERR_ARGUMENT, "NULL data");
    CHECK(crisp_model_load_buffer("x", 1, NULL) == CRISP_ERR_ARGUMENT, "NULL out");
    /* Messages are per thread: another thread's failure leaves ours alone. */
    crisp_model_load_file("/nonexistent/mine", &m);
    pthread_t t;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, NULL);
    CHECK(strstr(crisp_last_error(), "/nonexistent/mine") != NULL, "thread-local error: %s",
          crisp_last_error());
}

int main(void) {
    test_api_basics();
    mb_model mb;
    mb_sample_cnn(&mb);
    size_t n;
    uint8_t *f = mb_build(&mb, &n);
    char path[] = "/tmp/crisp_test_loader_XXXXXX";
    const int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, f, n) == (ssize_t)n, "temp file");
    close(fd);
    crisp_model *from_buffer, *from_file;
    CHECK(crisp_model_load_buffer(f, n, &from_buffer) == CRISP_OK, "load buffer: %s", crisp_last_error());
    CHECK(crisp_model_load_file(path, &from_file) == CRISP_OK, "load file: %s", crisp_last_error());
    unlink(path);
    free(f); /* load_buffer copied; the file mapping outlives the unlink */
    if (from_buffer && from_file) {
        test_info_and_labels(from_buffer);
        test_info_and_labels(from_file);
        test_run(from_buffer, from_file);
    }
    crisp_model_free(from_buffer);
    crisp_model_free(from_file);
    crisp_model_free(NULL);
    mb_free(&mb);
    test_hand_model();
    test_malformed();
    test_loader_hybrid();
    return check_report();
}
