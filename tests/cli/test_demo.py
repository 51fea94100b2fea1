"""`make demo` end to end, shrunk: train, prune for the user's classes, pack dense / hybrid /
int8, run them in the C runtime and print the table."""

from __future__ import annotations

import re

from click.testing import CliRunner

from crisp_edge.cli import main
from crisp_edge.runtime import kernel_isa


def test_demo_prints_table_and_runtime_agrees(tmp_path):
    result = CliRunner().invoke(main,
        [
            "demo",
            "--out", str(tmp_path),
            "--num-classes", "4",
            "--classes", "1,3",
            "--train-per-class", "40",
            "--test-per-class", "20",
            "--train-seconds", "5",
            "--max-epochs", "2",
            "--epochs-per-step", "1",
            "--latency-runs", "5",
        ]
    )
    out = result.output
    assert result.exit_code == 0, out
    for name in ("dense.crisp", "model.crisp", "model-int8.crisp", "pruned.pt"):
        assert (tmp_path / name).stat().st_size > 0, name
    for row in ("torch, dense", "torch, CRISP-pruned", "crisp runtime, dense fp32",
                "crisp runtime, hybrid fp32", "crisp runtime, hybrid int8"):
        assert row in out, row
    # The hybrid runtime reproduces the pruned torch model's decisions on every test image.
    assert "with the pruned torch model: 100.00 %" in out, out
    # Sparse files are smaller and execute fewer MACs than the dense one.
    sizes = {p: (tmp_path / p).stat().st_size for p in ("dense.crisp", "model.crisp")}
    assert sizes["model.crisp"] < sizes["dense.crisp"]
    # It names the kernels that actually ran, not the scalar references it used to claim.
    assert f"runtime kernels: {kernel_isa()} (fp32 rows" in out, out
    assert "scalar references (the spec)" not in out
    # int8 runs optimised kernels too (qs8_*), which the note names instead of claiming scalar.
    assert re.search(r"int8 row: [a-z0-9_ (),]*qs8_", out), out
    assert "int8 ops run the scalar reference kernels" not in out
    share = re.search(r"hybrid fp32\s+\S+ %\s+\S+ KiB\s+\S+ M \((\d+) %\)", out)
    assert share and int(share.group(1)) < 100, out
