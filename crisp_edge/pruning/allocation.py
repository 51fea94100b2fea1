"""Layer allocation: how one step's kept-block budget is shared among the block layers.

Every rule works on the same inputs — per layer, the block scores Σ S over alive elements, the
block areas and which blocks are alive — and returns k_L, the blocks every block-row of layer L
keeps (rows stay balanced). The rules differ only in the score they rank blocks by:

- ``global``: the raw score per element (score × A_full / area), one threshold over all layers.
  The original CRISP rule; class-aware saliency concentrates in early layers, so at high sparsity
  it drains the last stage to one block per row (docs/prune-findings.md).
- ``normalized``: each layer's per-element scores divided by that layer's mean alive score, so
  every layer enters the ranking at the same scale; a layer keeps more blocks when its scores are
  concentrated in a few blocks and fewer when they are flat.
- ``lamp``: LAMP (Lee et al., ICLR 2021) on blocks: score²/Σ of the squares of the layer's
  blocks ranked at or above it. Scale-free per layer; a layer's best block always scores 1.
- ``uniform``: every layer keeps the same ratio (the target), blocks chosen by score.

``floor`` (0 < floor ≤ target keep ratio) is a lower bound on every layer's kept-block ratio,
for any rule: k_L ≥ ⌈floor · block columns⌉. The rest of the budget is shared by the rule; the
threshold is searched so that the total is as close to the target as the balanced, per-layer
rounding allows (each layer is off by at most half a block per block-row, plus ties at the
threshold). Without a floor every layer still keeps at least one block per block-row.

The default (docs/pruning.md, "Layer allocation") was chosen by the pruning benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from crisp_edge.errors import ArgumentError

RULES = ("global", "normalized", "lamp", "uniform")


def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves up (Python's round() goes to even): every block and
    weight count of the pruning stage rounds this way."""
    return math.floor(x + 0.5)


@dataclass(frozen=True)
class Allocation:
    """A layer-allocation rule and its floor (a kept-block ratio, 0 = none)."""

    rule: str = "lamp"
    floor: float = 0.0

    def validate(self, final_keep: float | None = None) -> Allocation:
        """Raise an ArgumentError naming the flag; ``final_keep`` (the run's ρ) checks that the
        floor leaves the target reachable."""
        if self.rule not in RULES:
            raise ArgumentError(f"unknown --allocation {self.rule!r}; choose one of "
                                f"{', '.join(RULES)}")
        if not (self.floor == 0.0 or 0.0 < self.floor <= 1.0) or math.isnan(self.floor):
            raise ArgumentError(f"--allocation-floor {self.floor} must be in (0, 1] (a kept-block "
                                f"ratio), or 0 for none")
        if final_keep is not None and self.floor > final_keep + 1e-9:
            raise ArgumentError(f"--allocation-floor {self.floor} keeps more blocks per layer "
                                f"than the target sparsity allows (kept-block ratio "
                                f"{final_keep:.4g}); lower the floor to at most {final_keep:.4g} "
                                f"or lower --sparsity")
        return self


def _per_element(scores: torch.Tensor, areas: torch.Tensor, full_area: float) -> torch.Tensor:
    return scores * full_area / areas


def _lamp(scores: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """score²/Σ_{blocks ranked ≥ it} score² over the alive blocks of one layer (ties ranked by
    flat index, so equal scores get distinct but deterministic values)."""
    flat = torch.where(alive, scores, torch.zeros_like(scores)).reshape(-1)
    sq = flat * flat
    order = torch.argsort(-flat, stable=True)
    tail = torch.cumsum(sq[order], 0)  # Σ over the blocks ranked at or above each one
    out = torch.empty_like(flat)
    out[order] = torch.where(tail > 0, sq[order] / tail.clamp_min(1e-300),
                             torch.zeros_like(tail))
    return out.reshape(scores.shape)


def ranking_scores(rule: str, scores: Mapping[str, torch.Tensor],
                   areas: Mapping[str, torch.Tensor],
                   alive: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The per-block values a rule thresholds (float64, same shapes as ``scores``)."""
    full_area = max(float(a.max()) for a in areas.values())
    out = {}
    for key, score in scores.items():
        per = _per_element(score.to(torch.float64), areas[key].to(torch.float64), full_area)
        live = alive[key]
        if rule == "normalized":
            mean = float(per[live].mean()) if live.any() else 0.0
            per = per / mean if mean > 0 else torch.ones_like(per)
        elif rule == "lamp":
            per = _lamp(per, live)
        out[key] = per
    return out


def _counts(values: Mapping[str, torch.Tensor], alive: Mapping[str, torch.Tensor],
            lo: Mapping[str, int], hi: Mapping[str, int], threshold: float) -> dict[str, int]:
    """k_L at a threshold: round(#alive blocks ≥ t / block rows), clamped to [lo, hi]."""
    out = {}
    for key, v in values.items():
        count = int(((v >= threshold) & alive[key]).sum())
        k = round_half_up(count / v.shape[0])
        out[key] = min(max(k, lo[key]), hi[key])
    return out


def check_block_inputs(scores: Mapping[str, torch.Tensor], areas: Mapping[str, torch.Tensor],
                       alive: Mapping[str, torch.Tensor], keep_ratio: float
                       ) -> dict[str, torch.Tensor]:
    """Validate one step's block inputs (the same layers and shapes, something alive in every
    layer, no NaN, a ratio in (0, 1]); returns ``alive`` as bool CPU tensors."""
    if not 0.0 < keep_ratio <= 1.0:
        raise ArgumentError(f"keep ratio {keep_ratio} must be in (0, 1]")
    if set(areas) != set(scores) or set(alive) != set(scores):
        raise ArgumentError("block scores, areas and alive masks must have the same layers")
    live = {k: v.detach().cpu().bool() for k, v in alive.items()}
    for key, score in scores.items():
        if score.shape != areas[key].shape or score.shape != live[key].shape:
            raise ArgumentError(f"{key}: block scores, areas and alive masks differ in shape")
        if not live[key].any():
            raise ArgumentError(f"{key}: no block is alive; a layer must keep at least one block "
                                f"per block-row")
        if torch.isnan(score).any():
            raise ArgumentError(f"{key} contains NaN; saliency must be a finite number per "
                                "weight")
    return live


def allocate(scores: Mapping[str, torch.Tensor], areas: Mapping[str, torch.Tensor],
             alive: Mapping[str, torch.Tensor], keep_ratio: float,
             allocation: Allocation) -> dict[str, int]:
    """k_L (blocks kept per block-row) for every layer, totalling ≈ round(keep_ratio × all
    blocks of these layers, dead ones included)."""
    allocation.validate()
    if not scores:
        return {}
    alive = check_block_inputs(scores, areas, alive, keep_ratio)
    hi = {k: int(a.sum(dim=1).min()) for k, a in alive.items()}  # every row must have k alive
    floor = min(allocation.floor, keep_ratio)
    lo = {k: min(max(1, math.ceil(floor * a.shape[1] - 1e-9)), hi[k]) for k, a in alive.items()}
    total = sum(s.numel() for s in scores.values())
    target = round_half_up(keep_ratio * total)
    if allocation.rule == "uniform":
        return {k: min(max(round_half_up(keep_ratio * a.shape[1]), lo[k]), hi[k])
                for k, a in alive.items()}
    values = ranking_scores(allocation.rule, scores, areas, alive)
    ranked = torch.sort(torch.cat([values[k][alive[k]] for k in values]),
                        descending=True).values
    rows = {k: v.shape[0] for k, v in values.items()}

    def kept(i: int) -> int:  # blocks kept with the threshold at the i-th best value
        counts = _counts(values, alive, lo, hi, float(ranked[i]))
        return sum(counts[k] * rows[k] for k in counts)

    # kept(i) grows with i; find the first i reaching the target, then take the closer side.
    first, last = 0, ranked.numel() - 1
    if kept(last) <= target:
        return _counts(values, alive, lo, hi, float(ranked[last]))
    while first < last:
        mid = (first + last) // 2
        if kept(mid) >= target:
            last = mid
        else:
            first = mid + 1
    best = first
    if first > 0 and abs(kept(first - 1) - target) <= abs(kept(first) - target):
        best = first - 1
    return _counts(values, alive, lo, hi, float(ranked[best]))
