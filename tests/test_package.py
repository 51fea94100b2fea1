"""The package root: a facade over the stages that imports no torch (a board runs crisp-edge
with numpy and cffi only), and whose pack/prune/load take the stages' arguments unchanged."""

from __future__ import annotations

import subprocess
import sys

import torch

import crisp_edge
from crisp_edge.models.zoo import tiny_resnet


def test_importing_the_package_and_the_cli_imports_no_torch() -> None:
    code = ("import sys, crisp_edge, crisp_edge.cli; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_facade_pack_then_load(tmp_path, runtime_lib) -> None:
    model = tiny_resnet(5).eval()
    path = tmp_path / "m.crisp"
    crisp_edge.pack(model, torch.randn(1, 3, 32, 32), path=path)  # keyword as in packing.pack
    with crisp_edge.load(path) as m:
        assert tuple(m.info()["output_shape"]) == (5,)
