/* Shared by test_loader*.c: load a buffer and check status + message. */
#ifndef CRISP_TEST_LOADER_CHECK_H
#define CRISP_TEST_LOADER_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "crisp.h"

static inline int loader_contains(const char *text, const char *needle) {
    return needle == NULL || strstr(text, needle) != NULL;
}

/* Loads, expects `status` and a message containing `needle` (NULL: any). */
#define EXPECT_LOAD(file, size, status, needle, what)                                        \
    do {                                                                                     \
        crisp_model *m_ = (crisp_model *)1;                                                  \
        crisp_status s_ = crisp_model_load_buffer((file), (size), &m_);                      \
        const char *e_ = crisp_last_error();                                                 \
        CHECK(s_ == (status) && loader_contains(e_, needle) &&            \
                  (s_ == CRISP_OK) == (m_ != NULL),                                          \
              "%s: got %s \"%s\", expected %s containing \"%s\"", what, crisp_status_name(s_), \
              e_, crisp_status_name(status), needle ? needle : "");   \
        crisp_model_free(m_);                                                                \
    } while (0)

void test_malformed(void);

#endif
