"""`crisp-edge prune` under a 2-process gloo `torchrun` matches a single-process run.

Why these tolerances: the model has no BatchNorm (BatchNorm would normalise per-rank batches of
8 instead of the global 16, a real difference rather than rounding), the data set size is a
multiple of the global batch (no sampler padding), and every optimiser step sees the same 16
samples as the single process. What differs is only the order of floating-point sums: DDP
averages two half-batch gradients instead of one full-batch mean (~1e-7 relative per step).
Measured on this test: largest weight difference 1.5e-8 after 9 SGD steps, masks identical,
losses equal to 1e-7. The assertions leave room for other CPUs' rounding: weights within
1e-5 + 1e-4 relative, at most 0.5 % of mask elements different (a near-tie in saliency may flip
on another machine), accuracy within one test sample, losses within 1e-4 relative.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from prune_helpers import DATA, TinyNetNoBN, write_net

REPO = Path(__file__).resolve().parents[2]
FLAGS = ["--data", DATA, "--classes", "7,2,5", "--sparsity", "0.75", "--nm", "2:4",
         "--block", "8x8", "--steps", "2", "--batch-size", "16", "--lr", "0.05",
         "--image-size", "16", "--samples-per-class", "16", "--quiet"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _torchrun() -> str:
    found = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("torchrun is not installed next to this Python")
    return found


def test_two_process_gloo_prune_matches_single_process(tmp_path: Path) -> None:
    spec = write_net(tmp_path).replace(":TinyNet", ":TinyNetNoBN")
    torch.manual_seed(0)
    torch.save(TinyNetNoBN(num_classes=10).state_dict(), tmp_path / "base.pt")
    common = ["prune", "--model", spec, "--weights", str(tmp_path / "base.pt"),
              "--num-classes", "10", *FLAGS]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    single = subprocess.run([sys.executable, "-m", "crisp_edge.cli", *common, "--out",
                             str(tmp_path / "single.pt")], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=180)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([_torchrun(), "--nproc_per_node", "2", "--master_port",
                          str(_free_port()), "-m", "crisp_edge.cli", *common, "--out",
                          str(tmp_path / "ddp.pt")], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=180)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count("wrote") == 1  # only rank 0 reports

    a = torch.load(tmp_path / "single.pt", weights_only=True)
    b = torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert b["report"]["world_size"] == 2 and a["report"]["world_size"] == 1
    for key, mask in a["masks"].items():
        disagree = (mask != b["masks"][key]).float().mean().item()
        assert disagree <= 0.005, (key, disagree)
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=1e-4, atol=1e-5)
    n = a["report"]["accuracy"]["final"]["n"]
    for step_a, step_b in zip(a["report"]["steps"], b["report"]["steps"]):
        assert abs(step_a["top1"] - step_b["top1"]) <= 1 / n + 1e-9
        assert step_a["loss"] == pytest.approx(step_b["loss"], rel=1e-4)
