"""PREP through packing: from a checkpoint's data source, from explicit options, absent when
unknown; and what the report and `crisp-edge inspect` say about it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from crisp_edge import format as fmt
from crisp_edge.cli.group import main
from crisp_edge.data import cifar, imagefolder, synthetic
from crisp_edge.errors import ArgumentError
from crisp_edge.packing.pack import pack, pack_checkpoint

NET = """
from torch import nn


class Net(nn.Sequential):
    def __init__(self, num_classes=3):
        super().__init__(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, num_classes))
"""


def _checkpoint(tmp_path: Path, data: str | None, size: int = 16) -> tuple[Path, str]:
    from crisp_edge.models.checkpoint import Checkpoint, save_checkpoint

    (tmp_path / "net.py").write_text(NET)
    spec = f"{tmp_path / 'net.py'}:Net"
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 3))
    ckpt = Checkpoint(kind="base", state_dict=net.state_dict(), num_classes=3,
                      input_shape=[3, size, size], model_source=spec, classes=[0, 1, 2],
                      class_names=["a", "b", "c"], data=data)
    return save_checkpoint(ckpt, tmp_path / "base.pt"), spec


@pytest.mark.parametrize("data,expected", [
    ("synthetic:5", synthetic.preprocess(16)),
    ("cifar100:/nowhere", fmt.Preprocess(16, 16, cifar.MEAN, cifar.STD, fmt.RESIZE_STRETCH)),
    ("/no/such/image/folder", fmt.Preprocess(16, 16, imagefolder.MEAN, imagefolder.STD,
                                             fmt.RESIZE_SHORTER_SIDE, 16)),
    (None, None),
    ("hf:some/dataset", None),
])
def test_pack_checkpoint_stores_the_data_sources_preprocessing(
        tmp_path: Path, data: str | None, expected: fmt.Preprocess | None) -> None:
    path, spec = _checkpoint(tmp_path, data)
    report = pack_checkpoint(path, tmp_path / "m.crisp", model_source=spec)
    mf = fmt.read_model(tmp_path / "m.crisp")
    assert mf.preprocess == expected == report.preprocess
    if expected is None:
        assert "preprocessing: not stored (repack with --mean/--std" in str(report)
        assert all(s.name != "PREP" for s in mf.sections)
    else:
        assert "preprocessing: 16x16 RGB, resize" in str(report)


def test_source_preprocess_values() -> None:
    assert synthetic.preprocess(32) == fmt.Preprocess(32, 32, synthetic.MEAN, synthetic.STD)
    assert cifar.preprocess(32).resize == fmt.RESIZE_NONE
    p = imagefolder.preprocess(224)
    assert (p.resize, p.resize_size, p.scale) == (fmt.RESIZE_SHORTER_SIDE, 224, fmt.Preprocess(
        1, 1, (0, 0, 0), (1, 1, 1)).scale)


def test_pack_checkpoint_overrides(tmp_path: Path) -> None:
    path, spec = _checkpoint(tmp_path, "synthetic:5")
    report = pack_checkpoint(path, tmp_path / "m.crisp", model_source=spec,
                             preprocess={"resize": "shorter_side", "channel_order": "bgr"})
    p = report.preprocess
    assert p is not None and p.mean == synthetic.preprocess(16).mean
    assert (p.resize, p.resize_size, p.channel_order) == (fmt.RESIZE_SHORTER_SIDE, 16,
                                                          fmt.CHANNELS_BGR)
    assert fmt.read_model(tmp_path / "m.crisp").preprocess == p
    path, spec = _checkpoint(tmp_path, None)
    with pytest.raises(ArgumentError, match="needs --mean and --std"):
        pack_checkpoint(path, tmp_path / "m.crisp", model_source=spec,
                        preprocess={"resize": "stretch"})
    with pytest.raises(ArgumentError, match=r"preprocess: std\[2\] is 0, expected > 0"):
        pack_checkpoint(path, tmp_path / "m.crisp", model_source=spec,
                        preprocess={"mean": (0, 0, 0), "std": (1, 1, 0)})


def test_pack_keyword_and_mismatch(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten())
    prep = fmt.Preprocess(8, 10, (0.5,) * 3, (0.25,) * 3, fmt.RESIZE_STRETCH)
    report = pack(net, torch.randn(1, 3, 8, 10), tmp_path / "m.crisp", preprocess=prep)
    assert fmt.read_model(tmp_path / "m.crisp").preprocess == prep == report.preprocess
    with pytest.raises(ArgumentError, match=r"preprocess: width is 10, expected 9"):
        pack(net, torch.randn(1, 3, 8, 9), tmp_path / "m.crisp", preprocess=prep)


def test_cli_pack_options_and_inspect(tmp_path: Path, runtime_lib) -> None:
    (tmp_path / "net.py").write_text(NET)
    runner = CliRunner()
    out = tmp_path / "m.crisp"
    base = ["pack", "--model", f"{tmp_path / 'net.py'}:Net", "--num-classes", "3",
            "--input-shape", "3,20,24", "--out", str(out)]
    r = runner.invoke(main, base + ["--mean", "0.485,0.456,0.406", "--std",
                                    "0.229,0.224,0.225", "--resize", "shorter_side:30",
                                    "--channel-order", "BGR"])
    assert r.exit_code == 0, r.output
    assert "preprocessing: 24x20 BGR, resize shorter_side 30" in r.output
    r = runner.invoke(main, ["inspect", str(out)])
    assert r.exit_code == 0, r.output
    assert "PREP optional" in r.output
    assert ("preprocessing: 24x20 BGR, resize shorter_side 30, scale 0.00392157, mean "
            "0.485,0.456,0.406, std 0.229,0.224,0.225") in r.output
    d = json.loads(runner.invoke(main, ["inspect", "--json", str(out)]).output)
    assert d["preprocessing"]["resize"] == "shorter_side" and d["preprocessing"]["height"] == 20
    assert d["preprocessing"]["channel_order"] == "BGR"

    r = runner.invoke(main, base)
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["inspect", str(out)])
    assert ("preprocessing: not stored (repack with --mean/--std/--resize/--channel-order to "
            "personalise from images)") in r.output
    assert json.loads(runner.invoke(main, ["inspect", "--json", str(out)]).output)[
        "preprocessing"] is None
    r = runner.invoke(main, base + ["--resize", "stretch"])
    assert r.exit_code == 1 and "needs --mean and --std" in r.output
    r = runner.invoke(main, base + ["--mean", "1,2", "--std", "1,1,1"])
    assert r.exit_code == 2 and "three comma-separated numbers" in r.output
    r = runner.invoke(main, base + ["--mean", "0,0,0", "--std", "1,1,1", "--resize", "crop"])
    assert r.exit_code == 2 and "none, stretch or shorter_side[:S]" in r.output
    r = runner.invoke(main, base + ["--mean", "0,0,0", "--std", "1,1,1",
                                    "--resize", "shorter_side:10"])
    assert r.exit_code == 1 and "resize_size is 10, expected 24..16384" in r.output
