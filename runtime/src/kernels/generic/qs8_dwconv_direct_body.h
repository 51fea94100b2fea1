/* The walk shared by the in-place int8 depthwise kernels (ukernels.h,
 * crisp_qs8_dwconv_image), included once per ISA by a file that defines
 *
 *   CHUNK                  positions per chunk (<= CRISP_QS8_DWCONV_MAX_CHUNK)
 *   GRAIN(s)               the positions a partial chunk computes at a time
 *   U8_OPERANDS            1 when the kernel sums w (q_x + 128) (vpdpbusd takes
 *                          unsigned inputs), else 0
 *   chunk(st, x, m, n, S, KH, FINISH)  an always-inline function: the n <= CHUNK
 *                          requantised outputs of the chunk whose window
 *                          starts at x (input index s p0 - padding_top iw -
 *                          padding_left), quad masks m (entry r = p0 mod iw),
 *                          into res[0 .. n); S, KH and FINISH are constants at
 *                          the calls below (stride, 3 or 0 = any height, and
 *                          how the sums finish: CRISP_QS8_CLAMPED, or with
 *                          USES_FIT crisp_qs8_finish's value, kernels/common.h)
 *   USES_FIT               1 when chunk takes faster paths where the op's
 *                          products fit int32 (the walks are then compiled
 *                          for each finish), else 0
 *   STORE_N(dst, res, n)   optional: stores res[0 .. n) (else memcpy)
 *   STATE                  the type chunk's constants live in
 *   state_init(st, im, w, bias, multiplier, q)
 *   KERNEL_NAME
 *
 * and gets the function: the output stream walked in spans and chunks as
 * the float kernel walks it (generic/f32_dwconv_body.h, "direct"): the
 * whole stream, or, at stride 2 where the wide rows' dropped half is more
 * than a row-by-row walk leaves empty, one span per output row; a chunk
 * whose window leaves the plane and its margins reads a copy of the window
 * with z_x outside the plane. */
#include <string.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

/* Where a chunk at p0 reads: the plane itself, or, when its window [s p0 +
 * top, s p0 + top + len) leaves the plane and its margins, a copy of that
 * window in im->edge with z_x outside the plane. Returns the window's first
 * byte. */
static inline const int8_t *qdw_source(const crisp_qs8_dwconv_image *im, size_t p0,
                                       ptrdiff_t top, size_t len, size_t plane, int8_t zx) {
    const ptrdiff_t from = (ptrdiff_t)(im->stride * p0) + top, to = from + (ptrdiff_t)len;
    if (from >= -(ptrdiff_t)im->zeros_before && to <= (ptrdiff_t)(plane + im->zeros_after))
        return im->x + from;
    int8_t *e = im->edge;
    const ptrdiff_t a = from > 0 ? from : 0, b = to < (ptrdiff_t)plane ? to : (ptrdiff_t)plane;
    if (a < b) {
        memset(e, zx, (size_t)(a - from));
        memcpy(e + (a - from), im->x + a, (size_t)(b - a));
        memset(e + (b - from), zx, (size_t)(to - b));
    } else {
        memset(e, zx, len);
    }
    return e;
}

/* p0 mod iw after a step of CHUNK positions. */
static inline size_t qdw_advance(size_t r, size_t iw) {
    r += CHUNK;
    return r < iw ? r : r < 2 * iw ? r - iw : r % iw;
}

/* Stores the chunk's n outputs at stream positions [p, p + n) (row length
 * eps, columns ox < ow kept). */
static inline void qdw_emit(const int8_t *res, size_t eps, size_t ow, int8_t *out, size_t p,
                            size_t n) {
    if (eps == ow) {
#if defined(STORE_N)
        STORE_N(out + p, res, n);
#else
        if (n == CHUNK)
            memcpy(out + p, res, CHUNK); /* a constant size: vector moves, no call */
        else
            memcpy(out + p, res, n);
#endif
        return;
    }
    size_t oy = p / eps, ox = p - oy * eps;
    for (size_t i = 0; i < n; oy++, ox = 0) {
        const size_t seg = eps - ox < n - i ? eps - ox : n - i;
        if (ox < ow) memcpy(out + oy * ow + ox, res + i, seg < ow - ox ? seg : ow - ox);
        i += seg;
    }
}

#if defined(__GNUC__)
#define QDW_NOINLINE __attribute__((noinline))
#else
#define QDW_NOINLINE
#endif

/* One stride, window height and requantisation: spans of chunks. */
#define QDW_DEFINE_WALK(S, KH, FINISH)                                                       \
    static QDW_NOINLINE void walk_s##S##_k##KH##_f##FINISH(const crisp_qs8_dwconv_image *im, \
                                                        const STATE *st, int8_t *out,        \
                                                        int8_t zx) {                         \
        const size_t iw = im->input_width, ow = im->output_width;                            \
        const size_t plane = im->input_height * iw;                                          \
        const size_t end = (im->output_height - 1) * iw + ow;                                \
        const ptrdiff_t top = -(ptrdiff_t)(im->padding_top * iw + im->padding_left);         \
        const size_t len = S * (CHUNK - 1) + 4 +                                             \
                           (im->kernel_height - 1) * im->dilation_height * iw;               \
        const size_t g = GRAIN(S);                                                           \
        const int by_rows = (ow + g - 1) / g * g < iw;                                       \
        const size_t span = by_rows ? ow : end, step = by_rows ? iw : end;                   \
        const size_t eps = by_rows ? ow : iw;                                                \
        int8_t res[CHUNK];                                                                   \
        for (size_t start = 0; start < end; start += step) {                                 \
            const size_t p1 = start + span;                                                  \
            int8_t *const eout = by_rows ? out + start / iw * ow : out;                      \
            for (size_t p0 = start, r = 0; p0 < p1; p0 += CHUNK, r = qdw_advance(r, iw)) {   \
                const size_t n = p1 - p0 < CHUNK ? p1 - p0 : CHUNK;                          \
                const int8_t *x = qdw_source(im, p0, top, len, plane, zx);                   \
                chunk(st, x, im->quad_mask + r * CRISP_QS8_DWCONV_QUAD_LANES, n, res, S, KH, \
                      FINISH);                                                               \
                qdw_emit(res, eps, ow, eout, p0 - start, n);                                 \
            }                                                                                \
        }                                                                                    \
    }
/* The walks' last digit is crisp_qs8_finish's value (kernels/common.h). */
QDW_DEFINE_WALK(1, 3, 0)
QDW_DEFINE_WALK(2, 3, 0)
QDW_DEFINE_WALK(1, 0, 0)
QDW_DEFINE_WALK(2, 0, 0)
#if USES_FIT
QDW_DEFINE_WALK(1, 3, 1)
QDW_DEFINE_WALK(2, 3, 1)
QDW_DEFINE_WALK(1, 0, 1)
QDW_DEFINE_WALK(2, 0, 1)
QDW_DEFINE_WALK(1, 3, 2)
QDW_DEFINE_WALK(2, 3, 2)
QDW_DEFINE_WALK(1, 0, 2)
QDW_DEFINE_WALK(2, 0, 2)
#define QDW_WALK(S, KH)                                                                      \
    (finish == CRISP_QS8_FIT_FULL ? walk_s##S##_k##KH##_f2                                   \
     : finish == CRISP_QS8_FIT    ? walk_s##S##_k##KH##_f1                                   \
                                  : walk_s##S##_k##KH##_f0)
#else
#define QDW_WALK(S, KH) walk_s##S##_k##KH##_f0
#endif

void KERNEL_NAME(const crisp_qs8_dwconv_image *im, const int8_t *w, int32_t bias,
                 int32_t weight_sum, float multiplier, int8_t *out,
                 const crisp_qs8_requant *q) {
    /* The kernels sum w q_x (or w (q_x + 128)): fold z_x (and 128) into
     * the bias. In int32: |bias| + 255 sum |w| <= INT32_MAX (src/pack.c). */
    const int32_t z = q->input_zero_point + (U8_OPERANDS ? 128 : 0);
    const int32_t folded = (int32_t)((int64_t)bias - (int64_t)z * weight_sum);
    STATE st;
    state_init(&st, im, w, folded, multiplier, q);
    const int8_t zx = (int8_t)q->input_zero_point;
    const int three = im->kernel_height == 3;
#if USES_FIT
    const int finish = crisp_qs8_finish(q);
#endif
    if (im->stride == 1) {
        if (three) QDW_WALK(1, 3)(im, &st, out, zx);
        else QDW_WALK(1, 0)(im, &st, out, zx);
    } else {
        if (three) QDW_WALK(2, 3)(im, &st, out, zx);
        else QDW_WALK(2, 0)(im, &st, out, zx);
    }
}

#undef QDW_WALK
#undef QDW_DEFINE_WALK
#undef QDW_NOINLINE
