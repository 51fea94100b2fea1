"""The records of a ``.crisp`` file in memory: values, tensors, ops, labels, saliency, the
graph and the model file, plus the MAC counts a graph implies."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from crisp_edge.errors import FormatError
from crisp_edge.format import encoding as enc
from crisp_edge.format.spec import (ACT_NONE, CHANNEL_ORDER_NAMES, CHANNELS_RGB, DTYPE_F32,
                                    ENCODING_DENSE_F32, ENCODING_DENSE_I8, ENCODING_HYBRID_F32,
                                    ENCODING_HYBRID_I8, ENCODING_NAMES, HYBRID_ENCODINGS,
                                    OP_CONV2D, OP_LINEAR, OP_NAMES, PARAM_NAMES,
                                    PREP_MAX_RESIZE_SIZE, RESIZE_NAMES, RESIZE_NONE,
                                    RESIZE_SHORTER_SIDE, VERSION_MAJOR, VERSION_MINOR,
                                    section_name)


@dataclass
class Value:
    """An activation: per-sample shape (no batch dim); int8 values carry scale and zero point
    (real = scale · (q − zero_point)), float32 values have scale 0 and zero point 0."""

    shape: tuple[int, ...]
    dtype: int = DTYPE_F32
    scale: float = 0.0
    zero_point: int = 0


@dataclass
class Tensor:
    """A constant. ``Tensor(float32 array)`` is ``DENSE_F32`` with ``data`` shaped ``dims`` (conv
    weights OHWI). Every other encoding keeps its payload bytes in ``data`` (uint8) and its
    logical dims in ``shape``; build one with :meth:`encoded`."""

    data: np.ndarray
    encoding: int = ENCODING_DENSE_F32
    offset: int = 0  # inside WGHT; assigned by the writer, reported by the reader
    shape: tuple[int, ...] | None = None

    @classmethod
    def encoded(cls, encoding: int, dims: Sequence[int], payload: bytes) -> "Tensor":
        """A tensor of ``encoding`` with logical ``dims`` and its payload bytes."""
        return cls(np.frombuffer(bytes(payload), np.uint8), encoding, 0,
                   tuple(int(d) for d in dims))

    @property
    def dims(self) -> tuple[int, ...]:
        if self.shape is not None:
            return self.shape
        return tuple(int(d) for d in self.data.shape)

    @property
    def encoding_name(self) -> str:
        return ENCODING_NAMES.get(self.encoding, f"encoding {self.encoding}")

    def payload(self) -> bytes:
        """The bytes stored in WGHT."""
        if self.encoding == ENCODING_DENSE_F32 and self.shape is None:
            return np.ascontiguousarray(self.data, dtype="<f4").tobytes()
        return np.ascontiguousarray(self.data, dtype=np.uint8).tobytes()

    def quantized(self) -> tuple[np.ndarray, np.ndarray]:
        """(q int8 (R, K), per-row scales float32) of a ``DENSE_I8``/``HYBRID_I8`` tensor."""
        if self.encoding == ENCODING_DENSE_I8:
            return enc.decode_dense_int8(self.payload(), self.dims)
        if self.encoding == ENCODING_HYBRID_I8:
            h = enc.parse_hybrid(self.payload(), self.dims, True)
            assert h.scales is not None
            return h.dense_q(), h.scales
        raise ValueError(f"a {self.encoding_name} tensor is not int8")

    def dense(self) -> np.ndarray:
        """The float32 values shaped ``dims`` (hybrid decoded, int8 dequantised: scale · q)."""
        if self.encoding == ENCODING_DENSE_F32:
            if self.shape is None:
                return np.asarray(self.data, dtype=np.float32)
            return np.frombuffer(self.payload(), "<f4").astype(np.float32).reshape(self.dims)
        if self.encoding == ENCODING_HYBRID_F32:
            return enc.decode_hybrid(self.payload(), self.dims, False).reshape(self.dims)
        q, scales = self.quantized()
        return (q.astype(np.float32) * scales[:, None]).astype(np.float32).reshape(self.dims)


@dataclass
class Op:
    """One op record. ``params`` holds the kind-specific integers (padded to 16 by the writer)."""

    kind: int
    inputs: tuple[int, ...]
    output: int
    weight: int | None = None
    bias: int | None = None
    activation: int = ACT_NONE
    params: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return OP_NAMES.get(self.kind, f"kind {self.kind}")

    def named_params(self) -> dict[str, int]:
        """The used params by their spec names (``{"kh": 3, ...}``)."""
        names = PARAM_NAMES.get(self.kind, ())
        padded = tuple(self.params) + (0,) * (len(names) - len(self.params))
        return dict(zip(names, padded))


@dataclass
class Label:
    """Output index → original class id and name."""

    class_id: int
    name: str


@dataclass
class Saliency:
    """One SALY record: Σ saliency per block per class of a block-pruned layer's weight tensor,
    float16 (classes, nbr, nbc), class order = the model's label order."""

    tensor: int
    name: str
    data: np.ndarray


def _f32(v: float) -> float:
    with np.errstate(over="ignore"):
        return float(np.float32(v))


def _g(v: float) -> str:
    """A float as C's %g prints it (the messages match the runtime's)."""
    return "nan" if math.isnan(v) else f"{v:g}"


@dataclass(frozen=True)
class Preprocess:
    """PREP: how an image becomes the graph input (docs/format.md, "PREP"). Input channel c is
    ``(p · scale − mean[c]) / std[c]``, p the 8-bit value of colour c (RGB) or 2 − c (BGR) of
    the image after ``resize`` (``RESIZE_NONE``: must already be width × height;
    ``RESIZE_SHORTER_SIDE``: bilinear to shorter side ``resize_size``, then the centre crop;
    ``RESIZE_STRETCH``: bilinear to width × height). Floats are rounded to float32 on creation,
    as the file stores them, so a record read back compares equal.
    :func:`crisp_edge.reference.preprocess.preprocess_image` is the executable spec."""

    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: int = RESIZE_NONE
    resize_size: int = 0
    channel_order: int = CHANNELS_RGB
    scale: float = 1 / 255
    channels: int = 3

    def __post_init__(self) -> None:
        for name in ("height", "width", "resize", "resize_size", "channel_order", "channels"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "scale", _f32(self.scale))
        for name in ("mean", "std"):
            values = tuple(_f32(v) for v in getattr(self, name))
            if len(values) != 3:
                raise FormatError(f"PREP: {name} has {len(values)} values, expected 3")
            object.__setattr__(self, name, values)

    @property
    def resize_name(self) -> str:
        return RESIZE_NAMES.get(self.resize, f"resize {self.resize}")

    @property
    def channel_order_name(self) -> str:
        return CHANNEL_ORDER_NAMES.get(self.channel_order, f"order {self.channel_order}")

    def problem(self, input_shape: Sequence[int]) -> str | None:
        """The first invalid field against a graph input of ``input_shape`` (the runtime's
        message, without the ``PREP: `` prefix), or None."""
        if self.channels != 3:
            return f"channels is {self.channels}, expected 3"
        shape = tuple(int(d) for d in input_shape)
        if len(shape) != 3 or shape[0] != 3:
            return f"the graph input has shape {shape}; images need a (3,H,W) input"
        if self.height != shape[1]:
            return f"height is {self.height}, expected {shape[1]} (the graph input's)"
        if self.width != shape[2]:
            return f"width is {self.width}, expected {shape[2]} (the graph input's)"
        if self.resize not in RESIZE_NAMES:
            return (f"resize is {self.resize}, expected 0 (none), 1 (shorter_side) or 2 "
                    "(stretch)")
        if self.resize == RESIZE_SHORTER_SIDE:
            least = max(self.height, self.width)
            if not least <= self.resize_size <= PREP_MAX_RESIZE_SIZE:
                return (f"resize_size is {self.resize_size}, expected {least}.."
                        f"{PREP_MAX_RESIZE_SIZE} with resize shorter_side")
        elif self.resize_size != 0:
            return f"resize_size is {self.resize_size}, expected 0 with resize {self.resize_name}"
        if self.channel_order not in CHANNEL_ORDER_NAMES:
            return f"channel_order is {self.channel_order}, expected 0 (RGB) or 1 (BGR)"
        if not (math.isfinite(self.scale) and self.scale > 0):
            return f"scale is {_g(self.scale)}, expected finite > 0"
        for i, v in enumerate(self.mean):
            if not math.isfinite(v):
                return f"mean[{i}] is {_g(v)}, expected finite"
        for i, v in enumerate(self.std):
            if not math.isfinite(v):
                return f"std[{i}] is {_g(v)}, expected finite > 0"
            if not v > 0:
                return f"std[{i}] is {_g(v)}, expected > 0"
        return None

    def check(self, input_shape: Sequence[int]) -> None:
        """Raise :class:`~crisp_edge.errors.FormatError` naming the first invalid field."""
        problem = self.problem(input_shape)
        if problem is not None:
            raise FormatError(f"PREP: {problem}")

    def describe(self) -> dict[str, Any]:
        """JSON-ready fields, policies by name."""
        return {"channels": self.channels, "height": self.height, "width": self.width,
                "resize": self.resize_name, "resize_size": self.resize_size,
                "channel_order": self.channel_order_name, "scale": self.scale,
                "mean": list(self.mean), "std": list(self.std)}


@dataclass
class Graph:
    values: list[Value]
    tensors: list[Tensor]
    ops: list[Op]
    input_value: int = 0
    output_value: int = 0


@dataclass
class Section:
    """A section table entry as found by the reader."""

    kind: int
    flags: int
    offset: int
    size: int
    crc32: int

    @property
    def name(self) -> str:
        return section_name(self.kind)


@dataclass
class ModelFile:
    """Everything a ``.crisp`` file holds. ``provenance`` is the parsed PROV JSON, ``saliency``
    the SALY records, ``preprocess`` the PREP record (None: section absent)."""

    graph: Graph
    labels: list[Label] | None = None
    provenance: dict | None = None
    saliency: list[Saliency] | None = None
    version: tuple[int, int] = (VERSION_MAJOR, VERSION_MINOR)
    file_size: int = 0
    sections: list[Section] = field(default_factory=list)
    preprocess: Preprocess | None = None



def op_macs(graph: Graph, op: Op) -> int:
    """Dense multiply-accumulates per sample of ``op`` (conv2d and linear; 0 for the others)."""
    if op.kind == OP_CONV2D and op.weight is not None:
        cout, kh, kw, cin_g = graph.tensors[op.weight].dims
        return int(np.prod(graph.values[op.output].shape)) * kh * kw * cin_g
    if op.kind == OP_LINEAR and op.weight is not None:
        cout, cin = graph.tensors[op.weight].dims
        return cout * cin
    return 0


def op_effective_macs(graph: Graph, op: Op) -> int:
    """Multiply-accumulates the runtime executes: a hybrid weight counts its stored values
    (kept blocks × N/M, padding zeros included) per output pixel; others as :func:`op_macs`."""
    if op.weight is None or graph.tensors[op.weight].encoding not in HYBRID_ENCODINGS:
        return op_macs(graph, op)
    t = graph.tensors[op.weight]
    stored = len(enc.parse_hybrid(t.payload(), t.dims, t.encoding == ENCODING_HYBRID_I8).values)
    if op.kind == OP_CONV2D:
        shape = graph.values[op.output].shape
        return stored * int(np.prod(shape[1:]))
    return stored
