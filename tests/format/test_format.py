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
    assert back.version == (1, 1)
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
    assert magic == b"\x89CRISP\r\n" and (major, minor) == (1, 1)
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
    assert (nv, vs, nt, ts, no, os_, inp, out) == (5, 48, 3, 48, 4, 96, 0, 4)
    assert len(g) == 32 + 5 * 48 + 3 * 48 + 4 * 96
    assert struct.unpack_from("<II4IIIfi8x", g, 32) == (1, 3, 3, 8, 8, 0, 0, 0, 0.0, 0)
    last_op = struct.unpack_from("<8I16i", g, 32 + 5 * 48 + 3 * 48 + 3 * 96)
    # LINEAR, no activation, one input (slot 2 unused), output 4, weight 2, no bias
    assert last_op[:8] == (2, 0, 1, 3, 0xFFFFFFFF, 4, 2, 0xFFFFFFFF)
    conv_weight = struct.unpack_from("<II4IQQII", g, 32 + 5 * 48)
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
    (lambda d: _refix(bytearray(d[:8] + struct.pack("<HH", 2, 0) + d[12:])), VersionError,
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


# --------------------------------------------------------------------------- 1.1 additions

def _v10_file() -> bytes:
    """The sample model as a 1.0 file: 32-byte value records, version 1.0."""
    data = bytearray(fmt.encode_model(sample_model()))
    grph = next(s for s in sections(bytes(data)) if s[0] == fmt.SECTION_GRPH)
    g = bytearray(data[grph[2]:grph[2] + grph[3]])
    nv = struct.unpack_from("<I", g, 0)[0]
    values = b"".join(bytes(g[32 + 48 * i:32 + 48 * i + 32]) for i in range(nv))
    g = g[:4] + struct.pack("<I", 32) + g[8:32] + values + g[32 + 48 * nv:]
    model = fmt.decode_model(bytes(data))
    # Rebuild the file around the shorter GRPH with the writer's own container code.
    body = {s.name: bytes(data[s.offset:s.offset + s.size]) for s in model.sections}
    body["GRPH"] = bytes(g)
    out = bytearray()
    names = ["GRPH", "WGHT", "LABL", "PROV"]
    offset = 64 + 64 * ((32 * len(names) + 63) // 64)
    table = bytearray()
    blobs = bytearray()
    for name in names:
        blob = body[name]
        flags = 1 if name in ("GRPH", "WGHT") else 0
        table += struct.pack("<IIQQII", fmt._kind(name.encode()), flags, offset, len(blob),
                             zlib.crc32(blob), 0)
        pad = (-len(blob)) % 64
        blobs += blob + bytes(pad)
        offset += len(blob) + pad
    table_padded = bytes(table) + bytes((-(64 + len(table))) % 64)
    size = 64 + len(table_padded) + len(blobs)
    header = struct.pack("<8sHHIQQIIII12sI", fmt.MAGIC, 1, 0, 64, size, 64, len(names), 32, 0,
                         zlib.crc32(bytes(table)), bytes(12), 0)
    header = header[:60] + struct.pack("<I", zlib.crc32(header[:60]))
    out += header + table_padded + blobs
    return bytes(out)


def test_version_1_0_files_are_still_read() -> None:
    back = fmt.decode_model(_v10_file())
    model = sample_model()
    assert back.version == (1, 0)
    assert [v.shape for v in back.graph.values] == [v.shape for v in model.graph.values]
    assert all(v.dtype == fmt.DTYPE_F32 and v.scale == 0.0 for v in back.graph.values)
    assert back.graph.ops == model.graph.ops and back.labels == model.labels


def test_version_1_0_file_cannot_hold_1_1_encodings() -> None:
    data = bytearray(_v10_file())
    grph = next(s for s in sections(bytes(data)) if s[0] == fmt.SECTION_GRPH)
    tensor0 = grph[2] + 32 + 5 * 32
    struct.pack_into("<I", data, tensor0, fmt.ENCODING_HYBRID_F32)
    struct.pack_into("<I", data, 64 + 24, zlib.crc32(bytes(data[grph[2]:grph[2] + grph[3]])))
    with pytest.raises(VersionError, match="tensor 0: encoding 2 is unknown .* 1.0 file"):
        fmt.decode_model(_refix(data))


def _quantized_model() -> fmt.ModelFile:
    from crisp_edge.format import encoding as enc
    rng = np.random.default_rng(5)
    w = rng.standard_normal((32, 3, 3, 8)).astype(np.float32)
    w.reshape(32, -1)[:, 1::2] = 0.0
    w[16:] = 0.0
    fc = rng.standard_normal((4, 32)).astype(np.float32)
    graph = fmt.Graph(
        values=[fmt.Value((8, 6, 6)), fmt.Value((8, 6, 6), fmt.DTYPE_I8, 0.05, -3),
                fmt.Value((32, 6, 6), fmt.DTYPE_I8, 0.1, -128),
                fmt.Value((32, 1, 1), fmt.DTYPE_I8, 0.1, -128),
                fmt.Value((4,), fmt.DTYPE_I8, 0.2, 7), fmt.Value((4,))],
        tensors=[fmt.Tensor.encoded(fmt.ENCODING_HYBRID_I8, w.shape, enc.encode_hybrid(
                     w.reshape(32, -1), block_rows=16, block_cols=16, n=2, m=4, int8=True)),
                 fmt.Tensor(rng.standard_normal(32).astype(np.float32)),
                 fmt.Tensor.encoded(fmt.ENCODING_DENSE_I8, fc.shape, enc.encode_dense_int8(fc))],
        ops=[fmt.Op(fmt.OP_QUANTIZE, (0,), 1),
             fmt.Op(fmt.OP_CONV2D, (1,), 2, 0, 1, fmt.ACT_RELU, (3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1)),
             fmt.Op(fmt.OP_GLOBAL_AVG_POOL, (2,), 3),
             fmt.Op(fmt.OP_LINEAR, (3,), 4, 2),
             fmt.Op(fmt.OP_DEQUANTIZE, (4,), 5)],
        input_value=0, output_value=5)
    saly = [fmt.Saliency(0, "features.1", rng.random((3, 2, 5)).astype(np.float16)),
            fmt.Saliency(2, "fc", rng.random((3, 1, 2)).astype(np.float16))]
    return fmt.ModelFile(graph, None, {"int8": True}, saly)


def test_int8_values_encoded_tensors_and_saliency_round_trip() -> None:
    model = _quantized_model()
    data = fmt.encode_model(model)
    back = fmt.decode_model(data)
    assert back.version == (1, 1)
    assert [(v.shape, v.dtype, np.float32(v.scale), v.zero_point) for v in back.graph.values] \
        == [(v.shape, v.dtype, np.float32(v.scale), v.zero_point) for v in model.graph.values]
    assert back.graph.ops == model.graph.ops
    for a, b in zip(model.graph.tensors, back.graph.tensors):
        assert (a.encoding, a.dims, a.payload()) == (b.encoding, b.dims, b.payload())
        np.testing.assert_array_equal(a.dense(), b.dense())
    assert [s.name for s in back.sections] == ["GRPH", "WGHT", "PROV", "SALY"]
    assert back.saliency is not None and len(back.saliency) == 2
    for a, b in zip(model.saliency or [], back.saliency):
        assert (a.tensor, a.name) == (b.tensor, b.name)
        assert b.data.dtype == np.float16 and np.array_equal(a.data, b.data)
    saly = next(s for s in back.sections if s.name == "SALY")
    raw = data[saly.offset:saly.offset + saly.size]
    assert struct.unpack_from("<4I", raw, 0) == (2, 32, len("features.1fc"), 0)
    record = struct.unpack_from("<6IQ", raw, 16)
    assert record[:6] == (0, 3, 2, 5, 0, 10) and record[6] % 2 == 0
    int8_value = struct.unpack_from("<II4IIIfi8x", data, next(
        s for s in back.sections if s.name == "GRPH").offset + 32 + 48)
    assert int8_value == (2, 3, 8, 6, 6, 0, 0, 0, np.float32(0.05), -3)


@pytest.mark.parametrize("field_offset, code, value, text", [
    (32, "<f", 0.0, r"value 1 \(int8\): scale 0.0 is not positive and finite"),
    (32, "<f", float("inf"), r"value 1 \(int8\): scale inf"),
    (36, "<i", 128, r"value 1 \(int8\): zero_point 128 is outside"),
    (0, "<I", 7, r"value 1: dtype 7 is unknown"),
])
def test_reader_checks_value_quantisation_fields(field_offset, code, value, text) -> None:
    data = bytearray(fmt.encode_model(_quantized_model()))
    grph = next(s for s in sections(bytes(data)) if s[0] == fmt.SECTION_GRPH)
    struct.pack_into(code, data, grph[2] + 32 + 48 + field_offset, value)
    table_entry = 64 + 32 * [s[0] for s in sections(bytes(data))].index(fmt.SECTION_GRPH)
    struct.pack_into("<I", data, table_entry + 24, zlib.crc32(bytes(data[grph[2]:grph[2] +
                                                                      grph[3]])))
    with pytest.raises((FormatError, VersionError), match=text):
        fmt.decode_model(_refix(data))


def test_reader_names_a_damaged_saliency_record() -> None:
    data = bytearray(fmt.encode_model(_quantized_model()))
    entry = [s[0] for s in sections(bytes(data))].index(fmt.SECTION_SALY)
    _, _, offset, size, _ = sections(bytes(data))[entry]
    struct.pack_into("<I", data, offset + 16 + 32, 9)  # record 1's tensor id
    struct.pack_into("<I", data, 64 + 32 * entry + 24, zlib.crc32(bytes(data[offset:offset +
                                                                           size])))
    with pytest.raises(FormatError, match="SALY: record 1: tensor 9 is not below tensor_count 3"):
        fmt.decode_model(_refix(data))


def _prep_model(prep: fmt.Preprocess | None) -> fmt.ModelFile:
    model = sample_model()
    model.preprocess = prep
    return model


def test_prep_round_trip() -> None:
    prep = fmt.Preprocess(8, 8, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
                          fmt.RESIZE_SHORTER_SIDE, 10, fmt.CHANNELS_BGR)
    data = fmt.encode_model(_prep_model(prep))
    back = fmt.decode_model(data)
    assert back.preprocess == prep and back.sections[-1].name == "PREP"
    assert not back.sections[-1].flags & fmt.SECTION_FLAG_REQUIRED
    assert back.preprocess.mean[0] == float(np.float32(0.485))
    assert fmt.decode_model(fmt.encode_model(sample_model())).preprocess is None
    raw = data[back.sections[-1].offset:back.sections[-1].offset + 64]
    assert struct.unpack_from("<7I", raw) == (64, 3, 8, 8, 1, 10, 1)
    assert raw[56:] == bytes(8)


def _patch_prep(data: bytes, offset: int, fmt_char: str, value: object) -> bytes:
    """A PREP field changed, with the section, table and header CRCs recomputed."""
    b = bytearray(data)
    count = struct.unpack_from("<I", b, 32)[0]
    for i in range(count):
        kind, _, off, size, _ = struct.unpack_from("<IIQQI", b, 64 + 32 * i)
        if kind == fmt.SECTION_PREP:
            struct.pack_into("<" + fmt_char, b, off + offset, value)
            struct.pack_into("<I", b, 64 + 32 * i + 24, zlib.crc32(b[off:off + size]))
    struct.pack_into("<I", b, 44, zlib.crc32(b[64:64 + 32 * count]))
    struct.pack_into("<I", b, 60, zlib.crc32(b[:60]))
    return bytes(b)


@pytest.mark.parametrize("offset,kind,value,message", [
    (0, "I", 32, "record_size is 32, expected 64"),
    (0, "I", 65, "record_size is 65, expected 64"),
    (4, "I", 4, "channels is 4, expected 3"),
    (8, "I", 9, "height is 9, expected 8 (the graph input's)"),
    (12, "I", 7, "width is 7, expected 8 (the graph input's)"),
    (16, "I", 3, "resize is 3, expected 0 (none), 1 (shorter_side) or 2 (stretch)"),
    (20, "I", 7, "resize_size is 7, expected 8..16384 with resize shorter_side"),
    (20, "I", 16385, "resize_size is 16385, expected 8..16384"),
    (24, "I", 2, "channel_order is 2, expected 0 (RGB) or 1 (BGR)"),
    (28, "f", 0.0, "scale is 0, expected finite > 0"),
    (28, "f", float("inf"), "scale is inf, expected finite > 0"),
    (36, "f", float("nan"), "mean[1] is nan, expected finite"),
    (48, "f", 0.0, "std[1] is 0, expected > 0"),
    (52, "f", -1.0, "std[2] is -1, expected > 0"),
    (44, "f", float("inf"), "std[0] is inf, expected finite > 0"),
])
def test_bad_prep_names_the_field(offset: int, kind: str, value: object, message: str) -> None:
    prep = fmt.Preprocess(8, 8, (0.5,) * 3, (0.25,) * 3, fmt.RESIZE_SHORTER_SIDE, 8)
    data = _patch_prep(fmt.encode_model(_prep_model(prep)), offset, kind, value)
    with pytest.raises(FormatError, match=re_escape(f"PREP: {message}")):
        fmt.decode_model(data)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_prep_resize_size_only_with_shorter_side_and_writer_checks() -> None:
    with pytest.raises(FormatError, match="PREP: resize_size is 5, expected 0 with resize none"):
        fmt.encode_model(_prep_model(fmt.Preprocess(8, 8, (0,) * 3, (1,) * 3, fmt.RESIZE_NONE,
                                                    5)))
    with pytest.raises(FormatError, match=r"PREP: height is 4, expected 8"):
        fmt.encode_model(_prep_model(fmt.Preprocess(4, 8, (0,) * 3, (1,) * 3)))
    with pytest.raises(FormatError, match="PREP: mean has 2 values, expected 3"):
        fmt.Preprocess(8, 8, (0, 0), (1,) * 3)


def _aliased_labl(count: int, string_bytes: int, shifted: bool) -> bytes:
    """A LABL section of `count` records naming 1024 bytes of a `string_bytes` area of 'a's:
    all at offset 0 (one name aliased) or at offsets 0, 1, 2, ... (distinct, overlapping)."""
    head = struct.pack("<IIII", count, 16, string_bytes, 0)
    records = b"".join(struct.pack("<iIII", i, i % (string_bytes - 1023) if shifted else 0,
                                   1024, 0) for i in range(count))
    return head + records + b"a" * string_bytes


def test_reader_decodes_an_aliased_label_name_once() -> None:
    """Issue 14: 65536 labels naming one 1024-byte name (a 1 MB section) made about 100 MB of
    str copies; now they share one str and the reader stays within a few MB."""
    import tracemalloc

    from crisp_edge.format.read import _read_labels

    labl = _aliased_labl(65536, 1024, shifted=False)
    assert len(labl) < 1_100_000
    tracemalloc.start()
    try:
        labels = _read_labels(labl)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(labels) == 65536 and labels[70] == fmt.Label(70, "a" * 1024)
    assert all(label.name is labels[0].name for label in labels)
    assert peak < 16 << 20, f"reading the labels took {peak / 2**20:.1f} MiB"


def test_reader_bounds_distinct_label_text() -> None:
    """Distinct names that overlap (shifted offsets) cannot be shared: their total is bounded."""
    from crisp_edge.errors import MemoryLimitError, OutOfMemoryError
    from crisp_edge.format.read import MAX_LABEL_TEXT_BYTES, _read_labels

    count = MAX_LABEL_TEXT_BYTES // 1024 + 10
    with pytest.raises(MemoryLimitError, match="more than 64 MiB of distinct text") as e:
        _read_labels(_aliased_labl(count, count + 1023, shifted=True))
    assert isinstance(e.value, OutOfMemoryError)
    assert len(_read_labels(_aliased_labl(3000, 4000, shifted=True))) == 3000


@pytest.mark.parametrize("bad", [float("nan"), float("-inf")])
def test_non_finite_weights_are_refused_by_writer_and_reader(bad) -> None:
    """A NaN or inf weight is a broken model whose result would depend on the kernel (the
    runtime's reference conv skips zero padding, the optimised one multiplies it)."""
    model = sample_model()
    model.graph.tensors[1].data[2] = bad
    with pytest.raises(FormatError, match=rf"GRPH: tensor 1: value 2 is {bad}, expected finite"):
        fmt.encode_model(model)
    # A file written by someone else: the reader refuses it too.
    good = sample_model()
    data = bytearray(fmt.encode_model(good))
    wght = next(s for s in sections(bytes(data)) if s[0] == fmt.SECTION_WGHT)
    back = fmt.decode_model(bytes(data))
    struct.pack_into("<f", data, wght[2] + back.graph.tensors[2].offset + 4, bad)
    table_entry = 64 + 32 * [s[0] for s in sections(bytes(data))].index(fmt.SECTION_WGHT)
    struct.pack_into("<I", data, table_entry + 24,
                     zlib.crc32(bytes(data[wght[2]:wght[2] + wght[3]])))
    with pytest.raises(FormatError, match=rf"tensor 2 .*value 1 is {bad}, expected finite"):
        fmt.decode_model(_refix(data))


# --------------------------------------------------------------------------- 1.2 additions

def se_model() -> fmt.ModelFile:
    """The 1.2 ops: fused silu, the standalone activations, MUL_CHANNELS with (C,1,1)."""
    model = sample_model()
    g = model.graph
    g.ops[0].activation = fmt.ACT_SILU
    g.values += [fmt.Value((4, 1, 1)), fmt.Value((4, 1, 1)), fmt.Value((4, 1, 1)),
                 fmt.Value((4, 1, 1)), fmt.Value((4, 8, 8))]
    g.ops[2:2] = [fmt.Op(fmt.OP_SILU, (2,), 5), fmt.Op(fmt.OP_SIGMOID, (5,), 6),
                  fmt.Op(fmt.OP_HARDSWISH, (6,), 7), fmt.Op(fmt.OP_HARDSIGMOID, (7,), 8),
                  fmt.Op(fmt.OP_MUL_CHANNELS, (1, 8), 9)]
    g.ops[-2] = fmt.Op(fmt.OP_RESHAPE, (8,), 3)
    return model


def test_1_2_ops_round_trip_and_stamp_1_2_only_when_used() -> None:
    model = se_model()
    back = fmt.decode_model(fmt.encode_model(model))
    assert back.version == (1, 2) and back.graph.ops == model.graph.ops
    assert [op.name for op in back.graph.ops[2:7]] == [
        "SILU", "SIGMOID", "HARDSWISH", "HARDSIGMOID", "MUL_CHANNELS"]
    assert fmt.ACTIVATION_NAMES[back.graph.ops[0].activation] == "silu"
    model.graph.ops[0].activation = fmt.ACT_HARDSIGMOID  # still a 1.2 activation
    del model.graph.ops[2:7]
    assert fmt.decode_model(fmt.encode_model(model)).version == (1, 2)
    model.graph.ops[0].activation = fmt.ACT_RELU  # nothing new: 1.1 runtimes read it
    assert fmt.decode_model(fmt.encode_model(model)).version == (1, 1)


@pytest.mark.parametrize("field, value", [(0, 19), (4, 7)], ids=["kind", "activation"])
def test_unknown_kind_or_activation_of_a_newer_minor_needs_newer_reader(field, value) -> None:
    data = bytearray(fmt.encode_model(se_model()))
    entry, (_, _, grph, size, _) = next((i, s) for i, s in enumerate(sections(data))
                                        if fmt.section_name(s[0]) == "GRPH")
    nv, _, nt = struct.unpack_from("<III", data, grph)
    struct.pack_into("<I", data, grph + 32 + nv * 48 + nt * 48 + field, value)
    struct.pack_into("<I", data, 64 + 32 * entry + 24, zlib.crc32(bytes(data[grph:grph + size])))
    struct.pack_into("<H", data, 10, 3)  # a 1.3 file
    with pytest.raises(VersionError, match="op 0: .* is unknown; the file needs a newer"):
        fmt.decode_model(_refix(data))
