"""The sparsity pattern: one type from pruning to the file.

A weight is a matrix W of R = Cout rows by K columns (conv columns ordered kh, kw, cin: OHWI),
tiled into ``block_rows`` × ``block_cols`` blocks. A *hybrid* pattern keeps whole blocks (every
block-row keeps the same number: balanced) and, inside a kept block, N of every M consecutive
columns of a row; with ``shared_rows`` = V > 1, V consecutive rows of a block-row share one N:M
choice (the row-shared variant: one activation load feeds V multiply-adds). ``block_cols=None``
is N:M only (one block spans all K); ``n == m`` is block only. docs/pruning.md states the
rules; docs/format.md how each kind is stored.

>>> Pattern(2, 4, 16, 16).validate().density
0.5
>>> str(Pattern(2, 4, 16, None, 4))
'N:M 2:4 V=4'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crisp_edge.errors import ArgumentError


@dataclass(frozen=True)
class Pattern:
    """N:M inside ``block_rows`` × ``block_cols`` blocks, rows sharing in runs of
    ``shared_rows``."""

    n: int = 2
    m: int = 4
    block_rows: int = 16
    block_cols: int | None = 16
    shared_rows: int = 1

    @classmethod
    def of(cls, spec: Any) -> Pattern:
        """A Pattern from itself or a checkpoint's ``pattern`` dict (docs/checkpoint.md)."""
        if isinstance(spec, Pattern):
            return spec
        get: Any = spec.get if isinstance(spec, Mapping) else lambda k, d=None: getattr(spec, k, d)
        try:
            cols = get("block_cols")
            return cls(int(get("n")), int(get("m")), int(get("block_rows")),
                       None if cols is None else int(cols), int(get("shared_rows", 1) or 1))
        except (TypeError, ValueError) as e:
            raise ArgumentError(f"pattern {spec!r} lacks n, m, block_rows or block_cols: "
                                f"{e}") from None

    def validate(self) -> Pattern:
        """Raise an ArgumentError (a ValueError) saying how to fix an inconsistent pattern."""
        n, m, br, bc, v = self.n, self.m, self.block_rows, self.block_cols, self.shared_rows
        if n < 1 or m < 1:
            raise ArgumentError(f"N:M {n}:{m} is invalid: N and M must be at least 1")
        if n > m:
            raise ArgumentError(f"N:M {n}:{m} is invalid: N must be ≤ M")
        if br < 1 or (bc is not None and bc < 1):
            raise ArgumentError(f"block {br}x{bc} is invalid: both sides must be at least 1")
        if bc is not None and bc % m:
            raise ArgumentError(f"block {br}x{bc} does not fit M={m}: the block width must be a "
                                f"multiple of M")
        if v < 1 or br % v:
            raise ArgumentError(f"shared_rows={v} is invalid for block {br}x{bc}: it must be at "
                                f"least 1 and divide the block height {br}")
        return self

    @property
    def density(self) -> float:
        """N/M: the kept fraction inside a kept block."""
        return self.n / self.m

    @property
    def kind(self) -> str:
        """``"nm"``, ``"block"`` or ``"hybrid"``."""
        if self.block_cols is None:
            return "nm"
        return "block" if self.n == self.m else "hybrid"

    def __str__(self) -> str:
        shared = f" V={self.shared_rows}" if self.shared_rows > 1 else ""
        if self.kind == "nm":
            return f"N:M {self.n}:{self.m}{shared}"
        if self.kind == "block":
            return f"block {self.block_rows}x{self.block_cols}"
        return f"hybrid {self.block_rows}x{self.block_cols} {self.n}:{self.m}{shared}"

    def as_dict(self) -> dict[str, int | None]:
        return {"n": self.n, "m": self.m, "block_rows": self.block_rows,
                "block_cols": self.block_cols, "shared_rows": self.shared_rows}

    def layout(self, cols: int) -> dict[str, int]:
        """The :func:`crisp_edge.format.encoding.encode_hybrid` keyword arguments for a matrix of
        ``cols`` columns."""
        n, m = (1, 1) if self.n == self.m else (self.n, self.m)
        return dict(block_rows=self.block_rows, block_cols=self.block_cols or cols, n=n, m=m,
                    shared_rows=self.shared_rows)
