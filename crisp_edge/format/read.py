"""Reader of ``.crisp`` files (1.0, 1.1 and 1.2): the structural checks of docs/format.md.

``crisp_edge.format.decode_model``/``read_model`` call :func:`decode`. Every failure raises
:class:`~crisp_edge.errors.FormatError` (or its ChecksumError subclass) or
:class:`~crisp_edge.errors.VersionError` with a message naming the section, record and field,
e.g. ``GRPH: tensor 3 (HYBRID_F32): block_col[7] = 9 is not below nbc = 4``.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib

import numpy as np

from crisp_edge.errors import ChecksumError, FormatError, MemoryLimitError, VersionError
from crisp_edge.format import encoding as enc
from crisp_edge.format.records import (
    Graph, Label, ModelFile, Op, Preprocess, Saliency, Section, Tensor, Value)
from crisp_edge.format.spec import (
    _GRAPH, _HEADER, _LABEL, _LABEL_HEADER, _OP, _PREP, _SALIENCY, _SALIENCY_HEADER, _SECTION,
    _TENSOR,
    ACTIVATION_NAMES, ALIGNMENT, DTYPE_F32, DTYPE_I8, ENCODING_DENSE_F32, ENCODING_DENSE_I8,
    ENCODING_HYBRID_F32, ENCODING_HYBRID_I8, ENCODING_NAMES, GRAPH_HEADER_SIZE, HEADER_SIZE, KNOWN_SECTIONS,
    LABEL_HEADER_SIZE, LABEL_RECORD_SIZE, MAGIC, MAX_LABEL_NAME_BYTES, MAX_RECORDS,
    MAX_SECTIONS, NO_ID, OP_NAMES, OP_RECORD_SIZE, PARAM_NAMES, PREP_RECORD_SIZE,
    SALIENCY_HEADER_SIZE, SECTION_PREP,
    SALIENCY_RECORD_SIZE, SECTION_ENTRY_SIZE, SECTION_FLAG_REQUIRED, SECTION_GRPH, SECTION_LABL,
    SECTION_PROV, SECTION_SALY, SECTION_WGHT, TENSOR_RECORD_SIZE, VALUE_RECORD_SIZE,
    VALUE_RECORD_SIZE_1_0, VERSION_MAJOR, VERSION_MINOR, section_name)

_VALUE_PREFIX = struct.Struct("<6I")
_VALUE_QUANT = struct.Struct("<fi")
MAX_VALUE_ELEMENTS = 1 << 28


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
        if kind not in KNOWN_SECTIONS and flags & SECTION_FLAG_REQUIRED:
            raise VersionError(f"{s.name}: a required section this crisp-edge does not know; "
                               "the file needs a newer crisp-edge")
        sections.append(s)
    return major, minor, sections


def _read_values(grph: bytes, pos: int, count: int, size: int) -> list[Value]:
    values = []
    for i in range(count):
        at = pos + i * size
        dtype, rank, *dims = _VALUE_PREFIX.unpack_from(grph, at)
        where = f"GRPH: value {i}"
        if not 1 <= rank <= 4 or any(d < 1 for d in dims[:rank]):
            raise FormatError(f"{where}: rank {rank} dims {tuple(dims)} invalid")
        if math.prod(dims[:rank]) > MAX_VALUE_ELEMENTS:
            raise FormatError(f"{where}: dims {tuple(dims[:rank])} exceed 2^28 elements")
        scale, zero_point = _VALUE_QUANT.unpack_from(grph, at + 32) if \
            size >= VALUE_RECORD_SIZE else (0.0, 0)
        if dtype == DTYPE_I8 and size >= VALUE_RECORD_SIZE:
            if not (math.isfinite(scale) and scale > 0):
                raise FormatError(f"{where} (int8): scale {scale!r} is not positive and finite")
            if not -128 <= zero_point <= 127:
                raise FormatError(f"{where} (int8): zero_point {zero_point} is outside "
                                  "-128 … 127")
        elif dtype != DTYPE_F32:
            raise VersionError(f"{where}: dtype {dtype} is unknown (or int8 in a 1.0 file); the "
                               "file needs a newer crisp-edge")
        values.append(Value(tuple(dims[:rank]), dtype, scale, zero_point))
    return values


def _check_payload(where: str, enc_id: int, dims: tuple[int, ...], payload: bytes) -> None:
    """The size and structure checks of one tensor's payload."""
    try:
        if enc_id == ENCODING_DENSE_F32:
            if len(payload) != 4 * math.prod(dims):
                raise ValueError(f"size {len(payload)} is not 4 × ∏dims = {4 * math.prod(dims)}")
            enc.check_finite(np.frombuffer(payload, "<f4"))
        elif enc_id == ENCODING_DENSE_I8:
            enc.decode_dense_int8(payload, dims)
        else:
            hybrid = enc.parse_hybrid(payload, dims, enc_id == ENCODING_HYBRID_I8)
            if enc_id == ENCODING_HYBRID_F32:
                enc.check_finite(hybrid.values)
    except ValueError as e:
        raise FormatError(f"{where}: {e}") from None


def _read_tensors(grph: bytes, pos: int, count: int, size: int, wght: bytes,
                  minor: int) -> list[Tensor]:
    tensors = []
    for i in range(count):
        enc_id, rank, d0, d1, d2, d3, off, nbytes, _, _ = _TENSOR.unpack_from(grph, pos + i * size)
        dims = (d0, d1, d2, d3)[:rank] if 1 <= rank <= 4 else ()
        where = f"GRPH: tensor {i}"
        if not dims or any(d < 1 for d in dims):
            raise FormatError(f"{where}: rank {rank} dims {(d0, d1, d2, d3)} invalid")
        if enc_id not in ENCODING_NAMES or (minor == 0 and enc_id != ENCODING_DENSE_F32):
            raise VersionError(f"{where}: encoding {enc_id} is unknown (or not allowed in a 1.0 "
                               "file); the file needs a newer crisp-edge")
        where += f" ({ENCODING_NAMES[enc_id]})"
        if off % ALIGNMENT or off + nbytes > len(wght):
            raise FormatError(f"{where}: offset {off} size {nbytes} is unaligned or outside the "
                              f"{len(wght)}-byte WGHT section")
        payload = wght[off:off + nbytes]
        _check_payload(where, enc_id, dims, payload)
        if enc_id == ENCODING_DENSE_F32:
            data = np.frombuffer(wght, dtype="<f4", count=nbytes // 4, offset=off).reshape(dims)
            tensors.append(Tensor(data, enc_id, off))
        else:
            tensors.append(Tensor(np.frombuffer(wght, np.uint8, nbytes, off), enc_id, off, dims))
    return tensors


def _read_graph(grph: bytes, wght: bytes, minor: int) -> Graph:
    if len(grph) < GRAPH_HEADER_SIZE:
        raise FormatError(f"GRPH: size {len(grph)} is smaller than the graph header")
    nv, vsize, nt, tsize, no, osize, input_value, output_value = _GRAPH.unpack_from(grph, 0)
    if not (1 <= nv <= MAX_RECORDS and nt <= MAX_RECORDS and 1 <= no <= MAX_RECORDS):
        raise FormatError(f"GRPH: counts out of range: {nv} values, {nt} tensors, {no} ops")
    min_vsize = VALUE_RECORD_SIZE_1_0 if minor == 0 else VALUE_RECORD_SIZE
    if vsize < min_vsize or tsize < TENSOR_RECORD_SIZE or osize < OP_RECORD_SIZE:
        raise FormatError(f"GRPH: record sizes {vsize}/{tsize}/{osize} are smaller than "
                          f"{min_vsize}/{TENSOR_RECORD_SIZE}/{OP_RECORD_SIZE}")
    need = GRAPH_HEADER_SIZE + nv * vsize + nt * tsize + no * osize
    if len(grph) < need:
        raise FormatError(f"GRPH: size {len(grph)} is smaller than the {need} bytes its "
                          "counts need")
    if input_value >= nv or output_value >= nv:
        raise FormatError(f"GRPH: input_value {input_value} / output_value {output_value} "
                          f"not below value_count {nv}")
    pos = GRAPH_HEADER_SIZE
    values = _read_values(grph, pos, nv, vsize)
    pos += nv * vsize
    tensors = _read_tensors(grph, pos, nt, tsize, wght, minor)
    pos += nt * tsize
    ops = []
    for i in range(no):
        kind, act, n_in, in0, in1, out, w, b, *params = _OP.unpack_from(grph, pos + i * osize)
        if (kind not in OP_NAMES or act not in ACTIVATION_NAMES) and minor > VERSION_MINOR:
            raise VersionError(f"GRPH: op {i}: kind {kind} / activation {act} is unknown; the "
                               "file needs a newer crisp-edge")
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


# Distinct label name bytes the reader decodes: far above any real label map (ImageNet-21k's
# names take under 1 MB), far below what a small file could otherwise make it allocate.
MAX_LABEL_TEXT_BYTES = 64 << 20


def _read_labels(labl: bytes) -> list[Label]:
    if len(labl) < LABEL_HEADER_SIZE:
        raise FormatError(f"LABL: size {len(labl)} is smaller than the label header")
    count, rsize, string_bytes, _ = _LABEL_HEADER.unpack_from(labl, 0)
    strings_at = LABEL_HEADER_SIZE + count * rsize
    if rsize < LABEL_RECORD_SIZE or strings_at + string_bytes > len(labl):
        raise FormatError(f"LABL: {count} records of {rsize} bytes and {string_bytes} string bytes "
                          f"do not fit the {len(labl)}-byte section")
    # Records may name the same bytes many times: each distinct (offset, length) is decoded
    # once and its labels share the str (a 1 MB file once made 100 MB of copies here), and the
    # distinct names are bounded (overlapping names at shifted offsets are all distinct).
    names: dict[tuple[int, int], str] = {}
    text_bytes = 0
    labels = []
    for i in range(count):
        class_id, off, length, _ = _LABEL.unpack_from(labl, LABEL_HEADER_SIZE + i * rsize)
        if off + length > string_bytes or length > MAX_LABEL_NAME_BYTES:
            raise FormatError(f"LABL: label {i}: name_offset {off} name_length {length} out of "
                              "bounds")
        name = names.get((off, length))
        if name is None:
            text_bytes += length
            if text_bytes > MAX_LABEL_TEXT_BYTES:
                raise MemoryLimitError(
                    f"LABL: {count} labels name more than {MAX_LABEL_TEXT_BYTES >> 20} MiB of "
                    f"distinct text ({text_bytes} bytes by label {i}), over the reader's bound")
            raw = labl[strings_at + off:strings_at + off + length]
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise FormatError(f"LABL: label {i}: name is not UTF-8 ({e})") from None
            names[(off, length)] = name
        labels.append(Label(class_id, name))
    return labels


def _read_saliency(saly: bytes, tensor_count: int) -> list[Saliency]:
    if len(saly) < SALIENCY_HEADER_SIZE:
        raise FormatError(f"SALY: size {len(saly)} is smaller than the saliency header")
    count, rsize, string_bytes, _ = _SALIENCY_HEADER.unpack_from(saly, 0)
    names_at = SALIENCY_HEADER_SIZE + count * rsize
    if rsize < SALIENCY_RECORD_SIZE or names_at + string_bytes > len(saly):
        raise FormatError(f"SALY: {count} records of {rsize} bytes and {string_bytes} name bytes "
                          f"do not fit the {len(saly)}-byte section")
    records = []
    for i in range(count):
        tensor, classes, nbr, nbc, name_off, name_len, data_off = \
            _SALIENCY.unpack_from(saly, SALIENCY_HEADER_SIZE + i * rsize)
        where = f"SALY: record {i}"
        if tensor >= tensor_count:
            raise FormatError(f"{where}: tensor {tensor} is not below tensor_count {tensor_count}")
        if name_off + name_len > string_bytes:
            raise FormatError(f"{where}: name_offset {name_off} name_length {name_len} out of "
                              "bounds")
        nbytes = 2 * classes * nbr * nbc
        if data_off % 2 or data_off < names_at + string_bytes or data_off + nbytes > len(saly):
            raise FormatError(f"{where}: data_offset {data_off} ({nbytes} bytes) is odd or "
                              f"outside the data area of the {len(saly)}-byte section")
        raw = saly[names_at + name_off:names_at + name_off + name_len]
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(f"{where}: name is not UTF-8 ({e})") from None
        data = np.frombuffer(saly, "<f2", classes * nbr * nbc, data_off).reshape(classes, nbr, nbc)
        records.append(Saliency(tensor, name, data))
    return records


def _read_preprocess(prep: bytes, graph: Graph) -> Preprocess:
    if len(prep) < PREP_RECORD_SIZE:
        raise FormatError(f"PREP: section is {len(prep)} bytes, smaller than its "
                          f"{PREP_RECORD_SIZE}-byte record")
    (record_size, channels, height, width, resize, resize_size, order, scale,
     m0, m1, m2, s0, s1, s2) = _PREP.unpack_from(prep, 0)
    if not PREP_RECORD_SIZE <= record_size <= len(prep):
        raise FormatError(f"PREP: record_size is {record_size}, expected {PREP_RECORD_SIZE} (at "
                          f"least {PREP_RECORD_SIZE} and at most the section's {len(prep)} "
                          "bytes)")
    record = Preprocess(height, width, (m0, m1, m2), (s0, s1, s2), resize, resize_size, order,
                        scale, channels)
    record.check(graph.values[graph.input_value].shape)
    return record


def decode(data: bytes) -> ModelFile:
    """Parse ``.crisp`` bytes; raises FormatError/ChecksumError/VersionError naming the field."""
    major, minor, sections = _read_sections(data)
    by_kind = {s.kind: data[s.offset:s.offset + s.size] for s in sections}
    for kind in (SECTION_GRPH, SECTION_WGHT):
        if kind not in by_kind:
            raise FormatError(f"section table: required section {section_name(kind)} is missing")
    graph = _read_graph(by_kind[SECTION_GRPH], by_kind[SECTION_WGHT], minor)
    labels = _read_labels(by_kind[SECTION_LABL]) if SECTION_LABL in by_kind else None
    provenance = None
    if SECTION_PROV in by_kind:
        provenance = parse_provenance(by_kind[SECTION_PROV])
    saliency = _read_saliency(by_kind[SECTION_SALY], len(graph.tensors)) \
        if SECTION_SALY in by_kind else None
    preprocess = _read_preprocess(by_kind[SECTION_PREP], graph) \
        if SECTION_PREP in by_kind else None
    return ModelFile(graph, labels, provenance, saliency, (major, minor), len(data), sections,
                     preprocess)


def parse_provenance(raw: bytes | str) -> dict:
    """The PROV section's JSON object ({} when empty). Anything else — not UTF-8, not JSON,
    nested past Python's recursion limit, a number too long to convert, not an object — is a
    FormatError naming the section, never a JSONDecodeError/RecursionError/ValueError from
    inside the parser."""
    if not raw:
        return {}
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise FormatError(f"PROV: not UTF-8 JSON ({type(e).__name__}: {str(e)[:200]}); the "
                          "provenance section is corrupt: repack the model") from None
    if not isinstance(value, dict):
        raise FormatError(f"PROV: a JSON {type(value).__name__}, expected an object; the "
                          "provenance section is corrupt: repack the model")
    return value


def decode_model(data: bytes) -> ModelFile:
    """Parse ``.crisp`` bytes; raises FormatError/ChecksumError/VersionError naming the field."""
    return decode(data)


def read_model(path: str | os.PathLike[str]) -> ModelFile:
    """Read and structurally check the ``.crisp`` file at ``path``."""
    with open(path, "rb") as f:
        return decode_model(f.read())
