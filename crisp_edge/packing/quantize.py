"""Int8 post-training quantisation of a float ``.crisp`` graph (docs/format.md, int8 semantics).

1. :func:`calibrate` runs the float graph (``crisp_edge.reference.fp32``) on a few calibration images
   and records every value's range (min/max, or a percentile to clip outliers).
2. :func:`quantize_graph` rewrites the graph: ``QUANTIZE`` after the float input, int8
   conv/linear (weights symmetric per output channel, ``DENSE_I8`` or ``HYBRID_I8``), add, pools,
   relu, reshape; ``DEQUANTIZE`` before ``SOFTMAX`` and at the output. Activations are asymmetric
   per tensor: scale and zero point from [min(lo, 0), max(hi, 0)]. ``MAX_POOL2D``, ``RESHAPE``,
   ``RELU`` and ``RELU6`` outputs carry their input's scale and zero point, as the spec requires.

``crisp_edge.reference.int8`` executes the result with exactly the spec's integer arithmetic.

>>> ranges = calibrate(graph, images)                                  # doctest: +SKIP
>>> qgraph = quantize_graph(graph, ranges, patterns={3: Pattern(2, 4, 16, 16)})  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from crisp_edge import format as fmt
from crisp_edge.errors import ArgumentError, UnsupportedOpError
from crisp_edge.format.pattern import Pattern
from crisp_edge.packing.patterns import encode_weight

INT32_MAX = 2**31 - 1
# Ops whose int8 output must carry the input's scale and zero point (docs/format.md).
SAME_QPARAMS = (fmt.OP_MAX_POOL2D, fmt.OP_RESHAPE, fmt.OP_RELU, fmt.OP_RELU6)
INT8_OPS = (fmt.OP_CONV2D, fmt.OP_LINEAR, fmt.OP_ADD, fmt.OP_RELU, fmt.OP_RELU6,
            fmt.OP_MAX_POOL2D, fmt.OP_AVG_POOL2D, fmt.OP_GLOBAL_AVG_POOL,
            fmt.OP_ADAPTIVE_AVG_POOL2D, fmt.OP_RESHAPE)
SAMPLES_PER_BATCH = 1 << 16  # per value, for percentile calibration


def _batches(images: Any, batch_size: int) -> Iterable[np.ndarray]:
    """Float32 batches from an array/tensor (N, ...) or an iterable of arrays/tensors or
    (images, labels) pairs (a DataLoader)."""
    import torch

    if isinstance(images, (np.ndarray, torch.Tensor)):
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            yield chunk.numpy() if isinstance(chunk, torch.Tensor) else chunk
        return
    for item in images:
        x = item[0] if isinstance(item, (tuple, list)) else item
        yield x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def calibrate(graph: fmt.Graph, images: Any, *, percentile: float | None = None,
              batch_size: int = 16, seed: int = 0) -> dict[int, tuple[float, float]]:
    """Per-value (lo, hi) ranges of the float ``graph`` over ``images``.

    ``percentile=None`` takes min/max; ``percentile=99.99`` takes the 0.01th and 99.99th
    percentiles of a random sample of each value's elements (clipping rare outliers)."""
    from crisp_edge.reference.fp32 import execute

    if percentile is not None and not 50.0 < percentile <= 100.0:
        raise ArgumentError(f"percentile must be in (50, 100], got {percentile}")
    lo: dict[int, float] = {}
    hi: dict[int, float] = {}
    samples: dict[int, list[np.ndarray]] = {}
    rng = np.random.default_rng(seed)

    def observe(value: int, tensor: Any) -> None:
        flat = tensor.detach().reshape(-1).numpy()
        lo[value] = min(lo.get(value, np.inf), float(flat.min()))
        hi[value] = max(hi.get(value, -np.inf), float(flat.max()))
        if percentile is not None:
            pick = flat if len(flat) <= SAMPLES_PER_BATCH else \
                rng.choice(flat, SAMPLES_PER_BATCH, replace=False)
            samples.setdefault(value, []).append(pick)

    seen = 0
    for batch in _batches(images, batch_size):
        if batch.dtype != np.float32 or tuple(batch.shape[1:]) != \
                graph.values[graph.input_value].shape:
            raise ArgumentError(f"calibration images must be float32 (N, "
                                f"{', '.join(map(str, graph.values[graph.input_value].shape))}), "
                                f"got {batch.dtype} {tuple(batch.shape)}")
        execute(graph, batch, observe)
        seen += len(batch)
    if seen == 0:
        raise ArgumentError("calibration needs at least one image")
    if percentile is None:
        return {v: (lo[v], hi[v]) for v in lo}
    out = {}
    for v, parts in samples.items():
        all_samples = np.concatenate(parts)
        out[v] = (float(np.percentile(all_samples, 100.0 - percentile)),
                  float(np.percentile(all_samples, percentile)))
    return out


def activation_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 (scale, zero_point) covering [min(lo, 0), max(hi, 0)]: scale =
    range/255 (float32, > 0), zero_point = −128 − nearbyint(lo/scale) clamped to −128 … 127."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ArgumentError(f"activation range ({lo}, {hi}) is not finite")
    scale = float(np.float32((hi - lo) / 255.0 if hi > lo else 1.0 / 255.0))
    if scale <= 0.0:  # a range below float32's resolution
        scale = float(np.finfo(np.float32).tiny)
    zero_point = int(np.clip(-128 - np.rint(lo / scale), -128, 127))
    return scale, zero_point


def bias_safe_scales(bias: np.ndarray | None, input_scale: float, k: int) -> np.ndarray | None:
    """Per-channel lower bounds for weight scales so the runtime's int32 bias
    nearbyint(bias / (s_x·s_w)) plus 255·Σ|q_w| (≤ 255·127·K) stays below 2^31 − 1; the C
    loader refuses a channel that could overflow."""
    if bias is None:
        return None
    room = INT32_MAX - 255 * 127 * k
    if room <= 0:
        raise ArgumentError(f"a layer with K = {k} inputs per output can overflow the int32 "
                            "accumulator in int8")
    return np.abs(np.asarray(bias, np.float64)) / (float(input_scale) * room * 0.5)


class _Builder:
    """Emits the int8 graph, converting each source value to int8 or float on demand."""

    def __init__(self, graph: fmt.Graph, ranges: Mapping[int, tuple[float, float]],
                 patterns: Mapping[int, Pattern | None]) -> None:
        self.src, self.ranges, self.patterns = graph, ranges, patterns
        self.out = fmt.Graph([fmt.Value(graph.values[graph.input_value].shape)], [], [], 0, 0)
        self.as_f32: dict[int, int] = {graph.input_value: 0}
        self.as_i8: dict[int, int] = {}
        self.tensor_map: dict[int, int] = {}

    def value(self, shape: tuple[int, ...], qparams: tuple[float, int] | None) -> int:
        if qparams is None:
            self.out.values.append(fmt.Value(shape))
        else:
            self.out.values.append(fmt.Value(shape, fmt.DTYPE_I8, *qparams))
        return len(self.out.values) - 1

    def qparams(self, src_value: int) -> tuple[float, int]:
        if src_value not in self.ranges:
            raise ArgumentError(f"no calibration range for value {src_value}")
        return activation_qparams(*self.ranges[src_value])

    def int8(self, v: int) -> int:
        if v not in self.as_i8:
            new = self.value(self.src.values[v].shape, self.qparams(v))
            self.out.ops.append(fmt.Op(fmt.OP_QUANTIZE, (self.as_f32[v],), new))
            self.as_i8[v] = new
        return self.as_i8[v]

    def float32(self, v: int) -> int:
        if v not in self.as_f32:
            new = self.value(self.src.values[v].shape, None)
            self.out.ops.append(fmt.Op(fmt.OP_DEQUANTIZE, (self.as_i8[v],), new))
            self.as_f32[v] = new
        return self.as_f32[v]

    def tensor(self, t: fmt.Tensor, source: int | None = None) -> int:
        self.out.tensors.append(t)
        if source is not None:
            self.tensor_map[source] = len(self.out.tensors) - 1
        return len(self.out.tensors) - 1

    def op(self, op: fmt.Op) -> None:
        shape = self.src.values[op.output].shape
        if op.kind not in INT8_OPS:
            inputs = tuple(self.float32(v) for v in op.inputs)
            weight = None if op.weight is None else \
                self.tensor(self.src.tensors[op.weight], op.weight)
            bias = None if op.bias is None else self.tensor(self.src.tensors[op.bias], op.bias)
            out = self.value(shape, None)
            self.out.ops.append(fmt.Op(op.kind, inputs, out, weight, bias, op.activation,
                                       op.params))
            self.as_f32[op.output] = out
            return
        inputs = tuple(self.int8(v) for v in op.inputs)
        x = self.out.values[inputs[0]]
        if op.kind in SAME_QPARAMS:
            qparams = (x.scale, x.zero_point)
        else:
            qparams = self.qparams(op.output)
        weight = bias = None
        if op.weight is not None:
            w = self.src.tensors[op.weight]
            b = None if op.bias is None else self.src.tensors[op.bias].dense()
            k = int(np.prod(w.dims[1:]))
            weight = self.tensor(encode_weight(w, self.patterns.get(op.weight), True,
                                               bias_safe_scales(b, x.scale, k)), op.weight)
        if op.bias is not None:
            bias = self.tensor(fmt.Tensor(np.ascontiguousarray(
                self.src.tensors[op.bias].dense(), np.float32)), op.bias)
        out = self.value(shape, qparams)
        self.out.ops.append(fmt.Op(op.kind, inputs, out, weight, bias, op.activation, op.params))
        self.as_i8[op.output] = out


def refuse_float_only_ops(graph: fmt.Graph, weight_params: Mapping[int, str] | None = None
                          ) -> None:
    """int8 packing refuses the 1.2 ops and activations (silu, sigmoid, hardswish,
    hardsigmoid, MUL_CHANNELS): the runtime has float32 kernels for them only, and a model
    built of them (EfficientNet, MobileNetV3) would be int8 in name only."""
    for i, op in enumerate(graph.ops):
        if op.kind in fmt.OPS_1_2 or op.activation in fmt.ACTIVATIONS_1_2:
            layer = (weight_params or {}).get(op.weight) if op.weight is not None else None
            what = op.name if op.activation == fmt.ACT_NONE else \
                f"{op.name} with a fused {fmt.ACTIVATION_NAMES[op.activation]}"
            raise UnsupportedOpError(
                f"int8: op {i} ({what}{f', layer {layer}' if layer else ''}) has no int8 kernel "
                "(silu, sigmoid, hardswish, hardsigmoid and the squeeze-excite product are "
                "float32 only); pack this model without --int8")


def quantize_graph(graph: fmt.Graph, ranges: Mapping[int, tuple[float, float]],
                   patterns: Mapping[int, Pattern | None] | None = None,
                   tensor_map: dict[int, int] | None = None) -> fmt.Graph:
    """The int8 version of the float ``graph`` (dense float32 weights) with activation
    ``ranges`` from :func:`calibrate`. ``patterns`` maps a weight tensor id to the layout its
    int8 version gets (absent or None: ``DENSE_I8``). Input and output stay float32.
    ``tensor_map`` (if given) receives old tensor id → new tensor id."""
    refuse_float_only_ops(graph)
    for i, t in enumerate(graph.tensors):
        if t.encoding != fmt.ENCODING_DENSE_F32:
            raise ArgumentError(f"tensor {i} is {t.encoding_name}; quantize the float graph "
                                "before encoding its weights")
    b = _Builder(graph, ranges, patterns or {})
    for op in graph.ops:
        b.op(op)
    b.out.output_value = b.float32(graph.output_value)
    if tensor_map is not None:
        tensor_map.update(b.tensor_map)
    return b.out
