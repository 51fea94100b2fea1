"""Pruned convs stored dense where the runtime's cost table runs them dense
(crisp_edge/packing/forms.py, runtime/README.md "Stored dense"): which layers, on which kernel
tier, with what results (bitwise those of the same file expanded at load), and the bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from crisp_edge import format as fmt
from crisp_edge import runtime
from crisp_edge.errors import ArgumentError, LibraryNotFoundError
from crisp_edge.packing.forms import TIERS
from crisp_edge.packing.pack import STORED_DENSE, pack
from test_pack_pruned import zero_pattern


class Net(nn.Module):
    """A dense stem; 2:4-only convs (every block kept: the runtime runs them dense), a 3 x 3 one
    of K = 1152 (stored dense) and a 1 x 1 one of K = 64 (short rows: faster expanded, kept
    2:4); a 2:4 conv keeping a tenth of its blocks (sparse on every tier); a 2:4 classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 128, 3, padding=1)
        self.nm24 = nn.Conv2d(128, 64, 3, padding=1)
        self.short = nn.Conv2d(64, 64, 1)
        self.sparse = nn.Conv2d(64, 64, 3, padding=1)
        self.fc = nn.Linear(64, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.nm24(torch.relu(self.stem(x))))
        y = torch.relu(self.sparse(torch.relu(self.short(y))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


def pruned() -> Net:
    torch.manual_seed(3)
    net = Net().eval()
    zero_pattern(net.nm24.weight, 2, 4, 16, 16, 1.0)
    zero_pattern(net.short.weight, 2, 4, 16, 16, 1.0)
    zero_pattern(net.sparse.weight, 2, 4, 16, 16, 0.1)
    zero_pattern(net.fc.weight, 2, 4, 16, 16, 1.0)
    return net


def weight_encodings(path: Path) -> list[str]:
    m = fmt.read_model(path)
    return [m.graph.tensors[op.weight].encoding_name for op in m.graph.ops
            if op.weight is not None]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, runtime_lib: Path
          ) -> dict[str, tuple[Path, object]]:
    d = tmp_path_factory.mktemp("forms")
    net, x = pruned(), torch.randn(1, 3, 12, 12)
    out = {}
    for isa in ("host", "portable"):
        out[isa] = (d / f"{isa}.crisp", pack(net, x, d / f"{isa}.crisp", isa=isa))
    return out


def test_two_four_conv_is_stored_dense_on_this_cpu(files: dict) -> None:
    (host, report), (portable, _) = files["host"], files["portable"]
    assert weight_encodings(portable) == ["DENSE_F32"] + ["HYBRID_F32"] * 4
    # The long-row 2:4-only conv dense; the short-row one, the 10 % one and the classifier (a
    # linear) in their pattern.
    assert weight_encodings(host) == ["DENSE_F32", "DENSE_F32"] + ["HYBRID_F32"] * 3
    row = {r.name: r for r in report.layers}["nm24"]
    assert row.encoding == "DENSE_F32" and row.pattern == "dense" and row.density == 1.0
    assert row.note == f"{STORED_DENSE} N:M 2:4: it runs dense on {runtime.kernel_isa()}"
    assert any(n.startswith("nm24: stored dense") for n in report.notes)
    assert fmt.read_model(host).provenance["isa"] == runtime.kernel_isa()
    assert fmt.read_model(portable).provenance["isa"] == "portable"
    assert host.stat().st_size > portable.stat().st_size


def test_stored_dense_runs_bitwise_as_from_the_pattern(files: dict) -> None:
    x = np.random.default_rng(0).standard_normal((1, 3, 12, 12)).astype(np.float32)
    host, portable = runtime.load(files["host"][0]), runtime.load(files["portable"][0])
    # The same dense kernels on the same floats: one reads them from the file as stored, the
    # other from a copy made at load (this small plane's layer fits the memory budget).
    assert host.op_kernels()[1] == "gemm"
    assert portable.op_kernels()[1] == "gemm (dense copy)"
    assert host.op_kernels()[2] == portable.op_kernels()[2] == "gemm (expanded)"
    assert np.array_equal(host.run(x), portable.run(x))
    for threads in (2, 3):
        assert np.array_equal(runtime.load(files["host"][0], threads=threads).run(x),
                              host.run(x))


def test_op_forms_per_tier(files: dict) -> None:
    model = runtime.load(files["portable"][0])
    kinds = [op.kind for op in fmt.read_model(files["portable"][0]).graph.ops]
    forms = model.op_forms()
    convs = [i for i, k in enumerate(kinds) if k == fmt.OP_CONV2D]
    linear = kinds.index(fmt.OP_LINEAR)
    assert forms[convs[0]] is None and forms[convs[1]] == "dense_stored"
    assert forms[convs[2]] == "dense"
    assert forms[convs[3]] in ("runs", "filled") and forms[linear] == "in_file"
    assert all(f is None for i, f in enumerate(forms) if i not in convs + [linear])
    for tier in TIERS:  # half the MACs at under half the dense rate on every tier
        assert model.op_forms(tier)[convs[1]] == "dense_stored", tier
        assert model.op_forms(tier)[convs[2]] == "dense", tier
    with pytest.raises(ArgumentError, match="kernel tier 'sse4' is unknown"):
        model.op_forms("sse4")


@pytest.mark.parametrize("tier", TIERS)
def test_pack_for_a_named_tier(tmp_path: Path, runtime_lib: Path, tier: str) -> None:
    path = tmp_path / f"{tier}.crisp"
    report = pack(pruned(), torch.randn(1, 3, 12, 12), path, isa=tier)
    assert weight_encodings(path)[1] == "DENSE_F32"
    assert {r.name: r for r in report.layers}["nm24"].note.endswith(f"runs dense on {tier}")
    assert fmt.read_model(path).provenance["isa"] == tier


def test_a_conv_that_lost_blocks_keeps_its_pattern(tmp_path: Path, runtime_lib: Path) -> None:
    """Blocks only, 90 % of them kept, runs dense on every tier, but SALY's coverage counts
    the blocks the encoding keeps: a dense tensor would claim them all."""
    torch.manual_seed(5)
    net = nn.Sequential(nn.Conv2d(128, 64, 3, padding=1)).eval()
    zero_pattern(net[0].weight, 4, 4, 16, 16, 0.9)
    path = tmp_path / "blocks.crisp"
    report = pack(net, torch.randn(1, 128, 6, 6), path)
    assert weight_encodings(path) == ["HYBRID_F32"] and report.notes == []
    assert runtime.load(path).op_forms()[0] == "dense_stored"


def test_without_libcrisp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing to store dense needs no runtime; storing dense without one says what to do."""
    def missing() -> str:
        raise LibraryNotFoundError("libcrisp not found at /nowhere/libcrisp.so")

    monkeypatch.setattr(runtime, "kernel_isa", missing)
    report = pack(pruned(), torch.randn(1, 3, 12, 12), tmp_path / "d.crisp", pattern_mode="dense")
    assert fmt.read_model(tmp_path / "d.crisp").provenance["isa"] == "host"
    assert all(r.encoding == "DENSE_F32" for r in report.layers)
    with pytest.raises(ArgumentError, match="needs libcrisp: libcrisp not found.*'portable'"):
        pack(pruned(), torch.randn(1, 3, 12, 12), tmp_path / "h.crisp")
    assert not (tmp_path / "h.crisp").exists()
    pack(pruned(), torch.randn(1, 3, 12, 12), tmp_path / "p.crisp", isa="portable")
    assert weight_encodings(tmp_path / "p.crisp")[1] == "HYBRID_F32"


def test_bad_isa_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match="isa must be one of host, portable, avx512f"):
        pack(pruned(), torch.randn(1, 3, 12, 12), tmp_path / "x.crisp", isa="sse4")
    assert not (tmp_path / "x.crisp").exists()
