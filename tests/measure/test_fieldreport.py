"""crisp-edge report: Markdown + HTML with plots from bench results (single and fleet)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from crisp_edge.deploy.boards import load_board
from crisp_edge.cli import main
from crisp_edge.errors import ArgumentError
from crisp_edge.measure.fieldbench import bench_local
from crisp_edge.measure.fieldreport import load_results, speedups, write_report
from sshd_fixture import rpi4_build  # noqa: F401  (fixture)

DATA = Path(__file__).resolve().parents[2] / "runtime" / "tests" / "data"


def _model(name: str, role: str, medians: dict[int, float], twin_of: str | None = None) -> dict:
    return {"name": name, "role": role, "dense_twin_of": twin_of, "mac_sparsity": 0.0,
            "results": [{"threads": t, "median_ms": m} for t, m in medians.items()]}


def test_speedups_over_dense_and_tflite():
    result = {"models": [_model("m", "model", {1: 2.0, 4: 1.0}),
                         _model("m.dense", "dense-twin", {1: 8.0, 4: 3.0}, twin_of="m")],
              "tflite": {"benchmarked": True, "results": [{"threads": 4, "median_ms": 5.0}]}}
    assert speedups(result) == [
        {"model": "m", "threads": 1, "over_dense": 4.0, "over_tflite": None},
        {"model": "m", "threads": 4, "over_dense": 3.0, "over_tflite": 5.0}]


def test_report_from_real_results(rpi4_build, tmp_path):
    one = bench_local(load_board("rpi4"), [str(DATA / "sparse.crisp")], threads=[1, 2],
                      warmup=0, runs=10)
    (tmp_path / "one.json").write_text(json.dumps(one))
    fleet = {"format": "crisp-fieldbench-fleet/1", "results": [one],
             "failures": [{"host": "pi@10.0.0.9", "board": "rpi4", "error": "cannot reach"}]}
    (tmp_path / "fleet.json").write_text(json.dumps(fleet))
    done = CliRunner().invoke(main, ["report", str(tmp_path / "one.json"),
                                     str(tmp_path / "fleet.json"), "--out-dir",
                                     str(tmp_path / "report")])
    assert done.exit_code == 0, done.output
    out = tmp_path / "report"
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    for plot in ("latency_vs_sparsity", "speedup", "memory"):
        assert (out / f"{plot}.png").read_bytes()[:4] == b"\x89PNG"
        assert f"]({plot}.png)" in md
    assert page.count("src='data:image/png;base64,") == 3
    dense = {r["threads"]: r["median_ms"] for r in one["models"][1]["results"]}
    hybrid = {r["threads"]: r["median_ms"] for r in one["models"][0]["results"]}
    assert f"| {dense[2] / hybrid[2]:.2f} |" in md
    assert "latencies are qemu's" in md and "pi@10.0.0.9" in md and "cannot reach" in page
    assert len(load_results([tmp_path / "one.json", tmp_path / "fleet.json"])[0]) == 2


def test_report_refuses_other_files(tmp_path):
    (tmp_path / "x.json").write_text('{"format": "something-else"}')
    with pytest.raises(ArgumentError, match="give files written by crisp-edge bench"):
        write_report([tmp_path / "x.json"], tmp_path / "out")


def _energy(mj: float, u: float, per_j: float | None) -> dict:
    return {"meter": "sim", "avg_power_w": 1.0, "idle_power_w": 1.0, "mj_per_inference": mj,
            "uncertainty_mj": u, "samples": 40, "inferences_per_j": per_j, "inferences": 100,
            "window_s": 2.0, "warnings": []}


def test_energy_within_its_uncertainty_of_zero_has_no_derived_figures():
    # Stored as written before the significance check: N / (net ≈ 0) inferences per joule.
    from crisp_edge.measure.fieldreport import _energy_blocks

    hybrid, dense = _model("m", "model", {1: 1.0}), _model("m.dense", "dense-twin", {1: 2.0}, "m")
    hybrid["results"][0]["energy"] = _energy(3.2e-15, 0.05, 314126074009092096.0)
    dense["results"][0]["energy"] = _energy(8.0, 0.1, 125.0)
    blocks = _energy_blocks({"models": [hybrid, dense], "settings": {"energy": {"meter": "sim"}}})
    side_by_side, note, entries = blocks
    assert side_by_side.content[1][0][-2:] == ["–", "–"]       # dense / hybrid, TFLite / hybrid
    assert [row[6] for row in entries.content[1]] == ["–", "125.0"]
    assert "not significantly above idle" in note.content
    assert "314126074009092096" not in str([b.content for b in blocks])
