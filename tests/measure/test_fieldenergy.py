"""crisp-edge bench --meter / --energy: energy per inference next to the latencies, with a
pty-simulated SCPI supply on this machine (the local qemu bench), the Jetson INA3221 read on the
sshd "board" through SSH, a meter that dies mid-window, and the report's energy section.

The simulated meters follow the real workload: a watcher thread sees the board's crisp-bench
process (qemu-aarch64 running bin/crisp-bench in a bundle) and raises the power while it runs,
so the energy per inference the bench reports can be checked against what was drawn.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from crisp_edge.measure import fieldenergy
from crisp_edge.deploy.boards import load_board
from crisp_edge.cli import main
from crisp_edge.errors import ArgumentError
from crisp_edge.measure.fieldenergy import inferences_for, meter_spec
from crisp_edge.measure.fieldreport import write_report
from meter_sims import ScpiSim
from sshd_fixture import rpi4_build, ssh_board  # noqa: F401  (fixtures)
from test_meters import fake_jetson

DATA = Path(__file__).resolve().parents[2] / "runtime" / "tests" / "data"
SPARSE = DATA / "sparse.crisp"
QUICK = ["--threads", "1", "--runs", "10", "--warmup", "0", "--energy-window", "0.5",
         "--energy-idle-seconds", "0.3", "--energy-settle-seconds", "0.05"]
IDLE_W, BUSY_W = 2.0, 5.0         # the simulated supply: 5 V at 0.4 A idle, 1.0 A busy


class BenchWatcher:
    """Sets ``busy`` while a crisp-bench of an installed bundle (cwd in ``.../releases/``) runs
    on this machine (the "board"), calling ``on_change(busy)`` at each change."""

    def __init__(self, on_change: Callable[[bool], None] = lambda busy: None) -> None:
        self.busy = threading.Event()
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> BenchWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @staticmethod
    def _bench_running() -> bool:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"bin/crisp-bench" not in f.read():
                        continue
                if "/releases/" in os.readlink(f"/proc/{pid}/cwd"):  # a bundle's directory
                    return True
            except OSError:
                continue  # the process ended while we looked
        return False

    def _watch(self) -> None:
        while not self._stop.is_set():
            running = self._bench_running()
            if running != self.busy.is_set():
                self.busy.set() if running else self.busy.clear()
                self.on_change(running)
            self._stop.wait(0.01)


def supply(watcher: BenchWatcher) -> Callable[[float], tuple[float, float]]:
    return lambda t: (5.0, 1.0 if watcher.busy.is_set() else 0.4)


def check_energy(entry: dict, spec: str, idle_w: float, extra_w: float) -> dict:
    """The issue's keys, and a value consistent with the power drawn: ``extra_w`` while the
    process ran, which is at least the timed inferences and at most the whole window."""
    energy = entry["energy"]
    assert list(energy)[:6] == ["meter", "avg_power_w", "idle_power_w", "mj_per_inference",
                                "uncertainty_mj", "samples"]
    assert energy["meter"] == spec and "energy_error" not in entry
    assert energy["idle_power_w"] == pytest.approx(idle_w, rel=0.02)
    assert idle_w < energy["avg_power_w"] <= idle_w + extra_w + 0.01
    assert energy["samples"] >= 10 and energy["inferences"] >= 10
    assert 0 < energy["inference_s"] <= energy["window_s"]
    n, u = energy["inferences"], energy["uncertainty_mj"]
    low = extra_w * energy["inference_s"] / n * 1000
    high = extra_w * energy["window_s"] / n * 1000
    assert 0.7 * low - 2 * u <= energy["mj_per_inference"] <= high + 2 * u, energy
    assert energy["inferences_per_j"] == pytest.approx(1000 / energy["mj_per_inference"])
    return energy


# -- pure parts -------------------------------------------------------------------------------

def test_window_sizing_and_meter_choice() -> None:
    assert inferences_for(10.0, 5.0, 5.0) == 500            # 5 s of 10 ms inferences
    assert inferences_for(10.0, 2.0, 5.0) == 1250           # 25 samples at 2/s: 12.5 s
    assert inferences_for(2000.0, 10.0, 5.0) == 10          # crisp-bench's minimum --runs
    assert inferences_for(1e-6, 10.0, 5.0) == 1_000_000     # and its maximum
    pi4, orin = load_board("rpi4"), load_board("jetson-orin-nano")
    assert meter_spec(pi4, None, False) is None              # no silent energy measurement
    assert meter_spec(pi4, "um25c:/dev/rfcomm0", False) == "um25c:/dev/rfcomm0"
    assert meter_spec(orin, None, True) == "ina3221"
    assert meter_spec(load_board("jetson-nano"), None, True) == "ina3221"
    with pytest.raises(ArgumentError, match="rpi4 has no on-board power sensor .*--meter"):
        meter_spec(pi4, None, True)


def test_cli_refuses_what_it_cannot_measure(tmp_path) -> None:
    runner = CliRunner()
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("board rpi4\n")
    done = runner.invoke(main, ["bench", "--hosts", str(hosts), "--meter", "scpi:/dev/x"])
    assert done.exit_code == 2 and "--meter measures one board" in done.output
    done = runner.invoke(main, ["bench", "--board", "rpi4", "--model", str(SPARSE), "--energy"])
    assert done.exit_code == 1 and "no on-board power sensor" in done.output
    done = runner.invoke(main, ["bench", "--local", "--meter", "scpi:/dev/x"])
    assert done.exit_code == 2 and "takes no" in done.output


def test_missing_meter_stops_before_any_latency_run(tmp_path) -> None:
    out = tmp_path / "r.json"
    done = CliRunner().invoke(main, ["bench", "--board", "rpi4", "--model", str(SPARSE),
                                     "--meter", f"scpi:{tmp_path}/ttyUSB9", "--json", str(out),
                                     *QUICK])
    assert done.exit_code == 1, done.output
    assert f"scpi:{tmp_path}/ttyUSB9" in done.output and "nothing was measured" in done.output
    assert "crisp-edge meter read" in done.output and not out.exists()


# -- a serial meter on this machine, the board's binaries under qemu --------------------------

@pytest.fixture(scope="module")
def local_energy_bench(rpi4_build, tmp_path_factory):  # noqa: F811
    """crisp-edge bench --meter scpi:PTY on the local (qemu) path: (results, spec, output)."""
    work = tmp_path_factory.mktemp("energy")
    out = work / "local.json"
    with BenchWatcher() as watcher, ScpiSim(supply(watcher)) as sim:
        spec = f"scpi:{sim.path}?rate=50"
        done = CliRunner().invoke(main, ["bench", "--board", "rpi4", "--model", str(SPARSE),
                                         "--meter", spec, "--json", str(out), *QUICK,
                                         "--calibration-dir", str(work)])
    assert done.exit_code == 0, done.output
    return json.loads(out.read_text()), spec, done.output


def test_bench_with_a_serial_meter_adds_energy(local_energy_bench) -> None:
    result, spec, output = local_energy_bench
    assert result["settings"]["energy"]["meter"] == spec
    assert result["settings"]["energy"]["identity"].startswith("ACME,PSU-3005")
    assert result["settings"]["energy"]["on_device"] is False
    by_role = {m["role"]: m for m in result["models"]}
    assert set(by_role) == {"model", "dense-twin"}
    for model in result["models"]:
        entry = model["results"][0]
        assert entry["median_ms"] > 0                        # the latency is still there
        check_energy(entry, spec, IDLE_W, BUSY_W - IDLE_W)
    assert "mJ/inference" in output and "inferences/J" in output


def test_report_shows_energy_side_by_side(local_energy_bench, tmp_path) -> None:
    result, _, _ = local_energy_bench
    path = tmp_path / "r.json"
    path.write_text(json.dumps(result))
    written = write_report([path], tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert (tmp_path / "report" / "energy.png").read_bytes()[:4] == b"\x89PNG"
    assert tmp_path / "report" / "energy.png" in written and "](energy.png)" in md
    hybrid, dense = (next(m for m in result["models"] if m["role"] == role)["results"][0]
                     ["energy"] for role in ("model", "dense-twin"))
    assert "mJ/inference" in md and "inferences/J" in md
    assert f"{hybrid['mj_per_inference']:.4g} ± {hybrid['uncertainty_mj']:.2g}" in md
    assert f"{dense['mj_per_inference']:.4g} ± {dense['uncertainty_mj']:.2g}" in md
    assert f"| {hybrid['avg_power_w']:.3f} |" in md


def test_meter_that_dies_mid_window_keeps_the_latencies(rpi4_build, tmp_path) -> None:  # noqa: F811
    out = tmp_path / "r.json"
    with BenchWatcher() as watcher:
        sim = ScpiSim(supply(watcher))
        power = sim.power

        def pull_the_cable_when_busy(t: float) -> tuple[float, float]:
            if watcher.busy.is_set():
                sim.disconnect()          # the driver's next read fails with EIO
            return power(t)

        sim.power = pull_the_cable_when_busy
        with sim:
            spec = f"scpi:{sim.path}?rate=50"
            done = CliRunner().invoke(main, ["bench", "--board", "rpi4", "--model", str(SPARSE),
                                             "--meter", spec, "--json", str(out), *QUICK,
                                             "--calibration-dir", str(tmp_path)])
    assert done.exit_code == 3, done.output
    result = json.loads(out.read_text())
    first, second = (m["results"][0] for m in result["models"])
    assert first["median_ms"] > 0 and second["median_ms"] > 0
    assert "energy" not in first and "energy" not in second
    assert first["energy_error"].startswith(f"{spec}: lost the connection")
    assert "s into the measurement window" in first["energy_error"]
    assert second["energy_error"].startswith("not measured: the energy window of sparse 1t "
                                             "failed before this one")
    assert "energy: not measured for 2 entries" in done.output
    assert "the latency results are complete and written" in done.output


# -- the Jetson INA3221, read on the sshd "board" over SSH ------------------------------------

def test_on_device_ina3221_over_ssh(ssh_board, rpi4_build, tmp_path,  # noqa: F811
                                    monkeypatch) -> None:
    hw = fake_jetson(tmp_path / "sys", {"VDD_IN": (5000, 1000), "VDD_SOC": (5000, 300)})

    def set_current(busy: bool) -> None:
        (hw / "curr1_input.tmp").write_text("1600\n" if busy else "1000\n")
        os.replace(hw / "curr1_input.tmp", hw / "curr1_input")

    ssh_argv: list[list[str]] = []
    real_ssh_runner = fieldenergy.ssh_runner

    def recording_ssh_runner(ssh_command):
        def command(remote_command: str) -> list[str]:
            ssh_argv.append(ssh_command(remote_command))
            return ssh_argv[-1]
        return real_ssh_runner(command)

    monkeypatch.setattr(fieldenergy, "ssh_runner", recording_ssh_runner)
    out, rdir = tmp_path / "r.json", ssh_board.remote_dir("energy")
    spec = f"ina3221?root={tmp_path / 'sys'}&rate=40"
    with BenchWatcher(set_current):
        done = CliRunner().invoke(main, [
            "bench", "--board", "rpi4", "--host", "board", "--model", str(SPARSE),
            "--ssh-config", str(ssh_board.config), "--remote-dir", rdir, "--meter", spec,
            "--json", str(out), *QUICK, "--calibration-dir", str(tmp_path)])
    assert done.exit_code == 0, done.output
    # Discovery and one sampling session per window, each through `ssh -F CONFIG ... board`.
    assert len(ssh_argv) == 3
    assert all(a[0] == "ssh" and "board" in a and str(ssh_board.config) in a for a in ssh_argv)
    result = json.loads(out.read_text())
    assert result["settings"]["energy"]["on_device"] is True
    assert result["settings"]["energy"]["identity"].endswith("VDD_IN")
    for model in result["models"]:
        check_energy(model["results"][0], spec, 5.0, 3.0)

    # A fleet with --energy uses each board's own sensor; an rpi4 has none: its latencies are
    # kept, energy_error says why, and the exit status says energy is missing.
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("board rpi4\n")
    done = CliRunner().invoke(main, [
        "bench", "--hosts", str(hosts), "--energy", "--ssh-config", str(ssh_board.config),
        "--remote-dir", rdir, "--json", str(out), *QUICK])   # the bundle installed above
    assert done.exit_code == 3, done.output
    fleet = json.loads(out.read_text())
    assert fleet["failures"] == [] and fleet["results"][0]["models"][0]["results"][0]["median_ms"]
    assert "board rpi4 has no on-board power sensor" in fleet["results"][0]["energy_error"]
