"""The Python writer and reader of .crisp files against docs/format.md."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest

from crisp_edge import format as fmt
from crisp_edge.errors import ChecksumError, FormatError, VersionError


def sample_model() -> fmt.ModelFile:
    rng = np.random.default_rng(0)
    graph = fmt.Graph(
        values=[fmt.Value((3, 8, 8)), fmt.Value((4, 8, 8)), fmt.Value((4, 1, 1)),
                fmt.Value((4,)), fmt.Value((2,))],
        tensors=[fmt.Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
                 fmt.Tensor(rng.standard_normal(4).astype(np.float32)),
                 fmt.Tensor(rng.standard_normal((2, 4)).astype(np.float32))],
        ops=[fmt.Op(fmt.OP_CONV2D, (0,), 1, 0, 1, fmt.ACT_RELU, (3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1)),
             fmt.Op(fmt.OP_GLOBAL_AVG_POOL, (1,), 2),
             fmt.Op(fmt.OP_RESHAPE, (2,), 3),
             fmt.Op(fmt.OP_LINEAR, (3,), 4, 2, None)],
        input_value=0, output_value=4)
    return fmt.ModelFile(graph, [fmt.Label(7, "cat"), fmt.Label(12, "Bärenklau 🐻")],
                         {"crisp_edge_version": "0.1.0", "n": 1})


def sections(data: bytes) -> list[tuple[int, int, int, int, int]]:
    count = struct.unpack_from("<I", data, 32)[0]
    return [struct.unpack_from("<IIQQI", data, 64 + 32 * i) for i in range(count)]


def test_round_trip_preserves_everything() -> None:
    model = sample_model()
    back = fmt.decode_model(fmt.encode_model(model))
    g, h = model.graph, back.graph
    assert [v.shape for v in h.values] == [v.shape for v in g.values]
    assert h.ops == g.ops
    assert (h.input_value, h.output_value) == (0, 4)
    for a, b in zip(g.tensors, h.tensors):
        assert b.dims == a.dims and np.array_equal(a.data, b.data)
    assert back.labels == model.labels
    assert back.provenance == model.provenance
    assert back.version == (1, 0)
    assert [s.name for s in back.sections] == ["GRPH", "WGHT", "LABL", "PROV"]


def test_write_model_to_path_and_file_object(tmp_path) -> None:
    model = sample_model()
    size = fmt.write_model(tmp_path / "a.crisp", model)
    buf = io.BytesIO()
    assert fmt.write_model(buf, model) == size
    assert (tmp_path / "a.crisp").read_bytes() == buf.getvalue()
    assert fmt.read_model(tmp_path / "a.crisp").graph.ops == model.graph.ops


def test_header_fields_and_crcs_are_zlib_crc32() -> None:
    data = fmt.encode_model(sample_model())
    (magic, major, minor, header_size, file_size, table_offset, count, entry_size, flags,
     table_crc, reserved, header_crc) = struct.unpack_from("<8sHHIQQIIII12sI", data, 0)
    assert magic == b"\x89CRISP\r\n" and (major, minor) == (1, 0)
    assert (header_size, table_offset, entry_size, flags) == (64, 64, 32, 0)
    assert file_size == len(data) and count == 4 and reserved == bytes(12)
    assert header_crc == zlib.crc32(data[:60])
    assert table_crc == zlib.crc32(data[64:64 + 32 * count])
    for kind, sflags, offset, size, crc in sections(data):
        assert crc == zlib.crc32(data[offset:offset + size])
        assert sflags == (1 if kind in (fmt.SECTION_GRPH, fmt.SECTION_WGHT) else 0)
    assert [k for k, *_ in sections(data)] == [0x48505247, fmt.SECTION_WGHT, fmt.SECTION_LABL,
                                              fmt.SECTION_PROV]


def test_alignment_and_zero_padding() -> None:
    data = fmt.encode_model(sample_model())
    secs = sections(data)
    assert len(data) % 64 == 0
    end = 64 + 32 * len(secs)
    for _, _, offset, size, _ in secs:
        assert offset % 64 == 0 and offset >= end
        assert data[end:offset] == bytes(offset - end), "padding must be zero"
        end = offset + size
    assert data[end:] == bytes(len(data) - end)
    back = fmt.decode_model(data)
    wght = next(s for s in back.sections if s.name == "WGHT")
    assert all(t.offset % 64 == 0 for t in back.graph.tensors)
    assert wght.offset % 64 == 0


def test_record_sizes_and_op_record_layout() -> None:
    data = fmt.encode_model(sample_model())
    grph = next(s for s in sections(data) if s[0] == fmt.SECTION_GRPH)
    g = data[grph[2]:grph[2] + grph[3]]
    nv, vs, nt, ts, no, os_, inp, out = struct.unpack_from("<8I", g, 0)
    assert (nv, vs, nt, ts, no, os_, inp, out) == (5, 32, 3, 48, 4, 96, 0, 4)
    assert len(g) == 32 + 5 * 32 + 3 * 48 + 4 * 96
    last_op = struct.unpack_from("<8I16i", g, 32 + 5 * 32 + 3 * 48 + 3 * 96)
    # LINEAR, no activation, one input (slot 2 unused), output 4, weight 2, no bias
    assert last_op[:8] == (2, 0, 1, 3, 0xFFFFFFFF, 4, 2, 0xFFFFFFFF)
    conv_weight = struct.unpack_from("<II4IQQII", g, 32 + 5 * 32)
    assert conv_weight == (1, 4, 4, 3, 3, 3, 0, 4 * 108, 0, 0)


def test_empty_weights_and_no_optional_sections() -> None:
    graph = fmt.Graph([fmt.Value((2, 4, 4)), fmt.Value((2, 2, 2))], [],
                      [fmt.Op(fmt.OP_MAX_POOL2D, (0,), 1, params=(2, 2, 2, 2, 0, 0, 1, 1, 0))],
                      0, 1)
    back = fmt.decode_model(fmt.encode_model(fmt.ModelFile(graph)))
    assert back.labels is None and back.provenance is None and back.graph.tensors == []
    assert [s.name for s in back.sections] == ["GRPH", "WGHT"]


def _refix(data: bytearray) -> bytes:
    """Recompute table and header CRCs after an edit."""
    count = struct.unpack_from("<I", data, 32)[0]
    struct.pack_into("<I", data, 44, zlib.crc32(bytes(data[64:64 + 32 * count])))
    struct.pack_into("<I", data, 60, zlib.crc32(bytes(data[:60])))
    return bytes(data)


@pytest.mark.parametrize("mutate, error, text", [
    (lambda d: d[:-10], FormatError, "truncated"),
    (lambda d: d[:40], FormatError, "shorter than the 64-byte header"),
    (lambda d: b"GIF89a\0\0" + d[8:], FormatError, "bad magic"),
    (lambda d: d[:12] + b"\xff" + d[13:], ChecksumError, "header: CRC32 mismatch"),
    (lambda d: d[:70] + b"\xff" + d[71:], ChecksumError, "section table: CRC32 mismatch"),
    (lambda d: _refix(bytearray(d[:8] + struct.pack("<H", 2) + d[10:])), VersionError,
     "format version 2.0 is newer"),
])
def test_reader_rejects_damaged_files(mutate, error, text) -> None:
    data = fmt.encode_model(sample_model())
    with pytest.raises(error, match=text):
        fmt.decode_model(mutate(data))


@pytest.mark.parametrize("section", ["GRPH", "WGHT", "LABL", "PROV"])
def test_reader_names_the_section_with_a_bad_crc(section: str) -> None:
    data = bytearray(fmt.encode_model(sample_model()))
    kind, _, offset, size, _ = next(s for s in sections(data) if fmt.section_name(s[0]) == section)
    data[offset + size // 2] ^= 0x01
    with pytest.raises(ChecksumError, match=f"section {section}: CRC32 mismatch"):
        fmt.decode_model(bytes(data))


def test_newer_minor_version_is_read() -> None:
    data = bytearray(fmt.encode_model(sample_model()))
    struct.pack_into("<H", data, 10, 3)
    assert fmt.decode_model(_refix(data)).version == (1, 3)


def test_unknown_required_section_needs_newer_reader() -> None:
    data = bytearray(fmt.encode_model(sample_model()))
    struct.pack_into("<II", data, 64 + 3 * 32, fmt._kind(b"SPRS"), 1)  # PROV → unknown, required
    with pytest.raises(VersionError, match="SPRS"):
        fmt.decode_model(_refix(data))
    struct.pack_into("<II", data, 64 + 3 * 32, fmt._kind(b"SPRS"), 0)  # optional: skipped
    assert fmt.decode_model(_refix(data)).provenance is None
