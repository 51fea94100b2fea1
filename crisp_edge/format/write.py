"""Writing a ``.crisp`` file: header, section table and 64-aligned sections (docs/format.md).
Writing to a path is not atomic; :func:`crisp_edge.packing.pack.pack` writes atomically."""

from __future__ import annotations

import json
import os
import struct
import zlib
from typing import BinaryIO, Sequence

import numpy as np

from crisp_edge.errors import FormatError
from crisp_edge.fileio import write_atomic
from crisp_edge.format import encoding as enc
from crisp_edge.format.records import Graph, Label, ModelFile, Preprocess, Saliency
from crisp_edge.format.spec import (_GRAPH, _HEADER, _LABEL, _LABEL_HEADER, _OP, _PREP, _SALIENCY,
                                    _SALIENCY_HEADER, _SECTION, _TENSOR, _VALUE, ALIGNMENT,
                                    DTYPE_I8, ENCODING_DENSE_F32, HEADER_SIZE, LABEL_RECORD_SIZE,
                                    MAGIC,
                                    MAX_LABEL_NAME_BYTES, NO_ID, NUM_PARAMS, OP_RECORD_SIZE,
                                    PREP_RECORD_SIZE, SECTION_PREP,
                                    SALIENCY_HEADER_SIZE, SALIENCY_RECORD_SIZE, SECTION_ENTRY_SIZE,
                                    SECTION_FLAG_REQUIRED, SECTION_GRPH, SECTION_LABL,
                                    SECTION_PROV, SECTION_SALY, SECTION_WGHT, TENSOR_RECORD_SIZE,
                                    VALUE_RECORD_SIZE, VERSION_MAJOR, VERSION_MINOR,
                                    VERSION_MINOR_BASE, OPS_1_2, ACTIVATIONS_1_2)

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
        # Float weights must be finite (the packer checks each source array, naming its
        # parameter; hybrid payloads are written as given, malformed ones included, for tests).
        if t.encoding == ENCODING_DENSE_F32:
            try:
                enc.check_finite(np.frombuffer(data, "<f4"))
            except ValueError as e:
                raise FormatError(f"GRPH: tensor {i}: {e}") from None
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


def _encode_preprocess(prep: Preprocess, graph: Graph) -> bytes:
    prep.check(graph.values[graph.input_value].shape)
    return _PREP.pack(PREP_RECORD_SIZE, prep.channels, prep.height, prep.width, prep.resize,
                      prep.resize_size, prep.channel_order, prep.scale, *prep.mean, *prep.std)


def encode_model(model: ModelFile) -> bytes:
    """The complete ``.crisp`` file for ``model``: header, section table, 64-aligned sections.

    Sections are written in the order GRPH, WGHT, LABL (if labels), PROV (if provenance),
    SALY (if saliency), PREP (if preprocess; checked against the graph input first)."""
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
    if model.preprocess is not None:
        sections.append((SECTION_PREP, 0, _encode_preprocess(model.preprocess, model.graph)))
    offset = _align(HEADER_SIZE + len(sections) * SECTION_ENTRY_SIZE)
    table, body = bytearray(), bytearray()
    for kind, flags, data in sections:
        table.extend(_SECTION.pack(kind, flags, offset, len(data), zlib.crc32(data), 0))
        body.extend(data + b"\0" * (_align(len(data)) - len(data)))
        offset += _align(len(data))
    table_end = HEADER_SIZE + len(table)
    table_padded = bytes(table) + b"\0" * (_align(table_end) - table_end)
    file_size = HEADER_SIZE + len(table_padded) + len(body)
    minor = VERSION_MINOR if any(op.kind in OPS_1_2 or op.activation in ACTIVATIONS_1_2
                                 for op in model.graph.ops) else VERSION_MINOR_BASE
    header = _HEADER.pack(MAGIC, VERSION_MAJOR, minor, HEADER_SIZE, file_size, HEADER_SIZE,
                          len(sections), SECTION_ENTRY_SIZE, 0, zlib.crc32(table), bytes(12), 0)
    header = header[:60] + struct.pack("<I", zlib.crc32(header[:60]))
    return header + table_padded + bytes(body)


def write_model(target: str | os.PathLike[str] | BinaryIO, model: ModelFile) -> int:
    """Write ``model`` to a path or a binary file object; returns the number of bytes written.

    A path is written atomically (:mod:`crisp_edge.fileio`)."""
    data = encode_model(model)
    if isinstance(target, (str, os.PathLike)):
        write_atomic(target, data)
    else:
        target.write(data)
    return len(data)
