"""Layer allocation: every rule keeps every layer at or above its floor, hits the step's block
budget within one block per block-row per layer, and rejects bad settings by name."""

from __future__ import annotations

import math

import pytest
import torch

from crisp_edge.pruning.allocation import RULES, Allocation, allocate, ranking_scores
from crisp_edge.errors import ArgumentError
from crisp_edge.pruning.masks import block_areas, block_scores


def _layers(seed: int) -> tuple[dict, dict, dict]:
    """Random block-score grids of assorted shapes, at very different scales per layer (as
    class-aware saliency is: early layers score orders of magnitude higher)."""
    gen = torch.Generator().manual_seed(seed)
    scores, areas, alive = {}, {}, {}
    for i in range(6):
        rows = int(torch.randint(1, 5, (1,), generator=gen)) * 16
        cols = int(torch.randint(1, 40, (1,), generator=gen)) * 8 + 3
        mat = torch.rand(rows, cols, generator=gen, dtype=torch.float64) ** 3 * 10.0 ** (-i)
        key = f"layer{i}.weight"
        scores[key] = block_scores(mat, 16, 16)
        areas[key] = block_areas(rows, cols, 16, 16)
        alive[key] = torch.ones_like(scores[key], dtype=torch.bool)
    return scores, areas, alive


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("floor", [0.0, 0.1, 0.2])
@pytest.mark.parametrize("seed", range(4))
def test_allocation_respects_floors_and_hits_the_budget(rule: str, floor: float,
                                                       seed: int) -> None:
    scores, areas, alive = _layers(seed)
    keep_ratio = 0.25
    k = allocate(scores, areas, alive, keep_ratio, Allocation(rule, floor))
    assert set(k) == set(scores)
    total = sum(s.numel() for s in scores.values())
    kept = sum(k[key] * s.shape[0] for key, s in scores.items())
    slack = sum(s.shape[0] for s in scores.values())  # one block per block-row per layer
    assert abs(kept - round(keep_ratio * total)) <= slack, (kept, keep_ratio * total, slack)
    for key, s in scores.items():
        cols = s.shape[1]
        assert 1 <= k[key] <= cols
        assert k[key] >= math.ceil(floor * cols - 1e-9), (key, k[key], floor, cols)


def test_global_starves_the_low_scoring_layer_and_the_other_rules_do_not() -> None:
    """The failure that motivated the rules: class-aware scores of one layer a thousand times
    smaller than the others' leave it one block per row under one raw threshold."""
    scores, areas, alive = _layers(0)
    low = "layer5.weight"  # scaled by 1e-5
    starved = allocate(scores, areas, alive, 0.3, Allocation("global"))
    assert starved[low] == 1
    for rule in ("normalized", "lamp", "uniform"):
        assert allocate(scores, areas, alive, 0.3, Allocation(rule))[low] > 1, rule
    floored = allocate(scores, areas, alive, 0.3, Allocation("global", 0.2))
    assert floored[low] >= math.ceil(0.2 * scores[low].shape[1])


@pytest.mark.parametrize("rule", ["normalized", "lamp"])
def test_scale_free_rules_ignore_a_layer_wide_factor(rule: str) -> None:
    scores, areas, alive = _layers(1)
    scaled = {k: v * (1e6 if k == "layer2.weight" else 1.0) for k, v in scores.items()}
    assert allocate(scores, areas, alive, 0.3, Allocation(rule)) == \
        allocate(scaled, areas, alive, 0.3, Allocation(rule))


def test_lamp_scores_match_the_paper_definition() -> None:
    s = torch.tensor([[2.0, 4.0, 1.0, 3.0]], dtype=torch.float64)
    areas = torch.full((1, 4), 256)
    got = ranking_scores("lamp", {"w": s}, {"w": areas}, {"w": torch.ones(1, 4, dtype=bool)})
    # sorted 4, 3, 2, 1: 16/16, 9/25, 4/29, 1/30
    expected = torch.tensor([[4 / 29, 16 / 16, 1 / 30, 9 / 25]], dtype=torch.float64)
    torch.testing.assert_close(got["w"], expected)


def test_dead_blocks_are_never_counted_as_kept() -> None:
    scores, areas, alive = _layers(2)
    key = "layer0.weight"
    alive[key] = alive[key].clone()
    alive[key][:, 1:] = False  # one alive block per row left
    k = allocate(scores, areas, alive, 0.5, Allocation("lamp", 0.2))
    assert k[key] == 1


@pytest.mark.parametrize("allocation,final_keep,message", [
    (Allocation("magic"), None, "unknown --allocation 'magic'"),
    (Allocation("lamp", 1.5), None, r"--allocation-floor 1.5 must be in \(0, 1\]"),
    (Allocation("lamp", -0.1), None, r"must be in \(0, 1\]"),
    (Allocation("lamp", 0.3), 0.2, "keeps more blocks per layer than the target"),
])
def test_bad_allocations_are_rejected_by_name(allocation: Allocation, final_keep: float | None,
                                              message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        allocation.validate(final_keep)
