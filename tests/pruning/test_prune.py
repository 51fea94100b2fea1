"""The pruning engine: schedule, mask validity of results, masking modes, saliency, head
reduction, resume, checkpoints and input validation (tiny model, tiny synthetic data)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import crisp_edge.pruning.engine as prune_module
from crisp_edge.models.checkpoint import build_model_from_checkpoint, load_checkpoint, save_checkpoint
from crisp_edge.errors import ArgumentError, StopPruning
from crisp_edge.format.pattern import Pattern
from crisp_edge.pruning.masks import check_hybrid
from crisp_edge.pruning.engine import PruneConfig, prune, result_checkpoint
from crisp_edge.pruning.saliency import SaliencyAccumulator, measure_saliency, prunable_params
from crisp_edge.pruning.training import label_map, make_loader, reduce_head, train_epoch

from prune_helpers import DATA, IMAGE_SIZE, SAMPLES, tiny_config, tiny_model

CLASSES = [7, 2, 5]  # deliberately not sorted: the head must follow this order


# --- schedule ---------------------------------------------------------------------------

def test_linear_schedule_removes_ten_percent_of_blocks_per_step() -> None:
    cfg = PruneConfig(sparsity=0.9, nm="2:4", schedule_shape="linear")  # ρ = 0.1 / 0.5 = 0.2
    assert cfg.block_steps() == 8
    sched = cfg.schedule()
    assert [round(r, 6) for _, r in sched] == [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    assert [p for p, _ in sched] == [s / 8 for s in range(9)]


@pytest.mark.parametrize("sparsity,nm,steps,expected", [
    (0.75, "2:4", None, [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]),   # ρ = 0.5 → ⌈0.5/0.1⌉ = 5 steps
    (0.9, "2:4", 4, [1.0, 0.8, 0.6, 0.4, 0.2]),           # explicit steps
    (0.95, "1:4", None, [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]),  # ρ = 0.05/0.25
    (0.85, "2:4", None, [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]),  # ρ = 0.3 → 7 steps
    (0.5, "2:4", None, [1.0]),                             # N:M alone reaches the target
])
def test_schedule_keep_ratios(sparsity: float, nm: str, steps: int | None,
                              expected: list[float]) -> None:
    cfg = PruneConfig(sparsity=sparsity, nm=nm, steps=steps, schedule_shape="linear")
    assert [r for _, r in cfg.schedule()] == pytest.approx(expected)


def test_default_schedule_is_the_measured_recipe() -> None:
    cfg = PruneConfig(sparsity=0.9, nm="2:4")  # ρ = 0.2
    assert cfg.schedule_shape == "cubic" and cfg.block_steps() == 4
    assert cfg.step_epochs() == [1, 1, 1, 1, 7]  # six more epochs at the final sparsity
    assert [r for _, r in cfg.schedule()][-1] == pytest.approx(0.2)


def test_cubic_schedule_cuts_early_and_gently_near_the_target() -> None:
    cfg = PruneConfig(sparsity=0.9, nm="2:4", steps=4, schedule_shape="cubic", final_epochs=2,
                      epochs_per_step=3)
    rho = 0.2
    expected = [rho + (1 - rho) * (1 - s / 4) ** 3 for s in range(5)]
    assert [r for _, r in cfg.schedule()] == pytest.approx(expected)
    assert [p for p, _ in cfg.schedule()] == pytest.approx([1 - (1 - s / 4) ** 3
                                                           for s in range(5)])
    cuts = [a - b for (_, a), (_, b) in zip(cfg.schedule(), cfg.schedule()[1:])]
    assert cuts == sorted(cuts, reverse=True)  # every cut smaller than the one before
    assert cfg.step_epochs() == [3, 3, 3, 3, 5]


# --- full runs ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hard_result():
    model = tiny_model()
    return prune(model, DATA, CLASSES, tiny_config(), progress=False)


def _block_layers(result):  # type: ignore[no-untyped-def]
    return [layer for layer in result.layers if layer.blocks]


def test_result_masks_follow_the_pattern_and_reach_the_target(hard_result) -> None:
    pattern = Pattern(2, 4, 8, 8)
    weights = dict(hard_result.model.named_parameters())
    assert _block_layers(hard_result), "the tiny net must have block layers"
    for layer in hard_result.layers:
        mask = hard_result.masks[layer.param]
        w = weights[layer.param].detach()
        assert check_hybrid(mask, pattern, nm=layer.nm, blocks=layer.blocks) == []
        # Exact zeros outside the mask (hard masking).
        assert torch.count_nonzero(w[~mask]) == 0
        if layer.role == "first":
            assert mask.all()
    # Block layers together end at density ρ·N/M = 0.5·0.5 = 0.25 (one global threshold, so
    # single layers differ); rounding k_L = round(count/block-rows) moves each layer by up to half
    # a block per block-row, ties at the threshold a little more: allow one block per block-row.
    from crisp_edge.pruning.masks import model_density

    blocks = _block_layers(hard_result)
    total = sum(math.prod(layer.shape) for layer in blocks)
    slack = sum(math.ceil(layer.shape[0] / 8) * 64 * 0.5 for layer in blocks) / total
    density = model_density(hard_result.masks, blocks)["block_layers"]
    assert abs(density - 0.25) <= slack, (density, slack)
    rep = hard_result.report
    assert [s["step"] for s in rep["steps"]] == [0, 1, 2]
    assert [s["keep_ratio"] for s in rep["steps"]] == \
        pytest.approx([r for _, r in tiny_config().schedule()])
    assert rep["steps"][-1]["keep_ratio"] == pytest.approx(0.5)
    assert rep["steps"][0]["density"] == pytest.approx(0.5, abs=0.02)  # N:M only at step 0
    assert rep["macs"]["effective"] < rep["macs"]["dense"]
    assert rep["bytes"]["sparse_estimate"] < rep["bytes"]["dense_fp32"]


def test_sr_ste_keeps_dense_weights_until_the_end() -> None:
    seen = []

    def spy(step: int, record: dict) -> None:  # dense weights survive during SR-STE
        seen.append(step)

    model = tiny_model()
    result = prune(model, DATA, CLASSES, tiny_config(masking="sr-ste"), progress=False,
                   on_step_end=spy)
    assert seen == [0, 1, 2]
    params = dict(result.model.named_parameters())
    pattern = Pattern(2, 4, 8, 8)
    for layer in result.layers:
        mask = result.masks[layer.param]
        assert torch.count_nonzero(params[layer.param].detach()[~mask]) == 0
        assert check_hybrid(mask, pattern, nm=layer.nm, blocks=layer.blocks) == []


def test_sr_ste_hooks_mask_the_forward_and_decay_removed_weights() -> None:
    from crisp_edge.pruning.masking import Masker

    lin = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]))
    mask = torch.tensor([[True, False, True, False], [False, True, False, True]])
    masker = Masker({"weight": lin.weight}, "sr-ste", decay=0.5)
    masker.set_masks({"weight": mask})
    x = torch.ones(1, 4)
    masker.before_forward()
    out = lin(x)
    assert out.tolist() == [[4.0, 14.0]]  # masked weights in the forward
    out.sum().backward()
    masker.after_backward()
    assert lin.weight[0, 1].item() == 2.0  # dense value restored
    # straight-through gradient (1 everywhere) + 0.5 × removed weight
    expected = torch.ones(2, 4) + 0.5 * lin.weight.detach() * ~mask
    assert torch.equal(lin.weight.grad, expected)


# --- saliency -------------------------------------------------------------------------------

def _user_data(classes: list[int]):  # type: ignore[no-untyped-def]
    from crisp_edge.data.sources import open_source

    ds = open_source(DATA, split="train", image_size=IMAGE_SIZE, seed=0, samples_per_class=SAMPLES)
    return ds, ds.subset(classes)


def test_saliency_equals_explicit_autograd() -> None:
    model = tiny_model(batch_norm=False)
    ds, user = _user_data(CLASSES)
    reduce_head(model, CLASSES, ds.num_classes)
    tmap = label_map(CLASSES, ds.num_classes)
    from crisp_edge.pruning.masks import find_prunable_layers

    layers = find_prunable_layers(model, user[0][0][None], Pattern(2, 4, 8, 8))
    params = prunable_params(model, layers)
    loader = make_loader(user, 16, True, 3)
    got = measure_saliency(model, loader, params, loss_fn=nn.CrossEntropyLoss(), target_map=tmap)

    expected = {k: torch.zeros_like(p) for k, p in params.items()}
    batches = 0
    for x, y in loader:  # same order: the loader's permutation depends only on seed and epoch
        loss = nn.functional.cross_entropy(model(x), tmap[y])
        grads = torch.autograd.grad(loss, list(params.values()))
        for key, g in zip(params, grads):
            expected[key] += g.abs()
        batches += 1
    assert batches == 3
    for key in params:
        torch.testing.assert_close(got[key], expected[key] / batches, rtol=1e-5, atol=1e-8)

    # The fine-tuning path (after_backward hook) accumulates the same quantity; lr = 0 keeps
    # the weights fixed so both passes see the same model.
    acc = SaliencyAccumulator(params)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    train_epoch(model, loader, opt, None, loss_fn=nn.CrossEntropyLoss(), target_map=tmap,
                after_backward=acc.accumulate)
    for key, g in acc.mean().items():
        torch.testing.assert_close(g, expected[key] / batches, rtol=1e-5, atol=1e-8)


def test_per_class_saliency_statistics_shape(hard_result) -> None:
    for layer in _block_layers(hard_result):
        stats = hard_result.saliency_stats[layer.param]
        k = layer.shape[1] * layer.shape[2] * layer.shape[3]
        assert stats.dtype == torch.float16
        assert tuple(stats.shape) == (len(CLASSES), math.ceil(layer.shape[0] / 8), math.ceil(k / 8))
        assert torch.isfinite(stats).all() and (stats >= 0).all() and stats.sum() > 0


def test_per_class_saliency_is_measured_on_the_dense_model(hard_result) -> None:
    """Coverage (a class's share in the kept blocks) needs the saliency of the blocks pruning
    removed: measured after pruning, a removed block would score exactly 0."""
    from crisp_edge.pruning.masks import block_scores, to_matrix

    removed_mass = 0.0
    for layer in _block_layers(hard_result):
        stats = hard_result.saliency_stats[layer.param].float()
        kept = block_scores(to_matrix(hard_result.masks[layer.param].float()), 8, 8) > 0
        assert stats.shape[1:] == kept.shape
        removed_mass += float(stats[:, ~kept].sum())
    assert removed_mass > 0


# --- head reduction --------------------------------------------------------------------------

def test_head_reduction_keeps_user_rows_in_user_order() -> None:
    model = tiny_model()
    w, b = model.fc.weight.detach().clone(), model.fc.bias.detach().clone()
    assert reduce_head(model, CLASSES, 10) == "fc"
    assert torch.equal(model.fc.weight, w[CLASSES]) and torch.equal(model.fc.bias, b[CLASSES])


def test_pruned_head_is_reduced_and_keep_head_keeps_it(hard_result) -> None:
    import crisp_edge

    assert hard_result.model.fc.out_features == 3
    assert hard_result.head == {"reduced": True, "module": "fc", "original_num_classes": 10}
    # The Python API: crisp_edge.prune(model, data, classes, config).
    full = crisp_edge.prune(tiny_model(), DATA, CLASSES, tiny_config(keep_head=True, steps=1),
                            progress=False)
    assert full.model.fc.out_features == 10 and not full.head["reduced"]
    # SALY follows the head: with --keep-head every class has its statistics, in head order.
    for layer in _block_layers(full):
        assert full.saliency_stats[layer.param].shape[0] == 10


# --- resume ----------------------------------------------------------------------------------

@pytest.mark.parametrize("nm_score", ["saliency", "magnitude"])
def test_resume_after_interruption_matches_uninterrupted_run(tmp_path: Path,
                                                             nm_score: str) -> None:
    cfg = tiny_config(masking="sr-ste", steps=3, nm_score=nm_score)
    reference = prune(tiny_model(), DATA, CLASSES, cfg, progress=False,
                      checkpoint_dir=tmp_path / "a")

    def stop_after_step_1(step: int, record: dict) -> None:
        if step == 1:
            raise StopPruning("simulated interruption")

    with pytest.raises(StopPruning):
        prune(tiny_model(), DATA, CLASSES, cfg, progress=False, checkpoint_dir=tmp_path / "b",
              on_step_end=stop_after_step_1)
    resumed_steps = []
    resumed = prune(tiny_model(), DATA, CLASSES, cfg, progress=False,
                    checkpoint_dir=tmp_path / "b", resume=True,
                    on_step_end=lambda s, r: resumed_steps.append(s))
    assert resumed_steps == [2, 3]
    ref_state, got_state = reference.model.state_dict(), resumed.model.state_dict()
    for key in ref_state:
        assert torch.equal(ref_state[key], got_state[key]), key
    for key in reference.masks:
        assert torch.equal(reference.masks[key], resumed.masks[key])
    assert [s["top1"] for s in resumed.report["steps"]] == \
        [s["top1"] for s in reference.report["steps"]]


def _dropout_model() -> nn.Module:
    """The tiny net with dropout before its classifier, as MobileNetV2 has: a run whose global
    random numbers shift by one draw trains differently."""
    model = tiny_model()
    model.fc = nn.Sequential(nn.Dropout(0.5), model.fc)
    return model


def test_skipped_saliency_work_changes_nothing_of_the_run(monkeypatch) -> None:
    """A method that does not rank by saliency neither measures nor accumulates it, and
    ``class_saliency=False`` skips the per-class statistics: the weights, masks and global
    random state are the same as with all of it done (dropout included), and the budget counts
    only the passes made."""
    import crisp_edge.pruning.baselines as baselines

    calls = {"measure": 0, "classes": 0}

    def counted(name, fn):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(prune_module, "measure_saliency",
                        counted("measure", prune_module.measure_saliency))
    monkeypatch.setattr(prune_module, "per_class_block_saliency",
                        counted("classes", prune_module.per_class_block_saliency))
    cfg = tiny_config(method="magnitude-hybrid", steps=2)
    lean = prune(_dropout_model(), DATA, CLASSES, cfg, progress=False, class_saliency=False)
    lean_rng = torch.get_rng_state()
    assert calls == {"measure": 0, "classes": 0}
    monkeypatch.setattr(prune_module, "READS_SALIENCY",
                        baselines.READS_SALIENCY | {"magnitude-hybrid"})
    full = prune(_dropout_model(), DATA, CLASSES, cfg, progress=False)
    assert calls == {"measure": 1, "classes": 1}
    assert torch.equal(torch.get_rng_state(), lean_rng)
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, lean.model.state_dict()[key]), key
    for key in full.masks:
        assert torch.equal(full.masks[key], lean.masks[key]), key
    assert lean.saliency_stats == {} and full.saliency_stats
    images = len(CLASSES) * SAMPLES
    assert lean.report["budget"]["saliency"] == 0
    assert full.report["budget"]["saliency"] == 2 * images
    assert "crisp" in baselines.READS_SALIENCY and "magnitude-hybrid" not in \
        baselines.READS_SALIENCY


def test_resume_refuses_other_settings(tmp_path: Path) -> None:
    def stop(step: int, record: dict) -> None:
        raise StopPruning

    with pytest.raises(StopPruning):
        prune(tiny_model(), DATA, CLASSES, tiny_config(), progress=False,
              checkpoint_dir=tmp_path, on_step_end=stop)
    with pytest.raises(ArgumentError, match="other settings"):
        prune(tiny_model(), DATA, CLASSES, tiny_config(sparsity=0.8), progress=False,
              checkpoint_dir=tmp_path, resume=True)


def test_resume_refuses_a_run_without_class_statistics(tmp_path: Path) -> None:
    """A run saved with ``class_saliency=False`` has no per-class statistics and cannot make
    them later (they are the dense model's): resuming it with them asked for is refused, and
    resuming it as it started still works."""
    def stop(step: int, record: dict) -> None:
        raise StopPruning

    with pytest.raises(StopPruning):
        prune(tiny_model(), DATA, CLASSES, tiny_config(), progress=False,
              checkpoint_dir=tmp_path, on_step_end=stop, class_saliency=False)
    with pytest.raises(ArgumentError, match="class_saliency=False"):
        prune(tiny_model(), DATA, CLASSES, tiny_config(), progress=False,
              checkpoint_dir=tmp_path, resume=True)
    result = prune(tiny_model(), DATA, CLASSES, tiny_config(), progress=False,
                   checkpoint_dir=tmp_path, resume=True, class_saliency=False)
    assert result.saliency_stats == {}


# --- checkpoint ------------------------------------------------------------------------------

def test_checkpoint_loads_with_weights_only_and_rebuilds(hard_result, tmp_path: Path,
                                                         monkeypatch) -> None:
    from prune_helpers import write_net

    spec = write_net(tmp_path)
    path = save_checkpoint(result_checkpoint(hard_result, model_source=spec, data=DATA),
                           tmp_path / "pruned.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "crisp-edge.checkpoint" and raw["version"] == 1
    assert raw["kind"] == "pruned" and raw["classes"] == CLASSES and raw["num_classes"] == 3
    assert raw["user_classes"] == CLASSES and raw["class_names"][0] == "orange-square-7"
    assert raw["pattern"] == {"n": 2, "m": 4, "block_rows": 8, "block_cols": 8, "shared_rows": 4}
    assert raw["input_shape"] == [3, IMAGE_SIZE, IMAGE_SIZE]
    assert {layer["param"] for layer in raw["layers"]} == set(raw["masks"])
    for key, mask in raw["masks"].items():
        assert mask.dtype == torch.bool
        assert torch.count_nonzero(raw["state_dict"][key][~mask]) == 0
    assert all(v.dtype == torch.float16 for v in raw["saliency"].values())
    model = build_model_from_checkpoint(load_checkpoint(path), model_source=spec)
    x = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        torch.testing.assert_close(model(x), hard_result.model.eval()(x))


# --- validation before training --------------------------------------------------------------

@pytest.mark.parametrize("overrides,classes,message", [
    ({}, [3, 42], "42"),
    ({"nm": "4:2"}, CLASSES, "N must be ≤ M"),
    ({"sparsity": 1.2}, CLASSES, r"\(0, 1\)"),
    ({"sparsity": 0.0}, CLASSES, r"\(0, 1\)"),
    ({"sparsity": 0.3}, CLASSES, "below what N:M 2:4"),
    ({"block": "8x6"}, CLASSES, "does not fit M=4"),
    ({"method": "random"}, CLASSES, "unknown method"),
    ({}, [3, 3], "twice"),
    ({"allocation": "magic"}, CLASSES, "unknown --allocation 'magic'"),
    ({"allocation_floor": 1.5}, CLASSES, r"--allocation-floor 1.5 must be in \(0, 1\]"),
    ({"allocation_floor": -0.2}, CLASSES, r"--allocation-floor -0.2 must be in \(0, 1\]"),
    ({"sparsity": 0.9, "allocation_floor": 0.5}, CLASSES, "than the target sparsity allows"),
    ({"schedule_shape": "exponential"}, CLASSES, "--schedule must be one of linear, cubic"),
    ({"final_epochs": -1}, CLASSES, "--final-epochs must be ≥ 0"),
    ({"distill_alpha": 2.0}, CLASSES, "--distill-alpha 2.0 must be in"),
    ({"nm_score": "fisher"}, CLASSES, "--nm-score must be one of saliency, magnitude, got 'fisher'"),
])
def test_bad_input_fails_before_any_training(monkeypatch, overrides: dict, classes: list,
                                             message: str) -> None:
    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(prune_module, "train_epoch", no_training)
    monkeypatch.setattr(prune_module, "measure_saliency", no_training)
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        prune(model, DATA, classes, tiny_config(**overrides), progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_distillation_without_a_dense_teacher_fails_before_any_training(monkeypatch) -> None:
    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(prune_module, "train_epoch", no_training)
    monkeypatch.setattr(prune_module, "measure_saliency", no_training)
    model = tiny_model()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.view(-1)[: int(0.8 * m.weight.numel())] = 0.0  # an already pruned model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="distillation needs a dense teacher.*--no-distill"):
        prune(model, DATA, CLASSES, tiny_config(distill=True), progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# --- MobileNetV2 at exact chance: stale BatchNorm statistics after a mask change ----------------

class _StaleNet(nn.Module):
    """first conv → BN → ReLU6 → 1×1 body conv with positive weights → BN → ReLU6 → pool → fc.

    The 1×1 conv sums positive inputs with positive weights, so its outputs sit far above their
    spread; 2:4 masking halves them. BatchNorm statistics of the dense network then put every
    masked output below the mean: ReLU6 zeroes them all, the logits are the classifier's bias and
    every image gets the same class — exactly what MobileNetV2 (ReLU6 after BN everywhere) did
    under every block method at 85–87 % in docs/prune-findings.md."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu6(self.bn1(self.conv1(x)))
        x = nn.functional.relu6(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _stale_net() -> nn.Module:
    from crisp_edge.data.sources import open_source

    torch.manual_seed(0)
    model = _StaleNet()
    with torch.no_grad():
        model.conv2.weight.abs_().add_(1.0)
        x = torch.stack([open_source(DATA, split="train", image_size=IMAGE_SIZE, seed=0,
                                     samples_per_class=4)[i][0] for i in range(40)])
        model.train()
        for _ in range(50):  # settle the running statistics of the dense network
            model(x)
    return model.eval()


@pytest.mark.parametrize("recalibrate", [True, False])
def test_stale_batchnorm_after_masking_no_longer_collapses_the_network(recalibrate: bool) -> None:
    """With BatchNorm re-estimated after each mask change (the default) the pruned network still
    tells images apart; without it this network answers one class for every image, as
    MobileNetV2 did. The False case shows the test catches the failure if it comes back."""
    from crisp_edge.data.sources import open_source

    classes = [1, 4, 7]
    # 2:4 alone reaches 50 %: step 0 only, weights unchanged. Per-row N:M: on this untrained
    # network only that mask leaves two classes' logits apart (with V = 4 recalibration still
    # quadruples the logits' spread over images, but one class wins everywhere); the rule under
    # test does not depend on the pattern.
    cfg = tiny_config(sparsity=0.5, steps=None, lr=1e-9, bn_recalibrate=recalibrate,
                      distill=False, shared_rows=1)
    result = prune(_stale_net(), DATA, classes, cfg, progress=False)
    test = open_source(DATA, split="test", image_size=IMAGE_SIZE, seed=0).subset(classes)
    x = torch.stack([test[i][0] for i in range(len(test))])
    with torch.no_grad():
        predicted = set(result.model.eval()(x).argmax(1).tolist())
    if recalibrate:
        assert len(predicted) > 1, "every image got the same class after masking"
    else:
        assert len(predicted) == 1
