/* Loading: the file mapping or aligned copy, the one conductor that runs the
 * loader's stages in turn (load_stages; the stages are declared in model.h),
 * and the model queries. */
/* mmap and O_CLOEXEC are POSIX, not C11; madvise(MADV_DONTNEED) is BSD/Linux. */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "hybrid_form.h"
#include "model.h"
#include "conv_fast.h"
#include "expand.h"
#include "memlimit.h"
#include "status.h"

void crisp_model_free(crisp_model *m) {
    if (m == NULL) return;
    if (m->mapping != NULL) munmap(m->mapping, m->mapping_size);
    free(m->owned);
    free(m->values);
    free(m->tensors);
    for (uint32_t i = 0; m->ops != NULL && i < m->op_count; i++) {
        crisp_packed_free(&m->ops[i].packed);
        free((void *)m->ops[i].fast.band_offset);
    }
    free(m->ops);
    free(m->label_ids);
    free(m->label_names);
    free(m->label_text);
    free(m->provenance);
    free(m->path);
    free(m);
}

/* A mapped file's hybrid tensor lives on in its packed runs or dense copy
 * (src/pack.c) and is not read again: give its pages back right after
 * packing it, so a load never holds both copies of the weights. Clean
 * file-backed pages (a later read would fault them in again); only whole
 * pages inside the tensor. A layer expanded from the file reads it at every
 * run (src/expand.h): kept. */
static void release_packed_weights(const crisp_model *m, const crisp_op *op) {
    if (op->kind != CRISP_OP_CONV2D && op->kind != CRISP_OP_LINEAR) return;
    if (crisp_op_expanded(op)) return;
    const crisp_tensor *t = &m->tensors[op->weight];
    if (m->mapping == NULL || !crisp_encoding_is_hybrid(t->encoding)) return;
    const long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    const uintptr_t p = (uintptr_t)page;
    const uintptr_t a = ((uintptr_t)t->raw + p - 1) / p * p;
    const uintptr_t b = ((uintptr_t)t->raw + (uintptr_t)t->raw_size) / p * p;
    if (b <= a) return;
#ifdef MADV_NOHUGEPAGE
    /* First out of huge mappings: a page cache holding the file in 2 MiB
     * folios (Linux 6.x, a file just written or read ahead) maps a whole
     * folio by one PMD at the first touch of any byte of it, so a bias or a
     * dense weight read at every run beside this tensor would map its pages
     * back (ResNet-50 @75 %: peak RSS 52 -> 66 MB). The advice splits the
     * range into a mapping of its own that takes no PMD and no fault-around
     * from its neighbours. */
    (void)madvise((void *)a, (size_t)(b - a), MADV_NOHUGEPAGE);
#endif
    (void)madvise((void *)a, (size_t)(b - a), MADV_DONTNEED);
}

/* The loader: every check of docs/format.md "Validation", stage by stage
 * (runtime/README.md, "Loading"). Parsing and validating go together: each
 * stage reads its part of the file and checks it before anything uses it.
 * The per-tensor and per-op stages run tensor by tensor and op by op, so
 * the first fault in file order is the one reported, whatever its kind
 * (the packing deferred past the arena plan can only fail for memory:
 * those errors come after every fault of the file). */
static crisp_status load_stages(crisp_model *m) {
    crisp_status s;
    if ((s = crisp_parse_container(m)) != CRISP_OK) return s;
    if ((s = crisp_parse_graph_header(m)) != CRISP_OK) return s;
    if ((s = crisp_parse_values(m)) != CRISP_OK) return s;
    for (uint32_t i = 0; i < m->tensor_count; i++) {
        if ((s = crisp_parse_tensor(m, i)) != CRISP_OK) return s;
        s = crisp_encoding_is_hybrid(m->tensors[i].encoding) ? crisp_check_hybrid(m, i)
                                                             : crisp_check_dense(m, i);
        if (s != CRISP_OK) return s;
    }
    for (uint32_t i = 0; i < m->op_count; i++) {
        if ((s = crisp_parse_op(m, i)) != CRISP_OK) return s;
        if ((s = crisp_infer_op(m, i)) != CRISP_OK) return s;
        if ((s = crisp_check_op_dtypes(m, i)) != CRISP_OK) return s;
        if ((s = crisp_pack_op(m, i)) != CRISP_OK) return s;
        if (!m->ops[i].plan.deferred) release_packed_weights(m, &m->ops[i]);
    }
    if ((s = crisp_check_graph_values(m)) != CRISP_OK) return s;
    if ((s = crisp_parse_labels(m)) != CRISP_OK) return s;
    if ((s = crisp_parse_provenance(m)) != CRISP_OK) return s;
    if ((s = crisp_parse_preprocess(m)) != CRISP_OK) return s;
    crisp_fuse_residual_adds(m);
    crisp_fuse_expands(m);
    if ((s = crisp_plan_model(m)) != CRISP_OK) return s;
    /* Float32 hybrid layers with a dense form, fitted to the memory budget
     * now that the arena is known, then packed as stage 5 packs the rest. */
    crisp_fit_packed_forms(m);
    for (uint32_t i = 0; i < m->op_count; i++) {
        if (!m->ops[i].plan.deferred) continue;
        if ((s = crisp_pack_deferred(m, i)) != CRISP_OK) return s;
        release_packed_weights(m, &m->ops[i]);
    }
    crisp_fast_plan_model(m);
    return crisp_check_limits(m);
}

/* Runs the loader; frees the model (and with it the bytes) on failure. */
static crisp_status run_loader(crisp_model *m, crisp_model **out) {
    const crisp_status s = load_stages(m);
    if (s != CRISP_OK) {
        crisp_model_free(m);
        return s;
    }
    *out = m;
    return CRISP_OK;
}

/* A 64-aligned private copy keeps tensor data float-aligned as in a mapping. */
static void *aligned_copy(const void *data, size_t size) {
    size_t capacity = size < CRISP_ALIGN ? CRISP_ALIGN : size;
    if (capacity > SIZE_MAX - (CRISP_ALIGN - 1)) return NULL;
    capacity = (capacity + CRISP_ALIGN - 1) / CRISP_ALIGN * CRISP_ALIGN;
    void *copy = aligned_alloc(CRISP_ALIGN, capacity);
    if (copy != NULL && size > 0) memcpy(copy, data, size);
    return copy;
}

crisp_status crisp_model_load_buffer(const void *data, size_t size, crisp_model **out) {
    return crisp_model_load_buffer_with_options(data, size, NULL, out);
}

crisp_status crisp_model_load_buffer_with_options(const void *data, size_t size,
                                                  const crisp_load_options *options,
                                                  crisp_model **out) {
    if (out == NULL) return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_load_buffer: out is NULL");
    *out = NULL;
    if (data == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_load_buffer: data is NULL");
    uint64_t limit;
    uint32_t form;
    crisp_status ls = crisp_limits_resolve(options, &limit);
    if (ls == CRISP_OK) ls = crisp_hybrid_form_resolve(&form);
    if (ls != CRISP_OK) return ls;
    crisp_model *m = calloc(1, sizeof *m);
    if (m == NULL) return crisp_error(CRISP_ERR_NOMEM, "out of memory for the model");
    m->max_memory_bytes = limit;
    m->hybrid_form = form;
    m->owned = aligned_copy(data, size);
    if (m->owned == NULL) {
        free(m);
        return crisp_error(CRISP_ERR_NOMEM, "out of memory copying the %zu-byte model", size);
    }
    m->bytes = m->owned;
    m->size = size;
    return run_loader(m, out);
}

crisp_status crisp_model_load_file(const char *path, crisp_model **out) {
    return crisp_model_load_file_with_options(path, NULL, out);
}

crisp_status crisp_model_load_file_with_options(const char *path,
                                                const crisp_load_options *options,
                                                crisp_model **out) {
    if (out == NULL) return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_load_file: out is NULL");
    *out = NULL;
    if (path == NULL) return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_load_file: path is NULL");
    uint64_t limit; /* resolved before the file is opened: a bad option opens nothing */
    uint32_t form;
    crisp_status ls = crisp_limits_resolve(options, &limit);
    if (ls == CRISP_OK) ls = crisp_hybrid_form_resolve(&form);
    if (ls != CRISP_OK) return ls;
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return crisp_error(CRISP_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        const int e = errno;
        close(fd);
        return crisp_error(CRISP_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return crisp_error(CRISP_ERR_IO, "'%s' is not a regular file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return crisp_error(CRISP_ERR_IO, "'%s' is too large to map", path);
    }
    crisp_model *m = calloc(1, sizeof *m);
    if (m == NULL) {
        close(fd);
        return crisp_error(CRISP_ERR_NOMEM, "out of memory for the model");
    }
    m->max_memory_bytes = limit;
    m->hybrid_form = form;
    const size_t size = (size_t)st.st_size;
    if (size == 0) {
        /* mmap refuses length 0; an empty file fails validation with a clear message. */
        m->owned = aligned_copy(NULL, 0);
        m->bytes = m->owned;
    } else {
        void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            const int e = errno;
            close(fd);
            free(m);
            return crisp_error(CRISP_ERR_IO, "cannot map '%s': %s", path, strerror(e));
        }
        m->mapping = map;
        m->mapping_size = size;
        m->bytes = map;
    }
    close(fd);
    if (m->bytes == NULL) {
        free(m);
        return crisp_error(CRISP_ERR_NOMEM, "out of memory for the model");
    }
    m->size = size;
    /* Kept for messages about the model (crisp_image_decode names the file to repack). */
    const size_t path_len = strlen(path);
    m->path = malloc(path_len + 1);
    if (m->path == NULL) {
        crisp_model_free(m);
        return crisp_error(CRISP_ERR_NOMEM, "out of memory for the model");
    }
    memcpy(m->path, path, path_len + 1);
    return run_loader(m, out);
}

crisp_status crisp_model_get_info(const crisp_model *m, crisp_model_info *out) {
    if (m == NULL || out == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_get_info: %s is NULL",
                           m == NULL ? "model" : "out");
    const crisp_value *in = &m->values[m->input_value], *o = &m->values[m->output_value];
    memset(out, 0, sizeof *out);
    out->format_major = m->format_major;
    out->format_minor = m->format_minor;
    out->input_rank = in->rank;
    out->output_rank = o->rank;
    memcpy(out->input_dims, in->dims, sizeof in->dims);
    memcpy(out->output_dims, o->dims, sizeof o->dims);
    out->op_count = m->op_count;
    out->value_count = m->value_count;
    out->tensor_count = m->tensor_count;
    out->label_count = m->label_count;
    out->input_elements = in->elements;
    out->output_elements = o->elements;
    out->file_bytes = m->size;
    out->weight_bytes = m->wght.size;
    out->arena_bytes = m->arena_bytes;
    out->naive_bytes = m->naive_bytes;
    out->macs = m->macs;
    out->effective_macs = m->effective_macs;
    return CRISP_OK;
}

crisp_status crisp_model_get_label(const crisp_model *m, uint32_t index, int32_t *class_id,
                                   const char **name) {
    if (m == NULL || class_id == NULL || name == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_get_label: %s is NULL",
                           m == NULL ? "model" : class_id == NULL ? "class_id" : "name");
    if (m->label_count == 0)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_get_label: the model has no label map");
    if (index >= m->label_count)
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "crisp_model_get_label: index %u is out of range (%u labels)",
                           (unsigned)index, (unsigned)m->label_count);
    *class_id = m->label_ids[index];
    *name = m->label_names[index];
    return CRISP_OK;
}

crisp_status crisp_model_get_provenance(const crisp_model *m, const char **json, size_t *length) {
    if (m == NULL || json == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_get_provenance: %s is NULL",
                           m == NULL ? "model" : "json");
    *json = m->provenance;
    if (length != NULL) *length = m->provenance_length;
    return CRISP_OK;
}

crisp_status crisp_model_get_op_form(const crisp_model *m, uint32_t op, const char *isa,
                                     uint32_t *form) {
    if (m == NULL || form == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_get_op_form: %s is NULL",
                           m == NULL ? "model" : "form");
    if (op >= m->op_count)
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "crisp_model_get_op_form: op %u is out of range (%u ops)",
                           (unsigned)op, (unsigned)m->op_count);
    crisp_hybrid_cost cost = m->ops[op].plan.cost;
    if (isa != NULL && isa[0] != '\0') {
        cost.isa = crisp_hybrid_tier(isa);
        if (cost.isa == NULL)
            return crisp_error(CRISP_ERR_ARGUMENT,
                               "crisp_model_get_op_form: kernel tier '%.40s' is unknown: expected "
                               "avx512f, avx2_fma, neon or scalar",
                               isa);
    }
    *form = CRISP_LAYER_FORM_NONE;
    if (!m->ops[op].plan.deferred) return CRISP_OK;
    switch (crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &cost)) {
    case CRISP_HYBRID_FILLED: *form = CRISP_LAYER_FORM_FILLED; break;
    case CRISP_HYBRID_DENSE:
        *form = crisp_dense_layout_pays(m, &m->ops[op]) ? CRISP_LAYER_FORM_DENSE_STORED
                                                         : CRISP_LAYER_FORM_DENSE;
        break;
    case CRISP_HYBRID_IN_FILE: *form = CRISP_LAYER_FORM_IN_FILE; break;
    default: *form = CRISP_LAYER_FORM_RUNS; break;
    }
    return CRISP_OK;
}
