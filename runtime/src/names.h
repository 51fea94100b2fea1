/* Internal: every enum-to-text helper of the runtime, for messages and
 * profiles (src/names.c). Pure functions of their arguments; the returned
 * strings are static or the caller's buffer. crisp_status_name is public
 * (include/crisp.h) and lives in names.c too. */
#ifndef CRISP_NAMES_H
#define CRISP_NAMES_H

#include <stddef.h>
#include <stdint.h>

/* "CONV2D", "LINEAR", ...; "unknown" outside 1..CRISP_OP_KIND_MAX. */
const char *crisp_op_kind_name(uint32_t kind);

/* The names of an op kind's params ("kh", "kw", ...) and in *count how many
 * of the CRISP_OP_PARAM_COUNT slots the kind uses (the rest must be 0);
 * NULL and 0 for kinds without params. */
const char *const *crisp_op_param_names(uint32_t kind, int *count);

/* "DENSE_F32", "HYBRID_F32", "DENSE_I8", "HYBRID_I8"; "?" otherwise. */
/* "none", "relu", ... "hardsigmoid" (enum crisp_activation). */
const char *crisp_activation_name(uint32_t activation);
const char *crisp_encoding_name(uint32_t encoding);

/* "int8" for CRISP_DTYPE_I8, else "float32". */
const char *crisp_dtype_name(uint32_t dtype);

/* A section kind as its four characters ("GRPH") when printable, else as
 * hex ("0x0000FF01"), so a corrupt kind still reads clearly; written to buf. */
const char *crisp_section_kind_name(uint32_t kind, char buf[16]);

/* The optimised kernel family of a crisp_fast_path ("gemm", "spmm",
 * "dwconv", "maxpool", "gemv"); "reference" for CRISP_FAST_NONE. `choice`
 * is the hybrid layer's form (enum crisp_hybrid_choice, src/hybrid_form.h):
 * expanded to dense from the file, "gemm (expanded)" / "gemv (expanded)"; dense
 * from a copy made at load, "gemm (dense copy)" / "qs8_gemv (dense copy)";
 * filled runs, "spmm (filled)". */
const char *crisp_fast_path_name(uint32_t path, uint32_t choice);
/* The same for a 1 x 1 conv the depthwise conv after it computes (expand
 * fusion, src/fuse.c): its form, then "fused into next". */
const char *crisp_fused_path_name(uint32_t path, uint32_t choice);

/* Dims as "a,b,c" in buf (truncated to size), for messages. */
const char *crisp_format_dims(char *buf, size_t size, uint32_t rank, const uint32_t *dims);

#endif
