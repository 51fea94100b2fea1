"""`crisp-edge pack / run / inspect` on a tiny model, and the model-spec loader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import crisp_edge
from crisp_edge.cli import main
from crisp_edge.cli.commands import read_labels
from crisp_edge.errors import ArgumentError
from crisp_edge.models.spec import build_model, load_model_class

MODEL_SOURCE = '''
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
'''


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "tiny.py").write_text(MODEL_SOURCE)
    torch.manual_seed(0)
    model = build_model(f"{tmp_path / 'tiny.py'}:Tiny", num_classes=4)
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "w.pt")
    (tmp_path / "labels.txt").write_text('7\tcat\n12\tdog\n13\tsay "hi"\n20\tbird\n')
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((2, 3, 8, 8))
            .astype(np.float32))
    return tmp_path


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output + result.stderr, result.output + result.stderr
    return result


def test_pack_run_inspect(workdir: Path, runtime_lib) -> None:
    out = workdir / "tiny.crisp"
    r = invoke("pack", "--model", f"{workdir / 'tiny.py'}:Tiny", "--num-classes", "4",
               "--weights", str(workdir / "w.pt"), "--input-shape", "3,8,8",
               "--labels", str(workdir / "labels.txt"), "--out", str(out))
    assert r.exit_code == 0, r.stderr
    assert f"wrote {out}" in r.stdout and "1 BatchNorm folded" in r.stdout

    r = invoke("run", str(out), str(workdir / "x.npy"), "--top-k", "2",
               "--output", str(workdir / "y.npy"))
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4 and lines[0].startswith("sample 0: #1 index ")
    y = np.load(workdir / "y.npy")
    model = build_model(f"{workdir / 'tiny.py'}:Tiny", 4, workdir / "w.pt").eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(np.load(workdir / "x.npy"))).numpy()
    np.testing.assert_allclose(y, expected, atol=1e-5)
    best = int(np.argmax(y[1]))
    names = {0: 'class 7 "cat"', 1: 'class 12 "dog"', 2: 'class 13 "say \\"hi\\""',
             3: 'class 20 "bird"'}
    assert lines[2] == f"sample 1: #1 index {best} {names[best]} score {y[1, best]:.4f}"

    r = invoke("inspect", str(out))
    assert r.exit_code == 0, r.stderr
    for text in ("format 1.1", "GRPH", "WGHT", "LABL", "PROV", "CONV2D+relu", "LINEAR",
                 "GLOBAL_AVG_POOL", 'class 13 "say "hi""', "peak activation memory", "source_sha256"):
        assert text in r.stdout, text

    r = invoke("inspect", "--json", str(out))
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert [s["kind"] for s in d["sections"]] == ["GRPH", "WGHT", "LABL", "PROV"]
    assert [op["kind"] for op in d["ops"]] == ["CONV2D", "GLOBAL_AVG_POOL", "RESHAPE", "LINEAR"]
    assert d["ops"][0]["params"]["kh"] == 3 and d["ops"][0]["weight"] == [4, 3, 3, 3]
    assert d["ops"][0]["macs"] == 4 * 8 * 8 * 27
    assert [op["kernel"] for op in d["ops"]] == ["gemm", "reference", "reference", "gemv"]
    assert d["runtime"]["macs"] == sum(op["macs"] for op in d["ops"])
    assert 0 < d["runtime"]["arena_bytes"] <= d["runtime"]["naive_bytes"]
    assert d["labels"][2] == {"index": 2, "class_id": 13, "name": 'say "hi"'}
    assert d["provenance"]["source"].endswith(".Tiny")
    with crisp_edge.load(out) as m:
        info = m.info()
    assert info["labels"][0] == (7, "cat") and info["input_shape"] == (3, 8, 8)
    assert info["provenance"] == d["provenance"] and info["ops"] == 4


def test_usage_errors_exit_2(workdir: Path) -> None:
    assert invoke("pack", "--model", "x.py:A", "--out", "o.crisp").exit_code == 2
    r = invoke("pack", "--model", f"{workdir / 'tiny.py'}:Tiny", "--input-shape", "3,x",
               "--out", str(workdir / "o.crisp"))
    assert r.exit_code == 2 and "comma-separated" in r.stderr
    assert invoke("run", str(workdir / "missing.crisp"), str(workdir / "x.npy")).exit_code == 2
    assert invoke("frobnicate").exit_code == 2


def test_user_errors_exit_1(workdir: Path, runtime_lib) -> None:
    r = invoke("pack", "--model", f"{workdir / 'tiny.py'}:Huge", "--input-shape", "3,8,8",
               "--out", str(workdir / "o.crisp"))
    assert r.exit_code == 1
    assert r.stderr == f"crisp-edge: error: '{workdir / 'tiny.py'}' has no class 'Huge'; " \
                       "classes defined there: Tiny\n"
    r = invoke("pack", "--model", f"{workdir / 'tiny.py'}:Tiny", "--input-shape", "3,8,8",
               "--num-classes", "5", "--weights", str(workdir / "w.pt"),
               "--out", str(workdir / "o.crisp"))
    assert r.exit_code == 1 and "do not fit Tiny" in r.stderr
    r = invoke("pack", "--model", f"{workdir / 'tiny.py'}:Tiny", "--input-shape", "3,8,8",
               "--labels", str(workdir / "labels.txt"), "--out", str(workdir / "o.crisp"))
    assert r.exit_code == 1 and "labels: 4 given, but the model has 3 outputs" in r.stderr
    (workdir / "bad.npy").write_text("not numpy")
    invoke("pack", "--model", f"{workdir / 'tiny.py'}:Tiny", "--input-shape", "3,8,8",
           "--out", str(workdir / "o.crisp"))
    r = invoke("run", str(workdir / "o.crisp"), str(workdir / "bad.npy"))
    assert r.exit_code == 1 and "cannot read" in r.stderr
    assert not (workdir / "missing.crisp").exists()


def test_modelspec_errors(tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match="must look like"):
        load_model_class("no_colon.py")
    with pytest.raises(ArgumentError, match="does not exist"):
        load_model_class(f"{tmp_path / 'nope.py'}:A")
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ArgumentError, match="RuntimeError: boom"):
        load_model_class(f"{tmp_path / 'broken.py'}:A")
    (tmp_path / "tiny.py").write_text(MODEL_SOURCE)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ArgumentError, match="not a state dict"):
        build_model(f"{tmp_path / 'tiny.py'}:Tiny", weights=tmp_path / "list.pt")
    (tmp_path / "needs.py").write_text("class NeedsWidth:\n    def __init__(self, width): pass\n")
    with pytest.raises(ArgumentError, match=r"cannot construct NeedsWidth\(num_classes=2\)"):
        build_model(f"{tmp_path / 'needs.py'}:NeedsWidth", num_classes=2)
    assert build_model(f"{tmp_path / 'tiny.py'}:Tiny", num_classes=2).fc.out_features == 2


def test_read_labels(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("cat\n5\tdog\nsea lion\n")
    assert read_labels(str(tmp_path / "l.txt")) == [(0, "cat"), (5, "dog"), (2, "sea lion")]
    (tmp_path / "bad.txt").write_text("x\tcat\n")
    with pytest.raises(ArgumentError, match="bad.txt:1: class id 'x'"):
        read_labels(str(tmp_path / "bad.txt"))


def test_entry_point_runs_as_module(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "crisp_edge.cli", "inspect",
                           str(tmp_path / "missing.crisp")], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2 and "does not exist" in proc.stderr
