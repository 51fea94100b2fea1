"""crisp-bench and crisp-edge bench: on the sshd "rpi4" (emulated), on this machine, a fleet."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from crisp_edge.cli import main
from crisp_edge.deploy.boards import load_board
from crisp_edge.deploy.bundle import parse_markers
from crisp_edge.deploy.ssh import Remote
from crisp_edge.errors import RemoteError
from crisp_edge.measure import fleet
from crisp_edge.measure.fieldbench import (_device, _readings, bench_host, bench_local, read_hosts,
                                           run_inferences)
from sshd_fixture import rpi4_build, ssh_board  # noqa: F401  (fixtures)

DATA = Path(__file__).resolve().parents[2] / "runtime" / "tests" / "data"
SPARSE = DATA / "sparse.crisp"
QEMU = ["qemu-aarch64", "-cpu", "cortex-a72"]


def _check_stats(result: dict) -> None:
    assert 0 < result["min_ms"] <= result["median_ms"] <= result["p90_ms"] <= result["p99_ms"]
    assert result["throughput_ips"] > 0 and result["peak_rss_kb"] > 0


def test_crisp_bench_json_and_errors(rpi4_build, tmp_path):
    tool = [*QEMU, str(rpi4_build.crisp_bench)]
    done = subprocess.run([*tool, str(SPARSE), str(DATA / "convs.crisp"), "--threads", "1..2",
                           "--runs", "10", "--warmup", "1", "--json"],
                          capture_output=True, text=True, timeout=120, check=True)
    doc = json.loads(done.stdout)
    assert doc["arch"] == "aarch64" and doc["runs"] == 10
    assert [m["path"] for m in doc["models"]] == [str(SPARSE), str(DATA / "convs.crisp")]
    sparse = doc["models"][0]
    assert sparse["effective_macs"] < sparse["macs"] and sparse["input_shape"] == [8, 9, 7]
    assert [r["threads"] for r in sparse["results"]] == [1, 2]
    for r in sparse["results"]:
        _check_stats(r)
    # --profile-ops: each op's time at every thread count, in JSON and as a table.
    done = subprocess.run([*tool, str(SPARSE), "--threads", "1,2", "--runs", "10", "--warmup",
                           "1", "--profile-ops", "--json"],
                          capture_output=True, text=True, timeout=120, check=True)
    for r in json.loads(done.stdout)["models"][0]["results"]:
        assert len(r["op_ms"]) == sum(row["ops"] for row in r["profile"]) > 0
        assert sum(r["op_ms"]) == pytest.approx(sum(row["ms"] for row in r["profile"]), rel=1e-3)
        assert len(r["op_effective_macs"]) == len(r["op_ms"])
        assert sum(r["op_effective_macs"]) == sum(row["effective_macs"] for row in r["profile"])
    done = subprocess.run([*tool, str(SPARSE), "--threads", "1,2", "--runs", "10", "--warmup",
                           "1", "--profile-ops"],
                          capture_output=True, text=True, timeout=120, check=True)
    table = done.stdout.split("per op, ms per sample")[1].splitlines()[2:]
    assert table and all(line.split()[-1].endswith("x") for line in table), done.stdout
    # --cold: a buffer dirtied before each run (its pages count in the peak RSS).
    done = subprocess.run([*tool, str(SPARSE), "--runs", "10", "--warmup", "1", "--cold", "8",
                           "--json"], capture_output=True, text=True, timeout=120, check=True)
    doc = json.loads(done.stdout)
    assert doc["cold_mib"] == 8 and doc["models"][0]["results"][0]["peak_rss_kb"] > 8 * 1024
    _check_stats(doc["models"][0]["results"][0])
    for args, code, message in [
            (["--runs", "5", str(SPARSE)], 2, "--runs wants a whole number 10..1000000"),
            (["--threads", "0", str(SPARSE)], 2, "--threads '0'"),
            (["--threads", "4..2", str(SPARSE)], 2, "A <= B"),
            (["--input", "ones", str(SPARSE)], 2, "'zeros' or 'random'"),
            (["--cold", "-1", str(SPARSE)], 2, "--cold wants MiB 0..65536"),
            ([], 2, "give at least one MODEL.crisp"),
            ([str(tmp_path / "missing.crisp")], 1, "cannot open")]:
        done = subprocess.run([*tool, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == code and message in done.stderr, (args, done.stderr)


def test_readings_parse_what_the_os_exposes_and_null_the_rest():
    pi = parse_markers("\n".join([
        "@@machine aarch64", "@@cpus 4", "@@memtotal_kb 3884084",
        "@@cpuinfo CPU part\t: 0xd08", "@@cpuinfo Model\t\t: Raspberry Pi 4 Model B Rev 1.4",
        "@@before.governor cpu0 ondemand", "@@before.freq_khz cpu0 1800000",
        "@@before.governor cpu1 ondemand", "@@before.freq_khz cpu1 600000",
        "@@before.temp_millic cpu-thermal 47236", "@@before.throttled throttled=0x0"]))
    assert _device(pi)["cpu_model"] == "Cortex-A72"
    assert _device(pi)["board_model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert _readings(pi, "before") == {
        "governor": {"cpu0": "ondemand", "cpu1": "ondemand"},
        "freq_khz": {"cpu0": 1800000, "cpu1": 600000},
        "temperature_c": {"cpu-thermal": 47.236}, "throttled": "throttled=0x0"}
    assert _readings(pi, "after") == {"governor": None, "freq_khz": None,
                                      "temperature_c": None, "throttled": None}
    assert _device(parse_markers("@@machine x86_64"))["cpu_model"] is None


def test_bench_over_ssh_emulated_board(ssh_board, rpi4_build):
    board, remote = load_board("rpi4"), ssh_board.remote()
    rdir = ssh_board.remote_dir("bench")
    result = bench_host(board, remote, models=[str(SPARSE)], remote_dir=rdir, threads=[1, 2],
                        warmup=1, runs=10)
    assert result["format"] == "crisp-fieldbench/1" and result["host"] == "board"
    assert result["emulated"] and result["runner"] == "qemu-aarch64 -cpu cortex-a72"
    assert "not the board's" in result["note"]
    assert result["device"]["machine"] == "x86_64" and result["device"]["cpus_online"] >= 1
    assert set(result["readings"]["before"]) == {"governor", "freq_khz", "temperature_c",
                                                 "throttled"}
    by_name = {m["name"]: m for m in result["models"]}
    assert set(by_name) == {"sparse", "sparse.dense"}
    assert by_name["sparse"]["mac_sparsity"] > 0.5 and by_name["sparse.dense"]["mac_sparsity"] == 0
    assert by_name["sparse.dense"]["dense_twin_of"] == "sparse"
    for m in result["models"]:
        assert [r["threads"] for r in m["results"]] == [1, 2]
        for r in m["results"]:
            _check_stats(r)
    assert result["tflite"]["available"] in (True, False) and "reason" in result["tflite"]
    # The measurement phase an energy meter will wrap: N inferences, blocking.
    done = run_inferences(board, remote, rdir, "models/sparse.crisp", 12, 1)
    assert done["runs"] == 12 and done["models"][0]["results"][0]["threads"] == 1


def test_bench_without_a_bundle_says_deploy_first(ssh_board):
    with pytest.raises(RemoteError, match="no bundle is installed in .*deploy first"):
        bench_host(load_board("rpi4"), ssh_board.remote(),
                   remote_dir=ssh_board.remote_dir("empty"), runs=10)


def test_bench_locally_under_qemu(rpi4_build):
    result = bench_local(load_board("rpi4"), [str(SPARSE)], threads=[1], warmup=0, runs=10)
    assert result["host"] == "local" and result["emulated"]
    assert {m["role"] for m in result["models"]} == {"model", "dense-twin"}


def test_cli_bench_host_and_fleet(ssh_board, rpi4_build, tmp_path):
    runner = CliRunner()
    rdir = ssh_board.remote_dir("cli-bench")
    out = tmp_path / "one.json"
    common = ["--ssh-config", str(ssh_board.config), "--remote-dir", rdir, "--threads", "1",
              "--runs", "10", "--warmup", "0"]
    done = runner.invoke(main, ["bench", "--board", "rpi4", "--host", "board", "--model",
                                str(SPARSE), "--out", str(out), *common])
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text())["models"][0]["results"][0]["threads"] == 1
    fleet = tmp_path / "fleet.txt"
    fleet.write_text("# lab\nboard rpi4\nboard-down   # same profile from --board\n")
    assert read_hosts(fleet, "rpi4") == [("board", "rpi4"), ("board-down", "rpi4")]
    out = tmp_path / "fleet.json"
    done = runner.invoke(main, ["bench", "--board", "rpi4", "--hosts", str(fleet),
                                "--out", str(out), *common])
    assert done.exit_code == 1, done.output  # one board failed
    doc = json.loads(out.read_text())
    assert [r["host"] for r in doc["results"]] == ["board"]
    assert doc["failures"][0]["host"] == "board-down"
    assert "cannot reach board-down" in doc["failures"][0]["error"]


def _fleet_with(monkeypatch, raises: dict[str, BaseException]) -> None:
    """bench_host of the fleet made to raise ``raises[host]``, and to succeed elsewhere."""
    def bench_host(board, remote, **kw):
        if remote.host in raises:
            raise raises[remote.host]
        return {"host": remote.host, "board": board.to_dict()}
    monkeypatch.setattr(fleet, "bench_host", bench_host)


def test_fleet_keeps_every_board_whatever_one_raises(monkeypatch):
    """Not only CrispError: one board's corrupt manifest used to lose the whole fleet."""
    _fleet_with(monkeypatch, {"corrupt": json.JSONDecodeError("Expecting value", "{", 1),
                              "partial": KeyError("bundle_id"),
                              "down": RemoteError("cannot reach down")})
    hosts = ["good", "corrupt", "partial", "down", "also-good"]
    result = fleet.bench_fleet([(h, "rpi4") for h in hosts])
    assert [r["host"] for r in result["results"]] == ["good", "also-good"]
    assert result["failures"] == [
        {"host": "corrupt", "board": "rpi4",
         "error": "JSONDecodeError: Expecting value: line 1 column 2 (char 1)"},
        {"host": "partial", "board": "rpi4", "error": "KeyError: 'bundle_id'"},
        {"host": "down", "board": "rpi4", "error": "RemoteError: cannot reach down"}]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_fleet_is_stopped_by_ctrl_c_not_recorded(monkeypatch, stop):
    _fleet_with(monkeypatch, {"bad": stop()})
    with pytest.raises(stop):
        fleet.bench_fleet([("good", "rpi4"), ("bad", "rpi4")])


def test_fleet_with_one_board_whose_build_fails_measures_the_others(monkeypatch):
    _fleet_with(monkeypatch, {})

    def build_runtime(board, toolchain, log):
        assert toolchain == "zig"  # --toolchain reaches every board's build
        if board.name == "rpi5":
            raise OSError("aarch64-linux-gnu-gcc: not found")
        return None
    monkeypatch.setattr(fleet, "build_runtime", build_runtime)
    result = fleet.bench_fleet([("pi4", "rpi4"), ("pi5", "rpi5")], models=["m.crisp"],
                               toolchain="zig")
    assert [r["host"] for r in result["results"]] == ["pi4"]
    assert result["failures"] == [{"host": "pi5", "board": "rpi5",
                                   "error": "OSError: aarch64-linux-gnu-gcc: not found"}]


def test_cli_fleet_writes_the_good_board_when_another_has_a_corrupt_manifest(
        ssh_board, rpi4_build, tmp_path, monkeypatch):
    runner = CliRunner()
    good, corrupt = ssh_board.remote_dir("fleet-good"), ssh_board.remote_dir("fleet-corrupt")
    done = runner.invoke(main, ["deploy", "--board", "rpi4", "--model", str(SPARSE), "--host",
                                "board", "--ssh-config", str(ssh_board.config),
                                "--remote-dir", good])
    assert done.exit_code == 0, done.output
    (Path(corrupt) / "current").mkdir(parents=True)
    (Path(corrupt) / "current" / "manifest.json").write_text('{"models": [')
    # Two boards on the one sshd: the alias "board-twin" reads the corrupt install.
    text = ssh_board.config.read_text()
    twin = text[:text.index("Host board-unknown")].replace("Host board\n", "Host board-twin\n")
    config = tmp_path / "ssh_config"
    config.write_text(text + twin)
    real = fleet.bench_host
    monkeypatch.setattr(fleet, "bench_host", lambda board, remote, **kw: real(
        board, remote, **{**kw, "remote_dir": corrupt if remote.host == "board-twin" else good}))
    hosts = tmp_path / "fleet.txt"
    hosts.write_text("board rpi4\nboard-twin rpi4\n")
    out = tmp_path / "fleet.json"
    done = runner.invoke(main, ["bench", "--hosts", str(hosts), "--ssh-config", str(config),
                                "--threads", "1", "--runs", "10", "--warmup", "0",
                                "--out", str(out)])
    assert done.exit_code == 1, done.output  # one board failed
    doc = json.loads(out.read_text())
    assert [r["host"] for r in doc["results"]] == ["board"]
    assert doc["results"][0]["models"][0]["results"][0]["median_ms"] > 0
    assert [(f["host"], f["board"]) for f in doc["failures"]] == [("board-twin", "rpi4")]
    assert doc["failures"][0]["error"].startswith("JSONDecodeError: ")


class _Stop(Exception):
    """Ends a faked bench once the crisp-bench arguments are known."""


def _bench_threads(monkeypatch, remote, cpus_reply: str = "") -> str:
    """The --threads a default bench would pass to crisp-bench, with the device faked."""
    from crisp_edge.measure import fieldbench

    def run(remote, script, args, timeout, what, program=("sh", "-s", "--")):
        if script == fieldbench.MANIFEST_SCRIPT:
            return json.dumps({"bundle_id": "x", "models": [{"path": "models/a.crisp"}]})
        if script == fieldbench.BENCH_SCRIPT:
            raise _Stop(args[3])
        return cpus_reply  # the online-CPU probe

    monkeypatch.setattr(fieldbench, "_run", run)
    with pytest.raises(_Stop) as stop:
        fieldbench.bench_installed(load_board("rpi4"), remote, "/opt/crisp")
    return str(stop.value)


def test_default_threads_stop_at_the_local_cores_online(monkeypatch):
    # A 4-core profile benchmarked on a 2-CPU machine: 4 threads would time time-slicing.
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert _bench_threads(monkeypatch, None) == "1,2"


@pytest.mark.parametrize("reply, expected", [("2\n", "1,2"), ("8\n", "1,2,4"), ("", "1,2,4")])
def test_default_threads_stop_at_the_cores_the_remote_device_reports(monkeypatch, reply,
                                                                     expected):
    # Never more than the profile's 4 cores; a device that does not say keeps the profile's.
    assert _bench_threads(monkeypatch, Remote("pi@board"), reply) == expected


def test_bench_summary_prints_no_inferences_per_joule_for_an_insignificant_energy(capsys):
    from crisp_edge.cli.field import _summary

    energy = {"mj_per_inference": 3.2e-15, "uncertainty_mj": 0.05, "avg_power_w": 1.0,
              "idle_power_w": 1.0, "inferences_per_j": 314126074009092096.0, "warnings": []}
    result = {"host": "local", "board": {"name": "rpi4"}, "emulated": False, "bundle_id": "x",
              "device": {"cpu_model": "cpu"}, "tflite": None,
              "models": [{"name": "m", "mac_sparsity": 0.5,
                          "results": [{"threads": 1, "median_ms": 1.0, "energy": energy}]}]}
    _summary(result)
    err = capsys.readouterr().err
    assert "– inferences/J (net energy not significantly above idle" in err
    assert "314126074009092096" not in err


def test_energy_runs_of_a_fast_native_model_wait_a_bounded_time(monkeypatch):
    # A tiny model on generic-x86-64 is asked for ~400 000 inferences per energy window: the
    # wait must stay within what subprocess/poll accept (it overflowed as 10 s per inference).
    from crisp_edge.measure import fieldbench

    waits = []
    monkeypatch.setattr(fieldbench, "_run", lambda remote, script, args, timeout, what:
                        waits.append(timeout) or '@@bench m {"models": []}\n')
    fieldbench.run_inferences(load_board("generic-x86-64"), None, "/tmp/x", "m", 400_000, 1)
    assert waits and 300 < waits[0] <= 300 + 86400
