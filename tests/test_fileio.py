"""crisp_edge.fileio: every file crisp-edge writes for others to read is replaced whole or not
at all, through a unique temporary name, fsynced (issue 14, finding 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crisp_edge import fileio


def test_write_atomic_replaces_and_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    fileio.write_atomic(target, b"new")
    assert target.read_bytes() == b"new" and len(synced) == 2  # the file, then its directory
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert fileio.leftovers(target) == []


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with fileio.atomic_writer(target) as f:
            f.write(b"half")
            raise RuntimeError("disk full, say")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_no_fixed_temporary_name(tmp_path: Path) -> None:
    """The old writers used NAME.tmp: a second writer (or a directory of that name) broke
    them. Every writer now takes a fresh name."""
    from crisp_edge.measure.meters.calibration import (fit_calibration, load_calibration,
                                                        save_calibration)
    from crisp_edge.models.checkpoint import _atomic_save

    (tmp_path / "ck.pt.tmp").mkdir()
    _atomic_save({"x": 1}, tmp_path / "ck.pt")
    assert (tmp_path / "ck.pt").is_file()
    cal = fit_calibration("scpi", "ACME,PSU", [(0.0, 0.02), (5.0, 4.87)],
                          reference_accuracy=0.001)
    (tmp_path / f"{cal.key}.json.tmp").mkdir()
    path = save_calibration(cal, tmp_path)
    assert load_calibration(path).gain == pytest.approx(cal.gain)


def test_kill_at_random_points_leaves_old_or_new_whole(tmp_path: Path) -> None:
    """20 writers killed at seeded random moments: the target is always one complete
    version."""
    target = tmp_path / "model.bin"
    old = b"A" * (1 << 20)
    target.write_bytes(old)
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent.parent)!r})\n"
              "from crisp_edge.fileio import write_atomic\n"
              "import itertools\n"
              "for i in itertools.count():\n"
              f"    write_atomic({str(target)!r}, bytes([66 + i % 2]) * (1 << 20))\n")
    import random

    rng = random.Random(14)
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, "-c", script])
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = target.read_bytes()
        assert len(data) == 1 << 20 and data.count(data[:1]) == len(data), "torn file"
    for leftover in fileio.leftovers(target):  # what a kill can leave: never the target
        leftover.unlink()


def test_pack_and_bundle_write_through_the_helper(tmp_path: Path) -> None:
    import crisp_edge.deploy.bundle as bundle
    import crisp_edge.packing.pack as pack

    assert pack.write_atomic is fileio.write_atomic
    assert bundle.atomic_writer is fileio.atomic_writer
