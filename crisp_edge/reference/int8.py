"""A numpy executor of int8 ``.crisp`` graphs with exactly the spec's integer semantics.

docs/format.md "Int8 semantics" is implemented literally, so the Python side can test
quantisation numerics without the C runtime and cross-check the C kernels bit for bit:
int32 accumulation of (q_x − z_x)·q_w (computed exactly in float64), int32 bias
nearbyint(bias / (s_x·s_w[c])) in double, multiplier (float)(s_x·s_w[c]/s_y) computed in
double, and every rescale in float32 rounded half to even (``np.rint`` = ``nearbyintf``), then
clamped to the (activation-narrowed) int8 range in float (NaN gives the lower bound), as the
runtime's ``crisp_qs8_requantize``. Float ops (QUANTIZE's input side, DEQUANTIZE, SOFTMAX and
any float32 op) run in float32; non-int8 float ops go through ``crisp_edge.reference.fp32``.

>>> y = run_int8(read_model("model-int8.crisp").graph, images)     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from crisp_edge import format as fmt
from crisp_edge.errors import FormatError
from crisp_edge.reference.fp32 import WeightCache, eval_op

F32 = np.float32
Observer = Callable[[int, np.ndarray], None]


def requantize(scaled: np.ndarray, zero: int, lo: int, hi: int) -> np.ndarray:
    """int8 of clamp(zero + nearbyintf(scaled), lo, hi), in float32 (NaN → lo)."""
    v = F32(zero) + np.rint(scaled.astype(F32))
    v = np.where(v > F32(lo), v, F32(lo))
    v = np.where(v < F32(hi), v, F32(hi))
    return v.astype(np.int8)


def activation_range(act: int, value: fmt.Value) -> tuple[int, int]:
    """(lo, hi): (−128, 127) narrowed by relu (≥ z) or relu6 (≤ z + nearbyint(6/s))."""
    lo, hi = -128, 127
    if act == fmt.ACT_NONE:
        return lo, hi
    lo = value.zero_point
    if act == fmt.ACT_RELU6:
        six = float(np.rint(6.0 / float(F32(value.scale))))
        if six < 255.0 and value.zero_point + int(six) < hi:
            hi = value.zero_point + int(six)
    return lo, hi


def quantize(x: np.ndarray, scale: float, zero: int) -> np.ndarray:
    """QUANTIZE: q = clamp(z + nearbyintf(x / s), −128, 127)."""
    return requantize(x.astype(F32) / F32(scale), zero, -128, 127)


def dequantize(q: np.ndarray, scale: float, zero: int) -> np.ndarray:
    """DEQUANTIZE: y = s · (q − z) in float32."""
    return F32(scale) * (q.astype(np.int32) - zero).astype(F32)


def int32_bias(bias: np.ndarray | None, input_scale: float, weight_scales: np.ndarray
               ) -> np.ndarray:
    """The runtime's int32 bias: nearbyint(bias / (s_x·s_w[c])) in double."""
    if bias is None:
        return np.zeros(len(weight_scales), np.int64)
    sxw = np.float64(F32(input_scale)) * weight_scales.astype(np.float64)
    return np.rint(bias.astype(F32).astype(np.float64) / sxw).astype(np.int64)


def multipliers(input_scale: float, weight_scales: np.ndarray, output_scale: float) -> np.ndarray:
    """(float)(s_x·s_w[c]/s_y), computed in double."""
    sxw = np.float64(F32(input_scale)) * weight_scales.astype(np.float64)
    return (sxw / np.float64(F32(output_scale))).astype(F32)


def _taps(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, ho: int,
          wo: int) -> list[np.ndarray]:
    """Strided views (N, C, ho, wo) of an already padded (N, C, H, W) array, one per tap."""
    return [x[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
            for i in range(kh) for j in range(kw)]


def _pad(x: np.ndarray, top: int, left: int, bottom: int, right: int, fill: float) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (top, max(bottom, 0)), (left, max(right, 0))),
                  constant_values=fill)


def _accumulate(xz: np.ndarray, w: np.ndarray, op: fmt.Op, out_shape: tuple[int, ...]
                ) -> np.ndarray:
    """Σ (q_x − z_x)·q_w per output (N, Cout, Ho, Wo) or (N, Cout), exactly, as int64."""
    n = len(xz)
    if op.kind == fmt.OP_LINEAR:
        return np.rint(xz.reshape(n, -1).astype(np.float64) @ w.T.astype(np.float64)
                       ).astype(np.int64)
    kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups = op.params
    cout, ho, wo = out_shape
    padded = _pad(xz, pt, pl, pb, pr, 0)  # padding reads z_x: (z_x − z_x) = 0
    taps = np.stack(_taps(padded, kh, kw, sh, sw, dh, dw, ho, wo), axis=1)  # N, taps, C, ho, wo
    cin_g, cout_g = xz.shape[1] // groups, cout // groups
    acc = np.empty((n, cout, ho * wo), np.int64)
    for g in range(groups):
        cols = taps[:, :, g * cin_g:(g + 1) * cin_g].reshape(n, kh * kw * cin_g, ho * wo)
        wg = w[g * cout_g:(g + 1) * cout_g].astype(np.float64)
        acc[:, g * cout_g:(g + 1) * cout_g] = np.rint(np.matmul(wg, cols.astype(np.float64)))
    return acc.reshape(n, cout, ho, wo)


def _conv_linear(graph: fmt.Graph, op: fmt.Op, q: np.ndarray) -> np.ndarray:
    x, y = graph.values[op.inputs[0]], graph.values[op.output]
    assert op.weight is not None
    qw, sw = graph.tensors[op.weight].quantized()
    bias = None if op.bias is None else graph.tensors[op.bias].dense()
    acc = _accumulate(q.astype(np.int32) - x.zero_point, qw, op, y.shape)
    acc = acc + int32_bias(bias, x.scale, sw).reshape((1, -1) + (1,) * (acc.ndim - 2))
    mult = multipliers(x.scale, sw, y.scale).reshape((1, -1) + (1,) * (acc.ndim - 2))
    lo, hi = activation_range(op.activation, y)
    return requantize(acc.astype(np.int32).astype(F32) * mult, y.zero_point, lo, hi)


def _avg_pool(graph: fmt.Graph, op: fmt.Op, q: np.ndarray) -> np.ndarray:
    x, y = graph.values[op.inputs[0]], graph.values[op.output]
    c, h, w = x.shape
    _, ho, wo = y.shape
    n = len(q)
    if op.kind == fmt.OP_GLOBAL_AVG_POOL:
        sums = q.reshape(n, c, h * w).astype(np.int64).sum(axis=2)
        count = divisor = np.full((1, 1), h * w, np.int64)
    elif op.kind == fmt.OP_ADAPTIVE_AVG_POOL2D:
        oh, ow = op.params
        sums = np.empty((n, c, oh, ow), np.int64)
        count = np.empty((1, 1, oh, ow), np.int64)
        for i in range(oh):
            h0, h1 = i * h // oh, -(-(i + 1) * h // oh)
            for j in range(ow):
                w0, w1 = j * w // ow, -(-(j + 1) * w // ow)
                sums[:, :, i, j] = q[:, :, h0:h1, w0:w1].astype(np.int64).sum(axis=(2, 3))
                count[..., i, j] = (h1 - h0) * (w1 - w0)
        divisor = count
    else:
        kh, kw, sh, sw, ph, pw, _ceil, include_pad, override = op.params
        bottom, right = sh * (ho - 1) + kh - h - ph, sw * (wo - 1) + kw - w - pw
        padded = _pad(q.astype(np.int64), ph, pw, bottom, right, 0)
        inside = _pad(np.ones((1, 1, h, w), np.int64), ph, pw, bottom, right, 0)
        padded_area = np.zeros_like(inside)
        padded_area[:, :, :h + 2 * ph, :w + 2 * pw] = 1  # torch clips windows at input + pad
        def window_sum(a: np.ndarray) -> np.ndarray:
            return np.sum(_taps(a, kh, kw, sh, sw, 1, 1, ho, wo), axis=0)

        sums, count = window_sum(padded), window_sum(inside)
        divisor = np.full_like(count, override) if override else \
            window_sum(padded_area) if include_pad else count
    centred = (sums - count * x.zero_point).astype(np.int32).astype(F32)
    scaled = centred * F32(x.scale) / (divisor.astype(F32) * F32(y.scale))
    return requantize(scaled, y.zero_point, -128, 127).reshape(n, *y.shape)


def _max_pool(op: fmt.Op, q: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    kh, kw, sh, sw, ph, pw, dh, dw, _ceil = op.params
    _, h, w = q.shape[1:]
    _, ho, wo = out_shape
    bottom = sh * (ho - 1) + dh * (kh - 1) + 1 - h - ph
    right = sw * (wo - 1) + dw * (kw - 1) + 1 - w - pw
    padded = _pad(q.astype(np.int16), ph, pw, bottom, right, -1000)  # padding never wins
    best = np.maximum.reduce(_taps(padded, kh, kw, sh, sw, dh, dw, ho, wo))
    return np.maximum(best, -128).astype(np.int8)


def _clamp(op: fmt.Op, q: np.ndarray, value: fmt.Value) -> np.ndarray:
    act = fmt.ACT_RELU if op.kind == fmt.OP_RELU else fmt.ACT_RELU6
    lo, hi = activation_range(act, value)
    return np.clip(q, lo, hi).astype(np.int8)


def _add(graph: fmt.Graph, op: fmt.Op, qa: np.ndarray, qb: np.ndarray) -> np.ndarray:
    a, b, y = (graph.values[v] for v in (*op.inputs, op.output))
    real = F32(a.scale) * (qa.astype(np.int32) - a.zero_point).astype(F32) + \
        F32(b.scale) * (qb.astype(np.int32) - b.zero_point).astype(F32)
    lo, hi = activation_range(op.activation, y)
    return requantize(real / F32(y.scale), y.zero_point, lo, hi)


def eval_int8_op(graph: fmt.Graph, op: fmt.Op, xs: list[np.ndarray]) -> np.ndarray:
    """One op whose input is int8 (or QUANTIZE), on batched arrays."""
    y = graph.values[op.output]
    x = graph.values[op.inputs[0]]
    if op.kind == fmt.OP_QUANTIZE:
        return quantize(xs[0], y.scale, y.zero_point)
    if op.kind == fmt.OP_DEQUANTIZE:
        return dequantize(xs[0], x.scale, x.zero_point)
    if op.kind in (fmt.OP_CONV2D, fmt.OP_LINEAR):
        return _conv_linear(graph, op, xs[0])
    if op.kind == fmt.OP_ADD:
        return _add(graph, op, xs[0], xs[1])
    if op.kind in (fmt.OP_RELU, fmt.OP_RELU6):
        return _clamp(op, xs[0], y)
    if op.kind == fmt.OP_MAX_POOL2D:
        return _max_pool(op, xs[0], y.shape)
    if op.kind in (fmt.OP_AVG_POOL2D, fmt.OP_GLOBAL_AVG_POOL, fmt.OP_ADAPTIVE_AVG_POOL2D):
        return _avg_pool(graph, op, xs[0])
    if op.kind == fmt.OP_RESHAPE:
        return xs[0].reshape(len(xs[0]), *y.shape)
    raise FormatError(f"{op.name} has no int8 form (docs/format.md: float32 only)")


def execute(graph: fmt.Graph, x: np.ndarray, observer: Observer | None = None) -> np.ndarray:
    """Run ``graph`` (int8 and float32 ops) on a float32 batch ``x`` (N, *input shape); returns
    the output (float32, or int8 q when the output value is int8). ``observer(value_id, array)``
    sees the input and every op output."""
    weights = WeightCache(graph)
    env: dict[int, np.ndarray] = {graph.input_value: np.asarray(x, F32)}
    if observer is not None:
        observer(graph.input_value, env[graph.input_value])
    for i, op in enumerate(graph.ops):
        xs = [env[v] for v in op.inputs]
        if op.kind == fmt.OP_QUANTIZE or graph.values[op.inputs[0]].dtype == fmt.DTYPE_I8:
            y = eval_int8_op(graph, op, xs)
        else:
            with torch.no_grad():
                y = eval_op(graph, op, [torch.from_numpy(np.ascontiguousarray(a)) for a in xs],
                            weights).numpy()
        expected = (len(x), *graph.values[op.output].shape)
        if y.shape != expected:
            raise FormatError(f"GRPH: op {i} ({op.name}): computed shape {y.shape}, the "
                                  f"file says {expected}")
        env[op.output] = y
        if observer is not None:
            observer(op.output, y)
    return env[graph.output_value]


def run_int8(graph: fmt.Graph, x: np.ndarray) -> np.ndarray:
    """The graph's output on ``x``, float32 (N, *output shape)."""
    y = execute(graph, x)
    out = graph.values[graph.output_value]
    return dequantize(y, out.scale, out.zero_point) if out.dtype == fmt.DTYPE_I8 else y
