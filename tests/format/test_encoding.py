"""Hybrid-sparse and int8 weight payloads (docs/format.md, "Hybrid-sparse encodings"): layout,
exact sizes, round trips, the reader's structural checks, and pattern auto-detection."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from crisp_edge.format import encoding as enc
from crisp_edge import format as fmt
from crisp_edge.errors import FormatError
from crisp_edge.format.pattern import Pattern
from crisp_edge.packing.patterns import choose_encoding, encode_weight


def pattern_matrix(rng: np.random.Generator, rows: int, cols: int, br: int, bc: int, n: int,
                   m: int, v: int = 1, keep: float = 0.5) -> np.ndarray:
    """A random matrix whose zeros follow the hybrid pattern: random blocks removed, and
    inside every run of V rows each group of M columns keeps N random positions (some of
    those zero too, so groups with fewer than N non-zeros occur)."""
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    w[rng.random(w.shape) < 0.1] = 0.0
    if n < m:
        for r0 in range(0, rows, v):
            for g in range(cols // m):
                drop = rng.permutation(m)[n:]
                w[r0:r0 + v, g * m + drop] = 0.0
    for i in range(-(-rows // br)):
        for j in range(-(-cols // bc)):
            if rng.random() > keep:
                w[i * br:(i + 1) * br, j * bc:(j + 1) * bc] = 0.0
    return w


def spec_size(w: np.ndarray, br: int, bc: int, n: int, m: int, v: int, int8: bool) -> int:
    """The size formula of docs/format.md, computed independently of crisp_edge.format.encoding."""
    rows, cols = w.shape
    nbr, nbc = -(-rows // br), -(-cols // bc)
    kept = values = indices = 0
    for i in range(nbr):
        for j in range(nbc):
            block = w[i * br:(i + 1) * br, j * bc:(j + 1) * bc]
            if not block.any():
                continue
            kept += 1
            r, width = block.shape
            per_row = width if n == m else width // m * n
            values += r * per_row
            indices += -(-r // v) * per_row
    bits = 0 if n == m else math.ceil(math.log2(m))
    return (32 + 4 * (nbr + 1) + 4 * kept + (4 * rows if int8 else 0)
            + values * (1 if int8 else 4) + math.ceil(bits * indices / 8))


CASES = [  # rows, cols, Br, Bc, N, M, V
    (16, 16, 16, 16, 2, 4, 1), (37, 72, 16, 16, 2, 4, 1), (33, 40, 8, 16, 1, 4, 1),
    (70, 96, 32, 32, 2, 8, 1), (65, 128, 64, 64, 4, 8, 1), (50, 48, 16, 16, 2, 4, 4),
    (45, 64, 8, 16, 2, 8, 2), (29, 36, 16, 12, 3, 4, 8), (21, 35, 8, 7, 4, 4, 1),
    (19, 9, 4, 4, 1, 1, 1), (40, 24, 16, 24, 2, 4, 1),  # last: N:M only (one block spans K)
]


@pytest.mark.parametrize("int8", [False, True])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_round_trip_and_exact_size(case: tuple[int, ...], int8: bool) -> None:
    rows, cols, br, bc, n, m, v = case
    rng = np.random.default_rng(hash(case) % 2**32)
    for _ in range(3):
        w = pattern_matrix(rng, rows, cols, br, bc, n, m, v)
        payload = enc.encode_hybrid(w, block_rows=br, block_cols=bc, n=n, m=m, shared_rows=v,
                                    int8=int8)
        assert len(payload) == spec_size(w, br, bc, n, m, v, int8)
        assert len(payload) == enc.hybrid_size(w, block_rows=br, block_cols=bc, n=n, m=m,
                                               shared_rows=v, int8=int8)
        back = enc.decode_hybrid(payload, (rows, cols), int8)
        if int8:
            q, scales = enc.quantize_rows(w)
            assert np.array_equal(back, q.astype(np.float32) * scales[:, None])
            parsed = enc.parse_hybrid(payload, (rows, cols), True)
            assert np.array_equal(parsed.dense_q(), q)
        else:
            assert np.array_equal(back, w)


def test_layout_of_a_small_payload_byte_by_byte() -> None:
    # R=2, K=8, blocks 2×4, 2:4: block (0,0) removed, block (0,1) kept.
    w = np.zeros((2, 8), np.float32)
    w[0, 5], w[0, 7] = 1.5, -2.0      # row 0, group 1: positions 1, 3
    w[1, 6] = 3.0                     # row 1: one non-zero at position 2 → padded with 0
    payload = enc.encode_hybrid(w, block_rows=2, block_cols=4, n=2, m=4)
    header = struct.unpack_from("<8I", payload, 0)
    assert header == (2, 8, 2, 4, 2, 4, 1, 1)
    assert struct.unpack_from("<2I", payload, 32) == (0, 1)      # block_row_ptr
    assert struct.unpack_from("<I", payload, 40) == (1,)         # block_col
    assert struct.unpack_from("<4f", payload, 44) == (1.5, -2.0, 0.0, 3.0)
    # positions (1, 3) then (0, 2), 2 bits each, least-significant bit first: 0b10_00_11_01
    assert payload[60:] == bytes([0b10001101])
    assert len(payload) == 61


def test_shared_rows_store_one_selection_per_run() -> None:
    w = np.zeros((4, 4), np.float32)
    w[0, 1], w[1, 3], w[2, 0], w[3, 0] = 1, 2, 3, 4   # runs of V=2: {1, 3} and {0} + pad {1}
    payload = enc.encode_hybrid(w, block_rows=4, block_cols=4, n=2, m=4, shared_rows=2)
    values = struct.unpack_from("<8f", payload, 32 + 8 + 4)
    assert values == (1, 0, 0, 2, 3, 0, 4, 0)
    assert payload[-1:] == bytes([0b01001101])  # (1, 3), (0, 1)
    assert np.array_equal(enc.decode_hybrid(payload, (4, 4)), w)


def test_block_only_is_written_as_one_to_one_without_indices() -> None:
    w = np.zeros((8, 10), np.float32)
    w[0:4, 5:10] = 1.0
    payload = enc.encode_hybrid(w, block_rows=4, block_cols=5, n=4, m=4)
    assert struct.unpack_from("<8I", payload, 0) == (8, 10, 4, 5, 1, 1, 1, 1)
    assert len(payload) == 32 + 4 * 3 + 4 + 4 * 20
    assert np.array_equal(enc.decode_hybrid(payload, (8, 10)), w)


@pytest.mark.parametrize("case", [(128, 512, 16, 16, 2, 4), (128, 576, 16, 16, 1, 4),
                                  (192, 1024, 32, 32, 2, 8), (256, 128, 8, 16, 4, 8)])
def test_size_bound_of_the_issue(case: tuple[int, ...]) -> None:
    """≤ kept-value bytes + ⌈log2 M⌉ bits per kept value + 8 bytes per kept block + scales,
    for layers with at least nbr + 10 kept blocks (the rounding of the index stream to whole
    bytes needs one block more than the spec's nbr + 9)."""
    rows, cols, br, bc, n, m = case
    rng = np.random.default_rng(1)
    for keep in (0.3, 0.6, 1.0):
        w = pattern_matrix(rng, rows, cols, br, bc, n, m, keep=keep)
        kept = int(enc.block_mask(w, br, bc).sum())
        assert kept >= -(-rows // br) + 10
        for int8 in (False, True):
            size = enc.hybrid_size(w, block_rows=br, block_cols=bc, n=n, m=m, int8=int8)
            values = kept * br * bc * n // m  # all blocks full-size in these cases
            bound = values * (1 if int8 else 4) + values * math.ceil(math.log2(m)) / 8 \
                + 8 * kept + (4 * rows if int8 else 0)
            assert size <= bound, (keep, int8, size, bound)


def test_violations_name_the_row_and_group() -> None:
    w = np.ones((8, 8), np.float32)
    w[:, [1, 3, 5, 7]] = 0.0
    w[5, 4:8] = [1, 1, 1, 0]
    with pytest.raises(ValueError, match=r"row 5, group 1 \(columns 4…7\) has 3 non-zeros; "
                                         r"2:4 allows 2"):
        enc.encode_hybrid(w, block_rows=4, block_cols=8, n=2, m=4)
    w[5, 4:8] = [1, 0, 1, 0]
    w[0, 1] = 1.0  # rows 0 and 1 share positions with V=2: {0, 1, 2} in group 0
    with pytest.raises(ValueError, match=r"rows 0…1, group 0 .* has 3 non-zeros"):
        enc.encode_hybrid(w, block_rows=4, block_cols=8, n=2, m=4, shared_rows=2)
    with pytest.raises(ValueError, match="multiples of M=4"):
        enc.encode_hybrid(np.ones((4, 6)), block_rows=4, block_cols=6, n=2, m=4)
    with pytest.raises(ValueError, match="V=3"):
        enc.encode_hybrid(np.zeros((4, 8)), block_rows=4, block_cols=8, n=2, m=4, shared_rows=3)


def test_quantize_rows() -> None:
    w = np.array([[0.5, -1.27, 0.0], [0, 0, 0], [1e-3, 2e-3, -3e-3]], np.float32)
    q, scales = enc.quantize_rows(w)
    assert scales.dtype == np.float32 and scales[1] == 1.0
    assert scales[0] == np.float32(1.27 / 127) and q[0].tolist() == [50, -127, 0]
    assert q[1].tolist() == [0, 0, 0] and q[2].tolist() == [42, 85, -127]
    q, scales = enc.quantize_rows(w, min_scales=np.array([0.1, 0.0, 0.0]))
    assert scales[0] == np.float32(0.1) and q[0].tolist() == [5, -13, 0]


# --------------------------------------------------------------------------- the reader

def _graph_with(tensor: fmt.Tensor) -> fmt.ModelFile:
    cout = tensor.dims[0]
    graph = fmt.Graph([fmt.Value((int(np.prod(tensor.dims[1:])),)), fmt.Value((cout,))],
                      [tensor], [fmt.Op(fmt.OP_LINEAR, (0,), 1, 0)], 0, 1)
    return fmt.ModelFile(graph)


def _mutated(payload: bytes, at: int, fmt_: str, value: float | int) -> bytes:
    out = bytearray(payload)
    struct.pack_into(fmt_, out, at, value)
    return bytes(out)


@pytest.fixture
def hybrid_payload() -> bytes:
    w = np.zeros((4, 16), np.float32)
    w[0:2, 0:8] = [[1, 0, 2, 0, 0, 3, 0, 4], [0, 5, 6, 0, 7, 0, 0, 8]]
    w[2:4, 8:16] = [[0, 1, 0, 2, 3, 0, 4, 0], [5, 0, 0, 6, 0, 0, 7, 8]]
    return enc.encode_hybrid(w, block_rows=2, block_cols=8, n=2, m=4)  # kept (0,0), (1,1)


BAD = [  # offset, struct format, value, message
    (0, "<I", 5, r"header R=5 K=16 do not match dims \(4, 16\)"),
    (20, "<I", 65, r"header N=2 M=65: need 1 ≤ N ≤ M ≤ 64"),
    (24, "<I", 3, r"header V=3: must be ≥ 1 and divide Br=2"),
    (28, "<I", 9, r"header kept_blocks=9 exceeds the 2×2 blocks"),
    (32, "<I", 1, r"block_row_ptr\[0\] = 1 and block_row_ptr\[2\] = 2 must be 0 and kept_"),
    (36, "<I", 3, r"block_row_ptr\[2\] = 2 is less than block_row_ptr\[1\] = 3"),
    (44, "<I", 2, r"block_col\[0\] = 2 is not below nbc = 2"),
]


@pytest.mark.parametrize("at, code, value, message", BAD)
def test_reader_rejects_bad_hybrid_structure(hybrid_payload: bytes, at: int, code: str,
                                             value: int, message: str) -> None:
    bad = _mutated(hybrid_payload, at, code, value)
    with pytest.raises(ValueError, match=message):
        enc.parse_hybrid(bad, (4, 16), False)
    data = fmt.encode_model(_graph_with(fmt.Tensor.encoded(fmt.ENCODING_HYBRID_F32, (4, 16),
                                                           bad)))
    with pytest.raises(FormatError, match=r"GRPH: tensor 0 \(HYBRID_F32\): " + message):
        fmt.decode_model(data)


def test_reader_rejects_bad_indices_sizes_and_scales(hybrid_payload: bytes) -> None:
    indices_at = len(hybrid_payload) - 4  # 16 indices × 2 bits
    first = hybrid_payload[indices_at]
    bad = bytearray(hybrid_payload)
    bad[indices_at] = (first & ~0b1111) | 0b0101  # group 0: positions (1, 1)
    with pytest.raises(ValueError, match=r"indices of group 0 \(\[1, 1\]\) are not strictly"):
        enc.parse_hybrid(bytes(bad), (4, 16), False)
    size = len(hybrid_payload)
    with pytest.raises(ValueError, match=f"size {size - 1} is not the {size} bytes"):
        enc.parse_hybrid(hybrid_payload[:-1], (4, 16), False)
    both_in_row_0 = _mutated(_mutated(hybrid_payload, 36, "<I", 2), 44, "<I", 1)
    with pytest.raises(ValueError, match=r"block_col\[1\] = 1 does not increase after "
                                         r"block_col\[0\] = 1 within a block-row"):
        enc.parse_hybrid(both_in_row_0, (4, 16), False)
    twelve = enc.encode_hybrid(np.zeros((4, 12)), block_rows=2, block_cols=4, n=2, m=4)
    with pytest.raises(ValueError, match="taps of 6 columns"):
        enc.parse_hybrid(twelve, (4, 2, 6), False)  # a conv with Cin = 6, kw = 2
    m5 = np.zeros((1, 5), np.float32)
    m5[0, 4] = 1.0
    payload = bytearray(enc.encode_hybrid(m5, block_rows=1, block_cols=5, n=1, m=5))
    payload[-1] = 0b111  # position 7 ≥ M = 5 (3 bits)
    with pytest.raises(ValueError, match="index 0 = 7 is not below M = 5"):
        enc.parse_hybrid(bytes(payload), (1, 5), False)
    payload[-1] = 0b1000_0100  # position 4, but a padding bit set
    with pytest.raises(ValueError, match="padding bits"):
        enc.parse_hybrid(bytes(payload), (1, 5), False)
    q8 = enc.encode_hybrid(m5, block_rows=1, block_cols=5, n=1, m=5, int8=True)
    with pytest.raises(ValueError, match=r"scales\[0\] = 0.0 is not positive"):
        enc.parse_hybrid(_mutated(q8, 44, "<f", 0.0), (1, 5), True)
    with pytest.raises(ValueError, match="value 0 is −128"):
        enc.parse_hybrid(_mutated(q8, 48, "<b", -128), (1, 5), True)
    dense = enc.encode_dense_int8(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"size 9 is not 4·Cout \+ ∏dims = 14"):
        enc.decode_dense_int8(dense[:9], (2, 3))


# --------------------------------------------------------------------------- auto-detection

def test_choose_encoding_detects_each_pattern_and_keeps_random_zeros_dense() -> None:
    rng = np.random.default_rng(3)
    hybrid = pattern_matrix(rng, 64, 128, 16, 16, 2, 4, keep=0.3)
    choice = choose_encoding(hybrid, name="body")
    assert choice.pattern is not None and choice.pattern.kind == "hybrid"
    assert (choice.pattern.n, choice.pattern.m) == (2, 4)
    assert choice.bytes == len(encode_weight(fmt.Tensor(hybrid), choice.pattern, False).payload())
    assert choice.bytes < choice.dense_bytes and 0.1 < choice.density < 0.3
    assert str(choice).startswith("body: hybrid ") and "KiB (dense 32.0 KiB)" in str(choice)

    nm_only = pattern_matrix(rng, 32, 64, 32, 64, 1, 4, keep=1.0)
    choice = choose_encoding(nm_only, name="classifier")
    assert choice.pattern is not None and (choice.pattern.n, choice.pattern.m) == (1, 4)
    assert choice.density == pytest.approx(0.25)

    blocks = np.zeros((64, 64), np.float32)
    blocks[0:32, 32:64] = blocks[32:64, 0:32] = 1.0  # dense inside kept blocks: no N:M fits
    choice = choose_encoding(blocks, name="blocky")
    assert choice.pattern is not None and choice.pattern.kind == "block"

    random = rng.standard_normal((64, 64)).astype(np.float32)
    random[rng.random(random.shape) < 0.5] = 0.0
    choice = choose_encoding(random, name="features.3")
    assert choice.pattern is None and choice.encoding == fmt.ENCODING_DENSE_F32
    assert str(choice) == "features.3: no pattern fits (50% zeros) → dense, 16.0 KiB"
    assert choose_encoding(np.ones((8, 8)), name="x").reason == "no zeros"


def test_choose_encoding_respects_taps_and_int8_sizes() -> None:
    rng = np.random.default_rng(4)
    w = pattern_matrix(rng, 32, 48, 16, 16, 2, 4, keep=1.0)  # K = 48 = 3×3 taps of 16 … or 8×6
    assert choose_encoding(w, tap_cols=16).pattern is not None
    choice = choose_encoding(w, tap_cols=6, candidates=[Pattern(2, 4, 16, 16)])
    assert choice.pattern is None  # a group would straddle two taps of 6 columns
    q = choose_encoding(w, int8=True)
    assert q.encoding == fmt.ENCODING_HYBRID_I8 and q.dense_bytes == 32 * 48 + 4 * 32
