"""`make demo` end to end, shrunk: train briefly, pack, run in the C runtime, print the table."""

from __future__ import annotations

from crisp_edge import demo


def test_demo_prints_table_and_runtime_agrees(tmp_path, capsys):
    code = demo.main(
        [
            "--out", str(tmp_path),
            "--classes", "4",
            "--train-per-class", "40",
            "--test-per-class", "20",
            "--train-seconds", "5",
            "--max-epochs", "2",
            "--latency-runs", "5",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert (tmp_path / "model.crisp").stat().st_size > 0
    for row in ("top-1 accuracy", "top-1 agreement with torch", "model size", "latency"):
        assert row in out
    # The runtime must reproduce torch's decisions on every test image.
    agreement = next(line for line in out.splitlines() if "agreement" in line)
    assert "100.00 %" in agreement, agreement
