"""Energy per inference in a field benchmark: ``crisp-edge bench --meter SPEC`` or ``--energy``.

The order is what keeps results safe (issue 7, docs/energy.md):

1. the meter is opened *before* any latency run (:func:`open_plan`), so a missing or silent
   meter stops the command before anything is measured, with a message saying what to check;
2. the latencies are measured and kept (:func:`crisp_edge.measure.fieldbench.bench_installed`);
3. then, per model (the hybrid, its dense twin) and thread count, and per TFLite thread count
   when TFLite was timed, one energy window (:func:`crisp_edge.measure.energy.measure`) around N
   inferences on the device (:func:`crisp_edge.measure.fieldbench.run_inferences`), with N chosen from
   the measured median so that the inferences alone last max(``min_window_s``, 25 / meter rate)
   (:func:`inferences_for`).

A meter failure, or a device failure inside a window, becomes ``energy_error`` on that entry and
"not measured: …" on the entries after it (a dead meter would only fail again, slowly); the
latency results are never lost. Serial meters are read on this machine; on-device sensors
(``ina3221``, ``pmic``) on the board, through the same SSH setup as the benchmark
(:func:`crisp_edge.measure.meters.ssh_runner` over :meth:`crisp_edge.deploy.ssh.Remote.ssh_command`).

>>> plan = open_plan("um25c:/dev/rfcomm0", remote, EnergyOptions())      # doctest: +SKIP
>>> with plan:
...     result = bench_host(board, remote, energy=plan)
>>> result["models"][0]["results"][0]["energy"]["mj_per_inference"]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

from crisp_edge.deploy.boards import BoardProfile
from crisp_edge.deploy.ssh import Remote
from crisp_edge.errors import ArgumentError, CrispError, MeterError
from crisp_edge.measure.energy import EnergyResult, measure
from crisp_edge.measure.fieldbench import (FLEET_FORMAT, run_inferences, run_tflite_inferences,
                                           tflite_on_target)
from crisp_edge.measure.meters import Meter, board_meter_spec, open_meter, parse_spec, ssh_runner
from crisp_edge.measure.meters.spec import ON_DEVICE_KINDS

# crisp-bench's limits for --runs.
MIN_RUNS, MAX_RUNS = 10, 1_000_000
# Meter samples a window is sized for; energy.analyse warns below 20.
WINDOW_SAMPLES = 25
# More of the window than this outside the timed inferences earns a warning.
STARTUP_SHARE = 0.1


@dataclass(frozen=True)
class EnergyOptions:
    """How long the parts of each measurement last (``crisp-edge bench --energy-*``).
    ``min_window_s``: the least time the inferences of one window take."""

    min_window_s: float = 5.0
    idle_seconds: float = 3.0
    settle_seconds: float = 0.5
    calibration_dir: Path | None = None


def meter_spec(board: BoardProfile, meter: str | None, energy: bool) -> str | None:
    """The meter to use: ``--meter`` when given; with ``--energy`` alone, the board's own
    sensor (its profile's ``power_method``); None when energy was not asked for."""
    if meter:
        return meter
    if not energy:
        return None
    spec = board_meter_spec(board.power_method)
    if spec is None:
        raise ArgumentError(
            f"board {board.name} has no on-board power sensor (power_method "
            f"{board.power_method!r}); give --meter SPEC for the meter between its supply and "
            "the board, e.g. --meter um25c:/dev/rfcomm0 (docs/energy.md)")
    return spec


def open_plan(spec: str, remote: Remote | None, options: EnergyOptions, *,
              log: Callable[[str], None] = lambda _: None, label: str = "local") -> EnergyPlan:
    """Open the meter ``spec`` for one board. Serial meters sit on this machine; on-device
    sensors are read on the board over ``remote``'s SSH (on this machine when it is None, as
    the local benchmark runs here)."""
    kind = parse_spec(spec).kind
    runner = (ssh_runner(remote.ssh_command)
              if remote is not None and kind in ON_DEVICE_KINDS else None)
    try:
        meter = open_meter(spec, calibration_dir=options.calibration_dir, remote=runner)
    except MeterError as e:
        raise type(e)(f"{e} — nothing was measured; check the meter with `crisp-edge meter "
                      f"read '{spec}'`, or benchmark without --meter/--energy") from e
    calibrated = (f"calibrated by {meter.calibration.path}" if meter.calibration is not None
                  else "not calibrated")
    log(f"{label}: power meter {spec}: {meter.identity or meter.kind} ({calibrated})")
    return EnergyPlan(meter, options, log)


def open_board_sensor(board: BoardProfile, remote: Remote, options: EnergyOptions, *,
                      log: Callable[[str], None] = lambda _: None, label: str = "") -> EnergyPlan:
    """The board's own sensor (``--hosts`` with ``--energy``); ArgumentError when it has none."""
    spec = meter_spec(board, None, True)
    assert spec is not None  # meter_spec raises when the board has no sensor
    return open_plan(spec, remote, options, log=log, label=label or remote.host)


def inferences_for(median_ms: float, rate_hz: float, min_window_s: float) -> int:
    """N for one window: enough that the inferences alone last max(min_window_s, 25 meter
    samples) at the measured median latency, within crisp-bench's --runs limits."""
    seconds = max(min_window_s, WINDOW_SAMPLES / rate_hz)
    wanted = math.ceil(seconds * 1000 / max(median_ms, 1e-6))
    return int(min(MAX_RUNS, max(MIN_RUNS, wanted)))


@dataclass
class EnergyPlan:
    """An opened meter and the options of the energy phase; closes the meter on ``__exit__``."""

    meter: Meter
    options: EnergyOptions
    log: Callable[[str], None] = lambda _: None

    def __enter__(self) -> EnergyPlan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.meter.close()

    def settings(self) -> dict[str, Any]:
        """The results JSON's ``settings.energy``."""
        meter = self.meter
        return {"meter": meter.spec, "kind": meter.kind, "identity": meter.identity or None,
                "on_device": meter.kind in ON_DEVICE_KINDS,
                "calibration": (str(meter.calibration.path) if meter.calibration is not None
                                else None),
                "min_window_s": self.options.min_window_s,
                "idle_seconds": self.options.idle_seconds,
                "settle_seconds": self.options.settle_seconds}

    def add_to(self, result: dict[str, Any], board: BoardProfile, remote: Remote | None,
               rdir: str, tflite: Path | None) -> None:
        """Measure energy for every latency entry of ``result`` (a ``crisp-fieldbench/1``
        document), in place: ``energy`` or ``energy_error`` on each entry."""
        label = result["host"]
        failure: str | None = None
        for model in result["models"]:
            for entry in model["results"]:
                run = partial(_crisp_inferences, board, remote, rdir, model["path"],
                              entry["threads"])
                failure = self._measure(entry, f"{model['name']} {entry['threads']}t", run,
                                        failure, label)
        timed = result.get("tflite") or {}
        entries = timed.get("results", []) if timed.get("benchmarked") and tflite else []
        if not entries:
            return
        assert tflite is not None
        try:
            with tflite_on_target(remote, rdir, tflite) as path:
                for entry in entries:
                    run = partial(run_tflite_inferences, remote, path, threads=entry["threads"],
                                  label=label)
                    failure = self._measure(entry, f"TFLite {tflite.name} {entry['threads']}t",
                                            run, failure, label)
        except CrispError as e:  # putting the .tflite on the device; windows catch their own
            for entry in entries:
                entry.setdefault("energy_error", "the TFLite model could not be put on the "
                                                 f"device for the energy windows: {e}")

    def _measure(self, entry: dict[str, Any], what: str, run: Callable[[int], dict[str, Any]],
                 failure: str | None, label: str) -> str | None:
        """One window for one entry; returns the failure that stops the windows after it."""
        if failure is not None:
            entry["energy_error"] = f"not measured: {failure}"
            return failure
        spec = self.meter.spec
        n = inferences_for(entry["median_ms"], self.meter.rate_hz, self.options.min_window_s)
        self.log(f"{label}: energy of {what}: {n} inferences (≈ "
                 f"{n * entry['median_ms'] / 1000:.1f} s) with {spec}")
        try:
            measured = measure(self.meter, run, n, idle_seconds=self.options.idle_seconds,
                               settle_seconds=self.options.settle_seconds)
        except CrispError as e:
            message = _describe(spec, e)
            entry["energy_error"] = message
            self.log(f"{label}: energy of {what} FAILED: {message}")
            return f"the energy window of {what} failed before this one ({message})"
        entry["energy"] = energy_json(measured)
        self.log(f"{label}: {what}: {measured}")
        return None


def _crisp_inferences(board: BoardProfile, remote: Remote | None, rdir: str, model: str,
                      threads: int, count: int) -> dict[str, Any]:
    """``count`` crisp-bench inferences on the target; that thread count's result."""
    return dict(run_inferences(board, remote, rdir, model, count, threads)["models"][0]
                ["results"][0])


def _describe(spec: str, error: CrispError) -> str:
    """The error's message, naming the meter (the method's own errors do not)."""
    text = str(error)
    if isinstance(error, MeterError):
        return text if spec in text else f"{spec}: {text}"
    return f"the inferences of the energy window (meter {spec}) failed on the device: {text}"


def energy_json(measured: EnergyResult) -> dict[str, Any]:
    """``EnergyResult.to_json()`` plus what the benchmark knows about the window: the time the
    timed inferences took in it, and their median latency (docs/deploy.md)."""
    data = measured.to_json()
    timed = measured.run_output if isinstance(measured.run_output, dict) else {}
    throughput = timed.get("throughput_ips")
    inference_s = measured.inferences / throughput if throughput else None
    data["inference_s"] = inference_s
    data["window_median_ms"] = timed.get("median_ms")
    startup = measured.window_s - inference_s if inference_s is not None else 0.0
    if startup > STARTUP_SHARE * measured.window_s:
        data["warnings"].append(
            f"start-up in the window: {startup:.2f} s of its {measured.window_s:.2f} s were not "
            "timed inferences (SSH session, process start, model load); their idle power is "
            "subtracted, but the energy of loading the model is counted — lengthen the window "
            "(--energy-window) to dilute it")
    return data


def energy_problems(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, message) for every ``energy_error`` in a single or fleet results document."""
    results = doc["results"] if doc.get("format") == FLEET_FORMAT else [doc]
    for result in results:
        host = result["host"]
        if result.get("energy_error"):
            yield host, result["energy_error"]
        for model in result["models"]:
            for entry in model["results"]:
                if "energy_error" in entry:
                    yield f"{host} {model['name']} {entry['threads']}t", entry["energy_error"]
        for entry in (result.get("tflite") or {}).get("results", []):
            if "energy_error" in entry:
                yield f"{host} TFLite {entry['threads']}t", entry["energy_error"]
