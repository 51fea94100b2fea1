/* Convolutions on the optimised microkernels. A dense or hybrid conv is a
 * product of its weights (output rows x K, K = kh * kw * Cin in the file's
 * OHWI column order) with the K x pixels matrix of input patches. The pixels
 * are cut into tiles; a tile's patch matrix (im2col) is built once per thread
 * in scratch, sized to stay in L2, and every row panel (dense) or run
 * (hybrid) sweeps it in NR-pixel calls while its weights stay in L1. A hybrid
 * layer run dense expands each panel from the file into scratch first
 * (src/expand.h). A 1x1 stride-1 unpadded conv needs no copy: its input
 * already is that matrix. Outputs land directly in the CHW output plane,
 * except from a band ("Bands" below; runtime/README.md, "Optimised
 * kernels"), which stride-1 sparse convs read instead of a patch matrix
 * where that pays. */
#include "conv_fast.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "expand.h"
#include "format.h"
#include "kernels/common.h"
#include "memlimit.h"

/* B tile budget: 64 Ki floats (256 KiB) fits the L2 of every target core. */
#define TILE_BUDGET_FLOATS ((size_t)64 * 1024)
/* A hybrid layer run dense expands each row panel once per tile (src/
 * expand.h): MR x K floats written for MR x K x tile MACs. With AVX-512 its
 * patch tiles are 4x larger (a B tile of 1 MiB), and with any ISA
 * they have at least 32 pixels. The pixels are cut into as few tiles as that
 * allows, of equal size rounded up to NR: rounding the budget down to NR
 * instead gave ResNet-50's 7 x 7 planes two tiles (32 + 17 pixels at K =
 * 4608) and its 14 x 14 planes three (96 + 96 + 4), so every panel was
 * expanded two and three times (its values read from memory each time: 1
 * thread, Sapphire Rapids VM, the model 1.078x -> 1.060x the dense model's
 * time). A direct 1 x 1 conv (no patch tile, B read in place) keeps the
 * dense budget: its panels are small (K <= 2048 on 12 rows) and long tiles
 * made ResNet-50's 1 x 1 convs on 56 x 56 planes 1.7x slower at 2 threads
 * (1.05x with the dense budget). Measured on ResNet-50 at 50 % (2:4 in 16 x
 * 16 blocks, Zen 4 with 1 MiB L2, thread CPU time against the dense copy
 * this replaced): AVX-512 budget x1 +10 %, x2 +7 %, x4 +6 %, x8 +2.5-3.5 %,
 * x16 +3.7 %; AVX2 (CRISP_MAX_ISA=avx2, 6 x 16 kernel, whose 16-pixel tiles
 * at K > 2048 expand a panel per call) x1 +10-12 %, x4 +11 %, x8 +14 %, x1
 * with tiles of at least 32 pixels +7.4 % (48, 64, 96: +8 %). NEON is
 * unmeasured: x1, at least 32. On a Sapphire Rapids VM (2 MiB L2, median
 * ms against dense, crisp-bench, 1 / 2 threads) x8 was the worst: +18 % /
 * +25 %; x1 +12 % / +13 %, x2 +6 % / +10 %, x4 +5 % / +11 %. x4 is within
 * 3 points of the best on both CPUs (a per-CPU choice would need the
 * load-time calibration issue 15 asks for). */
#define EXPANDED_MIN_TILE ((size_t)32)
static size_t expanded_budget_floats(const crisp_f32_kernels *k) {
    return strcmp(k->isa, "avx512f") == 0 ? 4 * TILE_BUDGET_FLOATS : TILE_BUDGET_FLOATS;
}
/* The largest input of a direct conv split by runs at several threads (half
 * the 2 MiB L2 of the Sapphire Rapids VM it was measured on: 2 MiB and
 * whole ResNet-50 inputs ran dense 1 x 1 convs up to 7 % slower). */
#define DIRECT_SPLIT_INPUT_BYTES ((size_t)1 << 20)
static int direct_input_fits(size_t k, size_t pixels, size_t element) {
    return k * pixels * element <= DIRECT_SPLIT_INPUT_BYTES;
}
#define MAX_TILE_PIXELS CRISP_FAST_MAX_TILE_PIXELS
#define DW_SLACK CRISP_DWCONV_SLACK

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }
static size_t round_up(size_t n, size_t q) { return (n + q - 1) / q * q; }

static const float *bias_of(const crisp_model *m, const crisp_op *op) {
    return op->bias != CRISP_NO_ID ? m->tensors[op->bias].data : NULL;
}

/* A max pool is a depthwise window walk: the same geometry as a conv. */
static crisp_conv2d_params pool_as_conv(const crisp_pool2d_params *q) {
    crisp_conv2d_params c;
    memset(&c, 0, sizeof c);
    c.input_channels = c.output_channels = c.groups = q->channels;
    c.input_height = q->input_height, c.input_width = q->input_width;
    c.output_height = q->output_height, c.output_width = q->output_width;
    c.kernel_height = q->kernel_height, c.kernel_width = q->kernel_width;
    c.stride_height = q->stride_height, c.stride_width = q->stride_width;
    c.padding_top = q->padding_height, c.padding_left = q->padding_width;
    c.dilation_height = q->dilation_height, c.dilation_width = q->dilation_width;
    c.minmax.output_min = -INFINITY, c.minmax.output_max = INFINITY;
    return c;
}

/* Depthwise and max pool work in bands of output rows whose padded input
 * rows (all stride phases) fit in about 16 KiB, so the copy the kernel reads
 * stays in L1: the band's output row count, and the padded rows it reads. */
#define BAND_FLOATS ((size_t)4096)
static size_t phase_stride(const crisp_conv2d_params *p);
static size_t band_rows(const crisp_conv2d_params *p) {
    const size_t per_row = p->stride_width * phase_stride(p);
    const size_t fixed = (p->kernel_height - 1) * p->dilation_height + 1;
    const size_t fit = BAND_FLOATS / per_row;
    const size_t rows = fit > fixed ? (fit - fixed) / p->stride_height + 1 : 1;
    return min_size(rows, p->output_height);
}
static size_t padded_rows(const crisp_conv2d_params *p, size_t output_rows) {
    return (output_rows - 1) * p->stride_height + (p->kernel_height - 1) * p->dilation_height + 1;
}
static size_t phase_stride(const crisp_conv2d_params *p) {
    const size_t s = p->stride_width;
    const size_t cols = (p->output_width - 1) * s + (p->kernel_width - 1) * p->dilation_width + 1;
    return (cols + s - 1) / s;
}
/* Rows of each of the sh x sw phases of a band of `output_rows`. */
static size_t phase_rows(const crisp_conv2d_params *p, size_t output_rows) {
    return (padded_rows(p, output_rows) + p->stride_height - 1) / p->stride_height;
}
static size_t phase_floats(const crisp_conv2d_params *p) {
    return p->stride_height * p->stride_width * phase_rows(p, band_rows(p)) * phase_stride(p) +
           DW_SLACK;
}

/* A depthwise conv of stride 1 or 2 (the same both ways) whose output rows
 * are no longer than its input rows reads its input in place (ukernels.h,
 * crisp_dwconv_image); others copy bands into stride phases. */
static int dw_in_place(const crisp_conv2d_params *p) {
    return p->stride_height == p->stride_width && p->stride_width <= 2 &&
           p->output_width <= p->input_width;
}
/* Planes up to this many floats are copied whole (one memcpy) between zero
 * margins instead: most chunks of a 28 x 28, 14 x 14 or 7 x 7 plane reach a
 * padding row, and copying the plane once costs less than the kernel's edge
 * copies of each such chunk's window (MobileNetV2 @90 %, AVX-512, thread CPU
 * time of its depthwise layers: 14 x 14 -25 %, 7 x 7 -24 %, 28 x 28 -7 %
 * against no whole-plane copy; 56 x 56 planes are faster without). */
#define DW_COPY_PLANE_FLOATS ((size_t)1024)
/* The zeros before and after a plane that every chunk's reads stay within
 * (the kernel's edge test, ukernels.h). */
static void dw_margins(const crisp_conv2d_params *p, size_t *before, size_t *after) {
    const size_t iw = p->input_width, plane = p->input_height * iw;
    const size_t end = (p->output_height - 1) * iw + p->output_width;
    *before = p->padding_top * iw + p->padding_left;
    const size_t reach = p->stride_width * (end + CRISP_DWCONV_MAX_CHUNK) +
                         (p->kernel_height - 1) * p->dilation_height * iw +
                         (p->kernel_width - 1) * p->dilation_width;
    *after = reach > plane + *before ? reach - plane - *before : 0;
}
/* Depthwise convs that run a block of channels per call, channels in the
 * vector lanes (f32_dwconv_hwc.inc): 3 x 3, dilation 1, stride 1 or 2 both
 * ways, tiles of at most DW_HWC_MAX_CELLS pixels. Measured per layer on
 * MobileNetV2 @90 % V=4 (AVX-512, each depthwise op's time, both paths in
 * one process; 1 / 2 threads): 7 x 7 0.40-0.43 / 0.59-0.66 of the plane
 * kernels' time, 14 x 14 0.48-0.52 / 0.69-0.80, 28 -> 14 stride 2 0.49 /
 * 0.68, 28 x 28 0.67 / 0.79-0.83; larger tiles lost: 56 -> 28 stride 2 (57
 * x 57 cells) 1.05, 56 x 56 1.23-1.36, 112 x 112 1.60-1.73. */
#define DW_HWC_MAX_CELLS ((size_t)30 * 30)
/* The in-place kernel's row walk (f32_dwconv_direct.inc, crisp_dwconv_image
 * .rows): 3 x 3, padding 1 at top and left, dilation 1, stride 1 or 2 both
 * ways, outputs at least the tier's width wide. It beat the channels-in-lanes
 * kernel on every such plane and the stream walk on all (MobileNetV2 @90 %
 * V=4, AVX-512, 1 thread, each op's time, both interleaved in one process:
 * 28 x 28 0.63x the channels-in-lanes time, 28 -> 14 0.64x, 14 x 14 0.84x;
 * 14 -> 7 and 7 x 7, one vector of 16 lanes for 7 outputs, lost: 1.3x and
 * 1.45x, hence the width). */
static int dw_rows(const crisp_f32_kernels *k, const crisp_conv2d_params *p) {
    const size_t ih = p->input_height, iw = p->input_width;
    const size_t oh = p->output_height, ow = p->output_width;
    /* The walks' own geometry (generic/f32_dwconv_body.h): stride 1 keeps the
     * input's size (padding 1 all round), stride 2 reads no column or row
     * past the input's end plus one of padding. */
    const int fits = p->stride_width == 1 ? oh == ih && ow == iw
                                          : 2 * ow <= iw + 1 && 2 * oh <= ih + 1;
    return k->dwconv_direct_rows > 0 && p->kernel_height == 3 && p->kernel_width == 3 &&
           p->dilation_height == 1 && p->dilation_width == 1 && p->padding_top == 1 &&
           p->padding_left == 1 && p->stride_height == p->stride_width &&
           p->stride_width <= 2 && fits && ow >= k->dwconv_direct_rows;
}
static int dw_hwc(const crisp_f32_kernels *k, const crisp_conv2d_params *p) {
    const char *env = getenv("CRISP_DWCONV_PLANES"); /* 1: the plane kernels, to compare */
    if (env != NULL && strcmp(env, "1") == 0) return 0;
    if (dw_rows(k, p)) return 0;
    return k->dwconv_hwc != NULL && p->kernel_height == 3 && p->kernel_width == 3 &&
           p->dilation_height == 1 && p->dilation_width == 1 &&
           p->stride_height == p->stride_width && p->stride_width <= 2 &&
           crisp_dwconv_hwc_tile_floats(p->output_height, p->output_width, p->stride_width, 1) <=
               DW_HWC_MAX_CELLS;
}
/* A row walk (`rows`, the plan's dw_rows) reads the rows themselves: nothing to copy. */
static int dw_copies_plane(const crisp_conv2d_params *p, int rows) {
    return p->input_height * p->input_width <= DW_COPY_PLANE_FLOATS && !rows;
}
/* Its scratch: the column masks, the edge window, the margined plane. */
static size_t dw_in_place_floats(const crisp_f32_kernels *k, const crisp_conv2d_params *p) {
    size_t before, after;
    dw_margins(p, &before, &after);
    return crisp_dwconv_mask_entries(p->kernel_width, p->input_width) +
           crisp_dwconv_edge_floats(p->kernel_height, p->kernel_width, p->dilation_height,
                                    p->dilation_width, p->input_width) +
           (dw_copies_plane(p, dw_rows(k, p)) ? before + p->input_height * p->input_width + after
                                               : 0);
}

/* A dense float32 depthwise conv (one channel per group): the DWCONV path. */
static int dense_depthwise(const crisp_model *m, const crisp_op *op) {
    const crisp_conv2d_params *p = &op->k.conv;
    return p->groups > 1 && p->groups == p->input_channels &&
           p->groups == p->output_channels &&
           m->tensors[op->weight].encoding == CRISP_ENCODING_DENSE_F32;
}
/* A 1 x 1 conv, stride 1, no padding: its input is the GEMM's B operand, read in place. */
static int direct_1x1(const crisp_conv2d_params *p) {
    return p->kernel_height == 1 && p->kernel_width == 1 && p->stride_height == 1 &&
           p->stride_width == 1 && p->padding_top == 0 && p->padding_left == 0 &&
           p->output_height == p->input_height && p->output_width == p->input_width;
}

/* Expand fusion (src/fuse.c, runtime/README.md "Expand fusion"): a direct
 * float32 1 x 1 conv (dense, expanded or runs; bias and clamp, no other
 * activation, no fused ADD) computed band by band by the depthwise conv after
 * it, where that conv takes the row walk (dw_rows: the walk reads a band of
 * input rows, crisp_dwconv_image.x_row) and strides 2: each band of B output
 * rows then needs 2 B + 1 input rows, one of them computed twice (stride 1
 * would recompute two rows of every B + 2). */
int crisp_fast_fuses_expand(const crisp_model *m, const crisp_op *conv, const crisp_op *dw) {
    const crisp_f32_kernels *k = crisp_f32_kernels_best();
    if (k == NULL || conv->kind != CRISP_OP_CONV2D || dw->kind != CRISP_OP_CONV2D ||
        conv->dtype != CRISP_DTYPE_F32 || dw->dtype != CRISP_DTYPE_F32 ||
        conv->pointwise != CRISP_ACT_NONE || conv->fused_add != CRISP_NO_ID ||
        dw->fused_add != CRISP_NO_ID)
        return 0;
    const crisp_conv2d_params *c = &conv->k.conv, *p = &dw->k.conv;
    const uint32_t ce = m->tensors[conv->weight].encoding;
    /* An output that fits in half an L2 makes no round trip to memory. */
    const size_t bytes = c->output_channels * c->output_height * c->output_width * sizeof(float);
    return c->groups == 1 && direct_1x1(c) &&
           (ce == CRISP_ENCODING_DENSE_F32 || ce == CRISP_ENCODING_HYBRID_F32) &&
           dense_depthwise(m, dw) && p->stride_height == 2 && dw_rows(k, p) &&
           bytes > DIRECT_SPLIT_INPUT_BYTES;
}
/* A fused band's input rows (all the expand conv's output channels) in at
 * most this many floats, so they stay in L2 with the band's input and
 * output; and at least this many bands, so two threads' claims (4 chunks
 * each, src/thread_pool.c) balance. */
#define EXPAND_BAND_FLOATS ((size_t)192 * 1024)
#define EXPAND_MIN_BANDS 8
/* Rows of width w per 64-byte line multiple: a band starting on such a row
 * starts its channels' rows on a line (the planes are line-aligned when
 * w * h is a multiple of 16, else 4-byte aligned anyway). */
static size_t line_rows(size_t w) {
    size_t g = 16;
    while (g > 1 && (g / 2) * w % 16 == 0) g /= 2;
    return g;
}
/* The input rows a band of `rows` output rows holds at most: its windows'
 * reach, plus the rows its first is moved up by to start on a line. */
static size_t expand_band_in_rows(const crisp_conv2d_params *p, size_t rows) {
    return (rows - 1) * p->stride_height + p->kernel_height + line_rows(p->input_width) - 1;
}
static size_t expand_band_plane(const crisp_conv2d_params *p, size_t rows) {
    return round_up(expand_band_in_rows(p, rows) * p->input_width, 16);
}
static size_t expand_band_floats(const crisp_conv2d_params *p, size_t rows) {
    return p->input_channels * expand_band_plane(p, rows);
}
/* Output rows per band: as many as the budget holds in at least
 * EXPAND_MIN_BANDS bands, rounded down to whole lines of the output rows
 * where that leaves any (two threads' bands then share no line). */
static size_t expand_band_rows(const crisp_conv2d_params *p) {
    const size_t oh = p->output_height, most = (oh + EXPAND_MIN_BANDS - 1) / EXPAND_MIN_BANDS;
    size_t b = 1;
    while (b < most && expand_band_floats(p, b + 1) <= EXPAND_BAND_FLOATS) b++;
    const size_t g = line_rows(p->output_width);
    return b >= g ? b / g * g : b;
}

/* Bands. A stride-1 conv's im2col tile holds every input element kh x kw
 * times; at 90 % sparsity building it took as long as the products over it.
 * A hybrid conv with stride 1 (float or int8; or a dense int8 conv, run as
 * panels of the sparse-run kernels) instead copies, per tile of whole output rows,
 * the input rows those outputs read, once each, padded: a band of
 * band_width = ow + dw (kw - 1) elements per row (left and right padding
 * included; int8 pads with the zero point) and rows + dh (kh - 1) rows per
 * input channel. Output pixel (oy,
 * ox) of the tile is then "wide" position (oy - oy0) band_width + ox, and
 * kept column (ky, kx, ci) one fixed offset from it (band_offset), so the
 * unchanged sparse-run microkernels read the band in place with b_stride 1
 * and the offsets as columns. The wide positions past each row's end
 * (band_width - ow of them) are computed into a wide output buffer and
 * dropped when its rows are copied into the output plane. Each output is the
 * same sum in the same order as from the im2col tile: results are bitwise
 * those of the im2col path (tests/test_fast.c compares them). */
static int band_wanted(const crisp_conv2d_params *p, size_t runs, double executed, int int8,
                       double tile_over_budget, size_t band_tiles) {
    if (p->stride_height != 1 || p->stride_width != 1 || runs == 0) return 0;
    /* The copy the band saves is K elements per output pixel; the kernels'
     * work, executed MACs per pixel = Cout x the executed density, and it is
     * what the unaligned reads (below) slow down. Measured per layer on
     * ResNet-50 (Sapphire Rapids VM, one thread): at 90 % V = 4 (7 to 51
     * executed MACs per copied element) every 3 x 3 conv took 0.58-0.75x its
     * im2col time; at 75 % in filled runs (32 to 256) 0.89-0.94x at 32, 1.08x
     * at 64, 1.38x at 256. */
    const double per_element = (double)p->output_channels * executed;
    /* Past that, only where the im2col tile, narrowed to one kernel tile of
     * pixels, still exceeds the budget four times over (it no longer shares
     * the L2 with the weights the runs stream past it) and the band takes
     * the whole plane in one tile (every weight streamed once). ResNet-50's
     * 7 x 7 convs (K = 4608: 64 pixels take 1.2 MB, 4.5x; one band tile) at
     * 90 % per-row (103 MACs per element) took 0.87x their im2col time at
     * one thread, 1.00-1.04x at two (each thread its own L2, half the
     * weights); its 14 x 14 convs (2.25x, two band tiles) at 75 % (about
     * 100) 1.02-1.06x, VGG-16's 28 x 28 convs on 512 channels (4.5x, but 28
     * band tiles of one row) at 90 % per-row 1.43x. */
    if (per_element > 56.0 && (tile_over_budget <= 4.0 || band_tiles != 1)) return 0;
    /* Band reads are unaligned (each tap kx is one float or byte further):
     * a run of one row, whose kernel does a B load per FMA or dot product,
     * then splits most of its loads across cache lines. Measured on the
     * Sapphire Rapids VM: 1.17x the aligned time for runs of 4 rows, 1.6x for
     * lone rows (float, B in L2); int8 per-row ResNet-50 @90 % lost 40 % on
     * its 7 x 7 convs and VGG-16 @90 % 3 % overall. So runs of at least three
     * rows on average (row-shared N:M, filled runs and dense panels, their
     * partial last runs included), and int8 lone rows only where the copy
     * weighs most, at most 30 executed MACs per copied element (int8 per-row
     * ResNet-50 @90 % 0.93-0.94x, VGG-16 0.99-1.00x; at most 16: 0.95-0.97x
     * and 0.98x; float lone rows unmeasured, so left out). */
    if (p->output_channels < 3 * runs && !(int8 && per_element <= 30.0)) return 0;
    const char *env = getenv("CRISP_CONV_IM2COL"); /* 1: the im2col path, to compare */
    return env == NULL || strcmp(env, "1") != 0;
}

static void plan_band(const crisp_conv2d_params *p, size_t budget, size_t element,
                      size_t granule, crisp_fast_plan *f) {
    const size_t ow = p->output_width, oh = p->output_height, cin = p->input_channels;
    const size_t cout = p->output_channels;
    const size_t halo = p->dilation_height * (p->kernel_height - 1);
    const size_t width = ow + p->dilation_width * (p->kernel_width - 1);
    /* The band replaces kh kw copies of each input element by about one, and
     * adds a copy of each output element (the wide rows): worth it when
     * K = kh kw Cin is at least twice Cin + Cout (ResNet's 3 x 3 convs: 9 C
     * against 2 C; a first conv on 3 channels keeps its small im2col tile). */
    if (p->kernel_height * p->kernel_width * cin < 2 * (cin + cout)) return;
    /* At most the output rows whose band and wide output rows fit the tile
     * budget (at least one); of those, the count that costs the kernels the
     * fewest vectors over the layer: a tile's wide span (rows - 1) width + ow
     * is swept in vectors of `granule` positions, and a span just past a
     * multiple pays for a nearly empty one (VGG-16's 28 x 28 int8 convs in
     * 7-row tiles: 208 positions in four 64-byte vectors). */
    const size_t fixed = cin * halo * width;
    /* Wide planes (dilated or wide windows on small images) compute more
     * positions past the rows' ends than outputs, and a band whose halo
     * alone fills the budget copies more than the im2col tile it replaces
     * (DeepLab's 3 x 3 convs dilated 12 on 33 x 33: 4.8x): those keep it. */
    if (2 * width > 3 * ow || fixed + (cin + cout) * width > budget) return;
    size_t most = (budget - fixed) / ((cin + cout) * width);
    /* Each tile streams every weight again: a plane whose whole band and
     * wide rows pass the budget by at most a quarter takes one tile.
     * ResNet-50's 7 x 7 convs (512 channels, 1.13x the budget) in one tile
     * instead of 5 + 2 rows took 0.78-0.83x the time at 90 % V = 4; its
     * 14 x 14 convs in one tile (1.88x) 1.08-1.13x. */
    if (most < oh && fixed + (cin + cout) * width * oh <= budget + budget / 4) most = oh;
    if (most > oh) most = oh;
    size_t rows = most, best = SIZE_MAX;
    for (size_t r = most; r >= 1; r--) {
        const size_t full = oh / r, rest = oh % r;
        size_t vectors = full * (((r - 1) * width + ow + granule - 1) / granule);
        if (rest > 0) vectors += ((rest - 1) * width + ow + granule - 1) / granule;
        if (vectors < best) best = vectors, rows = r;
    }
    const size_t plane = (rows + halo) * width;
    const size_t span = (rows - 1) * width + ow;
    /* Offsets are u32; a plane this large has no business in a band. */
    if ((uint64_t)cin * plane > UINT32_MAX / 2) return;
    f->band_width = width;
    f->band_plane = plane;
    /* Wide rows an odd number of cache lines apart: the kernels write every
     * run's rows at one position, which a power-of-two stride would crowd
     * into a few L1 sets (VGG-16's 512 rows of 256 bytes ran 15 % slower). */
    size_t lines = (span * element + 63) / 64;
    if (lines % 2 == 0) lines++;
    f->band_out_stride = lines * 64 / element;
    f->tile_pixels = rows * ow;
    f->tiles = (oh + rows - 1) / rows;
    /* The band (and slack for a kernel that would load a whole vector past
     * the last wide position; none does today), then every output
     * channel's wide rows. */
    const size_t elements = crisp_fast_band_elements(p, f) + p->output_channels * f->band_out_stride;
    f->scratch_floats = (elements * element + sizeof(float) - 1) / sizeof(float);
}

void crisp_fast_choose_band(const crisp_conv2d_params *p, size_t runs, double executed, int int8,
                            size_t budget, size_t element, size_t granule, crisp_fast_plan *f) {
    crisp_fast_plan band = *f;
    plan_band(p, budget, element, granule, &band);
    if (band.band_plane > 0 &&
        band_wanted(p, runs, executed, int8, (double)(f->k * f->tile_pixels) / budget, band.tiles))
        *f = band;
}

size_t crisp_fast_band_elements(const crisp_conv2d_params *p, const crisp_fast_plan *f) {
    return round_up(p->input_channels * f->band_plane + 64, 64);
}

/* Each kept column's offset in the band of op's plan (conv geometry p; the
 * sparse runs' columns, or a dense int8 conv's 0 .. K-1). NULL (the im2col
 * path then) when memory or the model's limit has no room for it. */
static uint32_t *band_offsets(crisp_model *m, const crisp_op *op) {
    const crisp_fast_plan *f = &op->fast;
    const int dense = f->path == CRISP_FAST_QS8_GEMM;
    const crisp_conv2d_params *p = f->path == CRISP_FAST_SPMM ? &op->k.conv : &op->k.qconv.conv;
    const crisp_sparse_weights *s = &op->packed.sparse;
    const uint32_t *column = dense ? op->packed.panel_column : s->entry_column;
    const size_t entries = dense ? f->k : s->segment_entry[s->run_segment[s->run_count]];
    const uint64_t bytes = (uint64_t)(entries ? entries : 1) * sizeof(uint32_t);
    if (!crisp_limits_room(m, bytes)) return NULL;
    uint32_t *out = malloc((size_t)bytes);
    if (out == NULL) return NULL;
    if (crisp_limits_charge(m, bytes, "band offsets") != CRISP_OK) { /* checked above */
        free(out);
        return NULL;
    }
    m->packed_bytes += bytes;
    const size_t cin = p->input_channels, kw = p->kernel_width;
    for (size_t e = 0; e < entries; e++) {
        const size_t col = column[e], tap = col / cin, ci = col % cin;
        out[e] = (uint32_t)(ci * f->band_plane +
                            (tap / kw) * p->dilation_height * f->band_width +
                            (tap % kw) * p->dilation_width);
    }
    return out;
}

double crisp_fast_executed_density(const crisp_model *m, const crisp_op *op) {
    if (op->macs == 0) return 1.0;
    if (op->packed.filled_weights == 0) return (double)op->effective_macs / (double)op->macs;
    const crisp_hybrid *h = &m->tensors[op->weight].hybrid;
    return (double)op->packed.filled_weights / ((double)h->rows * h->cols);
}

/* Calls per block-row of a 2:4 linear read in place (at most
 * CRISP_NMV24_MAX_ROWS rows each). */
static size_t nmv24_chunks(const crisp_hybrid *h) {
    return (h->block_rows + CRISP_NMV24_MAX_ROWS - 1) / CRISP_NMV24_MAX_ROWS;
}

/* Unit `unit` of a 2:4 linear read in place: a block-row's rows
 * [row0, row0 + rows), all its kept blocks, from the file. */
static void nmv24_unit(const crisp_f32_kernels *k, const crisp_model *m, const crisp_op *op,
                       size_t unit, const float *x, float *y) {
    const crisp_hybrid *h = &m->tensors[op->weight].hybrid;
    const size_t chunks = nmv24_chunks(h), br = unit / chunks;
    const size_t height = min_size(h->block_rows, h->rows - br * (size_t)h->block_rows);
    const size_t row0 = unit % chunks * CRISP_NMV24_MAX_ROWS;
    if (row0 >= height) return; /* a short last block-row */
    const crisp_expand24_rows p =
        crisp_expand24_block_rows(h, op->packed.expand_values, op->packed.expand_indices, br, row0,
                                  min_size(CRISP_NMV24_MAX_ROWS, height - row0));
    const size_t r = br * (size_t)h->block_rows + row0;
    const float *bias = bias_of(m, op);
    k->nmv24(&p, x, y + r, bias != NULL ? bias + r : NULL, &op->k.linear.minmax);
}

/* A fused ADD's sums (crisp_fast_run): the kernels write rows of the tile
 * there, then the add reads them with the residual into the output, which
 * may be the residual's own buffer. A GEMM panel's MR rows over the widest
 * tile a session takes (the plan's, or a direct conv's whole image:
 * crisp_fast_tiling_for); sparse runs' rows over parts of the tile of
 * whole kernel chunks, about the tile budget together (sums_width). */
#define SUMS_FLOATS TILE_BUDGET_FLOATS
static size_t sums_width(const crisp_f32_kernels *k, size_t rows) {
    const size_t nr = k->spmm_nr, w = SUMS_FLOATS / (rows ? rows : 1) / nr * nr;
    return w > nr ? w : nr;
}
static size_t add_tile_floats(const crisp_op *op, const crisp_f32_kernels *k,
                              const crisp_fast_plan *f, size_t pixels) {
    if (op->fused_add == CRISP_NO_ID) return 0;
    const size_t cout = op->k.conv.output_channels;
    const size_t widest =
        f->direct && direct_input_fits(f->k, pixels, sizeof(float)) && f->tile_pixels < pixels
            ? pixels
            : f->tile_pixels;
    if (f->path == CRISP_FAST_GEMM) return round_up(k->gemm_mr * widest, 16);
    /* Runs: a chunk's rows (a few runs or all) x sums_width(rows), at most
     * the larger of SUMS_FLOATS and rows x NR, and never past its tile. */
    size_t most = cout * k->spmm_nr;
    if (most < SUMS_FLOATS) most = SUMS_FLOATS;
    if (most > cout * widest) most = cout * widest;
    return round_up(most, 16);
}

/* The plan; `bands` 0 keeps stride-1 hybrid convs on im2col tiles. */
static crisp_fast_plan plan_op(const crisp_model *m, const crisp_op *op,
                               const crisp_f32_kernels *k, int bands) {
    crisp_fast_plan f;
    memset(&f, 0, sizeof f);
    if (k != NULL && op->dtype == CRISP_DTYPE_I8) return crisp_fast_plan_qs8(m, op, bands);
    if (k == NULL || op->dtype != CRISP_DTYPE_F32) return f;
    if (op->kind == CRISP_OP_MAX_POOL2D) {
        const crisp_conv2d_params c = pool_as_conv(&op->k.pool);
        f.path = CRISP_FAST_MAXPOOL;
        f.units = c.output_channels;
        f.tiles = 1;
        f.scratch_floats = phase_floats(&c);
        return f;
    }
    if (op->kind == CRISP_OP_LINEAR) {
        /* Batch 1: a dense (or expanded) layer is a GEMV; a hybrid one runs
         * its runs on the batch-1 kernels (f32_spmv.inc), reading x in place. */
        const uint32_t enc = m->tensors[op->weight].encoding;
        const size_t out = op->k.linear.output_features;
        if (op->packed.in_file && k->nmv24 != NULL) {
            /* 2:4 read in place: units of at most CRISP_NMV24_MAX_ROWS rows of
             * one block-row each. */
            const crisp_hybrid *h = &m->tensors[op->weight].hybrid;
            f.path = CRISP_FAST_NMV24;
            f.units = (size_t)h->nbr * nmv24_chunks(h);
            f.direct = 1;
        } else if (crisp_op_dense_f32(m, op) != NULL || crisp_op_expanded(op)) {
            f.path = CRISP_FAST_GEMV;
            f.units = (out + k->gemv_mr - 1) / k->gemv_mr;
            /* An expanded layer's MR rows, expanded per call. */
            if (crisp_op_expanded(op)) f.scratch_floats = k->gemv_mr * op->k.linear.input_features;
        } else if (enc == CRISP_ENCODING_HYBRID_F32) {
            f.path = CRISP_FAST_SPMV; /* x read in place at the runs' columns */
            f.units = op->packed.sparse.run_count;
            f.direct = 1;
        } else {
            return f;
        }
        f.tiles = f.tile_pixels = 1;
        f.k = op->k.linear.input_features;
        return f;
    }
    if (op->kind != CRISP_OP_CONV2D) return f;
    const crisp_conv2d_params *p = &op->k.conv;
    const uint32_t enc = m->tensors[op->weight].encoding;
    const size_t pixels = p->output_height * p->output_width;
    if (dense_depthwise(m, op)) {
        f.path = CRISP_FAST_DWCONV;
        f.units = p->output_channels;
        f.tiles = 1;
        if (dw_hwc(k, p)) {
            f.channel_block = k->dwconv_hwc_block;
            f.units = (p->output_channels + f.channel_block - 1) / f.channel_block;
            f.scratch_floats = crisp_dwconv_hwc_tile_floats(p->output_height, p->output_width,
                                                            p->stride_width, f.channel_block);
            return f;
        }
        f.direct = dw_in_place(p);
        f.dw_rows = f.direct && dw_rows(k, p);
        f.scratch_floats = f.direct ? dw_in_place_floats(k, p) : phase_floats(p);
        return f;
    }
    if (p->groups != 1) return f;
    if (crisp_op_dense_f32(m, op) != NULL || crisp_op_expanded(op)) {
        f.path = CRISP_FAST_GEMM;
        f.units = (p->output_channels + k->gemm_mr - 1) / k->gemm_mr;
    } else if (enc == CRISP_ENCODING_HYBRID_F32) {
        f.path = CRISP_FAST_SPMM;
        f.units = op->packed.sparse.run_count;
    } else {
        return f;
    }
    const size_t nr = f.path == CRISP_FAST_GEMM ? k->gemm_nr : k->spmm_nr;
    f.k = p->kernel_height * p->kernel_width * p->input_channels;
    f.direct = direct_1x1(p);
    const int expanded = crisp_op_expanded(op);
    const size_t budget = expanded && !f.direct ? expanded_budget_floats(k) : TILE_BUDGET_FLOATS;
    size_t nt = budget / f.k / nr * nr;
    if (expanded) { /* as few tiles as the budget allows, of equal size (above) */
        size_t fit = min_size(budget / f.k, MAX_TILE_PIXELS);
        if (fit < EXPANDED_MIN_TILE) fit = EXPANDED_MIN_TILE;
        /* A direct conv whose whole input fits in half an L2 expands each
         * panel once, as at several threads (crisp_fast_tiling_for): ResNet-50
         * @50 %'s 1 x 1 convs on 14 x 14 (K = 1024, 4 tiles) and 7 x 7 planes
         * (K = 2048, 2 tiles) took 0.85-0.92x their time at 1 thread. */
        if (f.direct && direct_input_fits(f.k, pixels, sizeof(float))) fit = pixels;
        const size_t tiles = (pixels + fit - 1) / fit;
        nt = round_up((pixels + tiles - 1) / tiles, nr);
    }
    nt = min_size(nt < nr ? nr : nt, MAX_TILE_PIXELS / nr * nr);
    f.tile_pixels = min_size(nt, round_up(pixels, nr));
    f.tiles = (pixels + f.tile_pixels - 1) / f.tile_pixels;
    /* The tile, then an expanded layer's panel of MR rows (expanded_panel),
     * then a fused ADD's sums (add_tile_floats). */
    f.scratch_floats = f.direct ? 0 : round_up(f.k * f.tile_pixels, 16);
    if (crisp_op_expanded(op)) f.scratch_floats += round_up(k->gemm_mr * f.k, 16);
    f.scratch_floats += add_tile_floats(op, k, &f, pixels);
    if (bands && f.path == CRISP_FAST_SPMM && !f.direct)
        crisp_fast_choose_band(p, op->packed.sparse.run_count, crisp_fast_executed_density(m, op),
                               0, TILE_BUDGET_FLOATS, sizeof(float), k->spmm_nr / 4, &f);
    return f;
}

crisp_fast_plan crisp_fast_plan_op(const crisp_model *m, const crisp_op *op,
                                   const crisp_f32_kernels *k) {
    return plan_op(m, op, k, 0);
}

void crisp_fast_plan_model(crisp_model *m) {
    const crisp_f32_kernels *k = crisp_f32_kernels_best();
    for (uint32_t i = 0; i < m->op_count; i++) {
        crisp_op *op = &m->ops[i];
        op->fast = plan_op(m, op, k, 1);
        if (op->fast.band_plane > 0) {
            op->fast.band_offset = band_offsets(m, op);
            if (op->fast.band_offset == NULL) op->fast = plan_op(m, op, k, 0); /* im2col */
        }
        const crisp_fast_plan *prev = i > 0 ? &m->ops[i - 1].fast : NULL;
        if (op->fuses_prev && op->fast.path == CRISP_FAST_DWCONV && op->fast.dw_rows &&
            prev->direct && (prev->path == CRISP_FAST_GEMM || prev->path == CRISP_FAST_SPMM)) {
            /* Items: bands of output rows, each with every channel; scratch:
             * the band's input rows, then the 1 x 1 conv's own (an expanded
             * layer's panel). */
            const crisp_conv2d_params *p = &op->k.conv;
            const size_t rows = expand_band_rows(p);
            op->fast.units = 1;
            op->fast.tile_pixels = rows;
            op->fast.tiles = (p->output_height + rows - 1) / rows;
            op->fast.scratch_floats =
                expand_band_floats(p, rows) + round_up(m->ops[i - 1].fast.scratch_floats, 16);
        } else if (op->fuses_prev) { /* no plan to fuse into: both run as planned */
            op->fuses_prev = 0;
            m->ops[i - 1].fused_by_next = 0;
        }
        if (m->ops[i].fast.scratch_floats > m->scratch_floats)
            m->scratch_floats = m->ops[i].fast.scratch_floats;
    }
}

typedef crisp_tap_segment segment;

size_t crisp_fast_tap_segments(const crisp_conv2d_params *p, size_t ky, size_t kx, size_t p0,
                               size_t np, crisp_tap_segment *out) {
    const size_t ow = p->output_width;
    const ptrdiff_t offset = (ptrdiff_t)(kx * p->dilation_width) - (ptrdiff_t)p->padding_left;
    size_t lo, hi;
    crisp_conv_valid_range(ow, p->input_width, p->stride_width, offset, &lo, &hi);
    size_t count = 0;
    for (size_t q = p0; q < p0 + np;) {
        const size_t oy = q / ow, a = q % ow, b = min_size(ow, a + (p0 + np - q));
        const ptrdiff_t iy = crisp_conv_input_row(oy, ky, p->stride_height, p->padding_top,
                                                  p->dilation_height, p->input_height);
        const size_t dst = q - p0;
        if (iy < 0 || hi <= a || lo >= b) {
            out[count++] = (segment){-1, (uint32_t)dst, (uint32_t)(b - a)};
        } else {
            const size_t l = lo > a ? lo : a, h = hi < b ? hi : b;
            if (l > a) out[count++] = (segment){-1, (uint32_t)dst, (uint32_t)(l - a)};
            const ptrdiff_t ix = (ptrdiff_t)(l * p->stride_width) + offset;
            out[count++] = (segment){iy * (ptrdiff_t)p->input_width + ix,
                                     (uint32_t)(dst + l - a), (uint32_t)(h - l)};
            if (h < b) out[count++] = (segment){-1, (uint32_t)(dst + h - a), (uint32_t)(b - h)};
        }
        q += b - a;
    }
    return count;
}

void crisp_dwconv_column_masks(const crisp_dwconv_image *im, uint32_t *column_mask) {
    const size_t iw = im->input_width, n = iw + CRISP_DWCONV_MAX_CHUNK;
    for (size_t kx = 0; kx < im->kernel_width; kx++) {
        const ptrdiff_t shift = (ptrdiff_t)(kx * im->dilation_width) - (ptrdiff_t)im->padding_left;
        size_t column = 0;
        for (size_t i = 0; i < n; i++) {
            const ptrdiff_t c = (ptrdiff_t)(im->stride * column) + shift;
            column_mask[kx * n + i] = c >= 0 && c < (ptrdiff_t)iw ? ~(uint32_t)0 : 0;
            if (++column == iw) column = 0;
        }
    }
}

/* Copies a segment. Small images have short rows (7 or 14 pixels at the end
 * of ResNet) where a memcpy call costs more than the copy: those get an
 * inline loop, kept a loop (GCC would otherwise turn it back into memcpy). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
static void copy_floats(float *restrict dst, const float *restrict src, size_t n) {
    if (n >= 64) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    for (size_t j = 0; j < n; j++) dst[j] = src[j];
}

/* The K x np patch matrix of pixels [p0, p0 + np), row k = tap * Cin + ci,
 * row stride nt. */
static void im2col(const crisp_conv2d_params *p, const float *x, float *buf, size_t p0,
                   size_t np, size_t nt, crisp_f32_stride2_ukernel_fn stride2) {
    const size_t cin = p->input_channels, plane = p->input_height * p->input_width;
    const size_t sw = p->stride_width;
    /* Rows touched <= np + 1; three segments each. */
    segment segs[3 * (MAX_TILE_PIXELS + 1)];
    for (size_t ky = 0; ky < p->kernel_height; ky++)
        for (size_t kx = 0; kx < p->kernel_width; kx++) {
            const size_t count = crisp_fast_tap_segments(p, ky, kx, p0, np, segs);
            float *rows = buf + (ky * p->kernel_width + kx) * cin * nt;
            for (size_t ci = 0; ci < cin; ci++) {
                float *dst = rows + ci * nt;
                const float *src = x + ci * plane;
                for (size_t i = 0; i < count; i++) {
                    const segment *s = &segs[i];
                    if (s->src < 0) {
                        memset(dst + s->dst, 0, s->len * sizeof(float));
                    } else if (sw == 1) {
                        copy_floats(dst + s->dst, src + s->src, s->len);
                    } else if (sw == 2) {
                        stride2(s->len, src + s->src, dst + s->dst);
                    } else {
                        const float *from = src + s->src;
                        float *to = dst + s->dst;
                        for (size_t j = 0; j < s->len; j++) to[j] = from[j * sw];
                    }
                }
            }
        }
}

/* Sets n floats; padding columns are one or two floats, where a memset call
 * costs more than the stores (kept a loop as in copy_floats). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
static void fill(float *p, size_t n, float value) {
    if (value == 0.0f && n >= 64) {
        memset(p, 0, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) p[i] = value;
}

/* The band of output rows [oy0, oy0 + rows) of one channel: its padded input
 * rows (padding = pad) split into sh x sw stride phases (ukernels.h). */
static crisp_dwconv_plane dw_phases(const crisp_conv2d_params *p, const float *x, float *buf,
                                    float pad, size_t oy0, size_t rows) {
    const size_t sh = p->stride_height, sw = p->stride_width;
    const size_t iw = p->input_width, pl = p->padding_left;
    const size_t stride = phase_stride(p), prows = phase_rows(p, rows);
    const size_t padded = padded_rows(p, rows), r0 = oy0 * sh;
    const crisp_dwconv_plane plane = {buf, prows * stride, stride, sh, sw,
                                      p->dilation_height, p->dilation_width, p->kernel_height,
                                      p->kernel_width, rows, p->output_width};
    /* In the image's row order (the rows of phase row r, then r + 1, ...):
     * one forward stream for the hardware prefetcher, each row read from
     * memory once and again from L1 for its other column phases. */
    for (size_t r = 0; r < prows; r++)
        for (size_t a = 0; a < sh; a++)
            for (size_t q = 0; q < sw; q++) {
                /* Phase column j is padded column q + sw*j, image column q + sw*j - pl. */
                const size_t j_lo = pl > q ? (pl - q + sw - 1) / sw : 0;
                const size_t j_end = iw + pl > q ? (iw + pl - q - 1) / sw + 1 : 0;
                const size_t j_hi = min_size(j_end, stride);
                float *dst = buf + (a * sw + q) * plane.phase_size + r * stride;
                /* Phase row r is the band's padded row a + sh*r. */
                const size_t band_row = a + sh * r;
                const ptrdiff_t iy = (ptrdiff_t)(r0 + band_row) - (ptrdiff_t)p->padding_top;
                if (band_row >= padded || iy < 0 || iy >= (ptrdiff_t)p->input_height ||
                    j_lo >= j_hi) {
                    fill(dst, stride, pad);
                    continue;
                }
                fill(dst, j_lo, pad);
                const float *src = x + (size_t)iy * iw + (q + sw * j_lo - pl);
                if (sw == 1) {
                    copy_floats(dst + j_lo, src, j_hi - j_lo);
                } else if (sw == 2) { /* a constant stride: this loop vectorises */
                    for (size_t j = 0; j < j_hi - j_lo; j++) dst[j_lo + j] = src[2 * j];
                } else {
                    for (size_t j = 0; j < j_hi - j_lo; j++) dst[j_lo + j] = src[j * sw];
                }
                fill(dst + j_hi, stride - j_hi, pad);
            }
    fill(buf + sh * sw * plane.phase_size, DW_SLACK, pad);
    return plane;
}

/* One channel of a depthwise conv or max pool, a band of output rows at a
 * time: copy the band's padded input rows, run the kernel on them. */
static void window_bands(crisp_f32_dwconv_ukernel_fn kernel, const crisp_conv2d_params *p,
                         const float *x, const float *w, float pad, float bias, float *y,
                         float *scratch) {
    const size_t band = band_rows(p), ow = p->output_width;
    for (size_t oy = 0; oy < p->output_height; oy += band) {
        const size_t n = min_size(band, p->output_height - oy);
        const crisp_dwconv_plane pl = dw_phases(p, x, scratch, pad, oy, n);
        kernel(&pl, w, bias, y + oy * ow, &p->minmax);
    }
}

/* Rows [r0, r0 + rows) of a dense-kernel layer's weights, K apart: the file's
 * DENSE_F32 data in place or a hybrid layer's dense copy (crisp_op_dense_f32),
 * or an expanded hybrid layer's rows written to
 * `panel` from the file's encoding (src/expand.h). The same floats either way
 * (the expansion is exact), so the microkernel's results do not depend on
 * it. */
static const float *panel_rows(const crisp_f32_kernels *k, const crisp_model *m,
                               const crisp_op *op, size_t r0, size_t rows, size_t K,
                               float *panel) {
    if (!crisp_op_expanded(op)) return crisp_op_dense_f32(m, op) + r0 * K;
    crisp_expand_rows(&m->tensors[op->weight].hybrid, op->packed.expand_values,
                      op->packed.expand_indices, k->expand24, r0, rows, panel);
    return panel;
}

/* Runs [u0, u1) over n B columns, NR at a time, every run per chunk
 * (chunk-major: consecutive runs share a block-row's blocks while they are in
 * L1): B row of kept column e at b + column[e] * b_stride, run rows written
 * from c (the first run's first row) c_stride apart. */
static void sweep_runs(const crisp_f32_kernels *k, const crisp_sparse_weights *s, size_t u0,
                       size_t u1, size_t n, const uint32_t *column, const float *b,
                       size_t b_stride, float *c, size_t c_stride, const float *bias,
                       const crisp_minmax_params *minmax) {
    const size_t first = s->run_row[u0], nr = k->spmm_nr;
    for (size_t n0 = 0; n0 < n; n0 += nr)
        for (size_t unit = u0; unit < u1; unit++) {
            const size_t row0 = s->run_row[unit];
            const size_t e0 = s->segment_entry[s->run_segment[unit]];
            const size_t e1 = s->segment_entry[s->run_segment[unit + 1]];
            k->spmm(s->run_row[unit + 1] - row0, min_size(nr, n - n0), e1 - e0, column + e0,
                    s->weight_f32 + s->run_weight[unit], b + n0, b_stride,
                    c + (row0 - first) * c_stride + n0, c_stride,
                    bias != NULL ? bias + row0 : NULL, minmax);
        }
}

/* The band of output rows [oy0, oy0 + rows) (above, "Bands"): per input
 * channel, rows + dh (kh - 1) padded input rows of band_width floats. */
static void build_band(const crisp_conv2d_params *p, const crisp_fast_plan *f, const float *x,
                       float *band, size_t oy0, size_t rows) {
    const size_t ih = p->input_height, iw = p->input_width, width = f->band_width;
    const size_t brows = rows + p->dilation_height * (p->kernel_height - 1);
    const size_t pl = p->padding_left, plane = ih * iw;
    /* Band columns [lo, hi) hold image columns lo - pl ..; the rest is padding. */
    const size_t lo = min_size(pl, width), hi = min_size(width, pl + iw);
    for (size_t ci = 0; ci < p->input_channels; ci++) {
        float *dst = band + ci * f->band_plane;
        for (size_t j = 0; j < brows; j++, dst += width) {
            const ptrdiff_t iy = (ptrdiff_t)(oy0 + j) - (ptrdiff_t)p->padding_top;
            if (iy < 0 || iy >= (ptrdiff_t)ih || lo >= hi) {
                fill(dst, width, 0.0f);
                continue;
            }
            fill(dst, lo, 0.0f);
            copy_floats(dst + lo, x + ci * plane + (size_t)iy * iw + (lo - pl), hi - lo);
            fill(dst + hi, width - hi, 0.0f);
        }
    }
}

/* Runs [u0, u1) of a banded conv over the tile of whole output rows at pixel
 * p0 (np pixels): the band (built when `build`), NR wide positions at a time
 * for every run (chunk-major, as for im2col tiles), then the runs' wide
 * output rows copied into the output plane without the positions past each
 * row's end. */
static void band_tile(const crisp_f32_kernels *k, const crisp_model *m, const crisp_op *op,
                      const float *x, const float *residual, float *y, size_t p0, size_t np,
                      size_t u0, size_t u1, float *scratch, int build) {
    const crisp_conv2d_params *p = &op->k.conv;
    const crisp_fast_plan *f = &op->fast;
    const crisp_sparse_weights *s = &op->packed.sparse;
    const size_t ow = p->output_width, pixels = p->output_height * ow, rows = np / ow;
    const size_t width = f->band_width, stride = f->band_out_stride;
    const size_t span = (rows - 1) * width + ow, first = s->run_row[u0];
    if (build) build_band(p, f, x, scratch, p0 / ow, rows);
    float *wide = scratch + crisp_fast_band_elements(p, f);
    sweep_runs(k, s, u0, u1, span, f->band_offset, scratch, 1, wide, stride, bias_of(m, op),
               &p->minmax);
    const crisp_minmax_params *add = residual != NULL ? &m->ops[op->fused_add].k.minmax : NULL;
    for (size_t r = first; r < s->run_row[u1]; r++)
        for (size_t oy = 0; oy < rows; oy++) {
            const size_t at = r * pixels + p0 + oy * ow;
            const float *src = wide + (r - first) * stride + oy * width;
            if (add != NULL) k->add(ow, src, residual + at, y + at, add);
            else copy_floats(y + at, src, ow);
        }
}

int crisp_fast_adds_residual(const crisp_op *op) {
    return op->fast.path == CRISP_FAST_GEMM || op->fast.path == CRISP_FAST_SPMM;
}

/* A fused conv's ADD on rows [r0, r1) x pixels [p0, p0 + np): the rows
 * the kernels just wrote to c (np floats apart) plus the residual, into y.
 * Each element's residual is read before its sum is written, so y may be
 * the residual itself (the arena plan gives a fused ADD its residual's
 * buffer where the residual dies there: runtime/README.md, "Residual
 * fusion"); the kernels therefore never write y before the add. */
static void add_residual(const crisp_f32_kernels *k, const crisp_model *m, const crisp_op *op,
                         const float *c, const float *residual, float *y, size_t pixels,
                         size_t r0, size_t r1, size_t p0, size_t np) {
    const crisp_minmax_params *add = &m->ops[op->fused_add].k.minmax;
    for (size_t r = r0; r < r1; r++) {
        const size_t at = r * pixels + p0;
        k->add(np, c + (r - r0) * np, residual + at, y + at, add);
    }
}

/* Float tiles of the retiled ops start rows on 32-byte boundaries (AVX2
 * loads; half the AVX-512 loads then cross a cache line), int8 tiles on 16. */
#define RETILE_ALIGN_F32 8
#define RETILE_ALIGN_I8 16

/* A direct 1 x 1 conv's every output channel over np pixels: input rows b
 * (b_stride apart), output rows y (y_stride apart); panel: an expanded
 * layer's scratch. The same kernel calls per pixel as crisp_fast_run's. */
static void direct_pixels(const crisp_f32_kernels *k, const crisp_model *m, const crisp_op *op,
                          const float *b, size_t b_stride, float *y, size_t y_stride, size_t np,
                          float *panel) {
    const crisp_fast_plan *f = &op->fast;
    const crisp_conv2d_params *p = &op->k.conv;
    const float *bias = bias_of(m, op);
    if (f->path == CRISP_FAST_GEMM) {
        const size_t nr = k->gemm_nr;
        for (size_t unit = 0; unit < f->units; unit++) {
            const size_t r0 = unit * k->gemm_mr;
            const size_t mr = min_size(k->gemm_mr, p->output_channels - r0);
            const float *a = panel_rows(k, m, op, r0, mr, f->k, panel);
            for (size_t n0 = 0; n0 < np; n0 += nr)
                k->gemm(mr, min_size(nr, np - n0), f->k, a, f->k, b + n0, b_stride,
                        y + r0 * y_stride + n0, y_stride, bias != NULL ? bias + r0 : NULL,
                        &p->minmax);
        }
    } else {
        const crisp_sparse_weights *s = &op->packed.sparse;
        sweep_runs(k, s, 0, f->units, np, s->entry_column, b, b_stride,
                   y + s->run_row[0] * y_stride, y_stride, bias, &p->minmax);
    }
}

/* Expand fusion: bands [begin, end) of the depthwise conv dw, each computing
 * first the input rows its windows reach of the 1 x 1 conv before it (every
 * channel, from that conv's input x) into scratch, then its output rows of
 * every channel from them (the row walk reads the band in place). */
static void expand_bands(const crisp_f32_kernels *k, const crisp_model *m, const crisp_op *dw,
                         const float *x, float *y, size_t begin, size_t end, float *scratch) {
    const crisp_op *conv = dw - 1;
    const crisp_conv2d_params *p = &dw->k.conv;
    const size_t ih = p->input_height, iw = p->input_width, oh = p->output_height;
    const size_t rows = dw->fast.tile_pixels, taps = p->kernel_height * p->kernel_width;
    const size_t plane = expand_band_plane(p, rows); /* floats per channel */
    const size_t g = line_rows(iw);
    float *band = scratch, *panel = scratch + expand_band_floats(p, rows);
    const float *w = m->tensors[dw->weight].data, *bias = bias_of(m, dw);
    crisp_dwconv_image im = {.input_height = ih,
                             .input_width = iw,
                             .padding_top = p->padding_top,
                             .padding_left = p->padding_left,
                             .stride = p->stride_width,
                             .dilation_height = 1,
                             .dilation_width = 1,
                             .kernel_height = p->kernel_height,
                             .kernel_width = p->kernel_width,
                             .output_height = oh,
                             .output_width = p->output_width,
                             .rows = 1};
    for (size_t t = begin; t < end; t++) {
        const size_t oy0 = t * rows, oy1 = min_size(oh, oy0 + rows);
        const size_t top = oy0 * p->stride_height, bottom = (oy1 - 1) * p->stride_height +
                                                            p->kernel_height;
        const size_t reach = top > p->padding_top ? top - p->padding_top : 0;
        const size_t r0 = reach / g * g; /* its rows start on lines, as the plane's */
        const size_t r1 = min_size(ih, bottom > p->padding_top ? bottom - p->padding_top : 0);
        const size_t np = (r1 - r0) * iw;
        direct_pixels(k, m, conv, x + r0 * iw, ih * iw, band, plane, np, panel);
        im.x_row = r0, im.row_begin = oy0, im.row_end = oy1;
        for (size_t c = 0; c < p->output_channels; c++) {
            im.x = band + c * plane;
            k->dwconv_direct(&im, w + c * taps, bias != NULL ? bias[c] : 0.0f,
                             y + c * oh * p->output_width, &p->minmax);
        }
    }
}

crisp_fast_tiling crisp_fast_tiling_for(const crisp_op *op, size_t threads) {
    const crisp_fast_plan *f = &op->fast;
    crisp_fast_tiling t = {f->tile_pixels, f->tiles, 0};
    const int f32 = f->path == CRISP_FAST_GEMM || f->path == CRISP_FAST_SPMM;
    const int i8 = f->path == CRISP_FAST_QS8_GEMM || f->path == CRISP_FAST_QS8_SPMM;
    if ((!f32 && !i8) || op->kind != CRISP_OP_CONV2D) return t;
    if (f->direct && threads > 1 && f->units >= 2 * threads) {
        /* A direct 1 x 1 conv whose input fits in half an L2 goes by runs or
         * panels, each over the whole image: a thread then writes whole
         * output channels, which the next op (a depthwise conv, or a conv
         * split the same way) reads from its own core's cache (src/
         * thread_pool.c: each thread keeps to its end of every op). Pixel
         * tiles would leave half of every channel with the other core; with
         * a larger input every thread reading all of it costs more. */
        const crisp_conv2d_params *p = f32 ? &op->k.conv : &op->k.qconv.conv;
        const size_t pixels = p->output_height * p->output_width;
        if (direct_input_fits(f->k, pixels, f32 ? sizeof(float) : 1)) {
            t.tile_pixels = pixels, t.tiles = 1, t.by_tile = 0;
            return t;
        }
    }
    if (f->tiles >= CRISP_FAST_CHUNKS_PER_THREAD * threads) {
        t.by_tile = threads > 1;
        return t;
    }
    if (threads < 2 || f->direct) return t; /* no patch to share */
    const crisp_conv2d_params *p = f32 ? &op->k.conv : &op->k.qconv.conv;
    const size_t pixels = p->output_height * p->output_width;
    if (f->band_offset != NULL) { /* tiles of whole output rows, as many as the plan's or more */
        const size_t oh = p->output_height, n = round_up(f->tiles, threads);
        const size_t nt = (oh + n - 1) / n * p->output_width;
        if (nt < f->tile_pixels) t.tile_pixels = nt;
        t.tiles = (pixels + t.tile_pixels - 1) / t.tile_pixels;
        t.by_tile = t.tiles >= threads;
        return t;
    }
    const size_t align = f32 ? RETILE_ALIGN_F32 : RETILE_ALIGN_I8;
    const size_t n = round_up(f->tiles, threads);
    size_t nt = round_up((pixels + n - 1) / n, align);
    /* An expanded layer expands each panel once per tile: keep its floor. */
    if (crisp_op_expanded(op) && nt < EXPANDED_MIN_TILE) nt = EXPANDED_MIN_TILE;
    if (nt >= f->tile_pixels) nt = f->tile_pixels;
    t.tile_pixels = nt;
    t.tiles = (pixels + nt - 1) / nt;
    t.by_tile = t.tiles >= threads;
    return t;
}

void crisp_fast_run(const crisp_f32_kernels *k, const crisp_model *m, const crisp_op *op,
                    const float *x, const float *residual, float *y, size_t begin, size_t end,
                    size_t tile_pixels, float *scratch, size_t *held_tile) {
    const crisp_fast_plan *f = &op->fast;
    if (f->path == CRISP_FAST_QS8_SPMM || f->path == CRISP_FAST_QS8_GEMM ||
        f->path == CRISP_FAST_QS8_DWCONV || f->path == CRISP_FAST_QS8_GEMV ||
        f->path == CRISP_FAST_QS8_SPMV) {
        crisp_fast_run_qs8(m, op, (const int8_t *)(const void *)x, (int8_t *)(void *)y, begin,
                           end, tile_pixels, scratch, held_tile);
        return;
    }
    if (f->path == CRISP_FAST_MAXPOOL) {
        const crisp_conv2d_params c = pool_as_conv(&op->k.pool);
        const size_t plane = c.input_height * c.input_width;
        const size_t pixels = c.output_height * c.output_width;
        for (size_t ch = begin; ch < end; ch++)
            window_bands(k->maxpool, &c, x + ch * plane, NULL, -INFINITY, -INFINITY,
                         y + ch * pixels, scratch);
        return;
    }
    const float *bias = bias_of(m, op);
    if (f->path == CRISP_FAST_GEMV) {
        const crisp_linear_params *l = &op->k.linear;
        const size_t K = l->input_features, mr = k->gemv_mr;
        for (size_t unit = begin; unit < end; unit++) {
            const size_t r0 = unit * mr, rows = min_size(mr, l->output_features - r0);
            k->gemv(rows, K, panel_rows(k, m, op, r0, rows, K, scratch), K, x, y + r0,
                    bias != NULL ? bias + r0 : NULL, &l->minmax);
        }
        return;
    }
    if (f->path == CRISP_FAST_NMV24) {
        for (size_t unit = begin; unit < end; unit++) nmv24_unit(k, m, op, unit, x, y);
        return;
    }
    if (f->path == CRISP_FAST_SPMV) {
        const crisp_sparse_weights *s = &op->packed.sparse;
        for (size_t unit = begin; unit < end; unit++) {
            const size_t r0 = s->run_row[unit];
            const size_t e0 = s->segment_entry[s->run_segment[unit]];
            const size_t e1 = s->segment_entry[s->run_segment[unit + 1]];
            k->spmv(s->run_row[unit + 1] - r0, e1 - e0, s->entry_column + e0,
                    s->weight_f32 + s->run_weight[unit], x, y + r0,
                    bias != NULL ? bias + r0 : NULL, &op->k.linear.minmax);
        }
        return;
    }
    const crisp_conv2d_params *p = &op->k.conv;
    const crisp_minmax_params *minmax = &p->minmax;
    const size_t pixels = p->output_height * p->output_width;
    if (f->path == CRISP_FAST_DWCONV && op->fuses_prev) {
        expand_bands(k, m, op, x, y, begin, end, scratch);
        return;
    }
    if (f->path == CRISP_FAST_DWCONV) {
        const size_t taps = p->kernel_height * p->kernel_width;
        const size_t plane = p->input_height * p->input_width;
        const float *w = m->tensors[op->weight].data;
        if (f->channel_block > 0) {
            const size_t pixels_out = p->output_height * p->output_width;
            for (size_t unit = begin; unit < end; unit++) {
                const size_t c0 = unit * f->channel_block;
                const size_t n = min_size(f->channel_block, p->output_channels - c0);
                const crisp_dwconv_hwc_block blk = {
                    x + c0 * plane, w + c0 * taps, bias != NULL ? bias + c0 : NULL,
                    y + c0 * pixels_out, scratch, n, p->input_height, p->input_width,
                    p->padding_top, p->padding_left, p->stride_width, p->output_height,
                    p->output_width};
                k->dwconv_hwc(&blk, &p->minmax);
            }
            return;
        }
        if (f->direct) {
            uint32_t *masks = (uint32_t *)(void *)scratch;
            float *edge = scratch + crisp_dwconv_mask_entries(p->kernel_width, p->input_width);
            float *copy = edge + crisp_dwconv_edge_floats(p->kernel_height, p->kernel_width,
                                                          p->dilation_height, p->dilation_width,
                                                          p->input_width);
            crisp_dwconv_image im = {.column_mask = masks,
                                     .edge = edge,
                                     .input_height = p->input_height,
                                     .input_width = p->input_width,
                                     .padding_top = p->padding_top,
                                     .padding_left = p->padding_left,
                                     .stride = p->stride_width,
                                     .dilation_height = p->dilation_height,
                                     .dilation_width = p->dilation_width,
                                     .kernel_height = p->kernel_height,
                                     .kernel_width = p->kernel_width,
                                     .output_height = p->output_height,
                                     .output_width = p->output_width,
                                     .rows = f->dw_rows};
            crisp_dwconv_column_masks(&im, masks);
            const int copies = dw_copies_plane(p, f->dw_rows);
            if (copies) { /* the margins stay zero; each channel fills the middle */
                dw_margins(p, &im.zeros_before, &im.zeros_after);
                memset(copy, 0, (im.zeros_before + plane + im.zeros_after) * sizeof(float));
            }
            for (size_t c = begin; c < end; c++) {
                im.x = x + c * plane;
                if (copies) {
                    memcpy(copy + im.zeros_before, im.x, plane * sizeof(float));
                    im.x = copy + im.zeros_before;
                }
                k->dwconv_direct(&im, w + c * taps, bias != NULL ? bias[c] : 0.0f, y + c * pixels,
                             &p->minmax);
            }
            return;
        }
        for (size_t c = begin; c < end; c++)
            window_bands(k->dwconv, p, x + c * plane, w + c * taps, 0.0f,
                         bias != NULL ? bias[c] : 0.0f, y + c * pixels, scratch);
        return;
    }
    const size_t nt = tile_pixels, K = f->k;
    for (size_t item = begin; item < end;) {
        /* The items of one tile: [item, stop). */
        const size_t tile = item / f->units, u0 = item % f->units;
        const size_t stop = min_size(end, (tile + 1) * f->units), u1 = u0 + (stop - item);
        const size_t p0 = tile * nt, np = min_size(nt, pixels - p0);
        if (f->band_offset != NULL) {
            band_tile(k, m, op, x, residual, y, p0, np, u0, u1, scratch, *held_tile != tile);
            *held_tile = tile;
            item = stop;
            continue;
        }
        if (!f->direct && *held_tile != tile) {
            im2col(p, x, scratch, p0, np, nt, k->stride2);
            *held_tile = tile;
        }
        const float *b = f->direct ? x + p0 : scratch;
        const size_t b_stride = f->direct ? pixels : nt;
        /* Scratch: the patch tile, an expanded layer's panel, then a fused
         * ADD's tile of sums (add_tile_floats). */
        float *panel = scratch + (f->direct ? 0 : round_up(K * nt, 16));
        float *sums = panel + (crisp_op_expanded(op) ? round_up(k->gemm_mr * K, 16) : 0);
        if (f->path == CRISP_FAST_GEMM) {
            /* Panel-major: a panel's weights stay in L1 while it sweeps the tile. */
            const size_t nr = k->gemm_nr;
            for (size_t unit = u0; unit < u1; unit++) {
                const size_t r0 = unit * k->gemm_mr;
                const size_t mr = min_size(k->gemm_mr, p->output_channels - r0);
                const float *a = panel_rows(k, m, op, r0, mr, K, panel);
                float *c = residual != NULL ? sums : y + r0 * pixels + p0;
                const size_t c_stride = residual != NULL ? np : pixels;
                for (size_t n0 = 0; n0 < np; n0 += nr)
                    k->gemm(mr, min_size(nr, np - n0), K, a, K, b + n0, b_stride, c + n0,
                            c_stride, bias != NULL ? bias + r0 : NULL, minmax);
                if (residual != NULL)
                    add_residual(k, m, op, sums, residual, y, pixels, r0, r0 + mr, p0, np);
            }
        } else {
            const crisp_sparse_weights *s = &op->packed.sparse;
            const size_t r0 = s->run_row[u0], r1 = s->run_row[u1];
            if (residual == NULL) {
                sweep_runs(k, s, u0, u1, np, s->entry_column, b, b_stride, y + r0 * pixels + p0,
                           pixels, bias, minmax);
            } else { /* the same kernel calls, the tile in parts of whole chunks */
                const size_t w = sums_width(k, r1 - r0);
                for (size_t n0 = 0; n0 < np; n0 += w) {
                    const size_t n = min_size(w, np - n0);
                    sweep_runs(k, s, u0, u1, n, s->entry_column, b + n0, b_stride, sums, n, bias,
                               minmax);
                    add_residual(k, m, op, sums, residual, y, pixels, r0, r1, p0 + n0, n);
                }
            }
        }
        item = stop;
    }
}
