"""The hybrid sparsity pattern of CRISP (arXiv 2311.14272) as pure tensor mathematics.

Given weights and saliency scores, compute pruning masks; given a pruned weight, check
its pattern. No training happens here: ``crisp_edge.pruning.engine`` drives the schedule and calls
:func:`hybrid_masks` each step; tests check results with :func:`check_hybrid`. (The packer's
pattern detection is :func:`crisp_edge.packing.patterns.choose_encoding`, which also weighs bytes.)

Every weight is seen as a matrix W of R = Cout rows by K columns (:func:`to_matrix`; docs/pruning.md#the-pattern):
a conv (Cout, Cin/groups, kh, kw) has K = kh·kw·Cin/groups with columns ordered (kh, kw, cin),
a linear layer is (Cout, Cin). W is tiled into Br × Bc blocks, row-major; edge blocks may be
partial and are scored and masked like the others. :func:`block_ids` is the single map between
element positions and blocks; scoring, areas, liveness and mask expansion all go through it, so
scores and masks can never disagree about which block an element belongs to (a defect of the
reference code, docs/pruning.md#saliency).

Ties are always broken towards the lower index, so every result is deterministic.

>>> pattern = Pattern(n=2, m=4, block_rows=16, block_cols=16)
>>> layers = find_prunable_layers(model, torch.randn(1, 3, 32, 32), pattern)  # doctest: +SKIP
>>> masks = hybrid_masks(layers, weights, saliency, pattern, 0.8, previous)    # doctest: +SKIP
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from crisp_edge.pruning.allocation import (Allocation, allocate, check_block_inputs,
                                           round_half_up)
from crisp_edge.errors import ArgumentError
from crisp_edge.format.pattern import Pattern

Kind = Literal["conv", "linear"]
Role = Literal["first", "depthwise", "classifier", "body"]


def parse_nm(text: str) -> tuple[int, int]:
    """``"2:4"`` → ``(2, 4)``; an ArgumentError (a ValueError) names what was wrong."""
    parts = text.strip().split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ArgumentError(f"N:M must look like 2:4 (two positive integers), got {text!r}")
    n, m = int(parts[0]), int(parts[1])
    if n < 1 or m < 1:
        raise ArgumentError(f"N:M {n}:{m} is invalid: N and M must be at least 1")
    if n > m:
        raise ArgumentError(f"N:M {n}:{m} is invalid: N must be ≤ M")
    return n, m


def parse_block(text: str) -> tuple[int, int]:
    """``"16x16"`` → ``(16, 16)`` (rows × columns); also accepts ``×`` and ``X``."""
    parts = text.strip().lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ArgumentError(f"block shape must look like 16x16 (rows x columns), got {text!r}")
    rows, cols = int(parts[0]), int(parts[1])
    if rows < 1 or cols < 1:
        raise ArgumentError(f"block {rows}x{cols} is invalid: both sides must be at least 1")
    return rows, cols


# ----------------------------------------------------------------------------- matrix view

def to_matrix(weight: torch.Tensor) -> torch.Tensor:
    """W as Cout × K: conv columns ordered (kh, kw, cin) (OHWI), linear unchanged (docs/pruning.md#the-pattern)."""
    if weight.dim() == 4:
        return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)
    if weight.dim() == 2:
        return weight
    raise ArgumentError(f"expected a conv (4-D) or linear (2-D) weight, got shape "
                        f"{tuple(weight.shape)}")


def from_matrix(mat: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`to_matrix` for a weight (or mask) of ``shape``."""
    shape = tuple(shape)
    if len(shape) == 4:
        cout, cin, kh, kw = shape
        return mat.reshape(cout, kh, kw, cin).permute(0, 3, 1, 2).contiguous()
    if len(shape) == 2:
        return mat.reshape(shape)
    raise ArgumentError(f"expected a conv (4-D) or linear (2-D) shape, got {shape}")


# ----------------------------------------------------------------------------- layers

@dataclass
class PrunableLayer:
    """A conv2d/linear layer and which parts of the pattern apply to it (docs/pruning.md#the-pattern)."""

    name: str
    param: str
    kind: Kind
    role: Role
    blocks: bool
    nm: bool
    shape: tuple[int, ...]


def find_prunable_layers(model: nn.Module, example_input: torch.Tensor,
                         pattern: Pattern) -> list[PrunableLayer]:
    """Every Conv2d/Linear executed by one forward pass of ``example_input``, in execution order.

    Rules (docs/pruning.md#the-pattern): the first conv executed whose in_channels equals the input's channel count
    is ``first`` and dense; depthwise convs (groups == in_channels > 1) are dense; the last linear
    executed is the ``classifier`` (N:M only, no blocks); every other layer is ``body`` (blocks and
    N:M). A layer whose per-group input channel count is not a multiple of M is exempt from N:M.
    A grouped conv (1 < groups < in_channels) is a body layer on its Cout × (kh·kw·Cin/groups)
    matrix, i.e. the matrix of its weight tensor as stored. Layers with neither blocks nor N:M are
    listed (for reports) but never masked. Modules that do not run are not listed; a module run
    twice is listed once. BatchNorm statistics are untouched (the pass runs in eval mode).
    """
    pattern.validate()
    names: dict[nn.Conv2d | nn.Linear, str] = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            names.setdefault(module, name)
    order: list[nn.Conv2d | nn.Linear] = []

    def record(module: nn.Module, _inputs: object, _output: object) -> None:
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module not in order:
            order.append(module)

    handles = [module.register_forward_hook(record) for module in names]
    modes = {module: module.training for module in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training

    input_channels = example_input.shape[1] if example_input.dim() >= 2 else -1
    linears = [i for i, module in enumerate(order) if isinstance(module, nn.Linear)]
    last_linear = linears[-1] if linears else -1
    first_seen = False
    layers = []
    for i, module in enumerate(order):
        name = names[module]
        param = f"{name}.weight" if name else "weight"
        shape = tuple(module.weight.shape)
        if isinstance(module, nn.Conv2d):
            fan_in = module.in_channels // module.groups
            nm_ok = fan_in % pattern.m == 0
            if not first_seen and module.in_channels == input_channels:
                first_seen = True
                layer = PrunableLayer(name, param, "conv", "first", False, False, shape)
            elif module.groups == module.in_channels and module.groups > 1:
                layer = PrunableLayer(name, param, "conv", "depthwise", False, False, shape)
            else:
                layer = PrunableLayer(name, param, "conv", "body", True, nm_ok, shape)
        else:
            nm_ok = module.in_features % pattern.m == 0
            role: Role = "classifier" if i == last_linear else "body"
            layer = PrunableLayer(name, param, "linear", role, role == "body", nm_ok, shape)
        layers.append(layer)
    return layers


# ----------------------------------------------------------------------------- selection

def _check_scores(scores: torch.Tensor, what: str) -> torch.Tensor:
    scores = scores.detach().cpu()
    if torch.isnan(scores).any():
        raise ArgumentError(f"{what} contains NaN; saliency must be a finite number per weight")
    return scores.to(torch.float64)


def _top_k_mask(scores: torch.Tensor, k: int, alive: torch.Tensor | None = None) -> torch.Tensor:
    """Bool mask of the k best entries along the last dim: more ``alive`` first, then higher
    score, then lower index (two stable sorts = a lexicographic order). This is the definition;
    :func:`_top_k_mask_small` computes the same mask faster for short groups."""
    order = torch.argsort(-scores, dim=-1, stable=True)
    if alive is not None:
        demote = -alive.to(torch.float64).gather(-1, order)
        order = order.gather(-1, torch.argsort(demote, dim=-1, stable=True))
    mask = torch.zeros(scores.shape, dtype=torch.bool)
    return mask.scatter_(-1, order[..., :k], True)


SMALL_GROUP = 8  # up to this group width, ranking by pairwise comparison beats two argsorts


def _top_k_mask_small(scores: torch.Tensor, k: int,
                      alive: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`_top_k_mask` by counting, for each entry, the entries that precede it in the same
    lexicographic order (more alive, higher score, lower index); an entry is kept when fewer than
    k precede it. O(m²) element-wise passes instead of sorts: for m ≤ 8 several times faster, and
    equal by construction (the order is total, so ranks are 0 … m − 1)."""
    m = scores.shape[-1]
    rank = torch.zeros(scores.shape, dtype=torch.int8 if m < 128 else torch.int32)
    for j in range(m):
        sj = scores[..., j:j + 1]
        ahead = sj > scores
        ahead[..., j + 1:] |= sj == scores[..., j + 1:]  # ties: the lower index goes first
        ahead[..., j] = False
        if alive is not None:
            aj = alive[..., j:j + 1]
            ahead = (aj > alive) | ((aj == alive) & ahead)
        rank += ahead
    return rank < k


def _run_ids(rows: int, shared_rows: int, block_rows: int) -> torch.Tensor:
    """Run index of each row: runs of ``shared_rows`` rows that never cross a block-row."""
    r = torch.arange(rows)
    per_block = -(-block_rows // shared_rows)
    return (r // block_rows) * per_block + (r % block_rows) // shared_rows


def nm_mask(scores_mat: torch.Tensor, n: int, m: int, shared_rows: int = 1, block_rows: int = 16,
            alive: torch.Tensor | None = None) -> torch.Tensor:
    """N:M along K: in each group of m consecutive columns keep the n highest-score entries per
    row (ties → lower column). With ``shared_rows`` = V > 1, each run of V consecutive rows inside a
    block-row (the last run at the matrix edge may be shorter) shares one selection, chosen by the
    sum of its rows' scores (docs/pruning.md#row-shared-nm). ``alive`` (bool, same shape) restricts the choice to alive
    entries: a group keeps the top n among its alive entries and never re-enables a dead one.
    """
    Pattern(n, m, block_rows, m, shared_rows).validate()
    rows, cols = scores_mat.shape
    if cols % m:
        raise ArgumentError(f"N:M needs K to be a multiple of M={m}, got K={cols}; such a layer "
                            f"is exempt from N:M")
    scores = _check_scores(scores_mat, "scores").reshape(rows, cols // m, m)
    live = None if alive is None else alive.detach().cpu().bool().reshape(rows, cols // m, m)
    if live is not None and bool(live.all()):
        live = None  # nothing is dead yet (step 0): the same choice without the alive key
    top_k = _top_k_mask_small if m <= SMALL_GROUP else _top_k_mask
    if shared_rows > 1:
        run = _run_ids(rows, shared_rows, block_rows)
        runs = int(run[-1]) + 1 if rows else 0
        run_scores = torch.zeros(runs, cols // m, m, dtype=torch.float64).index_add_(0, run, scores)
        run_live = None
        if live is not None:
            run_live = torch.zeros(runs, cols // m, m, dtype=torch.float64)
            run_live.index_add_(0, run, live.to(torch.float64))
        if run_live is not None and bool(((run_live > 0).sum(dim=-1) <= n).all()):
            return live.reshape(rows, cols).clone()  # every alive column fits: nothing to choose
        keep = top_k(run_scores, n, run_live)[run]
    else:
        if live is not None and bool((live.sum(dim=-1) <= n).all()):
            return live.reshape(rows, cols).clone()  # after step 0 N:M is settled: a fast path
        keep = top_k(scores, n, live)
    if live is not None:
        keep &= live
    return keep.reshape(rows, cols)


# ----------------------------------------------------------------------------- blocks

def block_ids(rows: int, cols: int, block_rows: int, block_cols: int) -> torch.Tensor:
    """(rows, cols) int64: the row-major flat index of the block holding each element; block
    (i, j) covers rows [i·Br, (i+1)·Br) and columns [j·Bc, (j+1)·Bc), cut at the matrix edge.
    The one map between elements and blocks, used by scoring and masking alike. Read-only: the
    result is cached per shape (every step asks for the same few shapes)."""
    return _block_ids(rows, cols, block_rows, block_cols)


@functools.lru_cache(maxsize=256)
def _block_ids(rows: int, cols: int, block_rows: int, block_cols: int) -> torch.Tensor:
    n_block_cols = -(-cols // block_cols)
    return ((torch.arange(rows) // block_rows)[:, None] * n_block_cols
            + (torch.arange(cols) // block_cols)[None, :])


def _grid(rows: int, cols: int, block_rows: int, block_cols: int) -> tuple[int, int]:
    return -(-rows // block_rows), -(-cols // block_cols)


def block_scores(scores_mat: torch.Tensor, block_rows: int, block_cols: int) -> torch.Tensor:
    """Σ scores over each block, (n_block_rows, n_block_cols) float64; rows are output-channel
    blocks. Partial edge blocks sum what exists (docs/pruning.md#saliency: Σ S, not W²·G)."""
    rows, cols = scores_mat.shape
    grid = _grid(rows, cols, block_rows, block_cols)
    ids = block_ids(rows, cols, block_rows, block_cols).reshape(-1)
    flat = _check_scores(scores_mat, "scores").reshape(-1)
    return torch.bincount(ids, weights=flat, minlength=grid[0] * grid[1]).reshape(grid)


def block_areas(rows: int, cols: int, block_rows: int, block_cols: int) -> torch.Tensor:
    """Element count of each block, (n_block_rows, n_block_cols); partial edge blocks smaller."""
    heights = torch.full((-(-rows // block_rows),), block_rows, dtype=torch.int64)
    widths = torch.full((-(-cols // block_cols),), block_cols, dtype=torch.int64)
    if rows % block_rows:
        heights[-1] = rows % block_rows
    if cols % block_cols:
        widths[-1] = cols % block_cols
    return heights[:, None] * widths[None, :]


def expand_block_mask(block_mask: torch.Tensor, shape_rk: Sequence[int], block_rows: int,
                      block_cols: int) -> torch.Tensor:
    """(R, K) bool: each element takes its block's decision (inverse of :func:`block_scores`)."""
    rows, cols = shape_rk
    grid = _grid(rows, cols, block_rows, block_cols)
    if tuple(block_mask.shape) != grid:
        raise ArgumentError(f"block mask has shape {tuple(block_mask.shape)}, but a {rows}x{cols} "
                            f"matrix in {block_rows}x{block_cols} blocks needs {grid}")
    return block_mask.cpu().bool().reshape(-1)[block_ids(rows, cols, block_rows, block_cols)]


def _check_ratio(keep_ratio: float) -> None:
    if not 0.0 < keep_ratio <= 1.0:
        raise ArgumentError(f"keep ratio {keep_ratio} must be in (0, 1]")


def global_block_budget(scores: Mapping[str, torch.Tensor], areas: Mapping[str, torch.Tensor],
                        alive: Mapping[str, torch.Tensor], keep_ratio: float) -> dict[str, int]:
    """Blocks to keep per block-row for each layer, from ONE threshold over all layers (docs/pruning.md#the-pattern).

    1. Each alive block's score is normalised to a full block, score × A_full / area (A_full = the
       largest block area present; a common factor, so the ranking is by score per element): a
       partial edge block is not penalised for being small.
    2. Overall keep = round(keep_ratio × all blocks of these layers, dead ones included).
    3. The threshold t is the normalised score of the last kept block in the descending ranking
       of all alive blocks (t = −∞ if every alive block fits, +∞ if nothing is to be kept).
    4. count_L = #(alive blocks of L with normalised score ≥ t) — ``≥``, not the reference code's
       strict ``>`` that pruned one block-column too many at every step (docs/pruning.md#saliency).
    5. k_L = clamp(round(count_L / n_block_rows_L), 1, alive blocks in L's fullest block-row):
       never 0, so no layer loses a whole block-row, not even one with a single block-column.
    Ties at t may keep a few more blocks than asked; rounding per layer moves each layer by at
    most half a block per block-row.
    """
    _check_ratio(keep_ratio)
    if not scores:
        return {}
    alive = check_block_inputs(scores, areas, alive, keep_ratio)
    areas = {k: v.detach().cpu().to(torch.float64) for k, v in areas.items()}
    full_area = max(float(a.max()) for a in areas.values())
    normalised = {key: _check_scores(score, key) * full_area / areas[key]
                  for key, score in scores.items()}
    ranked = torch.cat([normalised[k][alive[k]] for k in normalised])
    total = sum(s.numel() for s in scores.values())
    n_keep = round_half_up(keep_ratio * total)
    if n_keep >= ranked.numel():
        threshold = -math.inf
    elif n_keep == 0:
        threshold = math.inf
    else:
        threshold = float(torch.sort(ranked, descending=True).values[n_keep - 1])
    budget = {}
    for key, norm in normalised.items():
        live = alive[key]
        count = int(((norm >= threshold) & live).sum())
        fullest = int(live.sum(dim=1).max())
        budget[key] = min(max(round_half_up(count / norm.shape[0]), 1), fullest)
    return budget


def balanced_block_mask(scores: torch.Tensor, keep_per_row: int,
                        alive: torch.Tensor) -> torch.Tensor:
    """Keep exactly ``keep_per_row`` alive blocks in every block-row: the highest-scoring ones,
    ties → lower column (balanced, docs/pruning.md#the-pattern). Dead blocks never come back: a block-row with fewer
    alive blocks than asked is an error, not a resurrection."""
    live = alive.cpu().bool()
    if scores.shape != live.shape:
        raise ArgumentError(f"block scores {tuple(scores.shape)} and alive mask "
                            f"{tuple(live.shape)} differ in shape")
    if keep_per_row < 1:
        raise ArgumentError(f"keep_per_row={keep_per_row}: every block-row keeps at least 1 block")
    per_row = live.sum(dim=1)
    if int(per_row.min()) < keep_per_row:
        row = int(torch.argmin(per_row))
        raise ArgumentError(f"block-row {row} has {int(per_row[row])} alive blocks but "
                            f"{keep_per_row} are to be kept; masks are cumulative, so previous "
                            f"masks must be balanced and the keep ratio must not rise")
    return _top_k_mask(_check_scores(scores, "block scores"), keep_per_row, live) & live


def hybrid_masks(layers: Sequence[PrunableLayer], weights: Mapping[str, torch.Tensor],
                 saliency: Mapping[str, torch.Tensor], pattern: Pattern, keep_ratio: float,
                 previous: Mapping[str, torch.Tensor] | None,
                 allocation: Allocation | None = None,
                 nm_scores: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Weight-shaped bool masks (keyed by ``param``) for one step of the schedule (docs/pruning.md#the-pattern).

    Blocks: a block is alive if any element of it is kept in ``previous``; its score is Σ S over
    its alive elements; ``allocation`` over all block layers gives k_L (:mod:`crisp_edge.pruning.allocation`;
    None = the original single global threshold, :func:`global_block_budget`); the layer keeps
    the k_L best alive blocks of every block-row (:func:`balanced_block_mask`). N:M: inside kept
    blocks (and on the classifier) each group keeps the top n of its still-alive elements by S,
    or by ``nm_scores`` when given (blocks by saliency, N:M by magnitude: docs/pruning.md).
    Masks are cumulative: nothing dead in ``previous`` comes back. Since step 0 (keep_ratio 1.0
    gives N:M only) already leaves exactly n per group, the N:M positions are in effect fixed after
    step 0; only block decisions change later. Block layers exempt from N:M keep kept blocks dense;
    dense layers get all-True masks. ``weights`` are only checked for shape: the decisions use S.
    """
    pattern.validate()
    _check_ratio(keep_ratio)
    br, bc = pattern.block_rows, pattern.block_cols
    masks: dict[str, torch.Tensor] = {}
    score_mats: dict[str, torch.Tensor] = {}
    kept: dict[str, torch.Tensor] = {}
    b_scores, b_areas, b_alive = {}, {}, {}
    for layer in layers:
        if not (layer.blocks or layer.nm):
            masks[layer.param] = torch.ones(layer.shape, dtype=torch.bool)
            continue
        sources = [("weights", weights), ("saliency", saliency)]
        if nm_scores is not None and layer.nm:
            sources.append(("nm_scores", nm_scores))
        for what, source in sources:
            if layer.param not in source:
                raise ArgumentError(f"{what} has no entry for {layer.param}")
            if tuple(source[layer.param].shape) != layer.shape:
                raise ArgumentError(f"{what}[{layer.param}] has shape "
                                    f"{tuple(source[layer.param].shape)}, expected {layer.shape}")
        s = _check_scores(to_matrix(saliency[layer.param].detach()), f"saliency[{layer.param}]")
        rows, cols = s.shape
        if previous is not None and layer.param in previous:
            prev = to_matrix(previous[layer.param].detach().cpu().bool())
        else:
            prev = torch.ones(rows, cols, dtype=torch.bool)
        score_mats[layer.param], kept[layer.param] = s, prev
        if layer.blocks:
            b_scores[layer.param] = block_scores(s * prev, br, bc)
            b_areas[layer.param] = block_areas(rows, cols, br, bc)
            b_alive[layer.param] = block_scores(prev.to(torch.float64), br, bc) > 0
    allocation = allocation or Allocation("global")
    if allocation.rule == "global" and allocation.floor == 0.0:
        budget = global_block_budget(b_scores, b_areas, b_alive, keep_ratio)
    else:
        budget = allocate(b_scores, b_areas, b_alive, keep_ratio, allocation)
    for layer in layers:
        if layer.param not in kept:
            continue
        s, keep = score_mats[layer.param], kept[layer.param]
        if layer.blocks:
            chosen = balanced_block_mask(b_scores[layer.param], budget[layer.param],
                                         b_alive[layer.param])
            keep = keep & expand_block_mask(chosen, keep.shape, br, bc)
        if layer.nm:
            if nm_scores is not None:
                s = _check_scores(to_matrix(nm_scores[layer.param].detach()),
                                  f"nm_scores[{layer.param}]")
            keep = nm_mask(s, pattern.n, pattern.m, pattern.shared_rows, br, alive=keep)
        masks[layer.param] = from_matrix(keep, layer.shape)
    return masks


# ----------------------------------------------------------------------------- checking

def check_hybrid(mask_or_weight: torch.Tensor, pattern: Pattern, *, nm: bool = True,
                 blocks: bool = True) -> list[str]:
    """Violations of ``pattern`` by a weight-shaped tensor (nonzero = kept); [] if it conforms.

    N:M (when ``nm`` and n < m): no group of m columns keeps more than n entries in a row — with
    shared_rows = V, in the union of its run's rows (a zero at a shared position is fine).
    Blocks (when ``blocks``): every block-row keeps the same number of nonzero blocks (balance);
    zeros inside a kept block are fine.
    """
    pattern.validate()
    n, m, br, bc = pattern.n, pattern.m, pattern.block_rows, pattern.block_cols
    kept = to_matrix(mask_or_weight.detach().cpu()) != 0
    rows, cols = kept.shape
    problems = []
    if nm and n < m:
        if cols % m:
            problems.append(f"N:M {n}:{m}: K={cols} is not a multiple of M={m}")
        else:
            groups = kept.reshape(rows, cols // m, m).to(torch.int32)
            unit = "row"
            if pattern.shared_rows > 1:
                run = _run_ids(rows, pattern.shared_rows, br)
                shared = torch.zeros(int(run[-1]) + 1 if rows else 0, cols // m, m,
                                     dtype=torch.int32)
                groups = (shared.index_add_(0, run, groups) > 0).to(torch.int32)
                unit = f"run of {pattern.shared_rows} rows"
            bad = (groups.sum(dim=-1) > n).nonzero()
            if bad.numel():
                where, group = int(bad[0, 0]), int(bad[0, 1])
                if pattern.shared_rows > 1:
                    where = int(torch.nonzero(run == where)[0])
                problems.append(f"N:M {n}:{m}: {bad.shape[0]} groups keep more than {n} of {m} "
                                f"per {unit} (first at row {where}, columns {group * m}-"
                                f"{group * m + m - 1})")
    if blocks:
        per_row = (block_scores(kept.to(torch.float64), br, bc) > 0).sum(dim=1)
        if per_row.numel() and int(per_row.min()) != int(per_row.max()):
            odd = int(torch.nonzero(per_row != per_row[0])[0])
            problems.append(f"blocks {br}x{bc} unbalanced: block-rows keep {int(per_row.min())} "
                            f"to {int(per_row.max())} blocks (block-row 0 keeps "
                            f"{int(per_row[0])}, block-row {odd} keeps {int(per_row[odd])})")
    return problems


# ----------------------------------------------------------------------------- densities

def layer_density(mask: torch.Tensor) -> float:
    """Kept (nonzero) fraction of a mask or weight."""
    return float((mask != 0).sum()) / max(mask.numel(), 1)


def model_density(masks: Mapping[str, torch.Tensor],
                  layers: Sequence[PrunableLayer]) -> dict[str, Any]:
    """``per_layer`` kept fraction by param (a layer without a mask counts as dense), and the
    kept fraction over ``all`` listed layers, over ``prunable`` ones (blocks or N:M) and over
    ``block_layers``; a fraction over no weights is None."""
    per_layer: dict[str, float] = {}
    totals = {"all": [0, 0], "prunable": [0, 0], "block_layers": [0, 0]}
    for layer in layers:
        size = math.prod(layer.shape)
        mask = masks.get(layer.param)
        kept = size if mask is None else int((mask != 0).sum())
        per_layer[layer.param] = kept / max(size, 1)
        for key, included in (("all", True), ("prunable", layer.blocks or layer.nm),
                              ("block_layers", layer.blocks)):
            if included:
                totals[key][0] += kept
                totals[key][1] += size
    out: dict[str, Any] = {"per_layer": per_layer}
    for key, (kept, size) in totals.items():
        out[key] = kept / size if size else None
    return out


def keep_ratio_for_sparsity(sparsity: float, pattern: Pattern) -> float:
    """Final kept-block ratio ρ = (1 − sparsity) / (N/M) of block layers, so that block layers end
    at the target density (docs/pruning.md#the-pattern: d = kept blocks / all blocks · N/M). Exempt layers (first
    conv, depthwise, classifier) make the whole model somewhat denser than the target."""
    pattern.validate()
    if not 0.0 < sparsity < 1.0:
        raise ArgumentError(f"sparsity {sparsity} must be in (0, 1)")
    floor = 1.0 - pattern.density
    if sparsity < floor - 1e-12:
        raise ArgumentError(f"sparsity {sparsity} is below what N:M {pattern.n}:{pattern.m} alone "
                            f"removes ({floor:g}); raise --sparsity or use --nm "
                            f"{pattern.m}:{pattern.m}")
    return min(1.0, (1.0 - sparsity) / pattern.density)
