"""Which encoding a weight gets: the pattern its zeros follow and the smallest valid layout.

``choose_encoding`` is ``--pattern auto``: among dense and every candidate pattern the zeros
satisfy (hybrid blocks × N:M, N:M only, block only) it picks the smallest payload and says why.
``encode_weight`` turns a dense float32 weight tensor (OHWI conv or linear) into the chosen
``.crisp`` tensor, float32 or int8. numpy only.

>>> choice = choose_encoding(weight_matrix, tap_cols=64, name="layer4.1.conv2")  # doctest: +SKIP
>>> print(choice)                                                                # doctest: +SKIP
layer4.1.conv2: hybrid 16x16 2:4, density 0.10, 23.1 KiB (dense 230.4 KiB)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from crisp_edge.format import encoding as enc
from crisp_edge import format as fmt
from crisp_edge.format.pattern import Pattern

BLOCK_SHAPES = ((16, 16), (32, 32), (8, 16), (64, 64))
NM_RATIOS = ((2, 4), (1, 4), (2, 8), (4, 8))
NM_ONLY_BLOCK_ROWS = 16  # N:M-only layers still get block-rows, so threads can share them out


def default_candidates() -> list[Pattern]:
    """What ``--pattern auto`` tries: N:M only (4 ratios, per-row and rows sharing in runs of
    4), hybrid (4 block shapes × the same N:M) and block only (4 block shapes)."""
    out = [Pattern(n, m, NM_ONLY_BLOCK_ROWS, None, v) for n, m in NM_RATIOS for v in (1, 4)]
    out += [Pattern(n, m, br, bc, v) for br, bc in BLOCK_SHAPES for n, m in NM_RATIOS
            for v in (1, 4)]
    out += [Pattern(1, 1, br, bc) for br, bc in BLOCK_SHAPES]
    return out


def _layout_problem(pattern: Pattern, cols: int, tap_cols: int | None) -> str | None:
    """Why the format cannot store a K=``cols`` weight as ``pattern`` (None: it can)."""
    n, m, v = pattern.n, pattern.m, pattern.shared_rows
    if v < 1 or pattern.block_rows % v:
        return f"V={v} does not divide the block height {pattern.block_rows}"
    bc = pattern.block_cols or cols
    if n < m and (cols % m or bc % m or (tap_cols or cols) % m):
        return f"K={cols} (taps of {tap_cols or cols}, blocks of {bc}) is not a multiple of M={m}"
    return None


def misfit(matrix: np.ndarray, pattern: Pattern, tap_cols: int | None = None) -> str | None:
    """None when ``matrix``'s zeros follow ``pattern`` and the format allows it for this weight
    (``tap_cols`` = columns per kernel tap, the last weight dim), else why not."""
    problem = _layout_problem(pattern, matrix.shape[1], tap_cols)
    if problem is None and pattern.n < pattern.m:
        problem = enc.nm_violation(matrix, pattern.n, pattern.m, pattern.shared_rows)
    return problem


def encoded_size(matrix: np.ndarray, pattern: Pattern | None, int8: bool = False) -> int:
    """Payload bytes of ``matrix`` as ``pattern`` (None: dense)."""
    rows, cols = matrix.shape
    if pattern is None:
        return rows * cols + 4 * rows if int8 else 4 * rows * cols
    return enc.hybrid_size(matrix, int8=int8, **pattern.layout(cols))


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


@dataclass
class EncodingChoice:
    """How one weight is stored, and why."""

    name: str
    encoding: int
    pattern: Pattern | None
    density: float  # stored weights / all weights (1.0 for dense)
    bytes: int
    dense_bytes: int
    reason: str = ""

    def __str__(self) -> str:
        if self.pattern is None:
            return f"{self.name}: {self.reason or 'dense'} → dense, {_kib(self.bytes)}"
        note = f" ({self.reason})" if self.reason else ""
        return (f"{self.name}: {self.pattern}, density {self.density:.2f}, {_kib(self.bytes)} "
                f"(dense {_kib(self.dense_bytes)}){note}")


def stored_density(matrix: np.ndarray, pattern: Pattern | None) -> float:
    """Fraction of the weights the layout stores (padding zeros of N:M groups included)."""
    if pattern is None:
        return 1.0
    rows, cols = matrix.shape
    lay = pattern.layout(cols)
    kept = enc.block_mask(matrix, lay["block_rows"], lay["block_cols"])
    r, c = np.nonzero(kept)
    h = enc.HybridHeader(rows, cols, lay["block_rows"], lay["block_cols"], lay["n"], lay["m"],
                         lay["shared_rows"], len(r))
    row_counts, per_row, _ = enc._geometry(h, r, c)
    return float((row_counts * per_row).sum()) / (rows * cols)


def _encoding_of(pattern: Pattern | None, int8: bool) -> int:
    if pattern is None:
        return fmt.ENCODING_DENSE_I8 if int8 else fmt.ENCODING_DENSE_F32
    return fmt.ENCODING_HYBRID_I8 if int8 else fmt.ENCODING_HYBRID_F32


def describe(matrix: np.ndarray, pattern: Pattern | None, int8: bool, name: str,
             reason: str = "") -> EncodingChoice:
    """The EncodingChoice record of storing ``matrix`` as ``pattern``."""
    return EncodingChoice(name, _encoding_of(pattern, int8), pattern,
                          stored_density(matrix, pattern), encoded_size(matrix, pattern, int8),
                          encoded_size(matrix, None, int8), reason)


def choose_encoding(matrix: np.ndarray, candidates: Sequence[Pattern] | None = None,
                    int8: bool = False, *, tap_cols: int | None = None,
                    name: str = "weight") -> EncodingChoice:
    """The smallest valid encoding of ``matrix`` (R, K): dense or a candidate pattern its zeros
    satisfy (default :func:`default_candidates`). Ties keep dense, then the earlier candidate."""
    w = np.asarray(matrix)
    if w.ndim != 2:
        raise ValueError(f"{name}: expected a weight matrix (R, K), got shape {w.shape}")
    best = describe(w, None, int8, name)
    if w.size and np.count_nonzero(w) == w.size:
        best.reason = "no zeros"
        return best
    fitting = 0
    nm_fits: dict[tuple[int, int, int], bool] = {}
    for pattern in default_candidates() if candidates is None else candidates:
        if _layout_problem(pattern, w.shape[1], tap_cols) is not None:
            continue
        key = (pattern.n, pattern.m, pattern.shared_rows)
        if key not in nm_fits:
            nm_fits[key] = pattern.n == pattern.m or \
                enc.nm_violation(w, pattern.n, pattern.m, pattern.shared_rows) is None
        if not nm_fits[key]:
            continue
        if pattern.kind == "hybrid" and \
                enc.block_mask(w, pattern.block_rows, pattern.block_cols or w.shape[1]).all():
            continue  # keeps every block: that is N:M only, a candidate of its own
        size = encoded_size(w, pattern, int8)
        if pattern.n < pattern.m or stored_density(w, pattern) < 1.0:
            fitting += 1  # block only "fits" any matrix; it counts when it removes a block
        if size < best.bytes:
            best = describe(w, pattern, int8, name)
    if best.pattern is None:
        zeros = float((w == 0).mean()) if w.size else 0.0
        best.reason = ("no zeros" if zeros == 0 else
                       f"no pattern fits ({zeros:.0%} zeros)" if fitting == 0 else
                       f"no pattern is smaller ({zeros:.0%} zeros)")
    return best


def encode_weight(tensor: fmt.Tensor, pattern: Pattern | None, int8: bool,
                  min_scales: np.ndarray | None = None) -> fmt.Tensor:
    """The ``.crisp`` tensor of a dense float32 weight (OHWI conv or linear) stored as
    ``pattern`` (None: dense), float32 or int8 (weights quantised per output channel, scales
    raised to ``min_scales`` where given)."""
    dims = tensor.dims
    matrix = np.asarray(tensor.dense(), np.float32).reshape(dims[0], -1)
    if pattern is None:
        if not int8:
            return fmt.Tensor(np.ascontiguousarray(tensor.dense(), np.float32))
        return fmt.Tensor.encoded(fmt.ENCODING_DENSE_I8, dims,
                                  enc.encode_dense_int8(matrix, min_scales))
    problem = misfit(matrix, pattern, dims[-1])
    if problem is not None:
        raise ValueError(f"the weight's zeros do not follow {pattern}: {problem}")
    payload = enc.encode_hybrid(matrix, int8=int8, min_scales=min_scales,
                                **pattern.layout(matrix.shape[1]))
    return fmt.Tensor.encoded(_encoding_of(pattern, int8), dims, payload)
