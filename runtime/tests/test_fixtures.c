/* For every NAME.crisp in the directory given as argv[1]: run NAME.input.npy
 * and compare with NAME.expected.npy (made by torch on the Python side).
 * An empty directory is a failure: this test never passes on nothing. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crisp.h"
#include "npy.h"

CHECK_DEFINE_COUNTERS;

static void run_fixture(const char *dir, const char *stem) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s.crisp", dir, stem);
    crisp_model *m = NULL;
    crisp_session *s = NULL;
    npy_array x = {0}, want = {0};
    float *y = NULL;
    if (crisp_model_load_file(path, &m) != CRISP_OK) {
        CHECK(0, "%s: %s", stem, crisp_last_error());
        return;
    }
    snprintf(path, sizeof path, "%s/%s.input.npy", dir, stem);
    const int have_x = npy_read(path, &x, err, sizeof err) == 0;
    CHECK(have_x, "%s", err);
    snprintf(path, sizeof path, "%s/%s.expected.npy", dir, stem);
    const int have_want = have_x && npy_read(path, &want, err, sizeof err) == 0;
    CHECK(!have_x || have_want, "%s", err);
    if (have_want) {
        y = malloc((want.count ? want.count : 1) * sizeof *y);
        const crisp_status st = crisp_session_create(m, &s);
        CHECK(st == CRISP_OK, "%s: %s", stem, crisp_last_error());
        const crisp_status rs =
            st == CRISP_OK ? crisp_session_run(s, x.data, x.count, y, want.count) : st;
        CHECK(rs == CRISP_OK, "%s: %s", stem, crisp_last_error());
        if (rs == CRISP_OK) {
            double max_err = 0, max_ref = 0;
            for (uint64_t i = 0; i < want.count; i++) {
                const double e = fabs((double)y[i] - want.data[i]);
                max_err = e > max_err || isnan(e) ? e : max_err;
                if (fabs(want.data[i]) > max_ref) max_ref = fabs(want.data[i]);
            }
            const double tol = 1e-4 * (max_ref > 1 ? max_ref : 1);
            CHECK(max_err <= tol, "%s: max abs error %g > %g", stem, max_err, tol);
            printf("%s: %llu outputs, max abs error %.3g (tolerance %.3g)\n", stem,
                   (unsigned long long)want.count, max_err, tol);
        }
    }
    crisp_session_free(s);
    crisp_model_free(m);
    npy_free(&x);
    npy_free(&want);
    free(y);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_fixtures DIR\n");
        return 2;
    }
    DIR *d = opendir(argv[1]);
    CHECK(d != NULL, "cannot open fixture directory %s", argv[1]);
    int found = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
        const size_t len = strlen(e->d_name);
        if (len <= 6 || strcmp(e->d_name + len - 6, ".crisp") != 0) continue;
        char stem[512];
        snprintf(stem, sizeof stem, "%.*s", (int)(len - 6), e->d_name);
        run_fixture(argv[1], stem);
        found++;
    }
    if (d != NULL) closedir(d);
    CHECK(found > 0, "no NAME.crisp fixtures in %s", argv[1]);
    return check_report();
}
