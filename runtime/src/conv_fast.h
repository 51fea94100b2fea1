/* Internal: convolutions on the optimised microkernels (src/kernels/
 * ukernels.h): dense and hybrid-sparse convs as GEMM / sparse-run products
 * over im2col pixel tiles, depthwise convs over padded column phases. */
#ifndef CRISP_CONV_FAST_H
#define CRISP_CONV_FAST_H

#include "kernels/ukernels.h"
#include "model.h"

/* The plan of op `op` for kernels k (path NONE when no fast kernel applies),
 * without bands: a band needs its offsets, which crisp_fast_plan_model
 * allocates with the plan. */
crisp_fast_plan crisp_fast_plan_op(const crisp_model *m, const crisp_op *op,
                                   const crisp_f32_kernels *k);

/* The last loader stage: every op's plan for the kernels this CPU selects,
 * and the model's per-thread scratch (the largest plan's). Cannot fail. */
void crisp_fast_plan_model(crisp_model *m);

/* A run of tile pixels [dst, dst + len) that reads input elements src, src +
 * stride, ... of one input row (src counts from the channel plane's start),
 * or padding (src < 0). */
typedef struct crisp_tap_segment {
    ptrdiff_t src;
    uint32_t dst, len;
} crisp_tap_segment;

/* The largest pixel tile of a plan (the segment buffers are sized by it). */
#define CRISP_FAST_MAX_TILE_PIXELS ((size_t)512)

/* Segments of kernel tap (ky, kx) for output pixels [p0, p0 + np), np <=
 * CRISP_FAST_MAX_TILE_PIXELS: at most three per output row touched (left
 * padding, image, right padding), so out holds 3 * (np + 1). */
size_t crisp_fast_tap_segments(const crisp_conv2d_params *p, size_t ky, size_t kx, size_t p0,
                               size_t np, crisp_tap_segment *out);

/* int8 ops (src/conv_fast_qs8.c): the plan (path NONE where only the
 * reference kernels apply; `bands` 0: no band, src/conv_fast.c) and the work
 * items, as below (held_tile too). */
crisp_fast_plan crisp_fast_plan_qs8(const crisp_model *m, const crisp_op *op, int bands);

/* Executed MACs over dense MACs of a hybrid conv run sparse: its kept
 * weights, or its filled runs' weights, zeros (and int8 padding) included. */
double crisp_fast_executed_density(const crisp_model *m, const crisp_op *op);

/* Bands (src/conv_fast.c): plan f, whose im2col tile is planned, reads a
 * band instead when the band fits (one row's band and wide rows within a
 * tile budget of `budget` elements of `element` bytes, rows at most half
 * wider than the output, offsets within u32; kernels that sweep `granule`
 * positions per vector) and pays for a conv whose rows run as `runs` sparse
 * runs or panels executing `executed` of its dense MACs (stride 1; runs of 3
 * rows or more on average, or `int8` lone rows with few MACs per copied
 * element; at most 56 such MACs unless the im2col tile is over 4x the
 * budget and the band one tile; CRISP_CONV_IM2COL not 1): then f gets the
 * band geometry, tiles and scratch, else stays as it is. And the elements
 * the band takes in scratch, slack included (the wide output rows follow). */
void crisp_fast_choose_band(const crisp_conv2d_params *p, size_t runs, double executed, int int8,
                            size_t budget, size_t element, size_t granule, crisp_fast_plan *f);
size_t crisp_fast_band_elements(const crisp_conv2d_params *p, const crisp_fast_plan *f);
void crisp_fast_run_qs8(const crisp_model *m, const crisp_op *op, const int8_t *x, int8_t *y,
                        size_t begin, size_t end, size_t tile_pixels, float *scratch,
                        size_t *held_tile);

/* Chunks per thread an op's work items are cut into (src/dispatch.c): enough
 * that a descheduled thread holds back little of an op, few enough that
 * claiming (one atomic each) and the patch tiles rebuilt at chunk boundaries
 * stay negligible. */
#define CRISP_FAST_CHUNKS_PER_THREAD 4

/* How a session of `threads` threads cuts an op's pixels into tiles. The
 * plan's tiles fill a thread's L2; but an im2col conv with fewer tiles than
 * chunks (4 per thread) would have two threads build the same tile's patch
 * matrix for different runs or panels, each in its own scratch (ResNet-50's
 * 3 x 3 convs on 14 x 14 and 7 x 7 planes scaled 1.3x from 1 to 2 threads).
 * Such an op gets a tile count that is a multiple of `threads`, in tiles of
 * about equal size (smaller than the plan's, so scratch suffices), and its
 * chunks fall on tile boundaries (`by_tile`): each patch is built once. A
 * band conv's tiles are whole output rows: ceil(oh / n) rows for n that
 * multiple, so it may get fewer tiles (oh = 5 at 4 threads: 3) and then its
 * threads share tiles, each building the band of the tiles it runs. A
 * direct 1 x 1 conv (no scratch) with at least 2 T runs or panels and an
 * input of at most 1 MiB is one whole-image tile instead, its chunks cutting
 * the runs (runtime/README.md, "Threads"). */
typedef struct crisp_fast_tiling {
    size_t tile_pixels, tiles;
    int by_tile;
} crisp_fast_tiling;
crisp_fast_tiling crisp_fast_tiling_for(const crisp_op *op, size_t threads);

/* Whether the depthwise conv dw can compute the 1 x 1 conv before it band by
 * band on this CPU's kernels (src/fuse.c, crisp_fuse_expands). */
int crisp_fast_fuses_expand(const crisp_model *m, const crisp_op *conv, const crisp_op *dw);

/* Work items [begin, end) of the op's plan, in tiles of tile_pixels pixels
 * (crisp_fast_tiling_for); scratch holds plan.scratch_floats floats private
 * to the calling thread, *held_tile the pixel tile whose patch
 * matrix scratch already holds for this op (SIZE_MAX: none; updated), so a
 * thread running several chunks of one tile builds it once. */
/* residual: for a conv that fused an ADD (src/fuse.c) on a path that
 * crisp_fast_adds_residual accepts, the ADD's other input, added (and the
 * ADD's clamp applied) to each tile of y right after the kernels wrote it;
 * else NULL. */
void crisp_fast_run(const crisp_f32_kernels *k, const crisp_model *m, const crisp_op *op,
                    const float *x, const float *residual, float *y, size_t begin, size_t end,
                    size_t tile_pixels, float *scratch, size_t *held_tile);

/* 1 when crisp_fast_run adds a fused conv's residual itself: the float32
 * GEMM and sparse-run paths. */
int crisp_fast_adds_residual(const crisp_op *op);

#endif
