"""Weight encodings of ``.crisp`` 1.1 (docs/format.md): hybrid-sparse and int8, numpy only.

A weight is the matrix W of R = Cout rows × K columns (a conv's OHWI tensor reshaped to
(Cout, kh·kw·Cin/groups), a linear weight as it is). ``encode_hybrid`` writes the
``HYBRID_F32``/``HYBRID_I8`` payload of a matrix whose zeros already follow the pattern: a block
is kept when it holds any non-zero, and each N:M group stores its non-zeros padded with zero
values at the lowest unused positions. ``parse_hybrid`` is the reader's validator (the same checks
the C loader makes) and ``decode_hybrid`` turns a payload back into a dense matrix for tests and
``inspect`` (the runtime never decompresses). Block-only patterns (N = M) are written as 1:1:
every column of a kept block stored, no index stream.

>>> w = np.zeros((32, 64), np.float32); w[:16, :16:2] = 1.0
>>> payload = encode_hybrid(w, block_rows=16, block_cols=16, n=2, m=4)
>>> bool(np.array_equal(decode_hybrid(payload, (32, 64)), w))
True
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence

import numpy as np

HEADER = struct.Struct("<8I")
MAX_M = 64


def index_bits(n: int, m: int) -> int:
    """Bits per stored N:M position: ⌈log2 M⌉, or 0 when N = M (no index stream)."""
    return 0 if n == m else (m - 1).bit_length()


def matrix_shape(dims: Sequence[int]) -> tuple[int, int]:
    """(R, K) of a weight with logical ``dims``: (dims[0], product of the rest)."""
    return int(dims[0]), (int(np.prod(dims[1:], dtype=np.int64)) if len(dims) > 1 else 1)


@dataclass(frozen=True)
class HybridHeader:
    """The eight u32 of a hybrid payload's header."""

    rows: int
    cols: int
    block_rows: int
    block_cols: int
    n: int
    m: int
    shared_rows: int
    kept_blocks: int

    @property
    def nbr(self) -> int:
        return -(-self.rows // self.block_rows)

    @property
    def nbc(self) -> int:
        return -(-self.cols // self.block_cols)

    @property
    def group(self) -> tuple[int, int]:
        """(N, M) as laid out: a block-only pattern (N = M) stores every column, i.e. 1:1."""
        return (1, 1) if self.n == self.m else (self.n, self.m)

    def check(self) -> None:
        """Raise ValueError naming the first header field that breaks the spec's constraints."""
        if self.rows < 1 or self.cols < 1:
            raise ValueError(f"header R={self.rows} K={self.cols}: both must be ≥ 1")
        if self.block_rows < 1 or self.block_cols < 1:
            raise ValueError(f"header Br={self.block_rows} Bc={self.block_cols}: both must be ≥ 1")
        if not 1 <= self.n <= self.m <= MAX_M:
            raise ValueError(f"header N={self.n} M={self.m}: need 1 ≤ N ≤ M ≤ {MAX_M}")
        if self.n < self.m and (self.block_cols % self.m or self.cols % self.m):
            raise ValueError(f"header Bc={self.block_cols} K={self.cols}: both must be multiples "
                             f"of M={self.m} when N < M")
        v = self.shared_rows
        if v < 1 or (v > 1 and self.block_rows % v):
            raise ValueError(f"header V={v}: must be ≥ 1 and divide Br={self.block_rows}")
        if self.kept_blocks > self.nbr * self.nbc:
            raise ValueError(f"header kept_blocks={self.kept_blocks} exceeds the "
                             f"{self.nbr}×{self.nbc} blocks")


def _geometry(h: HybridHeader, block_row: np.ndarray, block_col: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per kept block: rows, values per row and index runs (rows sharing one selection)."""
    n, m = h.group
    rows = np.minimum(h.block_rows, h.rows - block_row.astype(np.int64) * h.block_rows)
    width = np.minimum(h.block_cols, h.cols - block_col.astype(np.int64) * h.block_cols)
    per_row = width // m * n
    runs = -(-rows // h.shared_rows)
    return rows, per_row, runs


def _sizes(h: HybridHeader, block_row: np.ndarray, block_col: np.ndarray,
           int8: bool) -> tuple[int, int, int]:
    """(bytes before the values, value count, index count) for these kept blocks."""
    rows, per_row, runs = _geometry(h, block_row, block_col)
    fixed = HEADER.size + 4 * (h.nbr + 1) + 4 * h.kept_blocks + (4 * h.rows if int8 else 0)
    values = int((rows * per_row).sum())
    indices = int((runs * per_row).sum()) if index_bits(h.n, h.m) else 0
    return fixed, values, indices


def payload_size(h: HybridHeader, block_row: np.ndarray, block_col: np.ndarray,
                 int8: bool) -> int:
    """Exact payload bytes (docs/format.md): header, pointers, columns, scales, values, bits."""
    fixed, values, indices = _sizes(h, block_row, block_col, int8)
    return fixed + values * (1 if int8 else 4) + -(-index_bits(h.n, h.m) * indices // 8)


# --------------------------------------------------------------------------- int8 weights

def quantize_rows(matrix: np.ndarray, min_scales: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel int8: scale = max|w|/127 per row (1.0 for an all-zero row),
    raised to ``min_scales`` where given; q = nearbyint(w / scale) in −127 … 127.
    Returns (q int8 (R, K), scales float32 (R,))."""
    w = np.asarray(matrix, dtype=np.float64).reshape(len(matrix), -1)
    peak = np.abs(w).max(axis=1) if w.size else np.zeros(len(w))
    scales64 = np.where(peak > 0, peak / 127.0, 1.0)
    if min_scales is not None:
        scales64 = np.maximum(scales64, np.asarray(min_scales, np.float64))
    scales = scales64.astype(np.float32)
    q = np.clip(np.rint(w / scales.astype(np.float64)[:, None]), -127, 127).astype(np.int8)
    return q, scales


def encode_dense_int8(matrix: np.ndarray, min_scales: np.ndarray | None = None) -> bytes:
    """The ``DENSE_I8`` payload: f32 scale[R], then i8 q row-major (see :func:`quantize_rows`)."""
    q, scales = quantize_rows(matrix, min_scales)
    return scales.astype("<f4").tobytes() + q.tobytes()


def decode_dense_int8(payload: bytes, dims: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(q int8 (R, K), scales float32 (R,)) of a ``DENSE_I8`` payload; checks size and scales."""
    rows, cols = matrix_shape(dims)
    if len(payload) != 4 * rows + rows * cols:
        raise ValueError(f"size {len(payload)} is not 4·Cout + ∏dims = {4 * rows + rows * cols}")
    scales = np.frombuffer(payload, "<f4", rows).astype(np.float32)
    _check_scales(scales)
    q = np.frombuffer(payload, np.int8, rows * cols, 4 * rows).reshape(rows, cols)
    if (q == -128).any():
        raise ValueError(f"q[{int(np.argmax(q.ravel() == -128))}] is −128, outside −127 … 127")
    return q, scales


def _check_scales(scales: np.ndarray) -> None:
    bad = ~(np.isfinite(scales) & (scales > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"scales[{i}] = {float(scales[i])!r} is not positive and finite")


# --------------------------------------------------------------------------- hybrid encoding

def check_finite(values: np.ndarray) -> None:
    """Float weights and biases must be finite: a NaN or infinite weight is a broken model, and
    its result would depend on the kernel (the runtime's reference kernels skip a conv's zero
    padding, the optimised ones multiply it: 0 · inf = NaN, as torch)."""
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"value {int(bad[0])} is {values.flat[bad[0]]}, expected finite "
                         "(the model holds a NaN or infinite weight: fix or re-export it)")


def block_mask(matrix: np.ndarray, block_rows: int, block_cols: int) -> np.ndarray:
    """(nbr, nbc) bool: which Br × Bc blocks (edge blocks partial) hold any non-zero."""
    nz = np.asarray(matrix) != 0
    rows, cols = nz.shape
    nbr, nbc = -(-rows // block_rows), -(-cols // block_cols)
    padded = np.zeros((nbr * block_rows, nbc * block_cols), bool)
    padded[:rows, :cols] = nz
    return np.asarray(padded.reshape(nbr, block_rows, nbc, block_cols).any(axis=(1, 3)))


def _run_nonzeros(nz: np.ndarray, m: int, shared_rows: int) -> np.ndarray:
    """(runs, K/M, M) bool: non-zero positions of each group, united over each run of V rows."""
    rows, cols = nz.shape
    runs = -(-rows // shared_rows)
    padded = np.zeros((runs * shared_rows, cols), bool)
    padded[:rows] = nz
    return np.asarray(padded.reshape(runs, shared_rows, cols // m, m).any(axis=1))


def nm_violation(matrix: np.ndarray, n: int, m: int, shared_rows: int = 1) -> str | None:
    """None when every group of M columns (per run of ``shared_rows`` rows) holds ≤ N non-zeros,
    else a description of the first group that does not."""
    nz = np.asarray(matrix) != 0
    if n >= m:
        return None
    if nz.shape[1] % m:
        return f"K={nz.shape[1]} is not a multiple of M={m}"
    counts = _run_nonzeros(nz, m, shared_rows).sum(axis=-1)
    bad = np.argwhere(counts > n)
    if not len(bad):
        return None
    run, group = (int(x) for x in bad[0])
    cols = f"columns {group * m}…{group * m + m - 1}"
    rows = (f"row {run}" if shared_rows == 1 else
            f"rows {run * shared_rows}…{min(len(nz), run * shared_rows + shared_rows) - 1}")
    return f"{rows}, group {group} ({cols}) has {int(counts[run, group])} non-zeros; {n}:{m} " \
           f"allows {n}"


def _check_args(rows: int, cols: int, block_rows: int, block_cols: int, n: int, m: int,
                shared_rows: int) -> HybridHeader:
    h = HybridHeader(rows, cols, block_rows, block_cols, n, m, shared_rows, 0)
    h.check()
    return h


def _block_grid(per_group: np.ndarray, h: HybridHeader, kept: np.ndarray, unit_rows: int,
                units: int) -> np.ndarray:
    """Flatten a (units, K/M, N) array (units = rows, or runs of rows) into payload order: kept
    blocks in order, then their units, groups, N entries. ``unit_rows`` rows per unit."""
    n, m = h.group
    per_block_units, block_groups = h.block_rows // unit_rows, h.block_cols // m
    groups = h.cols // m
    grid = np.zeros((h.nbr * per_block_units, h.nbc * block_groups, n), per_group.dtype)
    grid[:units, :groups] = per_group
    grid = grid.reshape(h.nbr, per_block_units, h.nbc, block_groups, n).transpose(0, 2, 1, 3, 4)
    unit_ok = (np.arange(h.nbr * per_block_units) < units).reshape(h.nbr, per_block_units)
    group_ok = (np.arange(h.nbc * block_groups) < groups).reshape(h.nbc, block_groups)
    valid = unit_ok[:, None, :, None] & group_ok[None, :, None, :]
    return grid[kept][valid[kept]].reshape(-1)


def encode_hybrid(matrix: np.ndarray, *, block_rows: int, block_cols: int, n: int, m: int,
                  shared_rows: int = 1, int8: bool = False,
                  min_scales: np.ndarray | None = None) -> bytes:
    """The ``HYBRID_F32`` (or ``HYBRID_I8``, weights quantised by :func:`quantize_rows` with
    ``min_scales``) payload of ``matrix`` (R, K), whose zeros already follow the pattern.
    Raises ValueError naming the first group with too many non-zeros."""
    w = np.asarray(matrix, dtype=np.float32)
    if w.ndim != 2:
        raise ValueError(f"expected a matrix (R, K), got shape {w.shape}")
    rows, cols = w.shape
    h = _check_args(rows, cols, block_rows, block_cols, n, m, shared_rows)
    gn, gm = h.group
    problem = nm_violation(w, gn, gm, shared_rows)
    if problem is not None:
        raise ValueError(f"the zeros do not follow {n}:{m}: {problem}")
    kept = block_mask(w, block_rows, block_cols)
    groups = cols // gm
    nz = _run_nonzeros(w != 0, gm, shared_rows)
    # Each group keeps its non-zeros, then the lowest unused positions, in increasing order.
    key = np.where(nz, 0, gm) + np.arange(gm)
    sel = np.sort(np.argsort(key, axis=-1, kind="stable")[..., :gn], axis=-1)
    row_sel = sel[np.arange(rows) // shared_rows]
    if int8:
        q, scales = quantize_rows(w, min_scales)
        source: np.ndarray = q
    else:
        source = w
    values = np.take_along_axis(source.reshape(rows, groups, gm), row_sel, axis=-1)
    h = HybridHeader(rows, cols, block_rows, block_cols, gn, gm, shared_rows, int(kept.sum()))
    parts = [HEADER.pack(h.rows, h.cols, h.block_rows, h.block_cols, h.n, h.m, h.shared_rows,
                         h.kept_blocks),
             np.concatenate([[0], np.cumsum(kept.sum(axis=1))]).astype("<u4").tobytes(),
             np.nonzero(kept)[1].astype("<u4").tobytes()]
    if int8:
        parts.append(scales.astype("<f4").tobytes())
    flat = _block_grid(values, h, kept, 1, rows)
    parts.append(flat.astype(np.int8 if int8 else "<f4").tobytes())
    bits = index_bits(h.n, h.m)
    if bits:
        idx = _block_grid(sel, h, kept, shared_rows, len(sel))
        stream = (idx[:, None] >> np.arange(bits)) & 1
        parts.append(np.packbits(stream.astype(np.uint8).reshape(-1), bitorder="little").tobytes())
    return b"".join(parts)


def hybrid_size(matrix: np.ndarray, *, block_rows: int, block_cols: int, n: int, m: int,
                shared_rows: int = 1, int8: bool = False) -> int:
    """Bytes :func:`encode_hybrid` would write for ``matrix`` (the N:M fit is not checked)."""
    rows, cols = np.asarray(matrix).shape
    h = _check_args(rows, cols, block_rows, block_cols, n, m, shared_rows)
    kept = block_mask(matrix, block_rows, block_cols)
    r, c = np.nonzero(kept)
    h = HybridHeader(rows, cols, block_rows, block_cols, *h.group, shared_rows, len(r))
    return payload_size(h, r, c, int8)


# --------------------------------------------------------------------------- hybrid reading

@dataclass
class HybridTensor:
    """A parsed, validated hybrid payload (arrays view the payload bytes)."""

    header: HybridHeader
    block_row_ptr: np.ndarray
    block_col: np.ndarray
    scales: np.ndarray | None
    values: np.ndarray
    indices: np.ndarray

    @property
    def kept_block_rows(self) -> np.ndarray:
        """Block-row of each kept block."""
        return np.repeat(np.arange(self.header.nbr), np.diff(self.block_row_ptr))

    def dense_q(self) -> np.ndarray:
        """The stored values (f32, or int8 q) as a dense (R, K) matrix, zeros elsewhere."""
        h, kept = self.header, np.zeros((self.header.nbr, self.header.nbc), bool)
        kept[self.kept_block_rows, self.block_col] = True
        n, m = h.group
        rows, groups = h.rows, h.cols // m
        runs = -(-rows // h.shared_rows)
        units = np.arange(runs * groups * n).reshape(runs, groups, n)
        order = _block_grid(units, h, kept, h.shared_rows, runs)
        sel = np.zeros(runs * groups * n, np.int64)
        if index_bits(h.n, h.m):
            sel[order] = self.indices
        sel = sel.reshape(runs, groups, n)[np.arange(rows) // h.shared_rows]
        cols = (np.arange(groups) * m)[None, :, None] + sel
        row_ids = np.broadcast_to(np.arange(rows)[:, None, None], cols.shape)
        slot = np.arange(rows * groups * n).reshape(rows, groups, n)
        order = _block_grid(slot, h, kept, 1, rows)
        out = np.zeros((rows, h.cols), self.values.dtype)
        out[row_ids.reshape(-1)[order], cols.reshape(-1)[order]] = self.values
        return out

    def dense(self) -> np.ndarray:
        """The weight as a dense float32 (R, K) matrix (int8: scale · q)."""
        d = self.dense_q()
        if self.scales is None:
            return d.astype(np.float32)
        return (d.astype(np.float32) * self.scales[:, None]).astype(np.float32)


def parse_hybrid(payload: bytes, dims: Sequence[int], int8: bool) -> HybridTensor:
    """Validate a hybrid payload for a weight of logical ``dims``: header constraints, pointers
    (monotone, ending at kept_blocks), block columns (strictly increasing per block-row, < nbc),
    scales (> 0, finite), exact size, indices (< M, strictly increasing per group), int8 values
    (−127 … 127). Raises ValueError naming the field."""
    if len(payload) < HEADER.size:
        raise ValueError(f"size {len(payload)} is smaller than the {HEADER.size}-byte hybrid "
                         "header")
    h = HybridHeader(*HEADER.unpack_from(payload, 0))
    rows, cols = matrix_shape(dims)
    if (h.rows, h.cols) != (rows, cols):
        raise ValueError(f"header R={h.rows} K={h.cols} do not match dims {tuple(dims)} "
                         f"(R={rows}, K={cols})")
    h.check()
    if h.n < h.m and int(dims[-1]) % h.m:
        raise ValueError(f"K = {h.cols} has taps of {dims[-1]} columns (the last weight dim), "
                         f"not a multiple of M = {h.m}")
    nbr = h.nbr
    fixed = HEADER.size + 4 * (nbr + 1) + 4 * h.kept_blocks + (4 * h.rows if int8 else 0)
    if fixed > len(payload):
        raise ValueError(f"size {len(payload)} is smaller than the {fixed} bytes of header, "
                         "block_row_ptr, block_col" + (" and scales" if int8 else ""))
    ptr = np.frombuffer(payload, "<u4", nbr + 1, HEADER.size).astype(np.int64)
    if ptr[0] != 0 or ptr[-1] != h.kept_blocks:
        raise ValueError(f"block_row_ptr[0] = {ptr[0]} and block_row_ptr[{nbr}] = {ptr[-1]} "
                         f"must be 0 and kept_blocks = {h.kept_blocks}")
    step = np.diff(ptr)
    if (step < 0).any():
        i = int(np.argmax(step < 0))
        raise ValueError(f"block_row_ptr[{i + 1}] = {ptr[i + 1]} is less than "
                         f"block_row_ptr[{i}] = {ptr[i]}")
    col = np.frombuffer(payload, "<u4", h.kept_blocks, HEADER.size + 4 * (nbr + 1))
    if (col >= h.nbc).any():
        i = int(np.argmax(col >= h.nbc))
        raise ValueError(f"block_col[{i}] = {col[i]} is not below nbc = {h.nbc}")
    same_row = np.diff(np.repeat(np.arange(nbr), step)) == 0
    if (same_row & (np.diff(col.astype(np.int64)) <= 0)).any():
        i = int(np.argmax(same_row & (np.diff(col.astype(np.int64)) <= 0)))
        raise ValueError(f"block_col[{i + 1}] = {col[i + 1]} does not increase after "
                         f"block_col[{i}] = {col[i]} within a block-row")
    block_row = np.repeat(np.arange(nbr), step)
    _, nvalues, nindices = _sizes(h, block_row, col, int8)
    bits = index_bits(h.n, h.m)
    expected = fixed + nvalues * (1 if int8 else 4) + -(-bits * nindices // 8)
    if len(payload) != expected:
        raise ValueError(f"size {len(payload)} is not the {expected} bytes the header and "
                         "block lists need")
    scales = None
    at = fixed - (4 * h.rows if int8 else 0)
    if int8:
        scales = np.frombuffer(payload, "<f4", h.rows, at).astype(np.float32)
        try:
            _check_scales(scales)
        except ValueError as e:
            raise ValueError(str(e)) from None
        at += 4 * h.rows
    values = np.frombuffer(payload, np.int8 if int8 else "<f4", nvalues, at)
    if int8 and (values == -128).any():
        raise ValueError(f"value {int(np.argmax(values == -128))} is −128, outside −127 … 127")
    at += nvalues * (1 if int8 else 4)
    indices = np.zeros(0, np.int64)
    if bits:
        raw = np.unpackbits(np.frombuffer(payload, np.uint8, offset=at), bitorder="little")
        if raw[bits * nindices:].any():
            raise ValueError("the padding bits after the last index are not zero")
        indices = (raw[:bits * nindices].reshape(-1, bits).astype(np.int64)
                   << np.arange(bits)).sum(axis=1)
        if (indices >= h.m).any():
            i = int(np.argmax(indices >= h.m))
            raise ValueError(f"index {i} = {indices[i]} is not below M = {h.m}")
        per_group = indices.reshape(-1, h.n)
        if h.n > 1 and (np.diff(per_group, axis=1) <= 0).any():
            g = int(np.argmax((np.diff(per_group, axis=1) <= 0).any(axis=1)))
            raise ValueError(f"indices of group {g} ({per_group[g].tolist()}) are not strictly "
                             "increasing")
    return HybridTensor(h, ptr, col.astype(np.int64), scales,
                        values.astype(np.int8 if int8 else np.float32), indices)


def decode_hybrid(payload: bytes, dims: Sequence[int], int8: bool = False) -> np.ndarray:
    """The dense float32 (R, K) matrix of a hybrid payload (int8: dequantised, scale · q)."""
    return parse_hybrid(payload, dims, int8).dense()
