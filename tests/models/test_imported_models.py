"""Models from where users keep them: timm architectures (``--arch timm:NAME``) and ONNX files
(``--model MODEL.onnx``, ``pack MODEL.onnx``) prune, pack and run in the C runtime with the
logits of torch / ONNX Runtime (max abs error ≤ 1e-4 × the logits' scale).

Small on purpose (CI budget): 16×16 inputs when pruning, 32×32 when only packing, 3 of 10
synthetic classes, one pruning step and no final fine-tuning epochs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import crisp_edge
from crisp_edge.cli import main
from crisp_edge.errors import ArgumentError, UnsupportedOpError
from crisp_edge.models.checkpoint import build_model, build_model_from_checkpoint, load_checkpoint

from prune_helpers import TinyNet

# find_spec, not importorskip: timm and onnx2torch import only through crisp-edge's torchvision
# stand-in (crisp_edge/models/torchvision_stand_in.py).
for _name in ("timm", "onnx2torch", "onnx"):
    if importlib.util.find_spec(_name) is None:
        pytest.skip(f"the import extra ({_name}) is not installed", allow_module_level=True)
ort = pytest.importorskip("onnxruntime", reason="the import extra (onnxruntime) is not installed")

DATA = "synthetic:10"
QUICK = ["--data", DATA, "--classes", "7,2,5", "--sparsity", "0.75", "--nm", "2:4", "--block",
         "8x8", "--steps", "1", "--final-epochs", "0", "--batch-size", "16", "--quiet",
         "--samples-per-class", "8", "--test-samples-per-class", "4"]


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 0, result.output
    return result.output


def with_batch_norm_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial running statistics, so BatchNorm folding is exercised."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model.eval()


def assert_logits_match(got: np.ndarray, want: np.ndarray) -> None:
    scale = float(np.abs(want).max())
    assert scale > 0
    assert float(np.abs(got - want).max()) <= 1e-4 * scale, (np.abs(got - want).max(), scale)


def images(n: int, size: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 3, size, size)).astype(np.float32)


# --- timm ------------------------------------------------------------------------------------

def test_timm_model_prunes_packs_and_runs(tmp_path: Path) -> None:
    """timm's ``test_resnet`` (a real timm ResNet, 0.4 M parameters) keeps pruning quick."""
    torch.manual_seed(0)
    base = with_batch_norm_statistics(build_model("timm:test_resnet", None, 10))
    torch.save(base.state_dict(), tmp_path / "base.pt")  # the user's own local weights
    invoke("prune", "--arch", "timm:test_resnet", "--weights", str(tmp_path / "base.pt"),
           "--image-size", "16", "--out", str(tmp_path / "pruned.pt"), *QUICK)
    ckpt = load_checkpoint(tmp_path / "pruned.pt")
    assert ckpt.arch == "timm:test_resnet" and ckpt.input_shape == [3, 16, 16]
    assert ckpt.num_classes == 3 and ckpt.masks
    invoke("pack", str(tmp_path / "pruned.pt"), "--out", str(tmp_path / "m.crisp"))
    x = images(2, 16)
    with torch.no_grad():
        want = build_model_from_checkpoint(ckpt)(torch.from_numpy(x)).numpy()
    with crisp_edge.load(tmp_path / "m.crisp") as m:
        assert_logits_match(m.run(x), want)
        assert m.info()["provenance"]["arch"] == "timm:test_resnet"
    assert "top-1" in invoke("eval", str(tmp_path / "pruned.pt"), "--data", DATA)


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2_050",
                                  # SE + SiLU (format 1.2); hard-swish + hard-sigmoid SE gates
                                  "efficientnet_b0", "mobilenetv3_small_050"])
def test_timm_model_packs_from_arch_and_weights(name: str, tmp_path: Path) -> None:
    model = with_batch_norm_statistics(build_model(f"timm:{name}", None, 5))
    torch.save(model.state_dict(), tmp_path / "w.pt")
    invoke("pack", "--arch", f"timm:{name}", "--weights", str(tmp_path / "w.pt"),
           "--input-shape", "3,32,32", "--out", str(tmp_path / "m.crisp"))
    x = images(2, 32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    with crisp_edge.load(tmp_path / "m.crisp") as m:
        assert_logits_match(m.run(x), want)


def test_timm_op_the_runtime_lacks_names_op_and_module(tmp_path: Path) -> None:
    """ConvNeXt's LayerNorm2d permutes to channels-last (here timm's tiny ``test_convnext``)."""
    model = build_model("timm:test_convnext", None, 5)
    with pytest.raises(UnsupportedOpError,
                       match=r"aten\.permute.* in module 'stem\.1' .*LayerNorm2d"):
        crisp_edge.pack(model, torch.randn(2, 3, 32, 32), tmp_path / "m.crisp")


def test_unknown_timm_model_suggests_names() -> None:
    with pytest.raises(ArgumentError, match="timm has no model 'resnet18x'.*resnet18"):
        build_model("timm:resnet18x", None, 5)


# --- ONNX ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TinyNet (10 classes, 16×16) exported by torch's TorchScript exporter with a dynamic
    batch dim: its BatchNorm folded, its zero biases shared through Identity nodes."""
    torch.manual_seed(0)
    net = with_batch_norm_statistics(TinyNet(10))
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    torch.onnx.export(net, (torch.randn(2, 3, 16, 16),), str(path), dynamo=False,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return path


def test_onnx_file_packs_and_matches_onnxruntime(onnx_file: Path, tmp_path: Path) -> None:
    invoke("pack", str(onnx_file), "--out", str(tmp_path / "m.crisp"))
    x = images(3, 16)
    want = ort.InferenceSession(str(onnx_file)).run(None, {"x": x})[0]
    with crisp_edge.load(tmp_path / "m.crisp") as m:
        assert tuple(m.info()["input_shape"])[-3:] == (3, 16, 16)
        assert_logits_match(m.run(x), want)


def test_onnx_file_prunes_packs_and_runs(onnx_file: Path, tmp_path: Path) -> None:
    invoke("prune", "--model", str(onnx_file), "--out", str(tmp_path / "pruned.pt"), *QUICK)
    ckpt = load_checkpoint(tmp_path / "pruned.pt")
    assert ckpt.model_source == str(onnx_file) and ckpt.input_shape == [3, 16, 16]
    assert ckpt.num_classes == 3 and ckpt.masks
    # An ONNX file is data: the checkpoint may name it without --model.
    invoke("pack", str(tmp_path / "pruned.pt"), "--out", str(tmp_path / "m.crisp"))
    x = images(2, 16)
    with torch.no_grad():
        want = build_model_from_checkpoint(ckpt)(torch.from_numpy(x)).numpy()
    with crisp_edge.load(tmp_path / "m.crisp") as m:
        got = m.run(x)
        assert m.info()["provenance"]["model_source"] == "tiny.onnx"
    assert_logits_match(got, want)
    assert "top-1" in invoke("eval", str(tmp_path / "m.crisp"), "--data", DATA)


def test_onnx_file_at_a_newer_opset_is_converted_down(tmp_path: Path) -> None:
    """ReLU6 exports as Clip with Constant bounds; onnx2torch has no Constant at opset 19+, so
    the file is brought down to opset 17 first."""
    import onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU6(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 6 * 6, 3)).eval()
    path = tmp_path / "relu6.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 8, 8),), str(path), dynamo=False,
                      input_names=["x"], output_names=["y"])
    assert max(o.version for o in onnx.load(str(path)).opset_import) > 17
    invoke("pack", str(path), "--out", str(tmp_path / "m.crisp"))
    x = images(1, 8)
    want = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
    with crisp_edge.load(tmp_path / "m.crisp") as m:
        assert_logits_match(m.run(x), want)


def test_onnx_op_the_runtime_lacks_names_op_and_module(tmp_path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 6 * 6, 2)).eval()
    torch.onnx.export(net, (torch.randn(1, 3, 8, 8),), str(tmp_path / "s.onnx"), dynamo=False)
    with pytest.raises(UnsupportedOpError, match=r"aten\.tanh.*Tanh"):
        crisp_edge.pack(build_model(None, str(tmp_path / "s.onnx"), None),  # type: ignore[arg-type]
                        torch.randn(2, 3, 8, 8), tmp_path / "s.crisp")


def test_broken_onnx_file_is_a_format_error(tmp_path: Path) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf")
    result = CliRunner().invoke(main, ["pack", str(tmp_path / "bad.onnx"), "--out",
                                       str(tmp_path / "m.crisp")])
    assert result.exit_code == 1 and "is not a valid ONNX model" in result.output
