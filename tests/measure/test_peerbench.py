"""The peer benchmark's parts (crisp_edge/measure/peerbench.py): the benchmark sparsity pattern is
exactly what it claims, files it packs run in the runtime like torch, a missing peer is
skipped with its reason (never estimated), timing and the report's target checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from crisp_edge.errors import ArgumentError, PeerUnavailableError
from crisp_edge.measure import peerbench
from crisp_edge.measure.peerbench_report import _forms

from crisp_edge import runtime
from crisp_edge.format.pattern import Pattern
from crisp_edge.pruning.masks import check_hybrid, find_prunable_layers
from crisp_edge.packing.pack import pack
from crisp_edge.measure.peerbench_report import render, targets
from crisp_edge.models.zoo import tiny_resnet


@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9])
def test_sparsify_hits_the_sparsity_in_every_block_layer(sparsity: float) -> None:
    torch.manual_seed(0)
    model = tiny_resnet(num_classes=10).eval()
    example = torch.zeros(1, 3, 32, 32)
    masks = peerbench.sparsify(model, example, sparsity)
    pattern = Pattern()
    params = dict(model.named_parameters())
    layers = {layer.param: layer for layer in find_prunable_layers(model, example, pattern)}
    assert masks, "no layer was masked"
    for name, mask in masks.items():
        layer = layers[name]
        assert mask.shape == params[name].shape and mask.dtype == torch.bool
        assert check_hybrid(mask, pattern, nm=layer.nm, blocks=layer.blocks) == []
        cols = mask[0].numel()
        if layer.blocks and layer.nm and mask.shape[0] % 16 == 0 and cols % 16 == 0:
            # Whole blocks per block-row: the target rounded to a block (at least one).
            nbc = cols // 16
            kept_blocks = max(1, round((1 - sparsity) / 0.5 * nbc))
            assert mask.float().mean().item() == pytest.approx(kept_blocks / nbc * 0.5), name
    exempt = [p for p, layer in layers.items() if not (layer.blocks or layer.nm)]
    assert exempt and not set(exempt) & set(masks)
    assert peerbench.sparsify(model, example, 0.0) == {}


def test_packed_benchmark_model_runs_like_torch(tmp_path) -> None:
    torch.manual_seed(1)
    model = tiny_resnet(num_classes=10).eval()
    example = torch.zeros(1, 3, 32, 32)
    masked = peerbench.apply_masks(model, peerbench.sparsify(model, example, 0.9))
    path = tmp_path / "m.crisp"
    pack(masked, example, path)
    crisp = runtime.load(path, threads=2)
    info = crisp.info()
    assert info["effective_macs"] < 0.6 * info["macs"]
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want = masked(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(crisp.run(x), want, atol=1e-4 * np.abs(want).max())


def test_missing_peer_is_skipped_with_its_reason(monkeypatch, tmp_path) -> None:
    import builtins

    real_import = builtins.__import__

    def no_peers(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.split(".")[0] in {"onnxruntime", "ai_edge_litert", "tflite_runtime"}:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_peers)
    x = np.zeros((1, 3, 8, 8), np.float32)
    model = torch.nn.Conv2d(3, 4, 3).eval()
    with pytest.raises(PeerUnavailableError, match="onnxruntime not installed"):
        peerbench.onnxruntime_peer(model, x, 1, tmp_path, "m")
    with pytest.raises(PeerUnavailableError, match="no TFLite interpreter"):
        peerbench.tflite_peer(model, x, 1, tmp_path, "m")


def test_command_names_the_library_it_measured(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRISP_LIBRARY", raising=False)
    assert peerbench.recorded_command(" crisp-edge peerbench --runs 3 ") == (
        "crisp-edge peerbench --runs 3")
    monkeypatch.setenv("CRISP_LIBRARY", str(tmp_path / "build" / "libcrisp.so"))
    assert peerbench.recorded_command("crisp-edge peerbench") == (
        "CRISP_LIBRARY=build/libcrisp.so crisp-edge peerbench")
    monkeypatch.setenv("CRISP_LIBRARY", "/elsewhere/libcrisp.so")
    assert peerbench.recorded_command("crisp-edge peerbench") == (
        "CRISP_LIBRARY=/elsewhere/libcrisp.so crisp-edge peerbench")


def test_interleaved_timing_runs_every_system_alike() -> None:
    calls: list[str] = []
    systems = [peerbench.System(n, lambda n=n: calls.append(n)) for n in "abc"]
    peerbench.time_interleaved(systems, warmup=2, runs=10)
    assert [len(s.times_ms) for s in systems] == [10, 10, 10]
    assert calls.count("a") == calls.count("b") == calls.count("c") == 12
    # Rotating order: each system runs first in some round.
    rounds = [calls[6 + 3 * r] for r in range(10)]
    assert set(rounds) == {"a", "b", "c"}
    s = peerbench.summary([3.0, 1.0, 2.0, 10.0])
    assert s["median_ms"] == 2.5 and s["min_ms"] == 1.0 and s["runs"] == 4


def _row(arch: str, sparsity: float, crisp: float, peers: dict[str, float],
         dense: float | None = None) -> dict:
    systems = {("crisp" if sparsity == 0 else "crisp hybrid"): {"median_ms": crisp,
                                                              "p90_ms": crisp}}
    if dense is not None:
        systems["crisp dense"] = {"median_ms": dense, "p90_ms": dense}
    systems.update({k: {"median_ms": v, "p90_ms": v} for k, v in peers.items()})
    return {"arch": arch, "sparsity": sparsity, "threads": 2, "macs": 100, "effective_macs": 20,
            "systems": systems, "skipped": {"tflite": "not installed"}, "peak_rss_mb": 30.0,
            "memory_bound_mb": 40.0}


def test_report_checks_the_targets_against_the_fastest_peer() -> None:
    results = {"command": "x", "cpu": "cpu", "machine": "x86_64", "python": "3.11",
               "versions": {}, "layers": [], "rows": [
                   _row("resnet50", 0.0, 60.0, {"torch": 54.0, "onnxruntime": 40.0}, dense=60.0),
                   _row("resnet50", 0.9, 9.0, {"torch": 54.0, "onnxruntime": 40.0}),
                   _row("mobilenet_v2", 0.9, 3.0, {"onnxruntime": 5.1, "torch": 12.0})]}
    v4 = _row("resnet50", 0.9, 9.0, {"onnxruntime": 40.0})
    v4["shared_rows"] = 4  # 4.44×: meets per-row's 4× but not V=4's 5×
    v4["systems"]["crisp hybrid"]["p90_ms"] = 11.0  # 1.22 × the median at 2 threads
    v4["load_ms"] = 12.4
    v4["op_kernels"] = ["gemm", "spmm", "spmm", "spmm (filled)", "dwconv", "gemv (expanded)",
                        "reference"]
    results["rows"].append(v4)
    checks = {name: met for name, _, met in targets(results)}
    assert checks["resnet50 90 %, 2 thr: crisp ≥ 4× faster than the fastest dense peer"]
    assert not checks["resnet50 90 % V=4, 2 thr: crisp ≥ 5× faster than the fastest dense peer"]
    assert not checks["mobilenet_v2 90 %, 2 thr: crisp ≥ 2× faster than the fastest dense peer"]
    assert checks["resnet50 dense, 2 thr: crisp within 1.5× of the fastest peer"] is True
    assert checks["resnet50 90 %, 2 thr: crisp sparse ≥ 1.0× crisp dense"]
    assert "mobilenet_v2 90 %, 2 thr: crisp sparse ≥ 1.0× crisp dense" not in checks  # no dense
    assert checks["resnet50 90 %, 2 thr: crisp p90 ≤ 1.15 × median"]
    assert not checks["resnet50 90 % V=4, 2 thr: crisp p90 ≤ 1.15 × median"]
    text = render(results)
    assert "4.44× (onnxruntime)" in text and "- tflite: not installed" in text
    assert "| 12 ms | runs 2 · filled 1 · expanded 1 · dense 1 |" in text
    json.dumps(results)


def test_blocks_time_each_system_back_to_back_in_two_passes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peerbench, "SETTLE_S", 0.0)
    monkeypatch.setattr(peerbench, "WARMUP_S", 0.0)
    calls: list[str] = []
    systems = [peerbench.System(n, lambda n=n: calls.append(n)) for n in "ab"]
    peerbench.time_blocks(systems, warmup=1, runs=5)
    assert [len(s.times_ms) for s in systems] == [5, 5]
    # Pass 1: a (1 warm-up + 3), b (1 + 3); pass 2, reversed: b (1 + 2), a (1 + 2).
    assert "".join(calls) == "aaaa" + "bbbb" + "bbb" + "aaa"


@pytest.mark.parametrize("threads,order,want", [
    (1, "auto", "abab"), (2, "auto", "aabb"), (1, "blocks", "aabb"), (2, "interleaved", "abab")])
def test_order_picks_interleaved_or_back_to_back(threads: int, order: str, want: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peerbench, "SETTLE_S", 0.0)
    monkeypatch.setattr(peerbench, "WARMUP_S", 0.0)
    calls: list[str] = []
    systems = [peerbench.System(n, lambda n=n: calls.append(n)) for n in "ab"]
    peerbench.time_systems(systems, threads, order, warmup=0, runs=4)
    # Interleaved rounds rotate (ab, ba, ab, ba); blocks run a, b, then b, a in two passes.
    assert "".join(calls) == {"abab": "abbaabba", "aabb": "aabbbbaa"}[want]


def test_unknown_order_is_refused_before_any_timing() -> None:
    with pytest.raises(ArgumentError, match="unknown order 'sideways'; choose from auto, interleaved, blocks"):
        peerbench.Options(order="sideways").validate()


def test_report_says_how_the_systems_were_timed() -> None:
    results = {"command": "x", "cpu": "cpu", "machine": "x86_64", "python": "3.11", "versions": {},
               "layers": [], "rows": [_row("resnet50", 0.9, 9.0, {"onnxruntime": 40.0})]}
    assert "single calls interleaved in rotating order with 1 thread" in render(results)
    results["order"] = "blocks"
    assert "at every thread count each system back to back" in render(results)


def test_forms_count_a_fused_expand_conv_by_its_own_form():
    # runtime/README.md "Expand fusion": the 1 x 1 conv keeps its form in its kernel name.
    kernels = ["gemm (expanded, fused into next)", "dwconv (+expand)", "spmm (fused into next)",
               "spmm", "spmm (filled, fused into next)", "gemm"]
    assert _forms({"op_kernels": kernels}) == "runs 2 · filled 1 · expanded 1 · dense 1"


def test_forms_count_linears_by_their_kernel():
    # A hybrid linear runs as runs (spmv) or in place on the file's 2:4 encoding (nmv24).
    assert _forms({"op_kernels": ["spmv", "spmm"]}) == "runs 2"
    assert _forms({"op_kernels": ["nmv24", "spmm (filled)", "gemv (expanded)"]}) == \
        "filled 1 · in file 1 · expanded 1"


def test_sparse_against_dense_takes_the_dense_time_of_its_own_row() -> None:
    # Rows minutes apart drift: the 50 % row's own crisp dense (9.5 ms, slower than its
    # 9.0 ms) decides, not the 0 % row's 8.0 ms; a row without one falls back to the 0 % row.
    rows = [_row("resnet50", 0.0, 8.0, {"onnxruntime": 7.0}, dense=8.0),
            _row("resnet50", 0.5, 9.0, {"onnxruntime": 7.0}, dense=9.5),
            _row("resnet50", 0.75, 9.0, {"onnxruntime": 7.0})]
    got = {name: (measured, met) for name, measured, met in targets({"rows": rows})}
    assert got["resnet50 50 %, 2 thr: crisp sparse ≥ 1.0× crisp dense"] == \
        ("1.06× (9.00 vs 9.50 ms)", True)
    assert got["resnet50 75 %, 2 thr: crisp sparse ≥ 1.0× crisp dense"] == \
        ("0.89× (9.00 vs 8.00 ms)", False)


def test_blocks_warm_up_for_at_least_a_time_after_a_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fast system gets more than `warmup` calls: its warm-up lasts WARMUP_S, after SETTLE_S
    # of sleep (the cores' ramp after the previous system's block).
    slept: list[float] = []
    monkeypatch.setattr(peerbench.time, "sleep", slept.append)
    monkeypatch.setattr(peerbench, "SETTLE_S", 0.5)
    monkeypatch.setattr(peerbench, "WARMUP_S", 0.02)
    calls: list[str] = []
    systems = [peerbench.System(n, lambda n=n: calls.append(n)) for n in "ab"]
    peerbench.time_blocks(systems, warmup=1, runs=2)
    assert slept == [0.5] * 4
    assert calls.count("a") > 1 + 1 + 1 + 1 and [len(s.times_ms) for s in systems] == [2, 2]
