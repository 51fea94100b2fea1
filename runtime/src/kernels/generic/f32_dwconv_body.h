/* The depthwise conv microkernel's body, shared by every tier: included once
 * per ISA by a file that defines the vector type and operations below and is
 * compiled with that ISA's flags.
 *
 * The band's output pixels are one flat stream of "wide" positions
 * (ukernels.h): a chunk is four vectors of consecutive positions, four
 * independent FMA chains, whatever the row width, so a 7 x 7 plane (63 wide
 * positions with 3 x 3 taps) is one AVX-512 chunk instead of seven
 * mostly-empty rows. Every tap of a chunk is a contiguous read at a fixed
 * offset: no gathers, no bounds checks (the driver pads the phases by
 * CRISP_DWCONV_SLACK floats). 3 x 3 windows (MobileNet's) keep their nine
 * weights and offsets in registers; other sizes walk the window per chunk.
 * A chunk's vectors go through a small buffer to the output rows, dropping
 * the wide columns past the row end. Every pixel sums bias then the taps in
 * (ky, kx) order, so the result does not depend on the band or chunk split.
 *
 *   VEC                 vector type, VL float lanes
 *   VLOAD(p)            load VL floats (unaligned)
 *   VSET1(x)            broadcast
 *   VFMA(acc, w, x)     acc + w * x
 *   VCLAMP(v, lo, hi)   clamp keeping NaN (lo, hi are VEC)
 *   VSTORE_N(p, v, n)   store the first n <= VL lanes
 *
 * Max pooling reuses it (f32_maxpool_*.c): VFMA then keeps the max (NaN
 * wins, as in torch), the "bias" is -inf and the weights are NULL.
 *
 * A file that also defines CRISP_DWCONV_DIRECT_NAME (and the masked and
 * deinterleaving loads listed there) gets the kernel that reads the input
 * plane in place (stride 1 or 2; further below), the same stream without
 * the copy. */
#include <string.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

#define CHUNK (4 * VL)

/* r = q * s + rem for the small strides of real networks without a
 * division (a call of a 7 x 7 plane is one chunk: nine taps' divisions
 * would cost as much as its multiply-adds). */
static inline size_t split_by(size_t r, size_t s, size_t *rem) {
    if (s == 1) {
        *rem = 0;
        return r;
    }
    if (s == 2) {
        *rem = r & 1;
        return r >> 1;
    }
    *rem = r % s;
    return r / s;
}

/* Offset of tap (ky, kx) in the phases (ukernels.h). */
static inline size_t tap_offset(const crisp_dwconv_plane *pl, size_t ky, size_t kx) {
    size_t row_phase, col_phase;
    const size_t dy = split_by(ky * pl->dilation_height, pl->stride_height, &row_phase);
    const size_t dx = split_by(kx * pl->dilation_width, pl->stride_width, &col_phase);
    return (row_phase * pl->stride_width + col_phase) * pl->phase_size + dy * pl->phase_stride +
           dx;
}

/* Clamps the chunk at wide positions [p0, p0 + n) and stores its pixels.
 * Inlined: a call would pass the four accumulators through memory. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void emit(size_t ps, size_t ow, float *out, size_t p0, size_t n, VEC a0, VEC a1,
                        VEC a2, VEC a3, VEC lo, VEC hi) {
    a0 = VCLAMP(a0, lo, hi), a1 = VCLAMP(a1, lo, hi);
    a2 = VCLAMP(a2, lo, hi), a3 = VCLAMP(a3, lo, hi);
    if (ps == ow) { /* no wide columns: the stream is the output */
        const VEC acc[4] = {a0, a1, a2, a3};
        for (size_t v = 0; v * VL < n; v++) {
            const size_t left = n - v * VL;
            VSTORE_N(out + p0 + v * VL, acc[v], left < VL ? left : VL);
        }
        return;
    }
    /* One vector of slack: the row copies below load whole vectors. */
    float buf[CHUNK + VL];
    VSTORE_N(buf, a0, VL);
    VSTORE_N(buf + VL, a1, VL);
    VSTORE_N(buf + 2 * VL, a2, VL);
    VSTORE_N(buf + 3 * VL, a3, VL);
    size_t oy = p0 / ps, ox = p0 - oy * ps;
    for (size_t q = 0; q < n; oy++, ox = 0) {
        const size_t seg = ps - ox < n - q ? ps - ox : n - q;
        if (ox < ow) {
            const size_t len = seg < ow - ox ? seg : ow - ox;
            float *dst = out + oy * ow + ox;
            for (size_t i = 0; i < len; i += VL)
                VSTORE_N(dst + i, VLOAD(buf + q + i), len - i < VL ? len - i : VL);
        }
        q += seg;
    }
}

/* One chunk of any window: n <= CHUNK positions from p0. */
static inline void chunk_any(const crisp_dwconv_plane *pl, const float *w, VEC bias, float *out,
                             size_t p0, size_t n, VEC lo, VEC hi) {
    const size_t nv = (n + VL - 1) / VL;
    VEC a0 = bias, a1 = bias, a2 = bias, a3 = bias;
    for (size_t ky = 0; ky < pl->kernel_height; ky++)
        for (size_t kx = 0; kx < pl->kernel_width; kx++) {
            const float *src = pl->phases + tap_offset(pl, ky, kx) + p0;
            const VEC wv = VSET1(w != NULL ? w[ky * pl->kernel_width + kx] : 0.0f);
            a0 = VFMA(a0, wv, VLOAD(src));
            if (nv > 1) a1 = VFMA(a1, wv, VLOAD(src + VL));
            if (nv > 2) a2 = VFMA(a2, wv, VLOAD(src + 2 * VL));
            if (nv > 3) a3 = VFMA(a3, wv, VLOAD(src + 3 * VL));
        }
    emit(pl->phase_stride, pl->output_width, out, p0, n, a0, a1, a2, a3, lo, hi);
}

#define TAP(wv, off)                                      \
    do {                                                  \
        const float *src_ = x + (off);                    \
        a0 = VFMA(a0, wv, VLOAD(src_));                   \
        a1 = VFMA(a1, wv, VLOAD(src_ + VL));              \
        a2 = VFMA(a2, wv, VLOAD(src_ + 2 * VL));          \
        a3 = VFMA(a3, wv, VLOAD(src_ + 3 * VL));          \
    } while (0)

void CRISP_DWCONV_NAME(const crisp_dwconv_plane *pl, const float *w, float bias, float *out,
                       const crisp_minmax_params *params) {
    const size_t end = (pl->output_height - 1) * pl->phase_stride + pl->output_width;
    const VEC lo = VSET1(params->output_min), hi = VSET1(params->output_max);
    const VEC b = VSET1(bias);
    size_t p0 = 0;
    if (pl->kernel_height == 3 && pl->kernel_width == 3) {
#define W_(i) VSET1(w != NULL ? w[i] : 0.0f)
        const VEC w0 = W_(0), w1 = W_(1), w2 = W_(2), w3 = W_(3), w4 = W_(4);
        const VEC w5 = W_(5), w6 = W_(6), w7 = W_(7), w8 = W_(8);
#undef W_
        const size_t o0 = tap_offset(pl, 0, 0), o1 = tap_offset(pl, 0, 1);
        const size_t o2 = tap_offset(pl, 0, 2), o3 = tap_offset(pl, 1, 0);
        const size_t o4 = tap_offset(pl, 1, 1), o5 = tap_offset(pl, 1, 2);
        const size_t o6 = tap_offset(pl, 2, 0), o7 = tap_offset(pl, 2, 1);
        const size_t o8 = tap_offset(pl, 2, 2);
        for (; p0 + CHUNK <= end; p0 += CHUNK) {
            const float *x = pl->phases + p0;
            VEC a0 = b, a1 = b, a2 = b, a3 = b;
            TAP(w0, o0);
            TAP(w1, o1);
            TAP(w2, o2);
            TAP(w3, o3);
            TAP(w4, o4);
            TAP(w5, o5);
            TAP(w6, o6);
            TAP(w7, o7);
            TAP(w8, o8);
            emit(pl->phase_stride, pl->output_width, out, p0, CHUNK, a0, a1, a2, a3, lo, hi);
        }
    }
    for (; p0 < end; p0 += CHUNK)
        chunk_any(pl, w, b, out, p0, end - p0 < CHUNK ? end - p0 : CHUNK, lo, hi);
}

#if defined(CRISP_DWCONV_DIRECT_NAME)
/* The kernel reading the plane in place, stride 1 or 2 (ukernels.h,
 * crisp_dwconv_image). Besides the macros above:
 *   VMASK               lane mask type
 *   VMASK_LOAD(p)       the mask of VL uint32 entries (all ones = keep)
 *   VLOADZ(p, m)        load VL floats, 0 in the lanes m drops
 *   VLOAD2(p)           p[0], p[2], ..., p[2 VL - 2] (a deinterleaving load)
 *   VLOAD2Z(p, m)       the same, 0 in the lanes m drops
 * A chunk always reads four whole vectors (a partial last chunk too): its
 * window lies inside the plane and its zero margins, or is copied to
 * im->edge. */

/* Where a chunk at p0 reads: the plane itself, or, when its window
 * [s p0 + lo, s (p0 + CHUNK) + hi) leaves the plane and its zero margins
 * (the first and last rows), a copy of that window in im->edge with zeros
 * outside the plane (the padding rows). Returns the address standing for
 * input index s p0. */
static inline const float *direct_source(const crisp_dwconv_image *im, size_t p0, ptrdiff_t lo,
                                         ptrdiff_t hi, size_t plane) {
    const size_t s = im->stride;
    const ptrdiff_t from = (ptrdiff_t)(s * p0) + lo, to = (ptrdiff_t)(s * (p0 + CHUNK)) + hi;
    if (from >= -(ptrdiff_t)im->zeros_before && to <= (ptrdiff_t)(plane + im->zeros_after))
        return im->x + s * p0;
    float *e = im->edge;
    const ptrdiff_t a = from > 0 ? from : 0, b = to < (ptrdiff_t)plane ? to : (ptrdiff_t)plane;
    for (ptrdiff_t i = from; i < a; i++) e[i - from] = 0.0f;
    if (a < b) memcpy(e + (a - from), im->x + a, (size_t)(b - a) * sizeof(float));
    for (ptrdiff_t i = b > a ? b : a; i < to; i++) e[i - from] = 0.0f;
    return e - lo;
}

/* p0 mod iw after a step of CHUNK positions. */
static inline size_t direct_advance(size_t r, size_t iw) {
    r += CHUNK;
    return r < iw ? r : r < 2 * iw ? r - iw : r % iw;
}

/* Column kx's taps fall outside the image rows for some output column. */
static inline int direct_needs_mask(const crisp_dwconv_image *im, size_t kx) {
    const size_t shift = kx * im->dilation_width;
    return shift < im->padding_left ||
           (im->output_width - 1) * im->stride + shift - im->padding_left >= im->input_width;
}

/* One vector of a tap at p: stride 1 or 2, masked by m unless m is NULL. */
static inline VEC direct_load(const float *p, size_t s, const uint32_t *m) {
    if (m == NULL) return s == 1 ? VLOAD(p) : VLOAD2(p);
    const VMASK k = VMASK_LOAD(m);
    return s == 1 ? VLOADZ(p, k) : VLOAD2Z(p, k);
}

/* Tap at input offset off for the chunk's first NV vectors (4 but in a
 * last partial chunk): LOAD_(p, v) loads vector v from p, stride 1 or 2,
 * plain or masked. */
#define DTAP(wv, off, NV, LOAD_)                             \
    do {                                                     \
        const float *src_ = x + (off);                       \
        a0 = VFMA(a0, wv, LOAD_(src_, 0));                   \
        if ((NV) > 1) a1 = VFMA(a1, wv, LOAD_(src_, 1));     \
        if ((NV) > 2) a2 = VFMA(a2, wv, LOAD_(src_, 2));     \
        if ((NV) > 3) a3 = VFMA(a3, wv, LOAD_(src_, 3));     \
    } while (0)
#define LOAD1(p, v) VLOAD((p) + (v) * VL)
#define LOAD1_L(p, v) VLOADZ((p) + (v) * VL, l##v)
#define LOAD1_R(p, v) VLOADZ((p) + (v) * VL, r##v)
#define LOAD2(p, v) VLOAD2((p) + 2 * (v) * VL)
#define LOAD2_L(p, v) VLOAD2Z((p) + 2 * (v) * VL, l##v)
#define LOAD2_R(p, v) VLOAD2Z((p) + 2 * (v) * VL, r##v)

/* One 3 x 3 chunk of NV vectors and N positions at p0 whose middle column
 * needs no mask (S the stride): nine weights and both column masks in
 * registers. */
#define DIRECT_3X3(S, NV, N)                                                               \
    do {                                                                                   \
        const float *x = direct_source(im, p0, top, bottom, plane);                        \
        const VMASK l0 = VMASK_LOAD(left + r), l1 = VMASK_LOAD(left + r + VL);             \
        const VMASK l2 = VMASK_LOAD(left + r + 2 * VL), l3 = VMASK_LOAD(left + r + 3 * VL); \
        const VMASK r0 = VMASK_LOAD(right + r), r1 = VMASK_LOAD(right + r + VL);           \
        const VMASK r2 = VMASK_LOAD(right + r + 2 * VL);                                   \
        const VMASK r3 = VMASK_LOAD(right + r + 3 * VL);                                   \
        VEC a0 = b, a1 = b, a2 = b, a3 = b;                                                \
        DTAP(w0, top, NV, LOAD##S##_L);                                                    \
        DTAP(w1, top + dx, NV, LOAD##S);                                                   \
        DTAP(w2, top + 2 * dx, NV, LOAD##S##_R);                                           \
        DTAP(w3, top + dy, NV, LOAD##S##_L);                                               \
        DTAP(w4, top + dy + dx, NV, LOAD##S);                                              \
        DTAP(w5, top + dy + 2 * dx, NV, LOAD##S##_R);                                      \
        DTAP(w6, top + 2 * dy, NV, LOAD##S##_L);                                           \
        DTAP(w7, top + 2 * dy + dx, NV, LOAD##S);                                          \
        DTAP(w8, top + 2 * dy + 2 * dx, NV, LOAD##S##_R);                                  \
        emit(eps, ow, eout, p0 - start, N, a0, a1, a2, a3, lo, hi);                        \
    } while (0)

/* The geometry every direct walk starts from. The stream is walked in
 * spans [start, start + span), step apart: the whole of it, or, where the
 * wide rows' dropped half (stride 2: ow of iw columns kept) is more than the
 * lanes a row-by-row walk leaves empty, one span per output row (112 -> 56:
 * 56 positions in one 64-position chunk instead of 1.75 chunks). A row
 * span's positions are its output row's pixels, stored from that row as a
 * stream without wide columns (eps = ow). Each span ends with a partial
 * chunk that computes only the vectors holding positions (a 14 x 14 plane
 * ends with 4). */
#define DIRECT_GEOMETRY                                                                \
    const size_t iw = im->input_width, ow = im->output_width;                          \
    const size_t kh = im->kernel_height, kw = im->kernel_width;                        \
    const size_t plane = im->input_height * iw, rows = iw + CRISP_DWCONV_MAX_CHUNK;    \
    const size_t end = (im->output_height - 1) * iw + ow;                              \
    const ptrdiff_t top = -(ptrdiff_t)(im->padding_top * iw + im->padding_left);       \
    const ptrdiff_t bottom = top + (ptrdiff_t)((kh - 1) * im->dilation_height * iw +   \
                                               (kw - 1) * im->dilation_width);         \
    const VEC lo = VSET1(params->output_min), hi = VSET1(params->output_max);          \
    const VEC b = VSET1(bias);                                                         \
    const int by_rows = (ow + VL - 1) / VL * VL < iw;                                  \
    const size_t span = by_rows ? ow : end, step = by_rows ? iw : end;                 \
    const size_t eps = by_rows ? ow : iw

/* 3 x 3 windows whose middle column needs no mask, stride S: one function
 * per stride (kept apart so that each gets its own register allocation:
 * nine weights, four accumulators, eight masks). */
#if defined(__GNUC__)
#define DIRECT_NOINLINE __attribute__((noinline))
#else
#define DIRECT_NOINLINE
#endif
#define DEFINE_DIRECT_3X3(S)                                                                \
    static DIRECT_NOINLINE void direct_3x3_s##S(const crisp_dwconv_image *im,               \
                                                const float *w, float bias, float *out,     \
                                                const crisp_minmax_params *params) {        \
        DIRECT_GEOMETRY;                                                                    \
        (void)kw;                                                                           \
        const VEC w0 = VSET1(w[0]), w1 = VSET1(w[1]), w2 = VSET1(w[2]);                     \
        const VEC w3 = VSET1(w[3]), w4 = VSET1(w[4]), w5 = VSET1(w[5]);                     \
        const VEC w6 = VSET1(w[6]), w7 = VSET1(w[7]), w8 = VSET1(w[8]);                     \
        const ptrdiff_t dy = (ptrdiff_t)(im->dilation_height * iw);                         \
        const ptrdiff_t dx = (ptrdiff_t)im->dilation_width;                                 \
        const uint32_t *left = im->column_mask, *right = im->column_mask + 2 * rows;       \
        for (size_t start = 0; start < end; start += step) {                                \
            const size_t p1 = start + span;                                                 \
            float *const eout = by_rows ? out + start / iw * ow : out;                      \
            size_t p0 = start, r = 0; /* a span starts a wide row: p0 mod iw = 0 */         \
            for (; p0 + CHUNK <= p1; p0 += CHUNK, r = direct_advance(r, iw))                \
                DIRECT_3X3(S, 4, CHUNK);                                                    \
            if (p0 < p1) {                                                                  \
                const size_t n = p1 - p0, nv = (n + VL - 1) / VL;                           \
                DIRECT_3X3(S, nv, n);                                                       \
            }                                                                               \
        }                                                                                   \
    }
DEFINE_DIRECT_3X3(1)
DEFINE_DIRECT_3X3(2)

#if defined(ROWS_PREV)
/* The row walks (crisp_dwconv_image.rows): 3 x 3, padding 1 at top and left,
 * dilation 1, two output rows per pass in whole vectors of a row. A tier that
 * has them defines
 *   VZERO                 a vector of zeros
 *   ROWS_LOAD_N(p, n)     p[0 .. n) for 0 < n < VL, zeros in the other lanes
 *                         (reads nothing past p + n)
 *   ROWS_PREV(cur, prev)  [prev[VL - 1], cur[0 .. VL - 2]]
 *   ROWS_NEXT(cur, next)  [cur[1 .. VL - 1], next[0]]
 *   ROWS_EVEN_ODD(a, b, even, odd)  the even and odd floats of a then b
 * Each input row vector is loaded once for both output rows it feeds; its
 * left and right neighbours come from the vectors beside it (zeros past the
 * row's ends); at stride 2 a vector of outputs reads 2 VL input columns,
 * split into even ones (middle taps) and odd ones (right taps; one lane over,
 * the left taps). Padding reads zero and each output takes bias, then the
 * taps in (ky, kx) order, by FMA: bitwise the other walks. */
static inline VEC rows_load(const float *p, size_t n) {
    return n >= VL ? VLOAD(p) : n == 0 ? VZERO : ROWS_LOAD_N(p, n);
}

/* One window row's three taps into acc: left, middle, right, in that order. */
static inline VEC rows_taps(VEC acc, const VEC *w, VEC left, VEC middle, VEC right) {
    acc = VFMA(acc, w[0], left);
    acc = VFMA(acc, w[1], middle);
    return VFMA(acc, w[2], right);
}

/* The pass's n outputs of row 0 and, when `two`, of the row below. */
static inline void rows_store(float *row0, size_t stride, int two, VEC a0, VEC a1, VEC lo,
                              VEC hi, size_t n) {
    VSTORE_N(row0, VCLAMP(a0, lo, hi), n);
    if (two) VSTORE_N(row0 + stride, VCLAMP(a1, lo, hi), n);
}

static int direct_rows_s1(const crisp_dwconv_image *im, const float *w, float bias, float *out,
                          const crisp_minmax_params *params) {
    const size_t ih = im->input_height, iw = im->input_width;
    if (im->output_height != ih || im->output_width != iw) return 0;
    const size_t nv = (iw + VL - 1) / VL;
    const VEC lo = VSET1(params->output_min), hi = VSET1(params->output_max), b = VSET1(bias);
    const VEC wk[9] = {VSET1(w[0]), VSET1(w[1]), VSET1(w[2]), VSET1(w[3]), VSET1(w[4]),
                       VSET1(w[5]), VSET1(w[6]), VSET1(w[7]), VSET1(w[8])};
    const size_t oy1 = im->row_end != 0 ? im->row_end : ih;
    for (size_t oy = im->row_begin; oy < oy1; oy += 2) {
        const int two = oy + 1 < oy1;
        const float *row[4]; /* input rows oy - 1 .. oy + 2; NULL = padding */
        VEC prev[4], cur[4];
        for (size_t k = 0; k < 4; k++) {
            const ptrdiff_t iy = (ptrdiff_t)oy - 1 + (ptrdiff_t)k;
            row[k] = iy >= 0 && iy < (ptrdiff_t)ih && (k < 3 || two)
                         ? im->x + ((size_t)iy - im->x_row) * iw
                         : NULL;
            prev[k] = VZERO;
            cur[k] = row[k] != NULL ? rows_load(row[k], iw) : VZERO;
        }
        for (size_t j = 0; j < nv; j++) {
            VEC a0 = b, a1 = b;
            for (size_t k = 0; k < 4; k++) {
                const VEC next = row[k] != NULL && j + 1 < nv
                                     ? rows_load(row[k] + VL * (j + 1), iw - VL * (j + 1))
                                     : VZERO;
                const VEC left = ROWS_PREV(cur[k], prev[k]), right = ROWS_NEXT(cur[k], next);
                if (k < 3) a0 = rows_taps(a0, wk + 3 * k, left, cur[k], right); /* row oy */
                if (k > 0) a1 = rows_taps(a1, wk + 3 * (k - 1), left, cur[k], right); /* oy + 1 */
                prev[k] = cur[k];
                cur[k] = next;
            }
            const size_t n = iw - VL * j < VL ? iw - VL * j : VL;
            rows_store(out + oy * iw + VL * j, iw, two, a0, a1, lo, hi, n);
        }
    }
    return 1;
}

static int direct_rows_s2(const crisp_dwconv_image *im, const float *w, float bias, float *out,
                          const crisp_minmax_params *params) {
    const size_t ih = im->input_height, iw = im->input_width;
    const size_t oh = im->output_height, ow = im->output_width;
    if (2 * ow > iw + 1 || 2 * oh > ih + 1) return 0;
    const size_t nv = (ow + VL - 1) / VL;
    const VEC lo = VSET1(params->output_min), hi = VSET1(params->output_max), b = VSET1(bias);
    const VEC wk[9] = {VSET1(w[0]), VSET1(w[1]), VSET1(w[2]), VSET1(w[3]), VSET1(w[4]),
                       VSET1(w[5]), VSET1(w[6]), VSET1(w[7]), VSET1(w[8])};
    const size_t oy1 = im->row_end != 0 ? im->row_end : oh;
    for (size_t oy = im->row_begin; oy < oy1; oy += 2) {
        const int two = oy + 1 < oy1;
        const float *row[5]; /* input rows 2 oy - 1 .. 2 oy + 3; NULL = padding */
        VEC odd_prev[5];
        for (size_t k = 0; k < 5; k++) {
            const ptrdiff_t iy = 2 * (ptrdiff_t)oy - 1 + (ptrdiff_t)k;
            row[k] = iy >= 0 && iy < (ptrdiff_t)ih && (k < 3 || two)
                         ? im->x + ((size_t)iy - im->x_row) * iw
                         : NULL;
            odd_prev[k] = VZERO;
        }
        for (size_t j = 0; j < nv; j++) {
            const size_t c0 = 2 * VL * j, have = iw - c0; /* c0 <= iw: 2 ow <= iw + 1 */
            VEC a0 = b, a1 = b;
            for (size_t k = 0; k < 5; k++) {
                VEC e = VZERO, o = VZERO;
                if (row[k] != NULL) {
                    const VEC va = rows_load(row[k] + c0, have);
                    const VEC vb = have > VL ? rows_load(row[k] + c0 + VL, have - VL) : VZERO;
                    ROWS_EVEN_ODD(va, vb, e, o);
                }
                const VEC left = ROWS_PREV(o, odd_prev[k]);
                odd_prev[k] = o;
                if (k < 3) a0 = rows_taps(a0, wk + 3 * k, left, e, o); /* row oy */
                if (k >= 2) a1 = rows_taps(a1, wk + 3 * (k - 2), left, e, o); /* oy + 1 */
            }
            const size_t n = ow - VL * j < VL ? ow - VL * j : VL;
            rows_store(out + oy * ow + VL * j, ow, two, a0, a1, lo, hi, n);
        }
    }
    return 1;
}

static int direct_rows(const crisp_dwconv_image *im, const float *w, float bias, float *out,
                       const crisp_minmax_params *params) {
    if (!im->rows || im->kernel_height != 3 || im->kernel_width != 3 ||
        im->dilation_height != 1 || im->dilation_width != 1 || im->padding_top != 1 ||
        im->padding_left != 1)
        return 0;
    return im->stride == 1   ? direct_rows_s1(im, w, bias, out, params)
           : im->stride == 2 ? direct_rows_s2(im, w, bias, out, params)
                             : 0;
}
#endif

void CRISP_DWCONV_DIRECT_NAME(const crisp_dwconv_image *im, const float *w, float bias,
                              float *out, const crisp_minmax_params *params) {
#if defined(ROWS_PREV)
    if (direct_rows(im, w, bias, out, params)) return;
#endif
    if (im->kernel_height == 3 && im->kernel_width == 3 && !direct_needs_mask(im, 1)) {
        if (im->stride == 1)
            direct_3x3_s1(im, w, bias, out, params);
        else
            direct_3x3_s2(im, w, bias, out, params);
        return;
    }
    /* Other windows: the taps' masks and offsets per chunk. */
    DIRECT_GEOMETRY;
    const size_t s = im->stride;
    for (size_t start = 0; start < end; start += step) {
        const size_t p1 = start + span;
        float *const eout = by_rows ? out + start / iw * ow : out;
        for (size_t p0 = start, r = 0; p0 < p1; p0 += CHUNK, r = direct_advance(r, iw)) {
            const float *x = direct_source(im, p0, top, bottom, plane);
            const size_t n = p1 - p0 < CHUNK ? p1 - p0 : CHUNK, nv = (n + VL - 1) / VL;
            VEC a0 = b, a1 = b, a2 = b, a3 = b;
            for (size_t ky = 0; ky < kh; ky++)
                for (size_t kx = 0; kx < kw; kx++) {
                    const float *src = x + top + (ptrdiff_t)(ky * im->dilation_height * iw +
                                                             kx * im->dilation_width);
                    const uint32_t *m =
                        direct_needs_mask(im, kx) ? im->column_mask + kx * rows + r : NULL;
                    const VEC wv = VSET1(w[ky * kw + kx]);
                    a0 = VFMA(a0, wv, direct_load(src, s, m));
                    if (nv > 1)
                        a1 = VFMA(a1, wv, direct_load(src + s * VL, s, m ? m + VL : NULL));
                    if (nv > 2)
                        a2 = VFMA(a2, wv, direct_load(src + 2 * s * VL, s, m ? m + 2 * VL : NULL));
                    if (nv > 3)
                        a3 = VFMA(a3, wv, direct_load(src + 3 * s * VL, s, m ? m + 3 * VL : NULL));
                }
            emit(eps, ow, eout, p0 - start, n, a0, a1, a2, a3, lo, hi);
        }
    }
}
#undef DEFINE_DIRECT_3X3
#undef DIRECT_NOINLINE
#undef DIRECT_GEOMETRY
#undef DIRECT_3X3
#undef LOAD2_R
#undef LOAD2_L
#undef LOAD2
#undef LOAD1_R
#undef LOAD1_L
#undef LOAD1
#undef DTAP
#endif

#undef TAP
#undef CHUNK
