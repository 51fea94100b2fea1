"""Field benchmarks: run ``crisp-bench`` on a board (over SSH, or on this machine) and collect
latency, throughput and memory per model and thread count, with the device's CPU, governor,
frequency and temperature readings, as one JSON document (format ``crisp-fieldbench/1``,
docs/deploy.md). A fleet is many boards benchmarked concurrently.

With an energy plan (:mod:`crisp_edge.measure.fieldenergy`: an opened power meter), each model and
thread count then gets an ``energy`` (or ``energy_error``) next to its latency.

>>> result = bench_host(load_board("rpi4"), Remote("pi@192.168.1.20"))   # doctest: +SKIP
>>> result["models"][0]["results"][0]["median_ms"]                        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shlex
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from crisp_edge.deploy.boards import BoardProfile
from crisp_edge.deploy.build import BoardBuild, build_runtime
from crisp_edge.deploy.bundle import (DEFAULT_REMOTE_DIR, RUNNER_SH, Log, deploy, make_bundle,
                                      normalise_remote_dir, parse_markers)
from crisp_edge.deploy.programs import read_program
from crisp_edge.deploy.ssh import Remote
from crisp_edge.errors import ArgumentError, BenchError, RemoteError

if TYPE_CHECKING:
    from crisp_edge.measure.fieldenergy import EnergyPlan

RESULT_FORMAT = "crisp-fieldbench/1"
FLEET_FORMAT = "crisp-fieldbench-fleet/1"

# The device programs are files of crisp_edge.deploy.programs.
# Defines readings (prints @@PHASE.key value lines; every file is optional: missing → no line
# → null) and device_info.
READINGS_SH = read_program("readings.sh")

# Runs in DIR/current on the target: device facts, readings, crisp-bench per model, readings.
BENCH_SCRIPT = RUNNER_SH + READINGS_SH + read_program("bench.sh")

# Prints the installed bundle's manifest.json.
MANIFEST_SCRIPT = read_program("read_manifest.sh")

# Runs with the target's python3: the TFLite interpreter on the same thread counts.
TFLITE_SCRIPT = read_program("tflite_bench.py")

# Prints the number of CPUs online on the target (the same reading as device_info's @@cpus).
CPUS_SCRIPT = "getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null || true\n"

ARM_PARTS = {"0xd03": "Cortex-A53", "0xd07": "Cortex-A57", "0xd08": "Cortex-A72",
             "0xd0b": "Cortex-A76", "0xd41": "Cortex-A78", "0xd42": "Cortex-A78AE"}


def _run(remote: Remote | None, script: str, args: Sequence[str], timeout: float,
         what: str, program: Sequence[str] = ("sh", "-s", "--")) -> str:
    """Run ``script`` on the device (``remote``) or on this machine (None); returns stdout."""
    if remote is not None:
        if program[0] == "sh":
            return remote.run_script(script, args, timeout=timeout, what=what).stdout
        command = " ".join(shlex.quote(a) for a in (*program, *args))
        return remote.run(command, input=script.encode(), timeout=timeout, what=what).stdout
    try:
        done = subprocess.run([*program, *args], input=script, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        raise BenchError(f"{what} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _local_cpus() -> int | None:
    """The CPUs this process may run on (affinity, e.g. under taskset or a cgroup), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _online_cpus(remote: Remote | None, label: str) -> int | None:
    """The CPUs online on the device measured; None when it does not say."""
    if remote is None:
        return _local_cpus()
    out = _run(remote, CPUS_SCRIPT, [], 60, f"{label}: counting the online CPUs")
    words = out.split()
    return int(words[0]) if words and words[0].isdigit() else None


def default_thread_counts(board: BoardProfile, remote: Remote | None,
                          label: str = "local") -> list[int]:
    """1, 2, 4 … up to the cores online on the device being measured (never above the
    profile's core count): timing 4 threads on 2 online cores only measures time-slicing."""
    return board.thread_counts(_online_cpus(remote, label))


def _per_cpu(values: list[str], as_int: bool = False) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for v in values:
        key, _, value = v.partition(" ")
        if value.strip():
            try:
                out[key] = int(value) if as_int else value.strip()
            except ValueError:
                out[key] = None
    return out or None


def _readings(markers: dict[str, list[str]], phase: str) -> dict[str, Any]:
    temps: dict[str, float] = {}
    for v in markers.get(f"{phase}.temp_millic", []):
        zone, _, value = v.rpartition(" ")
        try:
            temps[zone or "zone"] = int(value) / 1000
        except ValueError:
            pass
    throttled = markers.get(f"{phase}.throttled")
    return {"governor": _per_cpu(markers.get(f"{phase}.governor", [])),
            "freq_khz": _per_cpu(markers.get(f"{phase}.freq_khz", []), as_int=True),
            "temperature_c": temps or None,
            "throttled": throttled[0] if throttled else None}


def _device(markers: dict[str, list[str]]) -> dict[str, Any]:
    cpuinfo = {}
    for v in markers.get("cpuinfo", []):
        key, _, value = v.partition(":")
        cpuinfo[key.strip()] = value.strip()
    cpu = cpuinfo.get("model name") or ARM_PARTS.get(cpuinfo.get("CPU part", ""), None) \
        or cpuinfo.get("Hardware") or None

    def first(key: str) -> str | None:
        values = markers.get(key)
        return values[0].strip() or None if values else None

    def number(key: str) -> int | None:
        value = first(key)
        return int(value) if value and value.isdigit() else None

    return {"machine": first("machine"), "kernel": first("kernel"),
            "hostname": first("hostname"), "cpu_model": cpu,
            "board_model": first("dt_model") or cpuinfo.get("Model"),
            "cpus_online": number("cpus"), "mem_total_kb": number("memtotal_kb")}


def _model_rows(manifest: dict[str, Any], benches: dict[str, dict[str, Any]]
                ) -> list[dict[str, Any]]:
    rows = []
    for entry in manifest["models"]:
        bench = benches[entry["path"]]["models"][0]
        macs, eff = entry["macs"], entry["effective_macs"]
        rows.append({"name": entry["name"], "role": entry["role"],
                     "dense_twin_of": entry.get("dense_twin_of"), "path": entry["path"],
                     "macs": macs, "effective_macs": eff,
                     "mac_sparsity": 1 - eff / macs if macs else 0.0,
                     "file_bytes": bench["file_bytes"], "arena_bytes": bench["arena_bytes"],
                     "load_ms": bench["load_ms"], "results": bench["results"]})
    return rows


def bench_installed(board: BoardProfile, remote: Remote | None, remote_dir: str, *,
                    threads: Sequence[int] | None = None, warmup: int = 3, runs: int = 20,
                    models: Sequence[str] | None = None, tflite: Path | None = None,
                    host_label: str | None = None, energy: EnergyPlan | None = None
                    ) -> dict[str, Any]:
    """Benchmark the bundle installed in ``remote_dir`` on ``remote`` (None: this machine).
    ``models`` are bundle paths (``models/x.crisp``); default: all of the bundle's.
    ``energy``: after all latencies are in, measure energy per model and thread count with
    its (opened) meter; a meter failure becomes ``energy_error`` entries, never an exception."""
    if runs < 10:
        raise ArgumentError(f"runs is {runs}: at least 10 timed runs (docs/energy.md)")
    rdir = normalise_remote_dir(remote_dir)
    label = host_label or (remote.host if remote else "local")
    counts = list(threads or default_thread_counts(board, remote, label))
    started, t0 = datetime.datetime.now(datetime.timezone.utc), time.monotonic()
    manifest_text = _run(remote, MANIFEST_SCRIPT, [rdir], 60,
                         f"{label}: reading the installed bundle's manifest")
    manifest = json.loads(manifest_text)
    paths = list(models or [m["path"] for m in manifest["models"]])
    budget = 300 + 10 * len(paths) * len(counts) * (warmup + runs)
    out = _run(remote, BENCH_SCRIPT, [rdir, board.arch, board.qemu_cpu or "",
                                      ",".join(map(str, counts)), str(warmup), str(runs), *paths],
               budget, f"{label}: running crisp-bench")
    markers = parse_markers(out)
    benches: dict[str, dict[str, Any]] = {}
    for value in markers.get("bench", []):
        path, _, text = value.partition(" ")
        try:
            benches[path] = json.loads(text)
        except json.JSONDecodeError:
            raise BenchError(f"{label}: crisp-bench failed on {path} (output: {text[:300]!r})"
                             ) from None
    missing = [p for p in paths if p not in benches]
    if missing:
        raise BenchError(f"{label}: no crisp-bench result for {', '.join(missing)}")
    manifest["models"] = [m for m in manifest["models"] if m["path"] in benches]
    runner = markers.get("runner", ["native"])[0]
    tflite_result = bench_tflite(remote, rdir, tflite, counts, warmup, runs, label)
    result = {
        "format": RESULT_FORMAT, "host": label, "board": board.to_dict(),
        "bundle_id": manifest["bundle_id"], "runner": runner, "emulated": runner != "native",
        "device": _device(markers),
        "readings": {"before": _readings(markers, "before"),
                     "after": _readings(markers, "after")},
        "settings": {"threads": counts, "warmup": warmup, "runs": runs, "input": "random",
                     "seed": 1, "energy": energy.settings() if energy is not None else None},
        "models": _model_rows(manifest, benches), "tflite": tflite_result,
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t0, 3)}
    if result["emulated"]:
        result["note"] = (f"emulated: this device is {result['device']['machine']}, not a "
                          f"{board.name}; latencies are qemu's ({runner}), not the board's")
    if energy is not None:
        energy.add_to(result, board, remote, rdir, tflite)
        result["duration_s"] = round(time.monotonic() - t0, 3)
    return result


def bench_tflite(remote: Remote | None, rdir: str, model: Path | None, threads: Sequence[int],
                 warmup: int, runs: int, label: str) -> dict[str, Any]:
    """The TFLite interpreter on the target, when python3 there has tflite-runtime or
    ai-edge-litert; otherwise a record saying why not."""
    try:
        with tflite_on_target(remote, rdir, model) as target_path:
            return _tflite_script(remote, target_path, threads, warmup, runs, label)
    except (RemoteError, BenchError) as e:
        return {"available": False, "reason": f"python3 on the target could not run it: {e}"}


@contextlib.contextmanager
def tflite_on_target(remote: Remote | None, rdir: str, model: Path | None) -> Iterator[str]:
    """The path of ``model`` on the target while the block runs ("-" for no model): uploaded
    to ``rdir/tflite`` over SSH and removed afterwards, or this machine's file."""
    if model is None:
        yield "-"
    elif remote is None:
        yield str(model.resolve())
    else:
        target_dir = remote.upload(model, f"{rdir}/tflite", model.name)
        try:
            yield f"{target_dir}/{model.name}"
        finally:
            remote.run("rm -rf " + shlex.quote(target_dir), timeout=60, check=False)


def _tflite_script(remote: Remote | None, target_path: str, threads: Sequence[int],
                   warmup: int, runs: int, label: str) -> dict[str, Any]:
    out = _run(remote, TFLITE_SCRIPT, [target_path, ",".join(map(str, threads)), str(warmup),
                                       str(runs)],
               300 + 10 * len(threads) * (warmup + runs), f"{label}: TFLite benchmark",
               program=("python3", "-"))
    try:
        return dict(json.loads(out.strip().splitlines()[-1]))
    except (json.JSONDecodeError, IndexError):
        raise BenchError(f"{label}: the TFLite benchmark printed no result ({out[-300:]!r})"
                         ) from None


def run_tflite_inferences(remote: Remote | None, target_path: str, count: int, threads: int,
                          label: str) -> dict[str, Any]:
    """Run ``count`` timed TFLite inferences of the model at ``target_path`` (see
    :func:`tflite_on_target`) and block until they are done; returns that thread count's
    result (median_ms, throughput_ips, ...). The TFLite counterpart of :func:`run_inferences`."""
    done = _tflite_script(remote, target_path, [threads], 0, count, label)
    if not done.get("benchmarked"):
        raise BenchError(f"{label}: TFLite did not run: {done.get('reason', 'no reason given')}")
    return dict(done["results"][0])


def _inference_timeout(count: int) -> float:
    """Seconds to wait for ``count`` inferences: 10 s each at worst (a big model under qemu),
    but at most a day: a fast native model is asked for hundreds of thousands, and a timeout
    of millions of seconds overflows poll()'s milliseconds (OverflowError)."""
    return 300 + min(10.0 * count, 86400.0)


def run_inferences(board: BoardProfile, remote: Remote | None, remote_dir: str, model: str,
                   count: int, threads: int) -> dict[str, Any]:
    """Run ``count`` timed inferences of bundle model ``model`` on the target and block until
    they are done; returns crisp-bench's JSON for them. The measurement phase that an energy
    meter wraps (start the meter, call this, stop it)."""
    out = _run(remote, BENCH_SCRIPT, [normalise_remote_dir(remote_dir), board.arch,
                                      board.qemu_cpu or "", str(threads), "0", str(count), model],
               _inference_timeout(count), f"running {count} inferences of {model}")
    for value in parse_markers(out).get("bench", []):
        return dict(json.loads(value.partition(" ")[2]))
    raise BenchError(f"no crisp-bench output for {model}")


def bench_local(board: BoardProfile, models: Sequence[str | os.PathLike[str]], *,
                threads: Sequence[int] | None = None, warmup: int = 3, runs: int = 20,
                tflite: Path | None = None, log: Callable[[str], None] = lambda _: None,
                energy: EnergyPlan | None = None, toolchain: str | None = None
                ) -> dict[str, Any]:
    """The board's bundle unpacked and benchmarked on this machine (under qemu when the
    board's arch is not this machine's); ``energy`` as in :func:`bench_installed`,
    ``toolchain`` as in :func:`crisp_edge.deploy.build.build_runtime`."""
    build = build_runtime(board, toolchain=toolchain, log=log)
    with tempfile.TemporaryDirectory(prefix="crisp-bench-") as tmp:
        root = Path(tmp)
        bundle = make_bundle(board, models, build, root / "bundle.tar.gz")
        with tarfile.open(bundle.path) as tar:
            tar.extractall(root / "releases", filter="data")
        release = f"crisp-bundle-{board.name}-{bundle.bundle_id}"
        (root / "current").symlink_to(root / "releases" / release)
        return bench_installed(board, None, str(root), threads=threads, warmup=warmup,
                               runs=runs, tflite=tflite, energy=energy)


def bench_host(board: BoardProfile, remote: Remote, *, models: Sequence[str] = (),
               remote_dir: str = DEFAULT_REMOTE_DIR, build: BoardBuild | None = None,
               log: Log = lambda _: None, toolchain: str | None = None, **kw: Any
               ) -> dict[str, Any]:
    """Benchmark one device: deploy ``models`` first if given (a no-op when already there),
    then :func:`bench_installed`. ``build``: the board's runtime if already built, else built
    with ``toolchain``."""
    if models:
        build = build or build_runtime(board, toolchain=toolchain, log=log)
        with tempfile.TemporaryDirectory(prefix="crisp-bundle-") as tmp:
            deploy(make_bundle(board, models, build, Path(tmp)), remote, board,
                   remote_dir=remote_dir, log=log)
    return bench_installed(board, remote, remote_dir, **kw)


def read_hosts(path: str | os.PathLike[str], default_board: str | None) -> list[tuple[str, str]]:
    """A fleet file: one ``HOST [BOARD]`` per line, ``#`` comments; BOARD defaults to
    ``default_board``."""
    entries = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 1 and not default_board):
            raise ArgumentError(f"{path}:{number}: want 'HOST [BOARD]' (or give --board), got "
                                f"{line.strip()!r}")
        entries.append((words[0], words[1] if len(words) == 2 else str(default_board)))
    if not entries:
        raise ArgumentError(f"{path} lists no hosts")
    return entries
