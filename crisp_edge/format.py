"""The ``.crisp`` file, version 1.0: constants, records, writer and reader.

This module mirrors ``docs/format.md`` field by field and is the only place on the Python side
that knows the byte layout. ``encode_model``/``write_model`` produce a spec-exact file;
``read_model`` parses one and checks its structure (magic, version, CRCs, bounds, counts), raising
:class:`~crisp_edge.errors.FormatError`, :class:`~crisp_edge.errors.ChecksumError` or
:class:`~crisp_edge.errors.VersionError` with a message naming the section and field. Semantic
validation of the graph (shapes, params) is the runtime's job.

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

from crisp_edge.errors import ChecksumError, FormatError, VersionError

MAGIC = b"\x89CRISP\r\n"
VERSION_MAJOR, VERSION_MINOR = 1, 0
ALIGNMENT = 64
HEADER_SIZE, SECTION_ENTRY_SIZE = 64, 32
GRAPH_HEADER_SIZE, VALUE_RECORD_SIZE, TENSOR_RECORD_SIZE, OP_RECORD_SIZE = 32, 32, 48, 96
LABEL_HEADER_SIZE, LABEL_RECORD_SIZE = 16, 16
MAX_SECTIONS, MAX_RECORDS, MAX_LABEL_NAME_BYTES = 64, 65536, 1024
NO_ID = 0xFFFFFFFF
NUM_PARAMS = 16


def _kind(tag: bytes) -> int:
    return int.from_bytes(tag, "little")


SECTION_GRPH, SECTION_WGHT = _kind(b"GRPH"), _kind(b"WGHT")
SECTION_LABL, SECTION_PROV = _kind(b"LABL"), _kind(b"PROV")
SECTION_FLAG_REQUIRED = 1


def section_name(kind: int) -> str:
    """The four-character name of a section kind (``0x48505247`` → ``"GRPH"``)."""
    raw = kind.to_bytes(4, "little")
    return raw.decode("ascii") if all(32 <= b < 127 for b in raw) else f"0x{kind:08x}"


DTYPE_F32 = 1
ENCODING_DENSE_F32 = 1

OP_CONV2D, OP_LINEAR, OP_ADD, OP_RELU, OP_RELU6 = 1, 2, 3, 4, 5
OP_MAX_POOL2D, OP_AVG_POOL2D, OP_GLOBAL_AVG_POOL, OP_ADAPTIVE_AVG_POOL2D = 6, 7, 8, 9
OP_RESHAPE, OP_SOFTMAX = 10, 11
OP_NAMES = {
    OP_CONV2D: "CONV2D", OP_LINEAR: "LINEAR", OP_ADD: "ADD", OP_RELU: "RELU", OP_RELU6: "RELU6",
    OP_MAX_POOL2D: "MAX_POOL2D", OP_AVG_POOL2D: "AVG_POOL2D", OP_GLOBAL_AVG_POOL: "GLOBAL_AVG_POOL",
    OP_ADAPTIVE_AVG_POOL2D: "ADAPTIVE_AVG_POOL2D", OP_RESHAPE: "RESHAPE", OP_SOFTMAX: "SOFTMAX",
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
_VALUE = struct.Struct("<II4III")
_TENSOR = struct.Struct("<II4IQQII")
_OP = struct.Struct("<8I16i")
_LABEL_HEADER = struct.Struct("<4I")
_LABEL = struct.Struct("<iIII")
assert _HEADER.size == HEADER_SIZE and _SECTION.size == SECTION_ENTRY_SIZE
assert _VALUE.size == VALUE_RECORD_SIZE and _TENSOR.size == TENSOR_RECORD_SIZE
assert _OP.size == OP_RECORD_SIZE and _GRAPH.size == GRAPH_HEADER_SIZE


@dataclass
class Value:
    """An activation: per-sample shape (no batch dim), float32."""

    shape: tuple[int, ...]
    dtype: int = DTYPE_F32


@dataclass
class Tensor:
    """A constant: row-major float32 ``data`` of shape ``dims`` (conv weights OHWI)."""

    data: np.ndarray
    encoding: int = ENCODING_DENSE_F32
    offset: int = 0  # inside WGHT; assigned by the writer, reported by the reader

    @property
    def dims(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.data.shape)


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
    """Everything a ``.crisp`` file holds. ``provenance`` is the parsed PROV JSON (None: absent)."""

    graph: Graph
    labels: list[Label] | None = None
    provenance: dict | None = None
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
        out.append(_VALUE.pack(v.dtype, len(v.shape), *_dims4(v.shape, f"GRPH: value {i}"), 0, 0))
    weights = bytearray()
    for i, t in enumerate(graph.tensors):
        data = np.ascontiguousarray(t.data, dtype="<f4").tobytes()
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


def encode_model(model: ModelFile) -> bytes:
    """The complete ``.crisp`` file for ``model``: header, section table, 64-aligned sections.

    Sections are written in the order GRPH, WGHT, LABL (if labels), PROV (if provenance)."""
    grph, wght = _encode_graph(model.graph)
    sections: list[tuple[int, int, bytes]] = [
        (SECTION_GRPH, SECTION_FLAG_REQUIRED, grph), (SECTION_WGHT, SECTION_FLAG_REQUIRED, wght)]
    if model.labels is not None:
        sections.append((SECTION_LABL, 0, _encode_labels(model.labels)))
    if model.provenance is not None:
        prov = json.dumps(model.provenance, sort_keys=True, ensure_ascii=False).encode("utf-8")
        sections.append((SECTION_PROV, 0, prov))
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


def _u32s(data: bytes, offset: int, count: int) -> tuple[int, ...]:
    return struct.unpack_from(f"<{count}I", data, offset)


def _read_sections(data: bytes) -> tuple[int, int, list[Section]]:
    magic = bytes(data[:len(MAGIC)])
    if magic != MAGIC[:len(magic)]:
        raise FormatError(f"not a .crisp file: bad magic {magic!r}, expected {MAGIC!r} "
                          "(or the file was mangled by a text-mode transfer)")
    if len(data) < HEADER_SIZE:
        raise FormatError(f"header: file is {len(data)} bytes, shorter than the {HEADER_SIZE}-byte "
                          "header (truncated?)")
    (_, major, minor, header_size, file_size, table_offset, count, entry_size, _flags,
     table_crc, _reserved, header_crc) = _HEADER.unpack_from(data, 0)
    if major != VERSION_MAJOR:
        newer = major > VERSION_MAJOR
        raise VersionError(f"header: format version {major}.{minor} is "
                           f"{'newer' if newer else 'older'} than this crisp-edge reads "
                           f"({VERSION_MAJOR}.x); " + ("upgrade crisp-edge" if newer else
                                                      "re-pack the model with this crisp-edge"))
    if zlib.crc32(data[:60]) != header_crc:
        raise ChecksumError(f"header: CRC32 mismatch (stored 0x{header_crc:08x}, computed "
                            f"0x{zlib.crc32(data[:60]):08x}): the file is corrupt")
    if header_size != HEADER_SIZE:
        raise FormatError(f"header: header_size is {header_size}, expected {HEADER_SIZE}")
    if file_size != len(data):
        raise FormatError(f"header: file is {len(data)} bytes but header says {file_size} ("
                          + ("truncated?)" if len(data) < file_size else "extra bytes appended?)"))
    if _flags != 0:
        raise FormatError(f"header: flags are 0x{_flags:08X}, expected 0")
    if not 1 <= count <= MAX_SECTIONS or entry_size < SECTION_ENTRY_SIZE:
        raise FormatError(f"header: section_count {count} / section_entry_size {entry_size} "
                          f"out of range (1 … {MAX_SECTIONS} / ≥ {SECTION_ENTRY_SIZE})")
    table_end = table_offset + count * entry_size
    if table_offset != HEADER_SIZE or table_end > len(data):
        raise FormatError(f"header: section table at {table_offset} (+{count * entry_size} bytes) "
                          f"lies outside the {len(data)}-byte file")
    if zlib.crc32(data[table_offset:table_end]) != table_crc:
        raise ChecksumError(f"section table: CRC32 mismatch (stored 0x{table_crc:08x}, computed "
                            f"0x{zlib.crc32(data[table_offset:table_end]):08x}): the file is "
                            "corrupt")
    sections: list[Section] = []
    for i in range(count):
        kind, flags, off, size, crc, _ = _SECTION.unpack_from(data, table_offset + i * entry_size)
        s = Section(kind, flags, off, size, crc)
        where = f"section table: entry {i} ({s.name})"
        if off % ALIGNMENT or off < table_end or off + size > len(data):
            raise FormatError(f"{where}: offset {off} size {size} is unaligned or outside "
                              f"{table_end} … {len(data)}")
        for other in sections:
            if other.kind == kind:
                raise FormatError(f"{where}: kind appears twice")
            if off < other.offset + other.size and other.offset < off + size:
                raise FormatError(f"{where}: overlaps section {other.name}")
        if zlib.crc32(data[off:off + size]) != crc:
            raise ChecksumError(f"section {s.name}: CRC32 mismatch (stored 0x{crc:08x}, computed "
                                f"0x{zlib.crc32(data[off:off + size]):08x}): the file is corrupt")
        if kind not in (SECTION_GRPH, SECTION_WGHT, SECTION_LABL, SECTION_PROV) and \
                flags & SECTION_FLAG_REQUIRED:
            raise VersionError(f"{s.name}: a required section this crisp-edge does not know; "
                               "the file needs a newer crisp-edge")
        sections.append(s)
    return major, minor, sections


def _read_graph(grph: bytes, wght: bytes) -> Graph:
    if len(grph) < GRAPH_HEADER_SIZE:
        raise FormatError(f"GRPH: size {len(grph)} is smaller than the graph header")
    nv, vsize, nt, tsize, no, osize, input_value, output_value = _GRAPH.unpack_from(grph, 0)
    if not (1 <= nv <= MAX_RECORDS and nt <= MAX_RECORDS and 1 <= no <= MAX_RECORDS):
        raise FormatError(f"GRPH: counts out of range: {nv} values, {nt} tensors, {no} ops")
    if vsize < VALUE_RECORD_SIZE or tsize < TENSOR_RECORD_SIZE or osize < OP_RECORD_SIZE:
        raise FormatError(f"GRPH: record sizes {vsize}/{tsize}/{osize} are smaller than "
                          f"{VALUE_RECORD_SIZE}/{TENSOR_RECORD_SIZE}/{OP_RECORD_SIZE}")
    need = GRAPH_HEADER_SIZE + nv * vsize + nt * tsize + no * osize
    if len(grph) < need:
        raise FormatError(f"GRPH: size {len(grph)} is smaller than the {need} bytes its "
                          "counts need")
    if input_value >= nv or output_value >= nv:
        raise FormatError(f"GRPH: input_value {input_value} / output_value {output_value} "
                          f"not below value_count {nv}")
    pos = GRAPH_HEADER_SIZE
    values = []
    for i in range(nv):
        dtype, rank, *dims = _u32s(grph, pos + i * vsize, 6)
        if not 1 <= rank <= 4 or any(d < 1 for d in dims[:rank]):
            raise FormatError(f"GRPH: value {i}: rank {rank} dims {tuple(dims)} invalid")
        values.append(Value(tuple(dims[:rank]), dtype))
    pos += nv * vsize
    tensors = []
    for i in range(nt):
        enc, rank, d0, d1, d2, d3, off, size, _, _ = _TENSOR.unpack_from(grph, pos + i * tsize)
        dims = (d0, d1, d2, d3)[:rank] if 1 <= rank <= 4 else ()
        where = f"GRPH: tensor {i}"
        if not dims or any(d < 1 for d in dims):
            raise FormatError(f"{where}: rank {rank} dims {(d0, d1, d2, d3)} invalid")
        if enc != ENCODING_DENSE_F32:
            raise VersionError(f"{where}: encoding {enc} is unknown; the file needs a newer "
                               "crisp-edge")
        if size != 4 * int(np.prod(dims)) or off % ALIGNMENT or off + size > len(wght):
            raise FormatError(f"{where}: offset {off} size {size} does not fit dims {dims} inside "
                              f"the {len(wght)}-byte WGHT section")
        data = np.frombuffer(wght, dtype="<f4", count=size // 4, offset=off).reshape(dims)
        tensors.append(Tensor(data, enc, off))
    pos += nt * tsize
    ops = []
    for i in range(no):
        kind, act, n_in, in0, in1, out, w, b, *params = _OP.unpack_from(grph, pos + i * osize)
        if kind not in OP_NAMES or act not in ACTIVATION_NAMES or n_in not in (1, 2):
            raise FormatError(f"GRPH: op {i}: kind {kind} / activation {act} / input_count {n_in} "
                              "invalid")
        inputs = (in0, in1)[:n_in]
        if any(v >= nv for v in inputs) or out >= nv or \
                any(t != NO_ID and t >= nt for t in (w, b)):
            raise FormatError(f"GRPH: op {i} ({OP_NAMES[kind]}): a value or tensor id is out of "
                              "range")
        names = PARAM_NAMES.get(kind, ())
        ops.append(Op(kind, inputs, out, None if w == NO_ID else w, None if b == NO_ID else b, act,
                      tuple(params[:len(names)])))
    return Graph(values, tensors, ops, input_value, output_value)


def _read_labels(labl: bytes) -> list[Label]:
    if len(labl) < LABEL_HEADER_SIZE:
        raise FormatError(f"LABL: size {len(labl)} is smaller than the label header")
    count, rsize, string_bytes, _ = _LABEL_HEADER.unpack_from(labl, 0)
    strings_at = LABEL_HEADER_SIZE + count * rsize
    if rsize < LABEL_RECORD_SIZE or strings_at + string_bytes > len(labl):
        raise FormatError(f"LABL: {count} records of {rsize} bytes and {string_bytes} string bytes "
                          f"do not fit the {len(labl)}-byte section")
    labels = []
    for i in range(count):
        class_id, off, length, _ = _LABEL.unpack_from(labl, LABEL_HEADER_SIZE + i * rsize)
        if off + length > string_bytes or length > MAX_LABEL_NAME_BYTES:
            raise FormatError(f"LABL: label {i}: name_offset {off} name_length {length} out of "
                              "bounds")
        raw = labl[strings_at + off:strings_at + off + length]
        try:
            labels.append(Label(class_id, raw.decode("utf-8")))
        except UnicodeDecodeError as e:
            raise FormatError(f"LABL: label {i}: name is not UTF-8 ({e})") from None
    return labels


def decode_model(data: bytes) -> ModelFile:
    """Parse ``.crisp`` bytes; raises FormatError/ChecksumError/VersionError naming the field."""
    major, minor, sections = _read_sections(data)
    by_kind = {s.kind: data[s.offset:s.offset + s.size] for s in sections}
    for kind in (SECTION_GRPH, SECTION_WGHT):
        if kind not in by_kind:
            raise FormatError(f"section table: required section {section_name(kind)} is missing")
    graph = _read_graph(by_kind[SECTION_GRPH], by_kind[SECTION_WGHT])
    labels = _read_labels(by_kind[SECTION_LABL]) if SECTION_LABL in by_kind else None
    provenance = None
    if SECTION_PROV in by_kind:
        try:
            provenance = json.loads(by_kind[SECTION_PROV].decode("utf-8")) \
                if by_kind[SECTION_PROV] else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FormatError(f"PROV: not UTF-8 JSON ({e})") from None
    return ModelFile(graph, labels, provenance, (major, minor), len(data), sections)


def read_model(path: str | os.PathLike[str]) -> ModelFile:
    """Read and structurally check the ``.crisp`` file at ``path``."""
    with open(path, "rb") as f:
        return decode_model(f.read())


def op_macs(graph: Graph, op: Op) -> int:
    """Multiply-accumulates per sample of ``op`` (conv2d and linear; 0 for the others)."""
    if op.kind == OP_CONV2D and op.weight is not None:
        cout, kh, kw, cin_g = graph.tensors[op.weight].dims
        return int(np.prod(graph.values[op.output].shape)) * kh * kw * cin_g
    if op.kind == OP_LINEAR and op.weight is not None:
        cout, cin = graph.tensors[op.weight].dims
        return cout * cin
    return 0
