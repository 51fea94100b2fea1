"""The comparison methods (crisp_edge.pruning.baselines): densities against the target, structure of
each method's masks, cumulative masks over a schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from crisp_edge.pruning.baselines import METHODS, MaskRequest
from crisp_edge.pruning.masks import (
    Pattern,
    block_scores,
    check_hybrid,
    find_prunable_layers,
    hybrid_masks,
    layer_density,
    model_density,
    to_matrix,
)

PATTERN = Pattern()
PROGRESS = [0.0, 0.25, 0.5, 0.75, 1.0]

@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Thousands of small tensor ops: intra-op threads only add contention on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Net(nn.Module):
    """First conv, two body convs (one with partial blocks), a depthwise conv, a Cin-6 conv,
    a hidden linear and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.a = nn.Conv2d(32, 48, 3, padding=1)
        self.dw = nn.Conv2d(48, 48, 3, padding=1, groups=48)
        self.b = nn.Conv2d(48, 40, 1)
        self.narrow = nn.Conv2d(40, 6, 1)
        self.odd = nn.Conv2d(6, 64, 3, padding=1)
        self.hidden = nn.Linear(64, 80)
        self.fc = nn.Linear(80, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.odd(self.narrow(self.b(self.dw(self.a(self.stem(x))))))
        return self.fc(self.hidden(x.mean(dim=(2, 3))))


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    net = Net()
    layers = find_prunable_layers(net, torch.randn(1, 3, 8, 8), PATTERN)
    gen = torch.Generator().manual_seed(1)  # float64 unit-scale weights: distinct magnitudes
    weights = {f"{n}.weight": torch.randn(m.weight.shape, generator=gen, dtype=torch.float64)
               for n, m in net.named_children()}
    saliency = {k: (w * torch.rand(w.shape, generator=gen)).abs() for k, w in weights.items()}
    return layers, weights, saliency


def run_schedule(method: str, setup, sparsity: float, saliency=True, steps=None):
    """Run the method over PROGRESS, with "fine-tuning" between steps: weights drift, dead ones
    stay zero (hard masking), saliency is recomputed. Checks masks are cumulative."""
    layers, weights, sal = setup
    gen = torch.Generator().manual_seed(7)
    previous, history = None, []
    for p in PROGRESS:
        if previous is not None:
            weights = {k: w * (1 + 0.5 * torch.rand(w.shape, generator=gen, dtype=w.dtype))
                       * previous.get(k, True) for k, w in weights.items()}
            sal = {k: (w * torch.rand(w.shape, generator=gen, dtype=w.dtype)).abs()
                   for k, w in weights.items()}
        if steps is not None:
            steps.append(weights)
        req = MaskRequest(layers, weights, sal if saliency else None, PATTERN, sparsity, p,
                          previous)
        masks = METHODS[method](req)
        assert set(masks) == {layer.param for layer in layers}
        for layer in layers:
            mask = masks[layer.param]
            assert mask.dtype == torch.bool and tuple(mask.shape) == layer.shape
            if previous is not None:
                assert not (mask & ~previous[layer.param]).any(), (method, p, layer.param)
        history.append(masks)
        previous = masks
    return layers, history


def by_role(layers, role):
    return [layer for layer in layers if layer.role == role]


def test_methods_registry() -> None:
    assert set(METHODS) == {"crisp", "magnitude-hybrid", "unstructured", "nm-only",
                            "block-only", "channel"}


@pytest.mark.parametrize("sparsity", [0.6, 0.9])
@pytest.mark.parametrize("method", ["crisp", "magnitude-hybrid"])
def test_hybrid_methods_reach_target(method: str, sparsity: float, setup) -> None:
    layers, history = run_schedule(method, setup, sparsity)
    final = history[-1]
    for layer in layers:
        assert not check_hybrid(final[layer.param], PATTERN, nm=layer.nm)
    assert all(final[lay.param].all() for lay in layers if lay.role in ("first", "depthwise"))
    (fc,) = by_role(layers, "classifier")
    assert layer_density(final[fc.param]) == 0.5
    # the budget is in blocks: ρ = (1 − s)/(N/M) of all blocks, up to per-layer rounding and
    # keep ≥ 1 per block-row; inside kept blocks N:M leaves exactly N/M (no N:M in the Cin-6 layer)
    rho = (1 - sparsity) / PATTERN.density
    blocks = {lay.param: block_scores(to_matrix(final[lay.param]).double(), 16, 16) > 0
              for lay in layers if lay.blocks}
    total = sum(b.numel() for b in blocks.values())
    assert abs(sum(int(b.sum()) for b in blocks.values()) - rho * total) <= sum(
        b.shape[0] for b in blocks.values())
    for lay in layers:
        if lay.blocks:
            mat = to_matrix(final[lay.param])
            area = int(block_scores(torch.ones(mat.shape), 16, 16)[blocks[lay.param]].sum())
            assert int(mat.sum()) == area * (PATTERN.density if lay.nm else 1)
    # with N:M block layers only, the element density of block layers lands on 1 − s
    nm_layers = [lay for lay in layers if lay.nm and lay.blocks]
    _, nm_history = run_schedule(method, (nm_layers, *setup[1:]), sparsity)
    density = model_density(nm_history[-1], nm_layers)["block_layers"]
    assert density == pytest.approx(1 - sparsity, abs=0.03)
    first = model_density(history[0], layers)["block_layers"]
    odd_share = math.prod(layers[[lay.name for lay in layers].index("odd")].shape)
    assert first > 0.5 and first < 0.5 + odd_share / sum(  # step 0: N:M only (odd layer exempt)
        math.prod(lay.shape) for lay in layers if lay.blocks)


def test_magnitude_hybrid_ignores_saliency(setup) -> None:
    layers, weights, saliency = setup
    got = METHODS["magnitude-hybrid"](MaskRequest(layers, weights, saliency, PATTERN, 0.8, 1.0))
    mags = {k: w.abs() for k, w in weights.items()}
    want = METHODS["crisp"](MaskRequest(layers, weights, mags, PATTERN, 0.8, 1.0))
    crisp = METHODS["crisp"](MaskRequest(layers, weights, saliency, PATTERN, 0.8, 1.0))
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert any(not torch.equal(got[k], crisp[k]) for k in want)


def test_crisp_nm_by_magnitude(setup) -> None:
    """nm_score "magnitude": the blocks are crisp's (chosen by S), the N:M groups inside them are
    magnitude-hybrid's (chosen by |W|), and the two choices differ from crisp's default."""
    layers, weights, saliency = setup
    req = MaskRequest(layers, weights, saliency, PATTERN, 0.8, 1.0)
    got = METHODS["crisp"](MaskRequest(layers, weights, saliency, PATTERN, 0.8, 1.0,
                                       nm_score="magnitude"))
    by_s, by_w = METHODS["crisp"](req), METHODS["magnitude-hybrid"](req)
    for layer in layers:
        mat = to_matrix(got[layer.param])
        if layer.blocks:  # the same kept blocks as crisp's
            kept = block_scores(mat.double(), 16, 16) > 0
            assert torch.equal(kept, block_scores(to_matrix(by_s[layer.param]).double(),
                                                  16, 16) > 0), layer.param
        if layer.nm:  # inside them, |W|'s top 2 of every 4: where by_w kept the same block
            groups = to_matrix(weights[layer.param]).abs().reshape(mat.shape[0], -1, 4)
            kept_groups = mat.reshape(mat.shape[0], -1, 4)
            alive = kept_groups.any(-1)
            top = torch.zeros_like(kept_groups)
            top.scatter_(-1, groups.topk(2, -1).indices, True)
            assert torch.equal(kept_groups[alive], top[alive]), layer.param
    assert any(not torch.equal(got[k], by_s[k]) for k in got)
    with pytest.raises(ValueError, match="--nm-score must be one of saliency, magnitude"):
        METHODS["crisp"](MaskRequest(layers, weights, saliency, PATTERN, 0.8, 1.0,
                                     nm_score="fisher"))


def test_crisp_keep_ratio_follows_progress(setup) -> None:
    layers, weights, saliency = setup
    req = MaskRequest(layers, weights, saliency, PATTERN, 0.9, 0.5)
    rho = (1 - 0.9) / 0.5
    want = hybrid_masks(layers, weights, saliency, PATTERN, 1 - 0.5 * (1 - rho), None)
    got = METHODS["crisp"](req)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_unstructured_threshold_and_density(setup) -> None:
    layers = setup[0]
    sparsity = 0.8
    steps: list = []
    _, history = run_schedule("unstructured", setup, sparsity, saliency=False, steps=steps)
    prunable = [lay for lay in layers if lay.blocks or lay.nm]
    for p, masks, weights in zip(PROGRESS, history, steps):
        kept = torch.cat([weights[lay.param].abs()[masks[lay.param]] for lay in prunable])
        dropped = torch.cat([weights[lay.param].abs()[~masks[lay.param]] for lay in prunable])
        total = kept.numel() + dropped.numel()
        assert kept.numel() == round((1 - p * sparsity) * total)  # distinct |W|: exact
        if dropped.numel():
            assert kept.min() >= dropped.max()  # global ≥ threshold rule
    assert all(history[-1][lay.param].all() for lay in layers if not (lay.blocks or lay.nm))


def test_unstructured_never_empties_a_layer(setup) -> None:
    layers, weights, _ = setup
    tiny = dict(weights)
    tiny["b.weight"] = weights["b.weight"] * 1e-9
    tiny["b.weight"][3, 5, 0, 0] = 1e-6
    masks = METHODS["unstructured"](MaskRequest(layers, tiny, None, PATTERN, 0.9, 1.0))
    assert int(masks["b.weight"].sum()) == 1 and masks["b.weight"][3, 5, 0, 0]


@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9, 0.97])
def test_nm_only(sparsity: float, setup) -> None:
    layers, history = run_schedule("nm-only", setup, sparsity)
    big_m = 16
    big_n = max(1, math.floor((1 - sparsity) * big_m + 0.5))
    assert all(torch.equal(history[0][k], history[-1][k]) for k in history[0])  # progress ignored
    for layer in layers:
        mat = to_matrix(history[-1][layer.param])
        if not layer.nm:
            assert mat.all()
            continue
        rows, cols = mat.shape
        full, rest = divmod(cols, big_m)
        assert layer_density(mat) == pytest.approx((full * big_n + min(big_n, rest)) / cols)
        groups = torch.nn.functional.pad(mat, (0, -cols % big_m)).reshape(rows, -1, big_m)
        assert (groups.sum(-1) <= big_n).all()


@pytest.mark.parametrize("sparsity", [0.5, 0.8])
def test_block_only(sparsity: float, setup) -> None:
    layers, history = run_schedule("block-only", setup, sparsity)
    final = history[-1]
    block_only = Pattern(4, 4)
    for layer in layers:
        mat = to_matrix(final[layer.param])
        assert not check_hybrid(mat, block_only)
        if layer.blocks:
            ids = block_scores(mat.double(), 16, 16)
            assert ((ids == 0) | (ids == block_scores(torch.ones(mat.shape), 16, 16))).all()
        else:
            assert mat.all()
    assert model_density(final, layers)["block_layers"] == pytest.approx(1 - sparsity, abs=0.06)
    assert all(m.all() for m in history[0].values())  # progress 0 keeps everything


@pytest.mark.parametrize("sparsity", [0.3, 0.9, 0.99])
def test_channel_prunes_whole_rows(sparsity: float, setup) -> None:
    layers = setup[0]
    steps: list = []
    _, history = run_schedule("channel", setup, sparsity, saliency=False, steps=steps)
    for p, masks in zip(PROGRESS, history):
        for layer in layers:
            mat = to_matrix(masks[layer.param])
            if layer.role != "body":
                assert mat.all()
                continue
            rows = mat.all(dim=1)
            assert torch.equal(rows, mat.any(dim=1))  # whole rows
            count = max(1, math.floor((1 - p * sparsity) * mat.shape[0] + 0.5))
            assert int(rows.sum()) == count
    final = history[-1]
    norms = to_matrix(steps[-1]["a.weight"]).abs().sum(1)
    kept = to_matrix(final["a.weight"]).all(1)
    assert norms[kept].min() >= norms[~kept].max()


def test_request_validation(setup) -> None:
    layers, weights, saliency = setup
    with pytest.raises(ValueError, match="needs class-aware saliency"):
        METHODS["crisp"](MaskRequest(layers, weights, None, PATTERN, 0.8, 0.5))
    with pytest.raises(ValueError, match="progress"):
        METHODS["unstructured"](MaskRequest(layers, weights, None, PATTERN, 0.8, 1.5))
    with pytest.raises(ValueError, match="target sparsity"):
        METHODS["channel"](MaskRequest(layers, weights, None, PATTERN, 1.0, 0.5))
    with pytest.raises(ValueError, match="below what N:M 2:4 alone removes"):
        METHODS["crisp"](MaskRequest(layers, weights, saliency, PATTERN, 0.3, 0.5))
    missing = {k: v for k, v in weights.items() if k != "a.weight"}
    for method in METHODS:
        with pytest.raises(ValueError, match="a.weight"):
            METHODS[method](MaskRequest(layers, missing, missing, PATTERN, 0.8, 0.5))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_dead_weights_never_return(method: str, setup) -> None:
    """SR-STE keeps updating masked weights: even when a dead weight (and its saliency) grows
    100× larger than any live one, the next step does not bring it back."""
    layers, weights, saliency = setup
    half = METHODS[method](MaskRequest(layers, weights, saliency, PATTERN, 0.8, 0.5))
    grown = {k: torch.where(half[k], w, 100 * w) for k, w in weights.items()}
    grown_s = {k: torch.where(half[k], s, 100 * s) for k, s in saliency.items()}
    final = METHODS[method](MaskRequest(layers, grown, grown_s, PATTERN, 0.8, 1.0, half))
    assert all(not (final[k] & ~half[k]).any() for k in final)
