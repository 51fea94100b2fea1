"""The ``.crisp`` file, version 1.1: constants, records and writer (reader: ``format_read``).

This module mirrors ``docs/format.md`` field by field and, with ``crisp_edge.format_read`` and
the weight payload layouts of ``crisp_edge.encoding``, is the only place on the Python side that
knows the byte layout. ``encode_model``/``write_model`` produce a spec-exact file; ``read_model``
parses one (1.0 files too) and checks its structure (magic, version, CRCs, bounds, counts, value
quantisation fields, every tensor encoding's size and structure), raising
:class:`~crisp_edge.errors.FormatError`, :class:`~crisp_edge.errors.ChecksumError` or
:class:`~crisp_edge.errors.VersionError` with a message naming the section and field. Semantic
validation of the graph (shapes, params, dtypes per op) is the runtime's job.

>>> mf = read_model("model.crisp")                # doctest: +SKIP
>>> [OP_NAMES[op.kind] for op in mf.graph.ops]    # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Sequence

import numpy as np

from crisp_edge.errors import FormatError

MAGIC = b"\x89CRISP\r\n"
VERSION_MAJOR, VERSION_MINOR = 1, 1
ALIGNMENT = 64
HEADER_SIZE, SECTION_ENTRY_SIZE = 64, 32
GRAPH_HEADER_SIZE, VALUE_RECORD_SIZE, TENSOR_RECORD_SIZE, OP_RECORD_SIZE = 32, 48, 48, 96
VALUE_RECORD_SIZE_1_0 = 32  # 1.0 files: no quantisation fields, every value float32
LABEL_HEADER_SIZE, LABEL_RECORD_SIZE = 16, 16
SALIENCY_HEADER_SIZE, SALIENCY_RECORD_SIZE = 16, 32
MAX_SECTIONS, MAX_RECORDS, MAX_LABEL_NAME_BYTES = 64, 65536, 1024
NO_ID = 0xFFFFFFFF
NUM_PARAMS = 16


def _kind(tag: bytes) -> int:
    return int.from_bytes(tag, "little")


SECTION_GRPH, SECTION_WGHT = _kind(b"GRPH"), _kind(b"WGHT")
SECTION_LABL, SECTION_PROV = _kind(b"LABL"), _kind(b"PROV")
SECTION_SALY = _kind(b"SALY")
KNOWN_SECTIONS = (SECTION_GRPH, SECTION_WGHT, SECTION_LABL, SECTION_PROV, SECTION_SALY)
SECTION_FLAG_REQUIRED = 1


def section_name(kind: int) -> str:
    """The four-character name of a section kind (``0x48505247`` → ``"GRPH"``)."""
    raw = kind.to_bytes(4, "little")
    return raw.decode("ascii") if all(32 <= b < 127 for b in raw) else f"0x{kind:08x}"


DTYPE_F32, DTYPE_I8 = 1, 2
DTYPE_NAMES = {DTYPE_F32: "float32", DTYPE_I8: "int8"}
ENCODING_DENSE_F32, ENCODING_HYBRID_F32, ENCODING_DENSE_I8, ENCODING_HYBRID_I8 = 1, 2, 3, 4
ENCODING_NAMES = {ENCODING_DENSE_F32: "DENSE_F32", ENCODING_HYBRID_F32: "HYBRID_F32",
                  ENCODING_DENSE_I8: "DENSE_I8", ENCODING_HYBRID_I8: "HYBRID_I8"}
HYBRID_ENCODINGS = (ENCODING_HYBRID_F32, ENCODING_HYBRID_I8)
INT8_ENCODINGS = (ENCODING_DENSE_I8, ENCODING_HYBRID_I8)

OP_CONV2D, OP_LINEAR, OP_ADD, OP_RELU, OP_RELU6 = 1, 2, 3, 4, 5
OP_MAX_POOL2D, OP_AVG_POOL2D, OP_GLOBAL_AVG_POOL, OP_ADAPTIVE_AVG_POOL2D = 6, 7, 8, 9
OP_RESHAPE, OP_SOFTMAX, OP_QUANTIZE, OP_DEQUANTIZE = 10, 11, 12, 13
OP_NAMES = {
    OP_CONV2D: "CONV2D", OP_LINEAR: "LINEAR", OP_ADD: "ADD", OP_RELU: "RELU", OP_RELU6: "RELU6",
    OP_MAX_POOL2D: "MAX_POOL2D", OP_AVG_POOL2D: "AVG_POOL2D", OP_GLOBAL_AVG_POOL: "GLOBAL_AVG_POOL",
    OP_ADAPTIVE_AVG_POOL2D: "ADAPTIVE_AVG_POOL2D", OP_RESHAPE: "RESHAPE", OP_SOFTMAX: "SOFTMAX",
    OP_QUANTIZE: "QUANTIZE", OP_DEQUANTIZE: "DEQUANTIZE",
}

ACT_NONE, ACT_RELU, ACT_RELU6 = 0, 1, 2
ACTIVATION_NAMES = {ACT_NONE: "none", ACT_RELU: "relu", ACT_RELU6: "relu6"}

# Param indices, named as in docs/format.md.
CONV_KH, CONV_KW, CONV_STRIDE_H, CONV_STRIDE_W = 0, 1, 2, 3
CONV_PAD_TOP, CONV_PAD_LEFT, CONV_PAD_BOTTOM, CONV_PAD_RIGHT = 4, 5, 6, 7
CONV_DILATION_H, CONV_DILATION_W, CONV_GROUPS = 8, 9, 10
MAXPOOL_KH, MAXPOOL_KW, MAXPOOL_STRIDE_H, MAXPOOL_STRIDE_W, MAXPOOL_PAD_H, MAXPOOL_PAD_W = range(6)
MAXPOOL_DILATION_H, MAXPOOL_DILATION_W, MAXPOOL_CEIL_MODE = 6, 7, 8
AVGPOOL_KH, AVGPOOL_KW, AVGPOOL_STRIDE_H, AVGPOOL_STRIDE_W, AVGPOOL_PAD_H, AVGPOOL_PAD_W = range(6)
AVGPOOL_CEIL_MODE, AVGPOOL_COUNT_INCLUDE_PAD, AVGPOOL_DIVISOR_OVERRIDE = 6, 7, 8
ADAPTIVE_OH, ADAPTIVE_OW = 0, 1
SOFTMAX_AXIS = 0

PARAM_NAMES: dict[int, tuple[str, ...]] = {
    OP_CONV2D: ("kh", "kw", "stride_h", "stride_w", "pad_top", "pad_left", "pad_bottom",
                "pad_right", "dilation_h", "dilation_w", "groups"),
    OP_MAX_POOL2D: ("kh", "kw", "stride_h", "stride_w", "pad_h", "pad_w", "dilation_h",
                    "dilation_w", "ceil_mode"),
    OP_AVG_POOL2D: ("kh", "kw", "stride_h", "stride_w", "pad_h", "pad_w", "ceil_mode",
                    "count_include_pad", "divisor_override"),
    OP_ADAPTIVE_AVG_POOL2D: ("oh", "ow"),
    OP_SOFTMAX: ("axis",),
}

_HEADER = struct.Struct("<8sHHIQQIIII12sI")
_SECTION = struct.Struct("<IIQQII")
_GRAPH = struct.Struct("<8I")
_VALUE = struct.Struct("<II4IIIfi8x")
_TENSOR = struct.Struct("<II4IQQII")
_OP = struct.Struct("<8I16i")
_LABEL_HEADER = struct.Struct("<4I")
_LABEL = struct.Struct("<iIII")
_SALIENCY_HEADER = struct.Struct("<4I")
_SALIENCY = struct.Struct("<6IQ")
assert _HEADER.size == HEADER_SIZE and _SECTION.size == SECTION_ENTRY_SIZE
assert _VALUE.size == VALUE_RECORD_SIZE and _TENSOR.size == TENSOR_RECORD_SIZE
assert _OP.size == OP_RECORD_SIZE and _GRAPH.size == GRAPH_HEADER_SIZE
assert _SALIENCY.size == SALIENCY_RECORD_SIZE


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
        from crisp_edge import encoding as enc

        if self.encoding == ENCODING_DENSE_I8:
            return enc.decode_dense_int8(self.payload(), self.dims)
        if self.encoding == ENCODING_HYBRID_I8:
            h = enc.parse_hybrid(self.payload(), self.dims, True)
            assert h.scales is not None
            return h.dense_q(), h.scales
        raise ValueError(f"a {self.encoding_name} tensor is not int8")

    def dense(self) -> np.ndarray:
        """The float32 values shaped ``dims`` (hybrid decoded, int8 dequantised: scale · q)."""
        from crisp_edge import encoding as enc

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
    the SALY records (None: section absent)."""

    graph: Graph
    labels: list[Label] | None = None
    provenance: dict | None = None
    saliency: list[Saliency] | None = None
    version: tuple[int, int] = (VERSION_MAJOR, VERSION_MINOR)
    file_size: int = 0
    sections: list[Section] = field(default_factory=list)


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def _dims4(shape: Sequence[int], what: str) -> tuple[int, int, int, int]:
    if not 1 <= len(shape) <= 4:
        raise FormatError(f"{what}: rank {len(shape)} is outside 1 … 4")
    return tuple(int(d) for d in shape) + (0,) * (4 - len(shape))  # type: ignore[return-value]


def _opt(tensor_id: int | None) -> int:
    return NO_ID if tensor_id is None else tensor_id


def _encode_graph(graph: Graph) -> tuple[bytes, bytes]:
    """GRPH and WGHT section bytes; assigns each tensor's offset inside WGHT."""
    out = [_GRAPH.pack(len(graph.values), VALUE_RECORD_SIZE, len(graph.tensors), TENSOR_RECORD_SIZE,
                       len(graph.ops), OP_RECORD_SIZE, graph.input_value, graph.output_value)]
    for i, v in enumerate(graph.values):
        quantized = v.dtype == DTYPE_I8
        out.append(_VALUE.pack(v.dtype, len(v.shape), *_dims4(v.shape, f"GRPH: value {i}"), 0, 0,
                               float(v.scale) if quantized else 0.0,
                               int(v.zero_point) if quantized else 0))
    weights = bytearray()
    for i, t in enumerate(graph.tensors):
        data = t.payload()
        weights.extend(b"\0" * (_align(len(weights)) - len(weights)))
        t.offset = len(weights)
        weights.extend(data)
        out.append(_TENSOR.pack(t.encoding, len(t.dims), *_dims4(t.dims, f"GRPH: tensor {i}"),
                                t.offset, len(data), 0, 0))
    for i, op in enumerate(graph.ops):
        if len(op.params) > NUM_PARAMS or not 1 <= len(op.inputs) <= 2:
            raise FormatError(f"GRPH: op {i} ({op.name}): {len(op.inputs)} inputs, "
                              f"{len(op.params)} params")
        inputs = tuple(op.inputs) + (NO_ID,) * (2 - len(op.inputs))
        params = tuple(op.params) + (0,) * (NUM_PARAMS - len(op.params))
        out.append(_OP.pack(op.kind, op.activation, len(op.inputs), *inputs, op.output,
                            _opt(op.weight), _opt(op.bias), *params))
    return b"".join(out), bytes(weights)


def _encode_labels(labels: Sequence[Label]) -> bytes:
    records, strings = [], bytearray()
    for i, label in enumerate(labels):
        name = label.name.encode("utf-8")
        if len(name) > MAX_LABEL_NAME_BYTES or b"\0" in name:
            raise FormatError(f"LABL: label {i}: name is longer than {MAX_LABEL_NAME_BYTES} "
                              "bytes or contains NUL")
        records.append(_LABEL.pack(label.class_id, len(strings), len(name), 0))
        strings.extend(name)
    head = _LABEL_HEADER.pack(len(labels), LABEL_RECORD_SIZE, len(strings), 0)
    return head + b"".join(records) + bytes(strings)


def _encode_saliency(records: Sequence[Saliency], tensor_count: int) -> bytes:
    head_size = SALIENCY_HEADER_SIZE + len(records) * SALIENCY_RECORD_SIZE
    names = [r.name.encode("utf-8") for r in records]
    string_bytes = sum(len(n) for n in names)
    at = head_size + string_bytes + (head_size + string_bytes) % 2  # f16 data on an even offset
    out, name_at, data = [_SALIENCY_HEADER.pack(len(records), SALIENCY_RECORD_SIZE,
                                                string_bytes, 0)], 0, []
    for i, (r, name) in enumerate(zip(records, names)):
        arr = np.ascontiguousarray(r.data, dtype="<f2")
        if arr.ndim != 3 or not 0 <= r.tensor < tensor_count:
            raise FormatError(f"SALY: record {i} ({r.name}): data must be (classes, nbr, nbc) "
                              f"and tensor {r.tensor} an id below {tensor_count}")
        out.append(_SALIENCY.pack(r.tensor, *arr.shape, name_at, len(name), at))
        name_at += len(name)
        data.append(arr.tobytes())
        at += arr.nbytes
    out += names
    out.append(b"\0" * ((head_size + string_bytes) % 2))
    return b"".join(out + data)


def encode_model(model: ModelFile) -> bytes:
    """The complete ``.crisp`` file for ``model``: header, section table, 64-aligned sections.

    Sections are written in the order GRPH, WGHT, LABL (if labels), PROV (if provenance),
    SALY (if saliency)."""
    grph, wght = _encode_graph(model.graph)
    sections: list[tuple[int, int, bytes]] = [
        (SECTION_GRPH, SECTION_FLAG_REQUIRED, grph), (SECTION_WGHT, SECTION_FLAG_REQUIRED, wght)]
    if model.labels is not None:
        sections.append((SECTION_LABL, 0, _encode_labels(model.labels)))
    if model.provenance is not None:
        prov = json.dumps(model.provenance, sort_keys=True, ensure_ascii=False).encode("utf-8")
        sections.append((SECTION_PROV, 0, prov))
    if model.saliency is not None:
        sections.append((SECTION_SALY, 0, _encode_saliency(model.saliency,
                                                           len(model.graph.tensors))))
    offset = _align(HEADER_SIZE + len(sections) * SECTION_ENTRY_SIZE)
    table, body = bytearray(), bytearray()
    for kind, flags, data in sections:
        table.extend(_SECTION.pack(kind, flags, offset, len(data), zlib.crc32(data), 0))
        body.extend(data + b"\0" * (_align(len(data)) - len(data)))
        offset += _align(len(data))
    table_end = HEADER_SIZE + len(table)
    table_padded = bytes(table) + b"\0" * (_align(table_end) - table_end)
    file_size = HEADER_SIZE + len(table_padded) + len(body)
    header = _HEADER.pack(MAGIC, VERSION_MAJOR, VERSION_MINOR, HEADER_SIZE, file_size, HEADER_SIZE,
                          len(sections), SECTION_ENTRY_SIZE, 0, zlib.crc32(table), bytes(12), 0)
    header = header[:60] + struct.pack("<I", zlib.crc32(header[:60]))
    return header + table_padded + bytes(body)


def write_model(target: str | os.PathLike[str] | BinaryIO, model: ModelFile) -> int:
    """Write ``model`` to a path or a binary file object; returns the number of bytes written.

    Writing to a path is not atomic; ``crisp_edge.pack`` writes atomically."""
    data = encode_model(model)
    if isinstance(target, (str, os.PathLike)):
        with open(target, "wb") as f:
            f.write(data)
    else:
        target.write(data)
    return len(data)


def decode_model(data: bytes) -> ModelFile:
    """Parse ``.crisp`` bytes; raises FormatError/ChecksumError/VersionError naming the field."""
    from crisp_edge.format_read import decode

    return decode(data)


def read_model(path: str | os.PathLike[str]) -> ModelFile:
    """Read and structurally check the ``.crisp`` file at ``path``."""
    with open(path, "rb") as f:
        return decode_model(f.read())


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
    from crisp_edge import encoding as enc

    t = graph.tensors[op.weight]
    stored = len(enc.parse_hybrid(t.payload(), t.dims, t.encoding == ENCODING_HYBRID_I8).values)
    if op.kind == OP_CONV2D:
        shape = graph.values[op.output].shape
        return stored * int(np.prod(shape[1:]))
    return stored
