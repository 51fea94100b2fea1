"""Energy per inference: trapezoidal integration on waveforms with known integrals, the
method's arithmetic and uncertainty, its warnings, and measure() end to end with a meter
that follows a workload (and one that fails mid-window, as bench must survive)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import threading
import time

import numpy as np
import pytest

from crisp_edge.measure.energy import (EnergyResult, RunWindow, Window, analyse, integrate_power,
                               measure)
from crisp_edge.errors import ArgumentError, CrispError, MeterDisconnectedError, MeterError
from crisp_edge.measure.meters.base import Accuracy, Meter, Sample

S = 1_000_000_000  # ns per second


def ns(seconds: np.ndarray | float) -> np.ndarray:
    return np.round(np.asarray(seconds, dtype=np.float64) * S).astype(np.int64)


# -- integration ------------------------------------------------------------------------------

def test_constant_power_over_a_window_between_samples() -> None:
    t = np.arange(0, 10.01, 0.1)
    assert integrate_power(ns(t), np.full(len(t), 2.0), ns(1.05), ns(7.3)) == pytest.approx(
        2.0 * 6.25, rel=1e-12)


def test_ramp_is_exact_on_uneven_samples_with_clipped_edges() -> None:
    rng = np.random.default_rng(0)
    t = np.sort(np.concatenate(([0.0, 10.0], rng.uniform(0, 10, 300))))
    p = 1.5 + 0.3 * t                         # trapezoids and linear edge interpolation: exact
    t0, t1 = 0.4321, 9.1234
    expected = 1.5 * (t1 - t0) + 0.15 * (t1 ** 2 - t0 ** 2)
    assert integrate_power(ns(t), p, int(ns(t0)), int(ns(t1))) == pytest.approx(expected,
                                                                                 rel=1e-9)


def test_edge_clipping_interpolates_inside_one_interval() -> None:
    # Two samples, window strictly inside: the power at the edges is interpolated.
    got = integrate_power([0, 2 * S], [0.0, 4.0], S // 2, 3 * S // 2)
    assert got == pytest.approx(2.0)         # P(t) = 2t, ∫ from 0.5 to 1.5 = 2
    assert integrate_power([0, 2 * S], [1.0, 1.0], S, S) == 0.0


def test_step_error_is_bounded_by_one_sample_interval() -> None:
    period = 0.05
    t = np.arange(0, 4.0001, period) + 0.013      # the step falls between samples
    p = np.where(t < 2.0, 1.0, 3.0)
    got = integrate_power(ns(t), p, ns(0.5), ns(3.5))
    assert abs(got - (1.0 * 1.5 + 3.0 * 1.5)) <= 2.0 * period / 2 + 1e-12
    # With samples on both sides of the step 1 ns apart, the step is resolved exactly.
    t2 = np.array([0, 2 * S - 1, 2 * S, 4 * S])
    assert integrate_power(t2, [1.0, 1.0, 3.0, 3.0], S // 2, 7 * S // 2) == pytest.approx(
        6.0, abs=1e-8)


def test_sine_matches_its_analytic_integral() -> None:
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 5, 20000))
    t = np.concatenate(([0.0], t, [5.0]))
    f = 3.0
    p = 2.0 + np.sin(2 * np.pi * f * t)
    t0, t1 = 0.37, 4.61
    expected = 2.0 * (t1 - t0) + (np.cos(2 * np.pi * f * t0) - np.cos(2 * np.pi * f * t1)) / (
        2 * np.pi * f)
    assert integrate_power(ns(t), p, ns(t0), ns(t1)) == pytest.approx(expected, rel=1e-5)


def test_unsorted_samples_and_coverage() -> None:
    t = ns(np.array([2.0, 0.0, 1.0]))
    assert integrate_power(t, [3.0, 1.0, 2.0], 0, 2 * S) == pytest.approx(4.0)
    with pytest.raises(ArgumentError, match="cover"):
        integrate_power(ns(np.array([0.5, 2.0])), [1.0, 1.0], 0, S)
    with pytest.raises(ArgumentError, match="cover"):
        integrate_power(ns(np.array([0.0, 0.9])), [1.0, 1.0], 0, S)
    with pytest.raises(ArgumentError, match="before it starts"):
        integrate_power([0, S], [1.0, 1.0], S, 0)


# -- the method -------------------------------------------------------------------------------

def waveform(idle: float, active: float, window: Window, rate: float, *, noise: float = 0.0,
             idle_after: float | None = None, seed: int = 0) -> list[Sample]:
    """Samples of a board at ``idle`` W that draws ``active`` W inside the window."""
    rng = np.random.default_rng(seed)
    t = np.arange(window.idle_before_start, window.idle_after_end + S // 2, int(S / rate))
    # A sample 1 ns outside each edge makes the steps sharp: the integrals are then exact.
    t = np.sort(np.concatenate((t, [window.start - 1, window.end + 1])))
    after = idle if idle_after is None else idle_after
    p = np.where(t < window.start, idle, np.where(t <= window.end, active, after))
    p = p + rng.normal(0, noise, len(t)) if noise else p
    return [Sample(int(ti), 5.0, pi / 5.0, float(pi)) for ti, pi in zip(t, p)]


def window_at(before: float, start: float, end: float, after_end: float) -> Window:
    return Window(int(ns(before)), int(ns(start)), int(ns(end)), int(ns(end + 0.5)),
                  int(ns(after_end)))


def test_energy_per_inference_and_its_parts() -> None:
    w = window_at(0.0, 2.0, 4.0, 6.5)
    # Samples at 100 Hz land exactly on the window's edges: no edge error, no noise, no drift.
    result = analyse(waveform(1.0, 3.0, w, 100.0), w, 100, meter="sim", requested_rate_hz=100,
                     accuracy=0.01, accuracy_source="test")
    assert result.energy_j == pytest.approx(6.0, rel=1e-9)
    assert result.idle_power_w == pytest.approx(1.0)
    assert result.avg_power_w == pytest.approx(3.0)
    assert result.net_energy_j == pytest.approx(4.0, rel=1e-9)
    assert result.mj_per_inference == pytest.approx(40.0, rel=1e-9)
    assert result.inferences_per_j == pytest.approx(25.0, rel=1e-9)
    parts = result.uncertainty_parts_mj
    assert parts["calibration"] == pytest.approx(0.4)          # 1 % of 40 mJ
    assert parts["baseline"] == pytest.approx(0.0, abs=1e-9)
    # Edges: |3 − 1| W · one sample period (≈ 10 ms) / √6, over 100 inferences.
    assert result.sample_rate_hz == pytest.approx(100.0, rel=0.01)
    assert parts["sampling"] == pytest.approx(2.0 / result.sample_rate_hz / math.sqrt(6) * 1000
                                              / 100, rel=1e-6)
    assert result.uncertainty_mj == pytest.approx(math.hypot(parts["calibration"],
                                                             parts["sampling"]), rel=1e-9)
    assert result.samples == 201 and result.warnings == []  # 2 s at 100 Hz, both ends


def test_drift_between_baselines_widens_the_uncertainty_and_warns() -> None:
    w = window_at(0.0, 2.0, 4.0, 6.5)
    result = analyse(waveform(1.0, 3.0, w, 100.0, idle_after=1.2), w, 100, meter="sim",
                     requested_rate_hz=100, accuracy=0.0)
    assert result.idle_power_w == pytest.approx(1.1)
    assert result.mj_per_inference == pytest.approx((6.0 - 1.1 * 2.0) * 10, rel=1e-9)
    assert result.uncertainty_parts_mj["baseline"] == pytest.approx(0.1 * 2.0 * 10, rel=1e-6)
    assert any(w.startswith("idle drift") and "+20.0 %" in w for w in result.warnings)


def test_too_short_window_says_how_many_inferences_are_enough() -> None:
    w = window_at(0.0, 2.0, 2.1, 4.0)
    result = analyse(waveform(1.0, 3.0, w, 10.0), w, 10, meter="um25c:/dev/rfcomm0",
                     requested_rate_hz=10, accuracy=0.0015)
    short = [x for x in result.warnings if x.startswith("window too short")]
    assert short and "holds 2 samples" in short[0] and "um25c:/dev/rfcomm0" in short[0]
    # 20 samples at ~10 Hz ≈ 2 s ≈ 200 inferences of 10 ms.
    needed = re.search(r"run ≥ (\d+) inferences", short[0])
    assert needed and 180 <= int(needed.group(1)) <= 200


def test_slow_meter_and_gaps_are_reported() -> None:
    w = window_at(0.0, 2.0, 6.0, 8.5)
    samples = [s for s in waveform(1.0, 3.0, w, 4.0)
               if not 3 * S < s.t_ns < 4.5 * S]         # a 1.5 s hole in the window
    result = analyse(samples, w, 100, meter="scpi:x", requested_rate_hz=20, accuracy=0.005)
    assert any(x.startswith("slow meter") and "20 were requested" in x for x in result.warnings)
    assert any(x.startswith("gap") for x in result.warnings)


def test_insignificant_result_is_flagged() -> None:
    w = window_at(0.0, 2.0, 4.0, 6.5)
    result = analyse(waveform(1.0, 1.001, w, 100.0, noise=0.05), w, 100, meter="sim",
                     requested_rate_hz=100, accuracy=0.01)
    assert any(x.startswith("not significant") for x in result.warnings)


def test_uncertainty_covers_the_truth_on_noisy_meters() -> None:
    """Over many noisy runs, the true value lies within 2 u in at least 90 % of them (an
    honest uncertainty), and u is not absurdly large (the truth is not always within 0.2 u)."""
    w = window_at(0.0, 1.0, 3.0, 4.5)
    inside_2u = inside_02u = 0
    trials = 200
    for seed in range(trials):
        result = analyse(waveform(1.0, 2.0, w, 50.0, noise=0.3, seed=seed), w, 50,
                         meter="sim", requested_rate_hz=50, accuracy=0.0)
        error = abs(result.mj_per_inference - 40.0)
        inside_2u += error <= 2 * result.uncertainty_mj
        inside_02u += error <= 0.2 * result.uncertainty_mj
    assert inside_2u >= 0.9 * trials
    assert inside_02u < 0.5 * trials


def test_json_has_the_documented_keys_and_is_strict_json() -> None:
    w = window_at(0.0, 2.0, 4.0, 6.5)
    result = analyse(waveform(1.0, 1.0, w, 100.0), w, 100, meter="sim", requested_rate_hz=100,
                     accuracy=0.01, notes=["a caveat"], skipped=3)
    data = result.to_json()
    assert list(data)[:6] == ["meter", "avg_power_w", "idle_power_w", "mj_per_inference",
                              "uncertainty_mj", "samples"]
    assert set(data) == {"meter", "avg_power_w", "idle_power_w", "mj_per_inference",
                         "uncertainty_mj", "samples", "inferences_per_j", "inferences",
                         "window_s", "idle_before_w", "idle_after_w", "energy_j",
                         "net_energy_j", "uncertainty_parts_mj", "samples_total",
                         "sample_rate_hz", "requested_rate_hz", "accuracy", "accuracy_source",
                         "calibration", "warnings"}
    assert data["inferences_per_j"] is None                 # no energy above idle
    assert "a caveat" in data["warnings"] and any("3 corrupt" in x for x in data["warnings"])
    json.loads(json.dumps(data, allow_nan=False))


# -- measure() with an in-memory meter ---------------------------------------------------------

class WorkloadMeter(Meter):
    """Reads a 'board' that draws ``active`` W while ``busy`` is set; can die at a given time."""

    kind = "fake"

    def __init__(self, idle: float = 2.0, active: float = 5.0, rate: float = 200.0,
                 die_after: float | None = None) -> None:
        super().__init__("fake:board", rate_hz=rate, timeout_s=0.5,
                         accuracy=Accuracy(0.01, "test"))
        self.idle, self.active, self.die_after = idle, active, die_after
        self.busy = threading.Event()

    def _open(self) -> None:
        self.identity = "fake board"

    def _close(self) -> None:
        pass

    def _acquire(self, stop: threading.Event) -> None:
        t0 = time.monotonic()
        while not stop.wait(1 / self.rate_hz):
            if self.die_after is not None and time.monotonic() - t0 > self.die_after:
                raise MeterDisconnectedError(f"{self.spec}: lost the connection (test)")
            watts = self.active if self.busy.is_set() else self.idle
            self._emit(time.monotonic_ns(), 5.0, watts / 5.0, watts)


def test_measure_follows_the_workload() -> None:
    meter = WorkloadMeter()
    per_inference_s = 0.004

    def run(n: int) -> dict[str, int]:
        meter.busy.set()
        time.sleep(n * per_inference_s)
        meter.busy.clear()
        return {"inferences": n}

    with meter:
        result = measure(meter, run, 100, idle_seconds=0.4, settle_seconds=0.1)
    truth_mj = (5.0 - 2.0) * per_inference_s * 1000              # 12 mJ per inference
    assert result.idle_power_w == pytest.approx(2.0, rel=1e-3)
    # Sleep overshoot lengthens the busy time a little; the meter must see it, within 2 u + 5 %.
    assert abs(result.mj_per_inference - truth_mj) <= 2 * result.uncertainty_mj + 0.05 * truth_mj
    assert result.samples >= 20 and result.inferences == 100
    assert result.run_output == {"inferences": 100}           # what run() returned
    assert not meter.running


def test_measure_uses_the_window_run_returns() -> None:
    meter = WorkloadMeter()

    def run(n: int) -> RunWindow:
        time.sleep(0.1)                      # start-up cost that is not inference energy
        meter.busy.set()
        start = time.monotonic_ns()
        time.sleep(0.3)
        end = time.monotonic_ns()
        meter.busy.clear()
        time.sleep(0.1)
        return RunWindow(start, end)

    with meter:
        result = measure(meter, run, 30, idle_seconds=0.3, settle_seconds=0.05)
    assert result.window_s == pytest.approx(0.3, abs=0.02)
    assert result.avg_power_w == pytest.approx(5.0, abs=0.3)


def bench_with_energy(meter: Meter, n: int) -> dict[str, object]:
    """A stand-in for `crisp-edge bench`: latencies first, then energy; a meter failure costs
    the energy only."""
    results: dict[str, object] = {"latency_ms": {"median": 4.2, "p90": 4.5, "p99": 5.0}}

    def run(count: int) -> None:
        time.sleep(0.6)

    try:
        results["energy"] = measure(meter, run, n, idle_seconds=0.3, settle_seconds=0.05
                                    ).to_json()
    except MeterError as e:
        results["energy_error"] = str(e)
    return results


def test_a_meter_failing_mid_window_keeps_the_latency_results() -> None:
    # Starts ~0.3 s idle, window from ~0.3 to ~0.9 s: dying at 0.6 s is inside the window.
    meter = WorkloadMeter(die_after=0.6)
    with meter:
        results = bench_with_energy(meter, 50)
    assert results["latency_ms"] == {"median": 4.2, "p90": 4.5, "p99": 5.0}
    assert "energy" not in results
    message = results["energy_error"]
    assert isinstance(message, str)
    assert "fake:board: lost the connection" in message and "into the measurement window" in message


def test_measure_error_is_typed_and_carries_the_phase() -> None:
    meter = WorkloadMeter(die_after=0.1)
    with meter, pytest.raises(MeterDisconnectedError) as info:
        measure(meter, lambda n: time.sleep(0.2), 10, idle_seconds=0.5)
    assert isinstance(info.value, CrispError)
    assert info.value.phase == "idle before"
    assert "during the idle baseline before the window" in str(info.value)


def test_result_string_is_readable() -> None:
    w = window_at(0.0, 2.0, 4.0, 6.5)
    text = str(analyse(waveform(1.0, 3.0, w, 100.0), w, 100, meter="sim",
                       requested_rate_hz=100, accuracy=0.01))
    assert text.startswith("40.000 ± ") and "25.0 inferences/J" in text
    assert isinstance(EnergyResult, type)


def test_no_inferences_per_joule_when_the_net_energy_is_not_significant() -> None:
    # A net energy a hair above zero but far within its uncertainty: N / net was printed as
    # "314126074009092096.0 inferences/J".
    w = window_at(0.0, 2.0, 4.0, 6.5)
    measured = analyse(waveform(1.0, 3.0, w, 100.0), w, 100, meter="sim",
                       requested_rate_hz=100, accuracy=0.01)
    result = dataclasses.replace(measured, net_energy_j=3.2e-16, mj_per_inference=3.2e-15,
                                 uncertainty_mj=0.05)
    assert result.inferences_per_j is None
    assert result.to_json()["inferences_per_j"] is None
    text = str(result)
    assert "– inferences/J (net energy not significantly above idle" in text
    assert "e+" not in text and "inferences/J" in text
    # At exactly twice the uncertainty it is still not significant; above, the figure is back.
    assert dataclasses.replace(result, mj_per_inference=0.1).inferences_per_j is None
    assert dataclasses.replace(measured).inferences_per_j == pytest.approx(25.0, rel=1e-9)
