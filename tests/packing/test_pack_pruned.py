"""Packing pruned models: pattern auto-detection of zeros written elsewhere, pruning checkpoints
(roles, fallbacks, labels, SALY, provenance), and — with the C runtime — hybrid float32 against
torch and int8 against the numpy executor of the spec (bit for bit)."""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import crisp_edge
from conftest import assert_close, randomize_batch_norm
from crisp_edge import format as fmt
from crisp_edge.reference import int8 as qexec
from crisp_edge.reference.run import run_graph
from crisp_edge.packing.pack import pack, pack_checkpoint


def to_matrix(w: torch.Tensor) -> torch.Tensor:
    return w.permute(0, 2, 3, 1).reshape(w.shape[0], -1) if w.dim() == 4 else w


def from_matrix(mat: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if len(shape) == 4:
        cout, cin, kh, kw = shape
        return mat.reshape(cout, kh, kw, cin).permute(0, 3, 1, 2)
    return mat.reshape(shape)


@torch.no_grad()
def zero_pattern(w: torch.Tensor, n: int, m: int, br: int, bc: int, keep: float) -> torch.Tensor:
    """Magnitude-prune ``w`` in place to hybrid N:M-in-blocks (N = M: blocks only; keep = 1:
    N:M only), as torch.ao.pruning or any other tool could; returns the bool mask."""
    mat = to_matrix(w).clone()
    rows, cols = mat.shape
    if n < m:
        groups = mat.reshape(rows, cols // m, m)
        drop = groups.abs().argsort(dim=-1, descending=True)[..., n:]
        groups.scatter_(-1, drop, 0.0)
        mat = groups.reshape(rows, cols)
    nbr, nbc = -(-rows // br), -(-cols // bc)
    per_row = max(1, math.ceil(keep * nbc))
    for i in range(nbr):
        norms = torch.stack([mat[i * br:(i + 1) * br, j * bc:(j + 1) * bc].abs().sum()
                             for j in range(nbc)])
        for j in norms.argsort(descending=True)[per_row:].tolist():
            mat[i * br:(i + 1) * br, j * bc:(j + 1) * bc] = 0.0
    w.copy_(from_matrix(mat, w.shape))
    return w != 0


class Net(nn.Module):
    """Odd channel counts, a 5×5 kernel, dilation, stride-2 depthwise, a residual, BN."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(16, 40, 3, padding=2, dilation=2, bias=False),
                                  nn.BatchNorm2d(40), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(40, 40, 3, 2, 1, groups=40), nn.ReLU())
        self.mix = nn.Conv2d(40, 40, 1)
        self.wide = nn.Sequential(nn.Conv2d(40, 21, 5, padding=2), nn.ReLU())
        self.odd = nn.Conv2d(21, 28, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(28, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(self.body(self.stem(x)))
        y = torch.relu(self.mix(y) + y)
        y = self.odd(self.wide(y))
        return self.fc(torch.flatten(self.pool(y), 1))


def pruned_net(seed: int = 0, num_classes: int = 10) -> tuple[Net, dict[str, torch.Tensor]]:
    torch.manual_seed(seed)
    net = randomize_batch_norm(Net(num_classes), seed)
    masks = {
        "body.0.weight": zero_pattern(net.body[0].weight, 2, 4, 16, 16, 0.5),  # hybrid
        "mix.weight": zero_pattern(net.mix.weight, 4, 4, 8, 16, 0.34),         # block only
        "wide.0.weight": zero_pattern(net.wide[0].weight, 2, 8, 16, 16, 0.4),   # hybrid 2:8
        "fc.weight": zero_pattern(net.fc.weight, 1, 4, 16, 28, 1.0),            # N:M only
    }
    with torch.no_grad():  # random zeros: no pattern fits
        net.odd.weight.mul_((torch.rand_like(net.odd.weight) > 0.5).float())
    return net.eval(), masks


def rows_by_name(report) -> dict:
    return {row.name: row for row in report.layers}


def test_pattern_auto_detects_each_layers_pattern(tmp_path: Path) -> None:
    net, _ = pruned_net()
    x = torch.randn(4, 3, 16, 16)
    report = pack(net, x, tmp_path / "auto.crisp", isa="portable")  # patterns as found
    rows = rows_by_name(report)
    assert rows["stem.0"].pattern == "dense" and rows["dw.0"].pattern == "dense"
    assert rows["body.0"].pattern.startswith("hybrid") and rows["body.0"].pattern.endswith("2:4")
    assert rows["mix"].pattern.startswith("block ")
    assert rows["wide.0"].pattern.startswith("hybrid") and "2:8" in rows["wide.0"].pattern
    assert rows["fc"].pattern == "N:M 1:4"
    assert rows["odd"].encoding == "DENSE_F32" and rows["odd"].note.startswith("no pattern fits")
    assert report.notes == [f"odd: {rows['odd'].note}"]
    for name in ("body.0", "mix", "wide.0", "fc"):
        assert rows[name].encoding == "HYBRID_F32" and rows[name].bytes < rows[name].dense_bytes
        assert rows[name].effective_macs < rows[name].dense_macs
    assert "body.0" in str(report) and "N:M 1:4" in str(report)
    graph = fmt.read_model(tmp_path / "auto.crisp").graph
    assert_close(run_graph(graph, x.numpy()), net(x).detach().numpy(), "auto")


def _write_checkpoint(tmp_path: Path, layers_nm: dict[str, bool] | None = None) -> Path:
    from crisp_edge.models.checkpoint import Checkpoint, save_checkpoint

    source = tmp_path / "user_net.py"
    source.write_text("import torch\nfrom torch import nn\n\n\n" + inspect.getsource(Net))
    net, masks = pruned_net(num_classes=3)
    with torch.no_grad():  # body.0's zeros break its 2:4 pattern: the packer must fall back
        net.body[0].weight[0, :, 0, 0] = 1.0
    masks["body.0.weight"] = net.body[0].weight != 0
    nm = layers_nm or {}
    layers = [
        {"name": "stem.0", "param": "stem.0.weight", "kind": "conv", "role": "first",
         "blocks": False, "nm": False},
        {"name": "body.0", "param": "body.0.weight", "kind": "conv", "role": "body",
         "blocks": True, "nm": True},
        {"name": "dw.0", "param": "dw.0.weight", "kind": "conv", "role": "depthwise",
         "blocks": False, "nm": False},
        {"name": "mix", "param": "mix.weight", "kind": "conv", "role": "body", "blocks": True,
         "nm": nm.get("mix", False)},
        {"name": "wide.0", "param": "wide.0.weight", "kind": "conv", "role": "body",
         "blocks": True, "nm": True},
        {"name": "odd", "param": "odd.weight", "kind": "conv", "role": "body", "blocks": True,
         "nm": True},
        {"name": "fc", "param": "fc.weight", "kind": "linear", "role": "classifier",
         "blocks": False, "nm": True},
    ]
    saliency = {"body.0.weight": torch.rand(3, 3, 9).half(),
                "wide.0.weight": torch.rand(3, 2, 63).half()}
    ckpt = Checkpoint(kind="pruned", state_dict=net.state_dict(), num_classes=3,
                      input_shape=[3, 16, 16], model_source=f"{source}:Net", masks=masks,
                      pattern={"n": 2, "m": 4, "block_rows": 16, "block_cols": 16,
                               "shared_rows": 1},
                      layers=layers, classes=[7, 2, 40], class_names=["cat", "dog", "frog"],
                      head={"reduced": True, "module": "fc", "original_num_classes": 50},
                      config={"sparsity": 0.5, "steps": 3}, saliency=saliency,
                      data=f"imagefolder:{tmp_path}/photos/")
    return save_checkpoint(ckpt, tmp_path / "pruned.pt")


def _user_spec(tmp_path: Path) -> str:
    """The ``--model`` of :func:`_write_checkpoint`'s checkpoint: the user names it, the
    checkpoint only suggests it."""
    return f"{tmp_path / 'user_net.py'}:Net"


def test_pack_checkpoint_follows_roles_and_reports_fallbacks(tmp_path: Path) -> None:
    path = _write_checkpoint(tmp_path)
    report = pack_checkpoint(path, tmp_path / "model.crisp", model_source=_user_spec(tmp_path),
                             isa="portable")  # the patterns as found
    rows = rows_by_name(report)
    assert rows["stem.0"].pattern == rows["dw.0"].pattern == "dense"
    assert rows["mix"].pattern == "block 16x16"          # nm False: block only
    assert rows["wide.0"].pattern == "hybrid 16x16 2:4"  # the checkpoint's pattern (2:8 ⊂ 2:4)
    assert rows["fc"].pattern == "N:M 2:4"               # classifier: N:M only
    assert "zeros do not fit hybrid 16x16 2:4 (row 0, group 0" in rows["body.0"].note
    assert "auto-detected" in rows["body.0"].note
    assert "zeros do not fit hybrid 16x16 2:4" in rows["odd"].note
    assert rows["odd"].encoding == "DENSE_F32"
    mf = fmt.read_model(tmp_path / "model.crisp")
    assert [(lb.class_id, lb.name) for lb in mf.labels or []] == [(7, "cat"), (2, "dog"),
                                                                 (40, "frog")]
    assert mf.provenance is not None and mf.provenance["pruning"] == {"sparsity": 0.5,
                                                                     "steps": 3}
    assert len(mf.provenance["checkpoint_sha256"]) == 64 and mf.provenance["classes"] == [7, 2,
                                                                                          40]
    # Finding 6: file names and hashes, never the packer's directories.
    assert mf.provenance["model_source"] == "user_net.py:Net"
    assert mf.provenance["model_source_sha256"] == hashlib.sha256(
        (tmp_path / "user_net.py").read_bytes()).hexdigest()
    assert mf.provenance["checkpoint"] == "pruned.pt"
    assert mf.provenance["data"] == "imagefolder:photos"
    assert str(tmp_path) not in json.dumps(mf.provenance)
    assert mf.saliency is not None and [s.name for s in mf.saliency] == ["body.0", "wide.0"]
    wide = next(s for s in mf.saliency if s.name == "wide.0")
    assert wide.data.shape == (3, 2, 63)
    assert mf.graph.tensors[wide.tensor].dims == (21, 5, 5, 40)


def test_pack_checkpoint_int8_from_images(tmp_path: Path) -> None:
    path = _write_checkpoint(tmp_path)
    calib = torch.randn(16, 3, 16, 16)
    report = pack_checkpoint(path, tmp_path / "q.crisp", model_source=_user_spec(tmp_path),
                             int8=True, calibration=calib)
    rows = rows_by_name(report)
    assert report.int8 and rows["wide.0"].encoding == "HYBRID_I8"
    assert rows["stem.0"].encoding == "DENSE_I8"
    mf = fmt.read_model(tmp_path / "q.crisp")
    assert mf.saliency is not None
    for s in mf.saliency:  # tensor ids follow the weights into the int8 graph
        assert mf.graph.tensors[s.tensor].encoding == fmt.ENCODING_HYBRID_I8


def test_pack_checkpoint_never_imports_the_model_file_the_checkpoint_names(tmp_path: Path
                                                                          ) -> None:
    """A .pt file is data: its model_source is a suggestion for --model, never code to run."""
    path = _write_checkpoint(tmp_path)
    ran = tmp_path / "ran"
    source = tmp_path / "user_net.py"
    source.write_text(source.read_text() + f"\nopen({str(ran)!r}, 'w').close()\n")
    with pytest.raises(crisp_edge.errors.ArgumentError) as refused:
        pack_checkpoint(path, tmp_path / "model.crisp")
    message = str(refused.value)
    assert str(path) in message and f"--model {_user_spec(tmp_path)}" in message
    assert "a data file must not choose code to run" in message
    assert not ran.exists() and not (tmp_path / "model.crisp").exists()
    assert isinstance(refused.value, crisp_edge.errors.ModelCodeRequiredError)
    pack_checkpoint(path, tmp_path / "model.crisp", model_source=_user_spec(tmp_path))
    assert ran.exists()  # named by the user: imported


def test_pack_argument_errors(tmp_path: Path) -> None:
    net, _ = pruned_net()
    with pytest.raises(crisp_edge.errors.ArgumentError, match="calibration images"):
        pack(net, torch.randn(2, 3, 16, 16), tmp_path / "x.crisp", int8=True)
    with pytest.raises(crisp_edge.errors.ArgumentError, match="needs the checkpoint's pattern"):
        pack(net, torch.randn(2, 3, 16, 16), tmp_path / "x.crisp", pattern_mode="checkpoint")
    report = pack(net, torch.randn(2, 3, 16, 16), tmp_path / "d.crisp", pattern_mode="dense")
    assert {row.encoding for row in report.layers} == {"DENSE_F32"}


# --------------------------------------------------------------------------- with libcrisp

@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small CNN trained briefly on synthetic data (so logits have real margins), then
    hybrid-pruned without fine-tuning; returns (model, calibration images, test images)."""
    from crisp_edge.data.sources import open_source

    data = open_source("synthetic:10", split="train", image_size=16, samples_per_class=40)
    x = torch.stack([data[i][0] for i in range(len(data))])
    y = torch.tensor([int(data[i][1]) for i in range(len(data))])
    torch.manual_seed(0)
    net = Net(10)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(6):
        for idx in torch.randperm(len(x)).split(50):
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    zero_pattern(net.body[0].weight, 2, 4, 16, 16, 0.75)
    zero_pattern(net.mix.weight, 2, 4, 8, 16, 0.75)
    zero_pattern(net.wide[0].weight, 2, 4, 16, 16, 0.75)
    zero_pattern(net.fc.weight, 2, 4, 16, 28, 1.0)
    test = open_source("synthetic:10", split="test", image_size=16, samples_per_class=10)
    return net, x[::4], torch.stack([test[i][0] for i in range(len(test))])


def test_runtime_hybrid_float32_matches_torch(tmp_path: Path, runtime_lib: Path,
                                              trained) -> None:
    net, _, x = trained
    for name, model in (("trained", net), ("auto", pruned_net()[0])):
        report = pack(model, x[:2], tmp_path / f"{name}.crisp")
        assert any(row.encoding == "HYBRID_F32" for row in report.layers)
        with crisp_edge.load(tmp_path / f"{name}.crisp") as m:
            got = m.run(x.numpy())
        assert_close(got, model(x).detach().numpy(), name)


def test_runtime_int8_is_bit_exact_with_the_numpy_executor(tmp_path: Path, runtime_lib: Path,
                                                           trained, monkeypatch) -> None:
    net, calib, x = trained
    report = pack(net, x[:2], tmp_path / "q.crisp", int8=True, calibration=calib)
    assert {"HYBRID_I8", "DENSE_I8"} <= {row.encoding for row in report.layers}
    graph = fmt.read_model(tmp_path / "q.crisp").graph
    expected = qexec.run_int8(graph, x.numpy())
    # The hybrid fc as runs (qs8_spmv) and as a dense copy (qs8_gemv; the cost rule's choice
    # for a 2:4 layer that keeps every block, runtime/README.md), split over 1-3 threads.
    kernel = {"sparse": "qs8_spmv", "dense": "qs8_gemv (dense copy)", "auto": "qs8_gemv (dense copy)"}
    for form, threads in itertools.product(kernel, (1, 2, 3)):
        monkeypatch.setenv("CRISP_HYBRID_FORM", form)
        with crisp_edge.load(tmp_path / "q.crisp", threads=threads) as m:
            got = m.run(x.numpy())
            assert m.op_kernels()[-2] == kernel[form], m.op_kernels()
        assert np.array_equal(got, expected), \
            f"{form}, {threads} threads: {(got != expected).mean():.1%} of outputs differ, " \
            f"max {np.abs(got - expected).max()}"
    float_logits = net(x).detach().numpy()
    assert len(np.unique(got.argmax(1))) >= 5  # a real classifier, not a constant
    agreement = (got.argmax(1) == float_logits.argmax(1)).mean()
    assert agreement >= 0.95, agreement


def test_engine_pruned_odd_net_runs_in_the_runtime(tmp_path: Path, runtime_lib: Path) -> None:
    """Any CNN of supported ops, not only the zoo: the pruning engine itself prunes the odd net
    (channel counts that leave partial 16×16 blocks in both dims, a 5×5 kernel, dilation,
    stride-2 depthwise, a residual), the checkpoint's pattern is packed, and the runtime
    reproduces the pruned torch model."""
    from crisp_edge.models.checkpoint import Checkpoint
    from crisp_edge.pruning.engine import PruneConfig, prune, result_checkpoint

    torch.manual_seed(0)
    net = randomize_batch_norm(Net(10), 0)
    config = PruneConfig(sparsity=0.75, steps=1, epochs_per_step=1, samples_per_class=8,
                         image_size=16, batch_size=16)
    result = prune(net, "synthetic:10", [2, 5, 9], config, progress=False)
    ckpt: Checkpoint = result_checkpoint(result, data="synthetic:10")
    model = result.model.eval()
    x = torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    report = pack(model, x[:2], tmp_path / "odd.crisp", masks=ckpt.masks, pattern=ckpt.pattern,
                  layers=ckpt.layers, pattern_mode="checkpoint", labels=list(
                      zip(ckpt.classes, ckpt.class_names)))
    rows = rows_by_name(report)
    # The body layers the engine block-pruned are stored hybrid, not decompressed to dense.
    assert rows["body.0"].encoding == "HYBRID_F32" and rows["wide.0"].encoding == "HYBRID_F32"
    assert rows["dw.0"].encoding == "DENSE_F32"  # depthwise stays dense (docs/pruning.md#the-pattern)
    with crisp_edge.load(tmp_path / "odd.crisp", threads=2) as m:
        got = m.run(x.numpy())
    with torch.no_grad():
        expected = model(x).numpy()
    assert_close(got, expected, "engine-pruned odd net")
    assert (got.argmax(1) == expected.argmax(1)).all()
