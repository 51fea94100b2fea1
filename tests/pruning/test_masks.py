"""The hybrid pattern mathematics (crisp_edge.pruning.masks): properties over many shapes and
patterns, plus one test per reference-code defect (docs/pruning.md#reference-code-defects) that
fails on the defective behaviour."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch
from torch import nn

from crisp_edge.pruning.masks import (
    Pattern,
    PrunableLayer,
    balanced_block_mask,
    block_areas,
    block_scores,
    check_hybrid,
    expand_block_mask,
    find_prunable_layers,
    from_matrix,
    global_block_budget,
    hybrid_masks,
    keep_ratio_for_sparsity,
    layer_density,
    model_density,
    nm_mask,
    parse_block,
    parse_nm,
    to_matrix,
)

NMS = [(1, 4), (2, 4), (2, 8), (4, 8)]
BLOCKS = [(16, 16), (32, 32), (8, 16), (64, 64)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Thousands of small tensor ops: intra-op threads only add contention on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def body(name: str, shape: tuple[int, ...], nm: bool = True) -> PrunableLayer:
    return PrunableLayer(name, f"{name}.weight", "conv" if len(shape) == 4 else "linear", "body",
                         True, nm, shape)


def blocks_of(mat: torch.Tensor, br: int, bc: int):
    """Brute force: yield (i, j, view) for every block of mat, partial edge blocks included."""
    for i in range(math.ceil(mat.shape[0] / br)):
        for j in range(math.ceil(mat.shape[1] / bc)):
            yield i, j, mat[i * br:(i + 1) * br, j * bc:(j + 1) * bc]


def random_case(rng: random.Random, m: int) -> tuple[int, ...]:
    """A conv or linear weight shape with Cin a multiple of m and partial blocks likely."""
    cout = rng.choice([5, 16, 24, 40, 70])
    cin = m * rng.choice([1, 2, 3, 5, 9])
    k = rng.choice([0, 1, 3, 5])
    return (cout, cin) if k == 0 else (cout, cin, k, k)


# ----------------------------------------------------------------------------- pattern, parsing

def test_pattern_validation_messages() -> None:
    assert Pattern().validate().density == 0.5
    with pytest.raises(ValueError, match=r"N:M 5:4 is invalid: N must be ≤ M"):
        Pattern(n=5).validate()
    with pytest.raises(ValueError, match=r"block 16x6 does not fit M=4: the block width must"):
        Pattern(block_cols=6).validate()
    with pytest.raises(ValueError, match="at least 1"):
        Pattern(n=0).validate()
    with pytest.raises(ValueError, match="at least 1"):
        Pattern(block_rows=0).validate()
    with pytest.raises(ValueError, match="divide the block height 16"):
        Pattern(shared_rows=3).validate()
    Pattern(shared_rows=16).validate()


def test_parse_helpers() -> None:
    assert parse_nm("2:4") == (2, 4) and parse_nm(" 1:8 ") == (1, 8)
    assert parse_block("16x16") == (16, 16) and parse_block("8X32") == (8, 32)
    for bad in ("2-4", "a:b", "2:4:8", "", "0:4"):
        with pytest.raises(ValueError):
            parse_nm(bad)
    with pytest.raises(ValueError, match="N must be ≤ M"):
        parse_nm("5:4")
    for bad in ("16", "16x", "x16", "0x16", "16*16"):
        with pytest.raises(ValueError):
            parse_block(bad)


# ----------------------------------------------------------------------------- matrix view

def test_to_matrix_orders_columns_kh_kw_cin() -> None:
    cout, cin, kh, kw = 2, 3, 2, 4
    o, c, i, j = torch.meshgrid(*(torch.arange(d) for d in (cout, cin, kh, kw)), indexing="ij")
    weight = 1000 * o + 100 * c + 10 * i + j
    mat = to_matrix(weight)
    assert mat.shape == (cout, kh * kw * cin)
    for oo, cc, ii, jj in itertools.product(range(cout), range(cin), range(kh), range(kw)):
        assert mat[oo, (ii * kw + jj) * cin + cc] == 1000 * oo + 100 * cc + 10 * ii + jj
    assert torch.equal(from_matrix(mat, weight.shape), weight)
    gen = torch.Generator().manual_seed(0)
    lin = torch.randn(5, 7, generator=gen)
    assert torch.equal(to_matrix(lin), lin) and torch.equal(from_matrix(lin, (5, 7)), lin)
    mask = torch.rand(4, 2, 3, 3, generator=gen) > 0.5  # masks round-trip too; grouped conv = per-group Cin
    assert torch.equal(from_matrix(to_matrix(mask), mask.shape), mask)
    with pytest.raises(ValueError):
        to_matrix(torch.zeros(2, 3, 4))


# ----------------------------------------------------------------------------- layers

class OddNet(nn.Module):
    """Classifier defined first (execution order must win); first conv, BN, depthwise, grouped,
    Cin = 6 (not a multiple of 4), a hidden linear and the classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(32, 10)
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.grouped = nn.Conv2d(16, 32, 3, padding=1, groups=2)
        self.narrow = nn.Conv2d(32, 6, 1)
        self.odd = nn.Conv2d(6, 16, 3, padding=1)
        self.hidden = nn.Linear(16, 32)
        self.unused = nn.Conv2d(16, 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.odd(self.narrow(self.grouped(self.dw(self.bn(self.stem(x))))))
        return self.fc(torch.relu(self.hidden(x.mean(dim=(2, 3)))))


def test_find_prunable_layers_roles_and_exemptions() -> None:
    net = OddNet().train()
    stats = net.bn.running_mean.clone()
    layers = find_prunable_layers(net, torch.randn(2, 3, 8, 8), Pattern())
    got = {layer.name: (layer.role, layer.blocks, layer.nm) for layer in layers}
    assert [layer.name for layer in layers] == ["stem", "dw", "grouped", "narrow", "odd", "hidden",
                                                "fc"]
    assert got == {"stem": ("first", False, False), "dw": ("depthwise", False, False),
                   "grouped": ("body", True, True), "narrow": ("body", True, True),
                   "odd": ("body", True, False), "hidden": ("body", True, True),
                   "fc": ("classifier", False, True)}
    grouped = next(layer for layer in layers if layer.name == "grouped")
    assert grouped.param == "grouped.weight" and grouped.shape == (32, 8, 3, 3)
    assert to_matrix(net.grouped.weight).shape == (32, 72)
    assert net.training and net.bn.training and torch.equal(net.bn.running_mean, stats)
    # a classifier whose Cin is not a multiple of M is left dense
    head = find_prunable_layers(nn.Sequential(nn.Linear(10, 3)),
                                torch.randn(1, 10), Pattern())
    assert [(lay.role, lay.blocks, lay.nm) for lay in head] == [("classifier", False, False)]


# ----------------------------------------------------------------------------- N:M

@pytest.mark.parametrize("n,m", NMS)
def test_nm_mask_keeps_top_n_of_every_group(n: int, m: int) -> None:
    gen = torch.Generator().manual_seed(n * 10 + m)
    for rows, groups in [(1, 1), (7, 3), (33, 10)]:
        scores = torch.rand(rows, groups * m, generator=gen)
        mask = nm_mask(scores, n, m)
        g_mask, g_score = mask.reshape(rows, groups, m), scores.reshape(rows, groups, m)
        assert (g_mask.sum(-1) == n).all()
        kept_min = torch.where(g_mask, g_score, math.inf).amin(-1)
        dropped_max = torch.where(g_mask, -math.inf, g_score).amax(-1)
        assert (kept_min > dropped_max).all()


def test_nm_mask_ties_and_errors() -> None:
    mask = nm_mask(torch.ones(3, 8), 2, 4)
    assert mask.tolist() == [[True, True, False, False] * 2] * 3
    assert nm_mask(torch.tensor([[0.0, 5.0, 5.0, 5.0]]), 2, 4).tolist() == [[False, True, True,
                                                                             False]]
    with pytest.raises(ValueError, match="multiple of M=4"):
        nm_mask(torch.ones(2, 6), 2, 4)
    with pytest.raises(ValueError, match="NaN"):
        nm_mask(torch.full((1, 4), math.nan), 2, 4)


def test_nm_mask_shared_runs_stay_inside_block_rows() -> None:
    gen = torch.Generator().manual_seed(1)
    scores = torch.rand(10, 16, generator=gen)  # block_rows 8, V 4: runs 0-3, 4-7, 8-9
    mask = nm_mask(scores, 2, 4, shared_rows=4, block_rows=8)
    for lo, hi in [(0, 4), (4, 8), (8, 10)]:
        run = mask[lo:hi]
        assert (run == run[0]).all(), (lo, hi)
        assert torch.equal(run[0], nm_mask(scores[lo:hi].sum(0, keepdim=True), 2, 4)[0])
    # V = block_rows = 16 over 20 rows: rows 16-19 form their own (short) run
    mask = nm_mask(torch.rand(20, 8, generator=gen), 1, 4, shared_rows=16, block_rows=16)
    assert (mask[:16] == mask[0]).all() and (mask[16:] == mask[16]).all()


def test_nm_mask_alive_never_reenables() -> None:
    gen = torch.Generator().manual_seed(2)
    for _ in range(20):
        scores = torch.rand(12, 16, generator=gen)
        alive = torch.rand(12, 16, generator=gen) > 0.4
        for v in (1, 4):
            mask = nm_mask(scores, 2, 4, shared_rows=v, block_rows=4, alive=alive)
            assert not (mask & ~alive).any()
            counts = mask.reshape(12, 4, 4).sum(-1)
            alive_counts = alive.reshape(12, 4, 4).sum(-1)
            if v == 1:
                assert torch.equal(counts, alive_counts.clamp(max=2))


def reference_top(values: list[float], alive: list[int], k: int) -> set[int]:
    """The rule in plain Python: more alive first, then higher score, then lower index."""
    order = sorted(range(len(values)), key=lambda i: (-alive[i], -values[i], i))
    return set(order[:k])


def test_nm_and_balanced_masks_match_a_plain_python_reference() -> None:
    """Integer scores make ties common; wide block grids take the sorting path too."""
    rng = random.Random(8)
    gen = torch.Generator().manual_seed(8)
    for _ in range(30):
        n, m = rng.choice(NMS)
        rows, groups, v = rng.randint(1, 12), rng.randint(1, 5), rng.choice([1, 2, 4])
        scores = torch.tensor([[rng.randint(0, 3) for _ in range(groups * m)]
                               for _ in range(rows)], dtype=torch.float32)
        alive = torch.rand(rows, groups * m, generator=gen) > 0.3
        got = nm_mask(scores, n, m, shared_rows=v, block_rows=4, alive=alive)
        for r in range(rows):
            run = [q for q in range(rows) if q // 4 == r // 4 and (q % 4) // v == (r % 4) // v]
            for g in range(groups):
                cols = range(g * m, (g + 1) * m)
                total = [float(scores[run, c].sum()) for c in cols]
                live = [int(alive[run, c].sum()) for c in cols]
                want = {g * m + i for i in reference_top(total, live, n)}
                assert {c for c in cols if got[r, c]} == {c for c in want if alive[r, c]}
        width = rng.choice([3, 20, 40])
        block = torch.tensor([[rng.randint(0, 4) for _ in range(width)] for _ in range(3)],
                             dtype=torch.float64)
        keep = rng.randint(1, width)
        live = torch.ones(3, width, dtype=torch.bool)
        live[:, rng.sample(range(width), width - keep)] = False
        per_row = rng.randint(1, keep)
        got = balanced_block_mask(block, per_row, live)
        for r in range(3):
            want = reference_top(block[r].tolist(), live[r].int().tolist(), per_row)
            assert {c for c in range(width) if got[r, c]} == want


# ----------------------------------------------------------------------------- blocks

def test_block_scores_areas_expand_match_brute_force() -> None:
    gen = torch.Generator().manual_seed(3)
    for (rows, cols), (br, bc) in itertools.product([(16, 16), (40, 56), (5, 12), (70, 200)],
                                                    BLOCKS):
        scores = torch.rand(rows, cols, generator=gen)
        got, areas = block_scores(scores, br, bc), block_areas(rows, cols, br, bc)
        grid = (math.ceil(rows / br), math.ceil(cols / bc))
        assert got.shape == grid and areas.shape == grid and int(areas.sum()) == rows * cols
        chosen = torch.rand(grid, generator=gen) > 0.5
        expanded = expand_block_mask(chosen, (rows, cols), br, bc)
        for i, j, block in blocks_of(scores, br, bc):
            assert math.isclose(float(got[i, j]), float(block.double().sum()), rel_tol=1e-12)
            assert int(areas[i, j]) == block.numel()
        for i, j, block in blocks_of(expanded, br, bc):
            assert (block == chosen[i, j]).all()
    with pytest.raises(ValueError, match="needs"):
        expand_block_mask(torch.ones(2, 3, dtype=torch.bool), (40, 56), 16, 16)


def test_defect_transposed_tile_mapping() -> None:
    """Reference-code defect 1: only block (0, 1) of a 3×2 block grid scores high; exactly it survives
    in block-row 0 — a transposed score-to-tile map would keep (1, 0) or fail on the shape."""
    pattern = Pattern(n=4, m=4)  # block-only, so kept blocks are fully kept
    for shape in [(48, 32), (48, 8, 2, 2)]:  # linear and conv (K = 2·2·8 = 32, cin inner)
        layer = body("x", shape)
        s = torch.rand(48, 32, generator=torch.Generator().manual_seed(0)) * 0.01
        s[0:16, 16:32] = 1.0
        saliency = from_matrix(s, shape)
        masks = hybrid_masks([layer], {"x.weight": saliency}, {"x.weight": saliency}, pattern,
                             0.5, None)
        mat = to_matrix(masks["x.weight"])
        assert mat[0:16, 16:32].all() and not mat[0:16, 0:16].any()
        assert (block_scores(mat.double(), 16, 16) > 0).sum(1).tolist() == [1, 1, 1]


def test_defect_strict_threshold() -> None:
    """Reference-code defect 2: the threshold is the score of the last kept block and ties at it are
    kept (≥); a strict > keeps one block too few (here 1 instead of 2) at every step."""
    scores = {"a": torch.tensor([[4.0, 3.0, 2.0, 1.0]])}
    areas = {"a": torch.full((1, 4), 256)}
    alive = {"a": torch.ones(1, 4, dtype=torch.bool)}
    assert global_block_budget(scores, areas, alive, 0.5) == {"a": 2}
    assert global_block_budget(scores, areas, alive, 0.75) == {"a": 3}
    tie = {"a": torch.tensor([[4.0, 3.0, 3.0, 1.0]])}
    assert global_block_budget(tie, areas, alive, 0.5) == {"a": 3}
    two = {"a": torch.tensor([[4.0, 1.0], [3.0, 1.0]]), "b": torch.tensor([[3.0, 2.0]])}
    got = global_block_budget(two, {k: torch.full(v.shape, 256) for k, v in two.items()},
                              {k: torch.ones(v.shape, dtype=torch.bool) for k, v in two.items()},
                              3 / 6)
    assert got == {"a": 1, "b": 1}  # t = 3: a keeps 4 and 3 (1 per row), b keeps 3


def test_defect_single_block_column_layer_survives() -> None:
    """Reference-code defect 3: layers with one block-column (K ≤ Bc, incl. partial) keep one block
    in every block-row even when their scores are the lowest of the model."""
    pattern = Pattern()
    layers = [body("big", (32, 64)), body("thin", (40, 16)), body("thinner", (20, 8))]
    weights = {layer.param: torch.ones(layer.shape) for layer in layers}
    saliency = {"big.weight": torch.ones(32, 64), "thin.weight": torch.full((40, 16), 1e-6),
                "thinner.weight": torch.full((20, 8), 1e-6)}
    masks = hybrid_masks(layers, weights, saliency, pattern, 0.1, None)
    for name, rows in [("thin.weight", 40), ("thinner.weight", 20)]:
        mat = to_matrix(masks[name])
        assert (mat.reshape(rows, -1, 4).sum(-1) == 2).all()  # block kept, N:M inside
    assert not check_hybrid(masks["big.weight"], pattern)


def test_defect_rows_beyond_last_full_block() -> None:
    """Reference-code defect 4: partial edge blocks (rows 32-39, columns 48-55) are scored and masked
    by their own decision — each block region is all kept or all pruned, no stray 0/1."""
    pattern = Pattern(n=4, m=4)
    layer = body("e", (40, 56))
    gen = torch.Generator().manual_seed(4)
    for trial in range(12):
        s = torch.rand(40, 56, generator=gen)
        if trial % 2:
            s[32:, 48:] = 10.0  # the corner partial block is the best of its row: kept
        masks = hybrid_masks([layer], {"e.weight": s}, {"e.weight": s}, pattern, 0.5, None)
        mat = masks["e.weight"]
        for _, _, block in blocks_of(mat, 16, 16):
            assert block.all() or not block.any()
        if trial % 2:
            assert mat[32:, 48:].all()
        assert int(mat[32:].any(0).reshape(-1).sum()) > 0  # the partial block-row keeps blocks


def test_defect_block_score_is_sum_of_saliency_not_w_squared() -> None:
    """Reference-code defect 5: block 0 has |W| = 10, G = 0.01 (S = 0.1, W²G = 1); block 1 has
    |W| = 1, G = 0.2 (S = 0.2, W²G = 0.2). Σ S keeps block 1; W²·G would keep block 0."""
    w = torch.cat([torch.full((16, 16), 10.0), torch.ones(16, 16)], dim=1)
    g = torch.cat([torch.full((16, 16), 0.01), torch.full((16, 16), 0.2)], dim=1)
    s = (w * g).abs()
    assert block_scores(s, 16, 16).argmax() == 1
    layer = body("w", (16, 32))
    masks = hybrid_masks([layer], {"w.weight": w}, {"w.weight": s}, Pattern(4, 4), 0.5, None)
    assert masks["w.weight"][:, 16:].all() and not masks["w.weight"][:, :16].any()


# ----------------------------------------------------------------------------- budget, balance

def test_global_budget_normalises_partial_blocks_and_is_monotone() -> None:
    # a partial block with the same per-element score as a full one ranks equal with it
    scores = {"a": torch.tensor([[256.0, 64.0, 10.0]])}
    areas = {"a": torch.tensor([[256, 64, 256]])}
    alive = {"a": torch.ones(1, 3, dtype=torch.bool)}
    assert global_block_budget(scores, areas, alive, 1 / 3) == {"a": 2}
    gen = torch.Generator().manual_seed(5)
    grids = {"a": (3, 5), "b": (1, 1), "c": (4, 2), "d": (2, 9)}
    sc = {k: torch.rand(g, generator=gen) for k, g in grids.items()}
    ar = {k: torch.full(g, 256) for k, g in grids.items()}
    al = {k: torch.ones(g, dtype=torch.bool) for k, g in grids.items()}
    total = sum(r * c for r, c in grids.values())
    last = {k: 0 for k in grids}
    for ratio in [i / 40 for i in range(1, 41)]:
        got = global_block_budget(sc, ar, al, ratio)
        assert all(1 <= got[k] <= grids[k][1] and got[k] >= last[k] for k in grids)
        kept = sum(got[k] * grids[k][0] for k in grids)
        slack = sum(r / 2 for r, _ in grids.values()) + len(grids)  # rounding + keep ≥ 1
        assert abs(kept - ratio * total) <= slack
        last = got
    assert global_block_budget({}, {}, {}, 0.5) == {}
    for bad in (0.0, 1.5, -1):
        with pytest.raises(ValueError, match="keep ratio"):
            global_block_budget(sc, ar, al, bad)


def test_balanced_block_mask() -> None:
    scores = torch.tensor([[1.0, 5.0, 5.0, 0.0], [3.0, 2.0, 9.0, 1.0]])
    alive = torch.tensor([[True, True, True, True], [True, True, False, True]])
    got = balanced_block_mask(scores, 2, alive)
    assert got.tolist() == [[False, True, True, False], [True, True, False, False]]
    with pytest.raises(ValueError, match="block-row 1 has 3 alive blocks but 4"):
        balanced_block_mask(scores, 4, alive)
    with pytest.raises(ValueError, match="at least 1"):
        balanced_block_mask(scores, 0, alive)


# ----------------------------------------------------------------------------- hybrid masks

@pytest.mark.parametrize("seed", range(16))
def test_hybrid_schedule_properties(seed: int) -> None:
    """Random layers, patterns and shapes: N:M in every group of kept blocks, equal kept-block
    counts per block-row, ≥ 1, cumulative, step 0 = N:M only, total within rounding."""
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    for n, m in NMS:
        br, bc = rng.choice(BLOCKS)
        v = rng.choice(sorted({1, min(4, br), br}))
        pattern = Pattern(n, m, br, bc, v).validate()
        layers = [body(f"l{i}", random_case(rng, m)) for i in range(3)]
        layers.append(body("odd", (24, 6, 3, 3), nm=False))
        weights = {lay.param: torch.randn(lay.shape, generator=gen) for lay in layers}
        previous = None
        for ratio in [1.0, 0.9, 0.7, 0.5, 0.3]:  # G is recomputed every step: fresh saliency
            saliency = {k: (w * torch.rand(w.shape, generator=gen)).abs()
                        for k, w in weights.items()}
            masks = hybrid_masks(layers, weights, saliency, pattern, ratio, previous)
            kept_blocks = 0
            for layer in layers:
                mask = masks[layer.param]
                assert mask.dtype == torch.bool and tuple(mask.shape) == layer.shape
                assert not check_hybrid(mask, pattern, nm=layer.nm)
                mat = to_matrix(mask)
                per_row = (block_scores(mat.double(), br, bc) > 0).sum(1)
                assert per_row.min() >= 1
                kept_blocks += int(per_row.sum())
                if ratio == 1.0:
                    assert per_row.min() == math.ceil(mat.shape[1] / bc)
                    expected = n / m if layer.nm else 1.0
                    assert layer_density(mask) == pytest.approx(expected)
                if previous is not None:
                    assert not (mask & ~previous[layer.param]).any()
                if layer.nm:  # inside kept blocks exactly n per group (never fewer)
                    groups = mat.reshape(mat.shape[0], -1, m).sum(-1)
                    assert ((groups == 0) | (groups == n)).all()
                else:
                    for _, _, block in blocks_of(mat, br, bc):
                        assert block.all() or not block.any()
            total = sum(math.ceil(lay.shape[0] / br) * math.ceil(
                math.prod(lay.shape[1:]) / bc) for lay in layers)
            slack = sum(math.ceil(lay.shape[0] / br) for lay in layers)
            assert abs(kept_blocks - ratio * total) <= slack + 2
            previous = masks


def test_hybrid_exemptions() -> None:
    torch.manual_seed(0)
    net = OddNet()
    pattern = Pattern(block_rows=8, block_cols=8)
    layers = find_prunable_layers(net, torch.randn(1, 3, 8, 8), pattern)
    weights = {f"{n}.weight": mod.weight.detach() for n, mod in net.named_children()
               if isinstance(mod, (nn.Conv2d, nn.Linear))}
    saliency = {k: w.abs() for k, w in weights.items()}
    previous = None
    for ratio in (1.0, 0.5, 0.2):
        previous = hybrid_masks(layers, weights, saliency, pattern, ratio, previous)
    assert previous["stem.weight"].all() and previous["dw.weight"].all()
    fc = previous["fc.weight"]  # classifier: N:M only, every block kept
    assert layer_density(fc) == 0.5 and not check_hybrid(fc, pattern)
    assert (block_scores(fc.double(), 8, 8) > 0).all()
    odd = to_matrix(previous["odd.weight"])  # Cin 6: no N:M, kept blocks dense
    assert check_hybrid(odd, pattern) and not check_hybrid(odd, pattern, nm=False)
    for _, _, block in blocks_of(odd, 8, 8):
        assert block.all() or not block.any()
    assert layer_density(previous["grouped.weight"]) < 0.5
    density = model_density(previous, layers)
    assert density["per_layer"]["stem.weight"] == 1.0
    assert 0 < density["block_layers"] < density["prunable"] < density["all"] < 1


def test_hybrid_masks_errors() -> None:
    layer = body("a", (16, 16))
    ok = {"a.weight": torch.ones(16, 16)}
    with pytest.raises(ValueError, match="saliency has no entry for a.weight"):
        hybrid_masks([layer], ok, {}, Pattern(), 0.5, None)
    with pytest.raises(ValueError, match="expected"):
        hybrid_masks([layer], ok, {"a.weight": torch.ones(16, 8)}, Pattern(), 0.5, None)
    with pytest.raises(ValueError, match="keep ratio"):
        hybrid_masks([layer], ok, ok, Pattern(), 0.0, None)


# ----------------------------------------------------------------------------- checking

def test_check_hybrid_reports_violations() -> None:
    pattern = Pattern(block_rows=4, block_cols=8, shared_rows=2)
    mask = torch.zeros(8, 16, dtype=torch.bool)
    mask[:, [0, 1, 8, 9]] = True
    assert check_hybrid(mask, pattern) == []
    mask[3, 2] = True  # a third entry in a group
    (problem,) = check_hybrid(mask, replace_v(pattern, 1))
    assert "more than 2 of 4" in problem and "row 3" in problem
    mask[3, 2] = False
    mask[1, [0, 1]], mask[1, [2, 3]] = False, True  # per-row fine, run 0-1 does not share
    assert check_hybrid(mask, replace_v(pattern, 1)) == []
    assert "run of 2 rows" in check_hybrid(mask, pattern)[0]
    mask[1, [0, 1, 2, 3]] = torch.tensor([True, True, False, False])
    mask[4:, 8:] = False  # block-row 1 keeps one block, block-row 0 two
    (problem,) = check_hybrid(mask, pattern)
    assert "unbalanced" in problem and check_hybrid(mask, pattern, blocks=False) == []
    assert "not a multiple" in check_hybrid(torch.ones(4, 6), pattern)[0]


def replace_v(pattern: Pattern, v: int) -> Pattern:
    return Pattern(pattern.n, pattern.m, pattern.block_rows, pattern.block_cols, v)


def test_keep_ratio_for_sparsity() -> None:
    assert keep_ratio_for_sparsity(0.9, Pattern()) == pytest.approx(0.2)
    assert keep_ratio_for_sparsity(0.5, Pattern()) == pytest.approx(1.0)
    assert keep_ratio_for_sparsity(0.3, Pattern(4, 4)) == pytest.approx(0.7)
    with pytest.raises(ValueError, match=r"sparsity 0.3 is below what N:M 2:4 alone removes "
                                         r"\(0.5\); raise --sparsity or use --nm 4:4"):
        keep_ratio_for_sparsity(0.3, Pattern())
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError):
            keep_ratio_for_sparsity(bad, Pattern(4, 4))


# --- fast selection == the sorting definition ---------------------------------------------------

@pytest.mark.parametrize("m", [2, 4, 8])
@pytest.mark.parametrize("seed", range(6))
def test_counting_top_k_equals_the_two_sorts(m: int, seed: int) -> None:
    """The counting selection used for small groups must pick exactly what the two stable sorts
    pick, ties and dead entries included (scores from a few integers make ties common)."""
    from crisp_edge.pruning.masks import _top_k_mask, _top_k_mask_small

    gen = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 4, (300, 7, m), generator=gen).to(torch.float64)
    scores[0, 0] = float("inf")
    alive = torch.rand(300, 7, m, generator=gen) < 0.6
    for n in range(1, m + 1):
        assert torch.equal(_top_k_mask_small(scores, n), _top_k_mask(scores, n))
        assert torch.equal(_top_k_mask_small(scores, n, alive), _top_k_mask(scores, n, alive))
        counts = alive.to(torch.float64) * 2  # run_live holds counts, not just 0/1
        assert torch.equal(_top_k_mask_small(scores, n, counts),
                           _top_k_mask(scores, n, counts))


def test_hybrid_masks_on_resnet18_equal_the_sorting_definition(monkeypatch) -> None:
    """Whole ResNet-18 steps (N:M from scratch, then block steps on settled N:M) give the same
    masks with the fast paths as with the original sort-everything selection."""
    import crisp_edge.pruning.masks as masks_module
    from crisp_edge.models.zoo import build_arch

    model = build_arch("resnet18_cifar", num_classes=5)
    pattern = Pattern(2, 4, 16, 16, 1)
    layers = find_prunable_layers(model, torch.randn(1, 3, 32, 32), pattern)
    named = dict(model.named_parameters())
    gen = torch.Generator().manual_seed(0)
    weights = {lay.param: named[lay.param].detach() for lay in layers}
    saliency = {k: (w * torch.rand(w.shape, generator=gen)).abs() for k, w in weights.items()}

    def steps() -> list[dict[str, torch.Tensor]]:
        out, prev = [], None
        for keep in (1.0, 0.6, 0.3):
            prev = hybrid_masks(layers, weights, saliency, pattern, keep, prev)
            out.append(prev)
        return out

    fast = steps()

    def slow_nm(scores_mat, n, m, shared_rows=1, block_rows=16, alive=None):  # type: ignore
        rows, cols = scores_mat.shape
        scores = scores_mat.detach().to(torch.float64).reshape(rows, cols // m, m)
        live = None if alive is None else alive.bool().reshape(rows, cols // m, m)
        keep = masks_module._top_k_mask(scores, n, live)
        if live is not None:
            keep &= live
        return keep.reshape(rows, cols)

    monkeypatch.setattr(masks_module, "nm_mask", slow_nm)
    for got, want in zip(fast, steps()):
        assert got.keys() == want.keys()
        for key in got:
            assert torch.equal(got[key], want[key]), key
