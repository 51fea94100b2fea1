"""Pruning methods compared against CRISP, all behind one call: ``METHODS[name](request)``.

The schedule in ``crisp_edge.pruning.engine`` calls a method once per step with the step's ``progress``
p ∈ [0, 1] (0 = first step, 1 = final step) and the run's ``target_sparsity`` s, and gets
weight-shaped bool masks keyed by parameter name. "Same schedule and budget" means: every method
is driven by the same steps, fine-tuning and learning-rate schedule, reaches its final pattern at
p = 1, and at p = 1 removes the fraction s of the weights of the layers it is allowed to prune:

- ``crisp``: hybrid blocks × N:M from class-aware saliency S = |W ⊙ G| (the N:M choice from
  |W| instead when ``nm_score`` is "magnitude", see :data:`NM_SCORES`); N:M from step 0, the
  kept-block ratio falls linearly from 1 to ρ = (1 − s)/(N/M), so block layers with N:M end near
  density 1 − s (docs/pruning.md#the-pattern; the budget counts blocks, and keep ≥ 1 per block-row plus
  per-layer rounding make small layers denser; block layers exempt from N:M end near ρ). First
  conv and depthwise stay dense; the classifier gets N:M only.
- ``magnitude-hybrid``: the same with S = |W| (class-agnostic), isolating what saliency buys.
- ``unstructured``: global magnitude over every prunable layer (blocks or N:M), keeping the top
  1 − p·s of all their weights: at p = 1 these layers together end at density 1 − s.
- ``nm-only``: N′:M′ with M′ = 4·M and N′ = max(1, round((1 − s)·M′)) on N:M-eligible layers at
  every step (p ignored); density N′/M′ per full group, see :func:`nm_only`.
- ``block-only``: balanced global blocks (no N:M), kept-block ratio 1 − p·s on block layers.
- ``channel``: per body layer, keep the top 1 − p·s of output rows by L1 norm (the classifier,
  first conv and depthwise convs stay dense; unstructured does prune the classifier).

Every mask is cumulative: what ``previous`` removed stays removed. Where a method needs a score
and ``saliency`` is given it uses S (nm-only, block-only); otherwise |W|.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import torch

from crisp_edge.pruning.allocation import Allocation, round_half_up
from crisp_edge.errors import ArgumentError
from crisp_edge.pruning.masks import (
    Pattern,
    PrunableLayer,
    from_matrix,
    hybrid_masks,
    keep_ratio_for_sparsity,
    nm_mask,
    to_matrix,
)


@dataclass
class MaskRequest:
    """One step's inputs. ``saliency`` may be None for class-agnostic methods; ``previous`` is the
    last step's masks (None on the first step)."""

    layers: Sequence[PrunableLayer]
    weights: Mapping[str, torch.Tensor]
    saliency: Mapping[str, torch.Tensor] | None
    pattern: Pattern
    target_sparsity: float
    progress: float
    previous: Mapping[str, torch.Tensor] | None = None
    allocation: Allocation | None = None  # None: the original single global threshold
    nm_score: str = "saliency"  # crisp's N:M choice inside kept blocks: one of NM_SCORES

    def validate(self) -> MaskRequest:
        """Raise an ArgumentError (a ValueError) for an out-of-range sparsity or progress."""
        self.pattern.validate()
        if not 0.0 < self.target_sparsity < 1.0:
            raise ArgumentError(f"target sparsity {self.target_sparsity} must be in (0, 1)")
        if not 0.0 <= self.progress <= 1.0:
            raise ArgumentError(f"progress {self.progress} must be in [0, 1]")
        check_nm_score(self.nm_score)
        return self


Masks = dict[str, torch.Tensor]

# What crisp ranks the N:M groups inside kept blocks by: its class-aware saliency S, or |W|.
# Blocks are always chosen by S. docs/pruning.md ("Scores") has the measurement.
NM_SCORES = ("saliency", "magnitude")


def check_nm_score(nm_score: str) -> None:
    """Raise an ArgumentError naming the flag unless ``nm_score`` is one of NM_SCORES."""
    if nm_score not in NM_SCORES:
        raise ArgumentError(f"--nm-score must be one of {', '.join(NM_SCORES)}, got "
                            f"{nm_score!r}")


def _alive(request: MaskRequest, layer: PrunableLayer) -> torch.Tensor:
    """The layer's still-kept elements as a (R, K) bool matrix."""
    previous = request.previous
    if previous is not None and layer.param in previous:
        return to_matrix(previous[layer.param].detach().cpu().bool())
    rows = layer.shape[0]
    return torch.ones(rows, math.prod(layer.shape) // rows, dtype=torch.bool)


def _weight(request: MaskRequest, layer: PrunableLayer) -> torch.Tensor:
    if layer.param not in request.weights:
        raise ArgumentError(f"weights has no entry for {layer.param}")
    weight = request.weights[layer.param].detach().cpu()
    if tuple(weight.shape) != layer.shape:
        raise ArgumentError(f"weights[{layer.param}] has shape {tuple(weight.shape)}, expected "
                            f"{layer.shape}")
    return weight


def _magnitudes(request: MaskRequest) -> dict[str, torch.Tensor]:
    return {layer.param: _weight(request, layer).abs() for layer in request.layers
            if layer.blocks or layer.nm}


def _scores(request: MaskRequest) -> Mapping[str, torch.Tensor]:
    return request.saliency if request.saliency is not None else _magnitudes(request)


def _dense(layer: PrunableLayer) -> torch.Tensor:
    return torch.ones(layer.shape, dtype=torch.bool)


def crisp(request: MaskRequest) -> Masks:
    """Hybrid masks from saliency S with keep ratio 1 − p·(1 − ρ), ρ = (1 − s)/(N/M); the N:M
    groups ranked by S or by |W| (``request.nm_score``)."""
    request.validate()
    if request.saliency is None:
        raise ArgumentError("crisp needs class-aware saliency; use magnitude-hybrid without it")
    rho = keep_ratio_for_sparsity(request.target_sparsity, request.pattern)
    keep = 1.0 - request.progress * (1.0 - rho)
    nm_scores = _magnitudes(request) if request.nm_score == "magnitude" else None
    return hybrid_masks(request.layers, request.weights, request.saliency, request.pattern, keep,
                        request.previous, request.allocation, nm_scores)


def magnitude_hybrid(request: MaskRequest) -> Masks:
    """:func:`crisp` with S = |W| instead of class-aware saliency."""
    return crisp(replace(request, saliency=_magnitudes(request.validate()), nm_score="saliency"))


def unstructured(request: MaskRequest) -> Masks:
    """Global magnitude pruning over all prunable layers (blocks or N:M).

    Keep = round((1 − p·s) × all their weights, dead ones included); the threshold t is the
    |W| of the last kept alive weight in descending order and every alive weight with |W| ≥ t is
    kept (``≥``: ties at t are kept). A layer that would lose everything keeps its largest alive
    weight. Dense layers are untouched.
    """
    request.validate()
    prunable = [layer for layer in request.layers if layer.blocks or layer.nm]
    mags = {layer.param: to_matrix(_weight(request, layer).abs().to(torch.float64))
            for layer in prunable}
    alive = {layer.param: _alive(request, layer) for layer in prunable}
    masks = {layer.param: _dense(layer) for layer in request.layers}
    if not prunable:
        return masks
    ranked = torch.cat([mags[k][alive[k]] for k in mags])
    total = sum(m.numel() for m in mags.values())
    n_keep = round_half_up((1.0 - request.progress * request.target_sparsity) * total)
    if n_keep >= ranked.numel():
        threshold = -math.inf
    else:
        threshold = float(torch.sort(ranked, descending=True).values[max(n_keep, 1) - 1])
    for layer in prunable:
        mag, live = mags[layer.param], alive[layer.param]
        keep = live & (mag >= threshold)
        if not keep.any() and live.any():
            best = int(torch.argmax(torch.where(live, mag, -math.inf)))
            keep.view(-1)[best] = True
        masks[layer.param] = from_matrix(keep, layer.shape)
    return masks


def nm_only(request: MaskRequest) -> Masks:
    """N′:M′ along K on N:M-eligible layers, M′ = 4·M, N′ = max(1, round((1 − s)·M′)).

    Groups are M′ consecutive K columns (they may straddle kernel taps); the last group of a row
    may be partial and keeps min(N′, its width). A layer's achieved density is therefore
    (⌊K/M′⌋·N′ + min(N′, K mod M′)) / K, i.e. N′/M′ when M′ divides K. Scores: S if given, else
    |W|; only alive elements are chosen. Progress is ignored: the pattern holds from step 0.
    """
    request.validate()
    big_m = 4 * request.pattern.m
    big_n = max(1, round_half_up((1.0 - request.target_sparsity) * big_m))
    scores = _scores(request)
    masks = {}
    for layer in request.layers:
        if not layer.nm:
            masks[layer.param] = _dense(layer)
            continue
        _weight(request, layer)
        if layer.param not in scores:
            raise ArgumentError(f"saliency has no entry for {layer.param}")
        score = to_matrix(scores[layer.param].detach().cpu().to(torch.float64))
        live = _alive(request, layer)
        cols = score.shape[1]
        pad = -cols % big_m
        padded_score = torch.nn.functional.pad(score, (0, pad))
        padded_live = torch.nn.functional.pad(live, (0, pad), value=False)
        keep = nm_mask(padded_score, big_n, big_m, alive=padded_live)[:, :cols]
        masks[layer.param] = from_matrix(keep, layer.shape)
    return masks


def block_only(request: MaskRequest) -> Masks:
    """Balanced global blocks without N:M: kept-block ratio 1 − p·s on block layers (same
    global threshold, ≥ rule and keep ≥ 1 per block-row as CRISP). Scores: S if given, else |W|.
    """
    request.validate()
    pattern = replace(request.pattern, n=request.pattern.m, shared_rows=1)
    keep = 1.0 - request.progress * request.target_sparsity
    return hybrid_masks(request.layers, request.weights, _scores(request), pattern, keep,
                        request.previous, request.allocation)


def channel(request: MaskRequest) -> Masks:
    """Filter pruning: in each body layer keep the max(1, round((1 − p·s)·Cout)) alive output
    rows with the largest L1 norm of W (ties → lower row); first, depthwise and classifier layers
    stay dense. Rows removed earlier stay removed."""
    request.validate()
    masks = {}
    for layer in request.layers:
        if layer.role != "body":
            masks[layer.param] = _dense(layer)
            continue
        weight = to_matrix(_weight(request, layer).to(torch.float64))
        live = _alive(request, layer)
        live_rows = live.any(dim=1)
        count = max(1, round_half_up((1.0 - request.progress * request.target_sparsity)
                                      * weight.shape[0]))
        if int(live_rows.sum()) < count:
            raise ArgumentError(f"{layer.param}: {int(live_rows.sum())} output rows are alive but "
                                f"{count} are to be kept; progress must not go backwards")
        norms = torch.where(live_rows, weight.abs().sum(dim=1), -math.inf)
        order = torch.argsort(-norms, stable=True)[:count]
        rows = torch.zeros(weight.shape[0], dtype=torch.bool)
        rows[order] = True
        masks[layer.param] = from_matrix(live & rows[:, None], layer.shape)
    return masks


# The methods that rank by class-aware saliency when it is given; the others ignore it, so the
# engine neither measures nor accumulates it for them (it changes nothing of their masks).
READS_SALIENCY = frozenset({"crisp", "nm-only", "block-only"})

METHODS: dict[str, Callable[[MaskRequest], Masks]] = {
    "crisp": crisp,
    "magnitude-hybrid": magnitude_hybrid,
    "unstructured": unstructured,
    "nm-only": nm_only,
    "block-only": block_only,
    "channel": channel,
}
