/*
 * crisp.h - the one public header of the crisp-edge C runtime (libcrisp).
 *
 * Runs a .crisp model file (docs/format.md) with nothing but libc, libm and
 * pthreads. Opaque handles; every call returns a crisp_status and, on failure,
 * leaves a message for the calling thread in crisp_last_error(). Nothing in
 * this API aborts, asserts or crashes on bad input: a malformed file or a
 * wrong-sized buffer is an error value with a message.
 *
 * Typical use:
 *
 *   crisp_model *m; crisp_session *s;
 *   if (crisp_model_load_file("model.crisp", &m) != CRISP_OK) { puts(crisp_last_error()); ... }
 *   crisp_session_create(m, &s);
 *   crisp_session_run(s, input, n_input_floats, output, n_output_floats);
 *   crisp_session_free(s); crisp_model_free(m);
 *
 * Activations are float32, laid out per sample as in torch (NCHW without the
 * batch dimension, i.e. CHW: channel-major planes with contiguous pixels).
 * This header is also parsed by the Python binding (cffi, ABI mode): keep
 * declarations plain C, one per line group, no macros inside declarations
 * other than CRISP_API.
 */
#ifndef CRISP_H
#define CRISP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define CRISP_API __declspec(dllexport)
#else
#define CRISP_API __attribute__((visibility("default")))
#endif

/* Version of the runtime library; the Python package refuses to run against
 * a library whose version differs from its own. */
#define CRISP_VERSION_MAJOR 0
#define CRISP_VERSION_MINOR 1
#define CRISP_VERSION_PATCH 0

/* Newest .crisp format this runtime reads (files with another major version
 * are refused; newer minor versions are read if they need nothing unknown). */
#define CRISP_FORMAT_MAJOR 1
#define CRISP_FORMAT_MINOR 2

typedef enum crisp_status {
    CRISP_OK = 0,
    CRISP_ERR_ARGUMENT = 1,    /* a NULL handle, a wrong buffer size, an out-of-range option */
    CRISP_ERR_IO = 2,          /* the file cannot be opened, read or mapped */
    CRISP_ERR_FORMAT = 3,      /* the file is malformed: magic, sizes, offsets, counts, graph */
    CRISP_ERR_CHECKSUM = 4,    /* a CRC32 does not match: the file is corrupt */
    CRISP_ERR_VERSION = 5,     /* the file needs a newer (or older) runtime */
    CRISP_ERR_UNSUPPORTED = 6, /* a valid file uses an op or encoding this build lacks */
    CRISP_ERR_SHAPE = 7,       /* input or output size does not fit the model */
    CRISP_ERR_NOMEM = 8,       /* an allocation failed */
    CRISP_ERR_INTERNAL = 9,    /* a bug in the runtime: please report it */
    CRISP_ERR_LIMIT = 10       /* the model would need more memory than the limit allows
                                  (crisp_load_options.max_memory_mb, CRISP_MAX_MEMORY_MB);
                                  refused before allocating it */
} crisp_status;

typedef struct crisp_model crisp_model;
typedef struct crisp_session crisp_session;

/* Static facts about a loaded model. Shapes are per sample (no batch dim). */
typedef struct crisp_model_info {
    uint32_t format_major;
    uint32_t format_minor;
    uint32_t input_rank;
    uint32_t input_dims[4];
    uint32_t output_rank;
    uint32_t output_dims[4];
    uint32_t op_count;
    uint32_t value_count;
    uint32_t tensor_count;
    uint32_t label_count;
    uint64_t input_elements;  /* per sample */
    uint64_t output_elements; /* per sample */
    uint64_t file_bytes;
    uint64_t weight_bytes;    /* bytes of the weights section */
    uint64_t arena_bytes;     /* activation arena after liveness planning */
    uint64_t naive_bytes;     /* sum of all activation sizes (what planning saves) */
    uint64_t macs;            /* dense multiply-accumulates per sample (conv + linear) */
    uint64_t effective_macs;  /* those actually executed: hybrid layers count kept weights */
} crisp_model_info;

/* Session options; zero-initialise and set what you need (0 = default). */
typedef struct crisp_session_options {
    uint32_t threads; /* worker threads including the caller; 0 or 1 = single-threaded */
    uint32_t flags;   /* CRISP_SESSION_* bits, 0 = default */
} crisp_session_options;

/* Run every op on the scalar reference kernels instead of the optimised ones
 * this CPU selects: the executable spec, to check or measure against. */
#define CRISP_SESSION_REFERENCE_KERNELS 0x1u
/* Time every op of every run (two clock reads per op), for
 * crisp_session_get_op_profile: where a model's time goes, on the device. */
#define CRISP_SESSION_PROFILE 0x2u

/* One op's share of the runs of a CRISP_SESSION_PROFILE session. */
typedef struct crisp_op_profile {
    const char *kind;       /* "CONV2D", "LINEAR", ... */
    const char *kernel;     /* what ran it: "gemm", "spmm", "gemv", "dwconv", "maxpool"
                               (optimised kernels of crisp_kernel_isa()) or "reference";
                               a hybrid layer run dense (CRISP_HYBRID_FORM, runtime/README.md)
                               adds " (expanded)" when its rows are expanded from the file as
                               the kernels need them, " (dense copy)" when they were copied
                               out once at load; filled runs " (filled)". A 1 x 1 conv that
                               the depthwise conv after it computes (runtime/README.md,
                               "Expand fusion") ends in "fused into next)", that conv is
                               "dwconv (+expand)" */
    uint64_t macs;          /* dense multiply-accumulates per sample (conv/linear; else 0) */
    uint64_t effective_macs; /* those executed (hybrid layers count kept weights; filled
                                runs their zeros too, expanded ones every MAC); expand
                                fusion counts the 1 x 1 conv's in the depthwise conv's */
    uint64_t calls;         /* times it ran (samples, over all runs) */
    double seconds;         /* total wall time in it */
} crisp_op_profile;

/* The instruction set of the optimised kernels sessions use on this CPU:
 * "avx512f", "avx2_fma", "neon" or "scalar" (CRISP_MAX_ISA in the
 * environment caps it, e.g. CRISP_MAX_ISA=avx2). */
CRISP_API const char *crisp_kernel_isa(void);

/* "0.1.0": the library's version string. */
CRISP_API const char *crisp_version(void);

/* Message of the last failed call on this thread ("" if none). The pointer is
 * valid until the next crisp_* call on the same thread. */
CRISP_API const char *crisp_last_error(void);

/* Short name of a status ("CRISP_ERR_FORMAT"). */
CRISP_API const char *crisp_status_name(crisp_status status);

/* Load and fully validate a model. load_file maps the file read-only and uses
 * the weights in place; load_buffer copies the bytes (the caller keeps its
 * buffer). On failure *out is set to NULL. Both are the _with_options calls
 * with default options. */
CRISP_API crisp_status crisp_model_load_file(const char *path, crisp_model **out);
CRISP_API crisp_status crisp_model_load_buffer(const void *data, size_t size, crisp_model **out);

/* Load options; zero-initialise and set what you need (0 = default).
 * max_memory_mb bounds what the model makes the runtime allocate (MiB): its
 * packed weights, label names, provenance and graph records, plus one
 * session's activation arena and kernel scratch for each of its threads
 * (runtime/README.md, "Memory limits"). It is checked at load with one
 * thread, before anything that large is allocated, and again by each
 * session with its thread count; over it, CRISP_ERR_LIMIT with a message
 * naming the figures. 0: the CRISP_MAX_MEMORY_MB environment variable (a
 * whole number of MiB, read at load) if set, else
 * CRISP_DEFAULT_MAX_MEMORY_MB. The mapped file itself is not counted. */
typedef struct crisp_load_options {
    uint32_t max_memory_mb;
    uint32_t flags; /* 0 (reserved) */
} crisp_load_options;

/* 512 MiB: fits a Raspberry Pi 4 with 1 GB beside the OS and the mapped file. */
#define CRISP_DEFAULT_MAX_MEMORY_MB 512u

/* load_file / load_buffer with options (NULL = defaults). */
CRISP_API crisp_status crisp_model_load_file_with_options(const char *path,
                                                          const crisp_load_options *options,
                                                          crisp_model **out);
CRISP_API crisp_status crisp_model_load_buffer_with_options(const void *data, size_t size,
                                                            const crisp_load_options *options,
                                                            crisp_model **out);
CRISP_API void crisp_model_free(crisp_model *model);

CRISP_API crisp_status crisp_model_get_info(const crisp_model *model, crisp_model_info *out);

/* The form the cost table gives a float32 hybrid conv (groups 1) or linear
 * layer on a kernel tier, before the memory budget moves any layer
 * (runtime/README.md, "Dense or sparse, per layer"; CRISP_HYBRID_FORM is not
 * consulted): the packer stores a conv dense where this is DENSE_STORED
 * ("Stored dense"). */
enum {
    CRISP_LAYER_FORM_NONE = 0, /* not such a layer (dense, int8, depthwise, other ops) */
    CRISP_LAYER_FORM_RUNS,     /* the file's sparse runs */
    CRISP_LAYER_FORM_FILLED,   /* filled runs: per-row N:M blocks with their zeros */
    CRISP_LAYER_FORM_DENSE,    /* the dense kernels, rows expanded from the file */
    CRISP_LAYER_FORM_IN_FILE,  /* a 2:4 linear read in place */
    CRISP_LAYER_FORM_DENSE_STORED, /* DENSE, a conv whose rows (K >= 1024) run at least as
                                      fast from a dense layout: stored dense, it runs so */
};

/* `isa`: "avx512f", "avx2_fma", "neon" or "scalar" (another name is
 * CRISP_ERR_ARGUMENT), NULL or "" for this CPU's (crisp_kernel_isa()). */
CRISP_API crisp_status crisp_model_get_op_form(const crisp_model *model, uint32_t op,
                                               const char *isa, uint32_t *form);

/* Label of output index `index`: the original class id and its name (a
 * NUL-terminated UTF-8 string owned by the model). */
CRISP_API crisp_status crisp_model_get_label(const crisp_model *model, uint32_t index,
                                             int32_t *class_id, const char **name);

/* Provenance JSON text (may be empty), owned by the model, NUL-terminated. */
CRISP_API crisp_status crisp_model_get_provenance(const crisp_model *model, const char **json,
                                                  size_t *length);

/* How an image becomes the model's input: the file's PREP section
 * (docs/format.md). Written by `crisp-edge pack` when the preprocessing is
 * known; resize is one of CRISP_RESIZE_*, channel_order CRISP_CHANNELS_*.
 * Input channel c = (p * scale - mean[c]) / std[c] for the 8-bit pixel
 * value p of that channel after resizing and cropping. */
typedef struct crisp_preprocess {
    uint32_t present;       /* 0: the file stores no PREP (the other fields are 0) */
    uint32_t channels, height, width;
    uint32_t resize;        /* CRISP_RESIZE_NONE / _SHORTER_SIDE / _STRETCH */
    uint32_t resize_size;   /* shorter_side: the shorter side before the centre crop */
    uint32_t channel_order; /* 0 RGB, 1 BGR */
    float scale;
    float mean[3];
    float std[3];
} crisp_preprocess;

/* The image must already be width x height. */
#define CRISP_RESIZE_NONE 0u
/* Bilinear (as Pillow) so the shorter side is resize_size, then the centre crop. */
#define CRISP_RESIZE_SHORTER_SIDE 1u
/* Bilinear (as Pillow) to width x height, ignoring the aspect ratio. */
#define CRISP_RESIZE_STRETCH 2u
#define CRISP_CHANNELS_RGB 0u
#define CRISP_CHANNELS_BGR 1u
/* Images wider or taller than this are refused before any pixel is decoded. */
#define CRISP_IMAGE_MAX_SIDE 8192u

CRISP_API crisp_status crisp_model_get_preprocess(const crisp_model *model, crisp_preprocess *out);

/* Decode an encoded PNG or JPEG image and preprocess it with the model's
 * PREP into the model's input layout (C,H,W float32): out_count must be
 * input_elements. Grayscale is replicated and alpha dropped. A model without
 * PREP is CRISP_ERR_UNSUPPORTED; an unreadable, truncated or oversized image
 * is CRISP_ERR_FORMAT; an image of the wrong size under CRISP_RESIZE_NONE is
 * CRISP_ERR_SHAPE. Thread-safe: the model is only read. */
CRISP_API crisp_status crisp_image_decode(const crisp_model *model, const void *data, size_t size,
                                          float *out, size_t out_count);
/* The same for a file (read whole; the message names the path; a file that
 * cannot be read is CRISP_ERR_IO). */
CRISP_API crisp_status crisp_image_load(const crisp_model *model, const char *path, float *out,
                                        size_t out_count);

/* A session owns the activation arena (and its thread pool); one session per
 * concurrent caller. crisp_session_create is create_with_options with defaults. */
CRISP_API crisp_status crisp_session_create(const crisp_model *model, crisp_session **out);
CRISP_API crisp_status crisp_session_create_with_options(const crisp_model *model,
                                                         const crisp_session_options *options,
                                                         crisp_session **out);
CRISP_API void crisp_session_free(crisp_session *session);

/* Op `op` (0 .. op_count - 1, file order) of a session created with
 * CRISP_SESSION_PROFILE: its accumulated time since creation. */
CRISP_API crisp_status crisp_session_get_op_profile(const crisp_session *session, uint32_t op,
                                                    crisp_op_profile *out);

/* Run a batch. input_count must be batch * input_elements and output_count
 * batch * output_elements (batch >= 1); samples are processed in order. */
CRISP_API crisp_status crisp_session_run(crisp_session *session, const float *input,
                                         size_t input_count, float *output, size_t output_count);

/* ---- On-device re-personalisation (runtime/README.md, "Personalisation") ---- */

/* The classifier head: the last LINEAR op whose output reaches the graph output only
 * through RESHAPE / SOFTMAX / DEQUANTIZE ops. Its input is the penultimate features. */
typedef struct crisp_head_info {
    uint32_t op;            /* index of the head LINEAR op (file order) */
    uint32_t feature_value; /* its input value id: the features */
    uint32_t features;      /* elements per sample of the feature value (the head's Cin) */
    uint32_t classes;       /* the head's Cout */
    uint32_t has_bias;      /* 1 if the head has a bias tensor */
    uint32_t dtype;         /* 1 = float32 head, 2 = int8 head */
} crisp_head_info;

/* The model's head; CRISP_ERR_UNSUPPORTED ("model has no linear classifier head (...)")
 * when the graph output is not reached from a LINEAR op that way, or when a value on the
 * way is also read by another op. */
CRISP_API crisp_status crisp_model_get_head(const crisp_model *model, crisp_head_info *out);

/* The head's current parameters as dense float32: weight (classes x features, row-major;
 * hybrid heads expanded with zeros where values were removed, int8 heads dequantised as
 * scale[row] * q) and bias (classes; zeros when the head has none). weight_count and
 * bias_count must be exactly classes * features and classes (crisp_model_get_head). For
 * re-selecting classes from a full head without images. */
CRISP_API crisp_status crisp_model_get_head_weights(const crisp_model *model, float *weight,
                                                    size_t weight_count, float *bias,
                                                    size_t bias_count);

/* Run a batch until value `value` is produced (only the ops before it) and copy that value out
 * as float32 (int8 values dequantised with their scale and zero point). input_count = batch *
 * input_elements, out_count = batch * the value's elements. Value 0..value_count-1; the graph
 * input itself is allowed (a copy). Bitwise identical for any thread count. */
CRISP_API crisp_status crisp_session_run_to(crisp_session *session, uint32_t value,
                                            const float *input, size_t input_count,
                                            float *out, size_t out_count);

/* Options of crisp_fit_head; zero-initialise for the defaults. */
typedef struct crisp_fit_options {
    uint32_t epochs;  /* optimiser iterations; 0 = default 100 */
    float l2;         /* L2 weight on W (not b); 0 = default 1e-3; negative = none */
    uint32_t seed;    /* for anything random (ties, SGD order); results depend only on it */
    uint32_t flags;   /* CRISP_FIT_IMPRINT_ONLY: stop after weight imprinting */
} crisp_fit_options;

/* Stop after weight imprinting (no optimisation). */
#define CRISP_FIT_IMPRINT_ONLY 0x1u

/* What crisp_fit_head did. */
typedef struct crisp_fit_report {
    uint32_t iterations;
    float loss;            /* final mean cross-entropy + L2 term */
    float train_accuracy;  /* on the features given */
} crisp_fit_report;

/* Fit a linear head on features (n x dim, row-major float32) with labels in 0..classes-1:
 * weight (classes x dim, row-major) and bias (classes). Every class needs >= 2 samples.
 * Objective (minimised, full batch, double precision, single-threaded, deterministic):
 *   mean_i [ -log softmax(W f_i + b)[y_i] ] + l2/2 * ||W||_F^2
 * from weight imprinting (runtime/README.md, "Personalisation"), by L-BFGS. report may be
 * NULL. */
CRISP_API crisp_status crisp_fit_head(const float *features, const int32_t *labels, size_t n,
                                      uint32_t dim, uint32_t classes,
                                      const crisp_fit_options *options, float *weight,
                                      float *bias, crisp_fit_report *report);

/* A new head for crisp_model_write_head: `classes` rows. */
typedef struct crisp_new_head {
    uint32_t classes;
    const float *weight;          /* classes x head features, row-major */
    const float *bias;            /* classes, or NULL for zeros */
    const int32_t *class_ids;     /* classes: the label map's original class ids */
    const char *const *names;     /* classes: UTF-8 names, no NUL, <= 1024 bytes */
    const char *provenance_json;  /* a JSON object stored under "personalized" in PROV, or NULL */
} crisp_new_head;

/* Write `model` to `path` with its head replaced (dense float32 weight and bias), the label map
 * replaced, PROV extended, every other section copied; atomically (temporary file in the same
 * directory, fsync, rename, fsync of the directory). On failure nothing exists under `path`
 * that was not there before, and an existing file at `path` is untouched. int8 heads:
 * CRISP_ERR_UNSUPPORTED (personalise the float32 model). */
CRISP_API crisp_status crisp_model_write_head(const crisp_model *model,
                                              const crisp_new_head *head, const char *path);

/* ---- Bias tuning of the last stage (TinyTL-style; runtime/README.md, "Personalisation") ---- */

/* The last stage: from the head LINEAR op back through RESHAPE ops to a global average pool,
 * then the longest run of ops before it (file order) whose outputs are float32 maps at the
 * pool input's H x W (a CIFAR ResNet-18: layer4). Tuned: the bias of every CONV2D of the stage
 * that has a bias tensor of its own, and the head's weight and bias; weights stay fixed. */
typedef struct crisp_stage_info {
    uint32_t first_op;       /* first op of the stage (file order) */
    uint32_t pool_op;        /* its global average pool */
    uint32_t head_op;        /* the head LINEAR op */
    uint32_t input_value;    /* the value the stage starts from: crisp_session_run_to it */
    uint32_t input_elements; /* elements per sample of that value */
    uint32_t height, width;  /* the stage's resolution */
    uint32_t tuned_ops;      /* CONV2D ops whose bias is tuned (the head not counted) */
    uint64_t tuned_biases;   /* their bias elements (sum of their output channels) */
} crisp_stage_info;

/* The model's last stage; CRISP_ERR_UNSUPPORTED naming the reason when there is none (no
 * global pool before the head, an op without a backward pass here, an int8 model). */
CRISP_API crisp_status crisp_model_get_stage(const crisp_model *model, crisp_stage_info *out);

/* Tuned op `index` (0 .. tuned_ops - 1, file order): its op index and bias channels. The
 * tuned biases of crisp_tune_biases are these ops' biases one after another. */
CRISP_API crisp_status crisp_model_get_stage_op(const crisp_model *model, uint32_t index,
                                                uint32_t *op, uint32_t *channels);

/* Options of crisp_tune_biases; zero-initialise for the defaults. */
typedef struct crisp_tune_options {
    uint32_t epochs;  /* passes over the samples; 0 = default 10 */
    float lr;         /* Adam step size; 0 = default 1e-3 */
    float l2;         /* L2 weight on the head weight, as crisp_fit_options; 0 = 1e-3, < 0 none */
    uint32_t batch;   /* samples per step; 0 = default 8 */
    uint32_t seed;    /* the sample order of each epoch; results depend only on it */
    uint32_t flags;   /* CRISP_TUNE_FIT_HEAD or 0 */
} crisp_tune_options;

/* Start from crisp_fit_head (default options, this l2) on the stage's own features at the
 * file's biases instead of the weight and bias passed in (whose contents are then ignored):
 * the frozen part of the network has run once, for the stage inputs, and the start is the
 * head-only result. */
#define CRISP_TUNE_FIT_HEAD 0x1u

/* What crisp_tune_biases did. Losses are mean cross-entropy + l2/2 ||W||^2 on the samples,
 * computed by the tuning's own forward pass. */
typedef struct crisp_tune_report {
    uint32_t epochs;
    uint32_t steps;          /* optimiser steps */
    float loss_before, loss_after;
    float accuracy_before, accuracy_after;
    uint32_t kept_start;     /* 1: the tuned parameters had a higher loss, the start was kept */
} crisp_tune_report;

/* Tune the last stage's biases and the head on n samples given as the stage's input
 * (stage_inputs: n x crisp_stage_info.input_elements, from crisp_session_run_to(
 * input_value)), labels 0..classes-1. weight (classes x head features) and bias (classes):
 * the head to start from (crisp_fit_head's) on entry, the tuned head on return.
 * stage_biases (stage_bias_count = tuned_biases floats): the tuned conv biases on return, in
 * crisp_model_get_stage_op order; they start at the file's values. Minimises the objective of
 * crisp_fit_head by Adam on mini-batches in a seeded order, single-threaded and
 * deterministic; if the end is worse than the start, the start is returned (kept_start).
 * report may be NULL. */
CRISP_API crisp_status crisp_tune_biases(const crisp_model *model, const float *stage_inputs,
                                         const int32_t *labels, size_t n, uint32_t classes,
                                         const crisp_tune_options *options, float *weight,
                                         float *bias, float *stage_biases,
                                         size_t stage_bias_count, crisp_tune_report *report);

/* A replaced bias for crisp_model_write_tuned: op's bias tensor gets `values`. */
typedef struct crisp_new_bias {
    uint32_t op;           /* a CONV2D or LINEAR op other than the head, with a bias tensor that
                              no other op uses */
    uint32_t count;        /* its output channels */
    const float *values;   /* count finite floats */
} crisp_new_bias;

/* crisp_model_write_head, and also the bias tensors of `bias_count` ops replaced (same shape,
 * DENSE_F32; every other tensor byte for byte). bias_count 0 is crisp_model_write_head. */
CRISP_API crisp_status crisp_model_write_tuned(const crisp_model *model,
                                               const crisp_new_head *head,
                                               const crisp_new_bias *biases, uint32_t bias_count,
                                               const char *path);

/* Coverage of original class `class_id` from SALY: sum over the SALY layers of that class's
 * block saliency in blocks the file keeps, divided by its total (0..1). CRISP_ERR_ARGUMENT
 * when the file has no SALY or SALY lacks the class (message says which). */
CRISP_API crisp_status crisp_model_class_coverage(const crisp_model *model, int32_t class_id,
                                                  float *coverage);

#ifdef __cplusplus
}
#endif

#endif /* CRISP_H */
