/* Pillow's bilinear resize for 8-bit images (src/libImaging/Resample.c:
 * precompute_coeffs, normalize_coeffs_8bpc, the horizontal then vertical
 * 8bpc passes), restricted to the output pixels of a crop: an output pixel
 * depends only on its own coefficients, so computing a window gives exactly
 * the pixels Pillow's full resize would, without its memory. */
#include "resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

/* Pillow's fixed point: 32 bits - 8 for the result - 2 for overflow. */
#define PRECISION_BITS (32 - 8 - 2)

typedef struct axis {
    int ksize;
    int *bounds;  /* per output: first input index, count */
    int32_t *k;   /* per output: ksize coefficients, 22-bit fixed point */
} axis;

static double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

/* Coefficients of outputs first .. first + count - 1 of an in_size -> out_size
 * resize: precompute_coeffs (box 0 .. in_size) then normalize_coeffs_8bpc. */
static int axis_init(axis *a, int in_size, int out_size, int first, int count) {
    const double scale = (double)in_size / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 1.0 * filterscale;
    a->ksize = (int)ceil(support) * 2 + 1;
    a->bounds = malloc((size_t)count * 2 * sizeof *a->bounds);
    a->k = malloc((size_t)count * (size_t)a->ksize * sizeof *a->k);
    double *kk = malloc((size_t)a->ksize * sizeof *kk);
    if (a->bounds == NULL || a->k == NULL || kk == NULL) {
        free(kk);
        return 0;
    }
    const double inv_filterscale = 1.0 / filterscale;
    for (int i = 0; i < count; i++) {
        const int xx = first + i;
        const double center = (xx + 0.5) * scale;
        double ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        int x;
        for (x = 0; x < xmax; x++) {
            const double w = bilinear_filter((x + xmin - center + 0.5) * inv_filterscale);
            kk[x] = w;
            ww += w;
        }
        if (ww != 0.0)
            for (x = 0; x < xmax; x++) kk[x] /= ww;
        for (; x < a->ksize; x++) kk[x] = 0;
        int32_t *k = a->k + (size_t)i * (size_t)a->ksize;
        for (x = 0; x < a->ksize; x++)
            k[x] = kk[x] < 0 ? (int32_t)(-0.5 + kk[x] * (1 << PRECISION_BITS))
                             : (int32_t)(0.5 + kk[x] * (1 << PRECISION_BITS));
        a->bounds[2 * i] = xmin;
        a->bounds[2 * i + 1] = xmax;
    }
    free(kk);
    return 1;
}

static void axis_free(axis *a) {
    free(a->bounds);
    free(a->k);
}

/* Pillow's clip8: the sum shifted down, clamped to 0..255. */
static uint8_t clip8(int64_t ss) {
    if (ss < 0) return 0;
    ss >>= PRECISION_BITS;
    return ss > 255 ? 255 : (uint8_t)ss;
}

crisp_status crisp_resample_rgb8(const uint8_t *in, uint32_t in_w, uint32_t in_h, uint32_t out_w,
                                 uint32_t out_h, uint32_t left, uint32_t top, uint32_t crop_w,
                                 uint32_t crop_h, uint8_t *out) {
    axis h = {0, NULL, NULL}, v = {0, NULL, NULL};
    uint8_t *tmp = NULL;
    crisp_status s = CRISP_ERR_NOMEM;
    const int need_h = out_w != in_w, need_v = out_h != in_h;
    if (!axis_init(&v, (int)in_h, (int)out_h, (int)top, (int)crop_h)) goto done;
    /* Input rows the crop's output rows read: the horizontal pass runs on those only. */
    const int y_first = v.bounds[0];
    const int y_last = v.bounds[2 * (crop_h - 1)] + v.bounds[2 * (crop_h - 1) + 1];
    const size_t rows = (size_t)(y_last - y_first), row_bytes = (size_t)crop_w * 3;
    tmp = malloc(rows * row_bytes);
    if (tmp == NULL) goto done;
    if (need_h) {
        if (!axis_init(&h, (int)in_w, (int)out_w, (int)left, (int)crop_w)) goto done;
        for (size_t r = 0; r < rows; r++) {
            const uint8_t *line = in + ((size_t)y_first + r) * in_w * 3;
            uint8_t *o = tmp + r * row_bytes;
            for (uint32_t xx = 0; xx < crop_w; xx++) {
                const int xmin = h.bounds[2 * xx], xmax = h.bounds[2 * xx + 1];
                const int32_t *k = h.k + (size_t)xx * (size_t)h.ksize;
                int64_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
                for (int x = 0; x < xmax; x++) {
                    const uint8_t *p = line + (size_t)(x + xmin) * 3;
                    s0 += (int64_t)p[0] * k[x];
                    s1 += (int64_t)p[1] * k[x];
                    s2 += (int64_t)p[2] * k[x];
                }
                o[3 * xx] = clip8(s0);
                o[3 * xx + 1] = clip8(s1);
                o[3 * xx + 2] = clip8(s2);
            }
        }
    } else {
        for (size_t r = 0; r < rows; r++)
            memcpy(tmp + r * row_bytes, in + (((size_t)y_first + r) * in_w + left) * 3, row_bytes);
    }
    for (uint32_t yy = 0; yy < crop_h; yy++) {
        uint8_t *o = out + (size_t)yy * row_bytes;
        const int ymin = v.bounds[2 * yy] - y_first, ymax = v.bounds[2 * yy + 1];
        if (!need_v) {
            memcpy(o, tmp + (size_t)ymin * row_bytes, row_bytes);
            continue;
        }
        const int32_t *k = v.k + (size_t)yy * (size_t)v.ksize;
        for (size_t i = 0; i < row_bytes; i++) {
            int64_t ss = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < ymax; y++) ss += (int64_t)tmp[(size_t)(ymin + y) * row_bytes + i] * k[y];
            o[i] = clip8(ss);
        }
    }
    s = CRISP_OK;
done:
    axis_free(&h);
    axis_free(&v);
    free(tmp);
    return s;
}

void crisp_shorter_side_size(uint32_t w, uint32_t h, uint32_t side, uint32_t *out_w,
                             uint32_t *out_h) {
    const double scale = (double)side / (double)(w < h ? w : h);
    /* Python's round(): half to even, which nearbyint does in the default rounding mode. */
    const double nw = nearbyint((double)w * scale), nh = nearbyint((double)h * scale);
    *out_w = nw < side ? side : (uint32_t)nw;
    *out_h = nh < side ? side : (uint32_t)nh;
}

void crisp_normalize_rgb8(const crisp_preprocess *p, const uint8_t *pixels, float *out) {
    const size_t plane = (size_t)p->height * p->width;
    for (uint32_t c = 0; c < 3; c++) {
        const uint32_t from = p->channel_order == CRISP_CHANNELS_BGR ? 2 - c : c;
        const float mean = p->mean[c], std = p->std[c], scale = p->scale;
        float *o = out + c * plane;
        for (size_t i = 0; i < plane; i++) o[i] = ((float)pixels[3 * i + from] * scale - mean) / std;
    }
}
