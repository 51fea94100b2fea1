"""The pattern maths exists twice, on purpose: in torch for pruning (crisp_edge.pruning.masks)
and in numpy for the file (crisp_edge.format.encoding: a board has no torch). This test ties
the two together: on masks the pruner makes, and on masks broken on purpose, both must agree
on which blocks are kept and on whether the N:M rule holds."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from crisp_edge.format import encoding as enc
from crisp_edge.format.pattern import Pattern
from crisp_edge.pruning.masks import (PrunableLayer, block_scores, check_hybrid, hybrid_masks,
                                      to_matrix)

PATTERNS = [Pattern(2, 4, 16, 16, 1), Pattern(2, 4, 16, 16, 4), Pattern(1, 4, 8, 16, 1),
            Pattern(2, 8, 8, 8, 2), Pattern(4, 4, 16, 16, 1)]


def _layer(rng: random.Random) -> PrunableLayer:
    cout = rng.choice([16, 24, 40, 64])
    cin = rng.choice([8, 16, 24, 32])
    k = rng.choice([1, 3])
    return PrunableLayer(f"c{cout}x{cin}x{k}", f"c{cout}x{cin}x{k}.weight", "conv", "body",
                         True, True, (cout, cin, k, k))


@pytest.mark.parametrize("pattern", PATTERNS, ids=str)
@pytest.mark.parametrize("seed", range(3))
def test_torch_and_numpy_agree_on_blocks_and_nm(pattern: Pattern, seed: int) -> None:
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    layers = [_layer(rng) for _ in range(3)]
    weights = {lay.param: torch.randn(lay.shape, generator=gen) for lay in layers}
    saliency = {k: w.abs() * torch.rand(w.shape, generator=gen) for k, w in weights.items()}
    masks = None
    for keep in (1.0, 0.6, 0.3):
        masks = hybrid_masks(layers, weights, saliency, pattern, keep, masks)
        for lay in layers:
            mat = to_matrix(masks[lay.param]).numpy()
            torch_blocks = (block_scores(torch.from_numpy(mat).double(), pattern.block_rows,
                                         pattern.block_cols) > 0).numpy()
            numpy_blocks = enc.block_mask(mat, pattern.block_rows, pattern.block_cols)
            assert np.array_equal(torch_blocks, numpy_blocks)
            assert check_hybrid(masks[lay.param], pattern) == []
            assert enc.nm_violation(mat, pattern.n, pattern.m, pattern.shared_rows) is None
            # Broken on purpose: one more non-zero in a group that already holds N.
            if pattern.n < pattern.m:
                broken = mat.copy()
                row, col = np.argwhere(broken)[rng.randrange(int(broken.sum()))]
                group = slice(col - col % pattern.m, col - col % pattern.m + pattern.m)
                free = np.flatnonzero(~broken[row, group])
                broken[row, group.start + free[0]] = True
                tensor = torch.from_numpy(broken).reshape(lay.shape[0], lay.shape[2],
                                                          lay.shape[3], lay.shape[1])
                weight_shaped = tensor.permute(0, 3, 1, 2)
                problems = check_hybrid(weight_shaped, pattern, blocks=False)
                assert problems and "N:M" in problems[0]
                assert enc.nm_violation(broken, pattern.n, pattern.m,
                                        pattern.shared_rows) is not None
