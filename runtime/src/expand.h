/* Internal: float32 hybrid layers run dense, expanded from the file. The cost
 * table (src/hybrid_form.h) may run a hybrid layer on the dense GEMM/GEMV;
 * its weights then stay in the mapped file, and the conv/linear drivers
 * expand the few rows a microkernel call needs into per-thread scratch,
 * straight from the file's values, index stream and block columns. */
#ifndef CRISP_EXPAND_H
#define CRISP_EXPAND_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/ukernels.h"
#include "model.h"

/* Rows of at least this many floats (4 KiB, a page) run at least as fast
 * from a dense layout (a DENSE_F32 tensor, or a copy made at load) as
 * expanded from the file; shorter ones slower, the dense kernels reading a
 * layout's MR rows as MR short streams where the expansion reads the file's
 * one (runtime/README.md, "Dense copies" and "Stored dense"). */
#define CRISP_DENSE_LAYOUT_MIN_K ((uint64_t)1024)

/* Whether a hybrid op's rows are long enough for a dense layout to pay: a
 * conv (a GEMV reads each weight once: a layout gains nothing) of K >=
 * CRISP_DENSE_LAYOUT_MIN_K. Where the packer stores a layer dense
 * (crisp_model_get_op_form's DENSE_STORED) and, on small planes, where the
 * load copies one (src/pack.c, copy_wanted). */
static inline int crisp_dense_layout_pays(const crisp_model *m, const crisp_op *op) {
    return op->kind == CRISP_OP_CONV2D &&
           (uint64_t)m->tensors[op->weight].hybrid.cols >= CRISP_DENSE_LAYOUT_MIN_K;
}

/* Advances *value and *index, positions in the file's value and index
 * streams, past block-row br (its kept blocks, every row; N:M indices once
 * per V-run). The one walk of the streams' layout that the loader's
 * packing and the expansion both follow. */
void crisp_hybrid_skip_block_row(const crisp_hybrid *h, uint64_t br, uint64_t *value,
                                 uint64_t *index);

/* Where each block-row's values and index positions start in the file's
 * streams (nbr entries each), so a row is found without walking the rows
 * before it. */
void crisp_expand_starts(const crisp_hybrid *h, uint64_t *values, uint64_t *indices);

/* Rows [t, t + rows) of block-row br (t counted within it) of a 2:4 layer as
 * the kernels read them in place (ukernels.h, crisp_expand24_rows; out_stride
 * K): the expansion below and the in-place linears (src/conv_fast.c). */
crisp_expand24_rows crisp_expand24_block_rows(const crisp_hybrid *h, const uint64_t *value_start,
                                              const uint64_t *index_start, uint64_t br, size_t t,
                                              size_t rows);

/* Rows [row0, row0 + rows) of the layer as dense rows of K floats (the
 * file's OHWI column order, zeros where the pattern removed weights), row
 * row0 + i at out + i * K: bitwise what crisp_hybrid_expand writes there.
 * starts are crisp_expand_starts' (values then indices); 2:4 blocks go
 * through expand24 (NULL: plain C). */
void crisp_expand_rows(const crisp_hybrid *h, const uint64_t *value_start,
                       const uint64_t *index_start, crisp_f32_expand24_ukernel_fn expand24,
                       size_t row0, size_t rows, float *out);

#endif
