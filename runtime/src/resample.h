/* Internal: Pillow-compatible bilinear resampling of 8-bit RGB images
 * (Image.resize(size, Image.BILINEAR) of Pillow's libImaging/Resample.c, the
 * 8-bit path), computing only a crop of the resized image, and the
 * normalisation into the model's input layout. */
#ifndef CRISP_RESAMPLE_H
#define CRISP_RESAMPLE_H

#include <stdint.h>

#include "crisp.h"

/* Resizes the in_w x in_h RGB image `in` (3 bytes per pixel, rows packed) to
 * out_w x out_h and writes the crop_w x crop_h pixels starting at (left, top)
 * of the result to `out` (3 bytes per pixel). Every pixel equals Pillow's
 * resize-then-crop; pixels outside the crop are never computed. The crop
 * must lie inside the resized image. Returns CRISP_OK or CRISP_ERR_NOMEM. */
crisp_status crisp_resample_rgb8(const uint8_t *in, uint32_t in_w, uint32_t in_h, uint32_t out_w,
                                 uint32_t out_h, uint32_t left, uint32_t top, uint32_t crop_w,
                                 uint32_t crop_h, uint8_t *out);

/* The resized size of a w x h image whose shorter side becomes `side`, as
 * crisp_edge.reference.preprocess does it: the other side is
 * round_half_even(other * side / shorter), at least `side`. */
void crisp_shorter_side_size(uint32_t w, uint32_t h, uint32_t side, uint32_t *out_w,
                             uint32_t *out_h);

/* pixels (height x width x 3 RGB bytes) into CHW floats:
 * out[c][y][x] = (p * scale - mean[c]) / std[c], p the channel c of the
 * model's channel order. */
void crisp_normalize_rgb8(const crisp_preprocess *p, const uint8_t *pixels, float *out);

#endif
