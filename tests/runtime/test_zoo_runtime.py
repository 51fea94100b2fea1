"""Every CIFAR-shape zoo architecture, pruned by the engine at 50 % and 90 %, packed from its
pruning checkpoint and run by the C runtime: float32 agrees with torch, the prunable layers are
stored in the engine's hybrid pattern, the runtime executes only the kept MACs, and an int8 pack
is bit-exact with the numpy executor of the spec (crisp_edge.reference.int8).

The models are random-init (no base training; the engine's one fine-tuning epoch on a handful of
images is all they learn): agreement with torch is about runtime correctness and holds for any
weights. The accuracy side of issue 4 (int8 within 1 point of float32 on trained models, and the
ImageNet shapes) is measured by ``bench/verify_zoo.py`` (docs/zoo-verification.md).

Each (arch, sparsity) is pruned and packed once per module (``zoo`` fixture); at these sizes the
whole module takes about a minute and a half on two idle cores.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import crisp_edge
from crisp_edge import format as fmt
from crisp_edge.reference import int8 as qexec
from crisp_edge.models.checkpoint import Checkpoint, save_checkpoint
from crisp_edge.data.sources import open_source
from crisp_edge.models.zoo import build_arch
from crisp_edge.packing.pack import PackReport, calibration_images, pack_checkpoint
from crisp_edge.pruning.engine import PruneConfig, prune, result_checkpoint

ARCHS = ["resnet18_cifar", "resnet50_cifar", "vgg16_bn_cifar", "mobilenet_v2_cifar"]
SPARSITIES = [0.5, 0.9]
DATA = "synthetic:10"
CLASSES = [3, 7]
IMAGE = 32
TEST_PER_CLASS = 4  # 8 test images: the engine's evaluation set and the comparison set

# Effective / dense MACs (the runtime's own count) must stay below these. Measured with these
# settings: 0.50–0.54 at 50 % (2:4 halves every prunable layer; the first conv and the depthwise
# convs stay dense, 0.1–8 % of the MACs) and 0.31–0.35 at 90 % (the engine's budget is global
# over weights, and the low-resolution late layers — many weights, few MACs per weight — lose
# the most blocks, so the MAC ratio stays well above the 10 % weight density).
MAC_RATIO_BOUND = {0.5: 0.56, 0.9: 0.40}


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Batches of 8 small images gain little from a second torch thread, and when another
    process competes for the cores two spinning torch threads made this module ~8× slower
    (measured: resnet50_cifar at 90 % took 160 s instead of 20 s); restore the setting after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def recalibrate_batch_norm(model: torch.nn.Module, images: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of ``images`` (one train-mode pass,
    cumulative averaging); weights and masks are untouched.

    Random-init models fine-tuned for four minibatches keep running statistics that do not match
    their activations: measured before this step, MobileNetV2 (both sparsities) and VGG-16 (90 %)
    gave the same logits for every image (spread 0 to 4e-9), which would make the comparison
    with torch vacuous. With matched statistics every layer sees unit-scale, input-dependent
    activations (checked by ``test_float32_runtime_matches_torch``)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    model(images)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()


@dataclass
class Packed:
    arch: str
    sparsity: float
    ckpt: Checkpoint
    model: torch.nn.Module
    path: Path
    report: PackReport
    torch_logits: np.ndarray
    runtime_logits: np.ndarray
    info: dict


@pytest.fixture(scope="module")
def test_images() -> torch.Tensor:
    data = open_source(DATA, split="test", image_size=IMAGE, samples_per_class=TEST_PER_CLASS)
    data = data.subset(CLASSES)
    return torch.stack([data[i][0] for i in range(len(data))])


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory, runtime_lib: Path,
        test_images: torch.Tensor) -> Callable[[str, float], Packed]:
    """``zoo(arch, sparsity)``: prune and pack each combination once (on first use), shared
    by every test of the module."""
    directory = tmp_path_factory.mktemp("zoo")
    eval_set = open_source(DATA, split="test", image_size=IMAGE, samples_per_class=TEST_PER_CLASS)
    train = open_source(DATA, split="train", image_size=IMAGE, samples_per_class=8,
                        augment=False).subset(CLASSES)
    train_images = torch.stack([train[i][0] for i in range(len(train))])
    bases: dict[str, torch.nn.Module] = {}
    cache: dict[tuple[str, float], Packed] = {}

    def get(arch: str, sparsity: float) -> Packed:
        if (arch, sparsity) in cache:
            return cache[(arch, sparsity)]
        if arch not in bases:
            torch.manual_seed(0)
            bases[arch] = build_arch(arch, num_classes=10)
        config = PruneConfig(sparsity=sparsity, nm="2:4", block="16x16", steps=1,
                             epochs_per_step=1, batch_size=8, samples_per_class=8,
                             image_size=IMAGE)
        stem = f"{arch}-{int(100 * sparsity)}"
        path = directory / f"{stem}.crisp"
        with one_torch_thread():
            result = prune(copy.deepcopy(bases[arch]), DATA, CLASSES, config,
                           eval_data=eval_set, progress=False)
            recalibrate_batch_norm(result.model, train_images)
            ckpt = result_checkpoint(result, arch=arch, data=DATA)
            save_checkpoint(ckpt, directory / f"{stem}.pt")
            # portable: the engine's pattern in every layer, which these tests check (for
            # this CPU the packer would store the convs its cost table runs dense, dense).
            report = pack_checkpoint(directory / f"{stem}.pt", path, isa="portable")
            with torch.no_grad():
                expected = result.model.eval()(test_images).numpy()
        with crisp_edge.load(path) as m:
            got, info = m.run(test_images.numpy()), m.info()
        cache[(arch, sparsity)] = Packed(arch, sparsity, ckpt, result.model, path, report,
                                         expected, got, info)
        return cache[(arch, sparsity)]

    return get


CASES = [pytest.param(a, s, id=f"{a}-{int(100 * s)}") for a in ARCHS for s in SPARSITIES]


@pytest.mark.parametrize("arch, sparsity", CASES)
def test_float32_runtime_matches_torch(zoo, arch: str, sparsity: float) -> None:
    p = zoo(arch, sparsity)
    assert p.runtime_logits.shape == p.torch_logits.shape == (2 * TEST_PER_CLASS, len(CLASSES))
    scale = float(np.abs(p.torch_logits).max())
    err = float(np.abs(p.runtime_logits - p.torch_logits).max())
    assert scale > 0 and np.isfinite(p.runtime_logits).all()
    # The logits depend on the image (a model answering a constant would hide any bug).
    spread = float((p.torch_logits.max(0) - p.torch_logits.min(0)).max())
    assert spread >= 0.05 * scale, f"logits barely vary over the images: {spread:.3g}"
    assert err <= 1e-3 * scale, f"max abs logit error {err:.3g} > 1e-3 × logit scale {scale:.3g}"
    top_t, top_r = p.torch_logits.argmax(1), p.runtime_logits.argmax(1)
    ranked = np.sort(p.torch_logits, axis=1)
    margin = float((ranked[:, -1] - ranked[:, -2]).min())
    assert np.array_equal(top_t, top_r), \
        f"top-1 differs on {(top_t != top_r).sum()} images (smallest torch margin {margin:.3g})"


@pytest.mark.parametrize("arch, sparsity", CASES)
def test_packed_layers_follow_the_engines_pattern(zoo, arch: str, sparsity: float) -> None:
    p = zoo(arch, sparsity)
    rows = {row.name: row for row in p.report.layers}
    assert [lay["name"] for lay in p.ckpt.layers] == [row.name for row in p.report.layers]
    assert p.report.notes == []  # no layer fell back to another encoding
    assert p.ckpt.pattern["shared_rows"] == 4  # the engine's default: row-shared N:M
    for lay in p.ckpt.layers:
        row, mask = rows[lay["name"]], p.ckpt.masks[lay["param"]]
        if lay["role"] in ("first", "depthwise"):
            assert (row.encoding, row.pattern) == ("DENSE_F32", "dense"), lay
            assert bool(mask.all())
            continue
        expected = "hybrid 16x16 2:4 V=4" if lay["blocks"] and lay["nm"] else \
            "N:M 2:4 V=4" if lay["nm"] else "block 16x16"
        assert (row.encoding, row.pattern) == ("HYBRID_F32", expected), lay
        # The file stores exactly the engine's kept weights (no padding at 2:4 with K % 4 == 0).
        kept = int(mask.sum()) / mask.numel()
        assert row.density == pytest.approx(kept, abs=1e-9), lay["name"]
        assert row.effective_macs == round(row.dense_macs * kept)
        assert row.bytes < row.dense_bytes
    body = [lay for lay in p.ckpt.layers if lay["role"] == "body"]
    assert body and all(lay["blocks"] and lay["nm"] for lay in body)


@pytest.mark.parametrize("arch, sparsity", CASES)
def test_runtime_executes_only_the_kept_macs(zoo, arch: str, sparsity: float) -> None:
    p = zoo(arch, sparsity)
    # The runtime's own count (from the loaded hybrid tensors) equals the packer's and the
    # engine's report (mask densities × dense MACs).
    assert p.info["macs"] == p.report.macs
    assert p.info["effective_macs"] == p.report.effective_macs
    engine = p.ckpt.report["macs"]
    assert p.info["effective_macs"] == engine["effective"]
    ratio = p.info["effective_macs"] / p.info["macs"]
    assert ratio < MAC_RATIO_BOUND[sparsity], f"effective MACs {ratio:.3f} of dense"
    achieved = p.ckpt.report["sparsity"]["achieved"]
    assert achieved == pytest.approx(sparsity, abs=0.06)


def test_int8_runtime_is_bit_exact_with_the_numpy_executor(zoo, tmp_path: Path,
                                                            test_images: torch.Tensor) -> None:
    """MobileNetV2: int8 depthwise, ReLU6 clamps, residual adds and hybrid int8 1×1 convs."""
    p = zoo("mobilenet_v2_cifar", 0.9)
    ckpt_path = p.path.with_suffix(".pt")
    calib = calibration_images(DATA, IMAGE, CLASSES)
    assert len(calib) == 2 * 20  # every calibration render of the user classes
    report = pack_checkpoint(ckpt_path, tmp_path / "q.crisp", int8=True, calibration=DATA)
    assert report.int8 and report.notes == []
    encodings = {lay["name"]: lay for lay in p.ckpt.layers}
    for row in report.layers:
        dense = encodings[row.name]["role"] in ("first", "depthwise")
        assert row.encoding == ("DENSE_I8" if dense else "HYBRID_I8"), row
    x = test_images.numpy()
    graph = fmt.read_model(tmp_path / "q.crisp").graph
    with crisp_edge.load(tmp_path / "q.crisp") as m:
        got = m.run(x)
        assert m.info()["effective_macs"] == p.info["effective_macs"]
    expected = qexec.run_int8(graph, x)
    assert np.array_equal(got, expected), \
        f"{(got != expected).mean():.1%} of outputs differ, max {np.abs(got - expected).max()}"
    # Not a constant: the int8 logits of the images differ by many output quantisation steps.
    # (How close int8 stays to float32 is a question for trained models: bench/verify_zoo.py.)
    step = graph.values[graph.ops[-1].inputs[0]].scale
    assert float((got.max(0) - got.min(0)).max()) >= 10 * step
