"""Energy per inference from a power meter (docs/energy.md).

The method, in order: sample an idle baseline before, run N inferences in a window bracketed
with the meter's clock (``time.monotonic_ns``), sample an idle baseline after, then

    E_window = ∫ P dt over [t_start, t_end]      (trapezoids, window edges interpolated)
    P_idle   = mean of the idle power before (up to one sample period before t_start) and
               after (from settle_seconds after t_end) (time-weighted means)
    energy per inference = (E_window − P_idle · t) / N,   t = t_end − t_start

with a standard uncertainty that combines, in quadrature,

- calibration: the meter's relative power accuracy (its calibration's, else its datasheet's)
  times the net energy — a constant offset cancels in the subtraction, a gain error does not;
- baseline: t · u(P_idle), where u(P_idle)² = (|P_after − P_before| / 2)² + the standard errors
  of both idle means; drift between before and after is treated as unknown within that range;
- sampling: t · σ_window / √n_window (the power's spread over the samples in the window, as if
  they were independent draws — conservative for a smooth, well-sampled waveform) and the two
  window edges, where the step in power may fall anywhere within one sample period:
  |P_avg − P_idle| · T_s / √6.

Checks add warnings rather than silently returning low-quality numbers: a window with fewer
than ``min_window_samples`` samples (and how many inferences would be enough), a meter slower
than its requested rate, a gap in the samples, idle drift beyond ``drift_tolerance``, a result
within twice its uncertainty, skipped corrupt readings, and the meter's own caveats (the Pi 5
PMIC's missing 5 V loads). docs/energy.md has the details and the JSON schema.

>>> result = measure(meter, lambda n: bench.run(n), 200)       # doctest: +SKIP
>>> result.to_json()["mj_per_inference"], result.to_json()["uncertainty_mj"]
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from crisp_edge.errors import ArgumentError, MeterError, MeterTimeoutError
from crisp_edge.measure.meters.base import Meter, Sample, integrate_power  # noqa: F401


# A net energy within this many standard uncertainties of zero is indistinguishable from idle:
# anything derived by dividing by it (inferences per joule, ratios) would be noise over nearly
# nothing, e.g. 3e17 inferences/J.
SIGNIFICANCE = 2.0
NOT_SIGNIFICANT = "net energy not significantly above idle"


def significant(mj_per_inference: float, uncertainty_mj: float) -> bool:
    """Whether an energy per inference is above zero by more than twice its uncertainty."""
    return mj_per_inference > 0 and mj_per_inference > SIGNIFICANCE * uncertainty_mj


def per_joule(energy: dict[str, Any]) -> float | None:
    """Inferences per joule of a results JSON ``energy`` object; None when its net energy is
    not significant (also for files written before that check, which stored the quotient)."""
    if not significant(energy["mj_per_inference"], energy["uncertainty_mj"]):
        return None
    return energy.get("inferences_per_j")


def per_joule_text(energy: dict[str, Any]) -> str:
    """"25.0 inferences/J", or "– inferences/J (why)" when there is no figure to print."""
    value = per_joule(energy)
    if value is None:
        return f"– inferences/J ({NOT_SIGNIFICANT}, < {SIGNIFICANCE:g} u)"
    return f"{value:.1f} inferences/J"


@dataclass
class EnergyResult:
    """Energy per inference with its uncertainty; ``to_json()`` is the results JSON's
    ``energy`` object."""

    meter: str
    inferences: int
    window_s: float
    avg_power_w: float
    idle_power_w: float
    idle_before_w: float
    idle_after_w: float
    energy_j: float
    net_energy_j: float
    mj_per_inference: float
    uncertainty_mj: float
    uncertainty_parts_mj: dict[str, float]
    samples: int
    samples_total: int
    sample_rate_hz: float
    requested_rate_hz: float
    accuracy: float
    accuracy_source: str
    calibration: str | None
    warnings: list[str] = field(default_factory=list)
    # What run(n) returned (e.g. crisp-bench's JSON for those inferences); not in to_json().
    run_output: Any = field(default=None, repr=False, compare=False)

    @property
    def inferences_per_j(self) -> float | None:
        """Inferences per joule above idle; None unless the net energy is significantly above
        zero (more than twice its standard uncertainty)."""
        if not significant(self.mj_per_inference, self.uncertainty_mj):
            return None
        return self.inferences / self.net_energy_j

    def to_json(self) -> dict[str, Any]:
        """The six required keys first, then the documented extras (docs/energy.md)."""
        return {
            "meter": self.meter, "avg_power_w": self.avg_power_w,
            "idle_power_w": self.idle_power_w, "mj_per_inference": self.mj_per_inference,
            "uncertainty_mj": self.uncertainty_mj, "samples": self.samples,
            "inferences_per_j": self.inferences_per_j, "inferences": self.inferences,
            "window_s": self.window_s, "idle_before_w": self.idle_before_w,
            "idle_after_w": self.idle_after_w, "energy_j": self.energy_j,
            "net_energy_j": self.net_energy_j,
            "uncertainty_parts_mj": dict(self.uncertainty_parts_mj),
            "samples_total": self.samples_total, "sample_rate_hz": self.sample_rate_hz,
            "requested_rate_hz": self.requested_rate_hz, "accuracy": self.accuracy,
            "accuracy_source": self.accuracy_source, "calibration": self.calibration,
            "warnings": list(self.warnings),
        }

    def __str__(self) -> str:
        return (f"{self.mj_per_inference:.3f} ± {self.uncertainty_mj:.3f} mJ/inference, "
                f"{self.avg_power_w:.3f} W average ({self.idle_power_w:.3f} W idle), "
                f"{per_joule_text(self.to_json())} [{self.meter}, {self.samples} samples]")


class RunWindow(NamedTuple):
    """What ``run(n)`` returns to narrow the window to the inferences themselves (host
    ``time.monotonic_ns`` instants, e.g. from start/end markers a remote benchmark prints)."""

    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class Window:
    """The instants of one measurement (host monotonic ns)."""

    idle_before_start: int
    start: int
    end: int
    idle_after_start: int
    idle_after_end: int


def _segment(t: np.ndarray, p: np.ndarray, t0: int, t1: int) -> tuple[float, float, int]:
    """(time-weighted mean power, std, count) of the samples in [t0, t1). Only samples inside
    count: interpolating towards a sample of the window would leak its power into the idle
    baseline."""
    inside = (t >= t0) & (t < t1)
    ts, ps = t[inside], p[inside]
    if len(ts) < 2 or ts[-1] == ts[0]:
        raise MeterError("too few samples in an idle baseline to measure idle power; make "
                         "idle_seconds longer or the meter's rate higher")
    mean = integrate_power(ts, ps, int(ts[0]), int(ts[-1])) / ((ts[-1] - ts[0]) / 1e9)
    return mean, float(np.std(ps, ddof=1)), len(ts)


def analyse(samples: Sequence[Sample], window: Window, n: int, *, meter: str,
            requested_rate_hz: float, accuracy: float, accuracy_source: str = "",
            calibration: str | None = None, notes: Sequence[str] = (), skipped: int = 0,
            min_window_samples: int = 20, drift_tolerance: float = 0.05,
            rate_tolerance: float = 0.8) -> EnergyResult:
    """The method on recorded samples (``measure`` calls this; tests call it with synthetic
    waveforms)."""
    if n < 1:
        raise ArgumentError(f"the number of inferences must be ≥ 1, not {n}")
    usable = [s for s in samples if math.isfinite(s.watts)]
    t = np.array([s.t_ns for s in usable], dtype=np.int64)
    p = np.array([s.watts for s in usable], dtype=np.float64)
    order = np.argsort(t, kind="stable")
    t, p = t[order], p[order]
    if len(t) < 2 or t[0] > window.start or t[-1] < window.end:
        raise MeterError(f"{meter}: the samples do not cover the measurement window ({len(t)} "
                         "samples); make idle_seconds longer or the meter's rate higher")
    duration = (window.end - window.start) / 1e9
    energy = integrate_power(t, p, window.start, window.end)
    # The before-baseline stops one sample period short of the window: a meter stamps a reading
    # with the middle of its poll (SCPI: two queries), so the last reading before the start may
    # already have seen the load. After the window, settle_seconds does the same.
    guard = int(1e9 / requested_rate_hz)
    before, sd_before, n_before = _segment(t, p, window.idle_before_start, window.start - guard)
    after, sd_after, n_after = _segment(t, p, window.idle_after_start, window.idle_after_end)
    idle = (before + after) / 2
    net = energy - idle * duration
    avg = energy / duration if duration > 0 else float("nan")

    in_window = (t >= window.start) & (t <= window.end)
    n_window = int(in_window.sum())
    total_span = (t[-1] - t[0]) / 1e9
    rate = (len(t) - 1) / total_span if total_span > 0 else 0.0
    period = 1 / rate if rate > 0 else duration
    # Gaps around the window, counting the samples just outside it.
    lo = max(int(np.searchsorted(t, window.start, "right")) - 1, 0)
    hi = min(int(np.searchsorted(t, window.end, "left")), len(t) - 1)
    gaps = np.diff(t[lo:hi + 1]) / 1e9

    u_cal = accuracy * abs(net)
    drift = after - before
    u_idle = math.sqrt((drift / 2) ** 2 + (sd_before ** 2 / n_before + sd_after ** 2 / n_after) / 4)
    u_base = duration * u_idle
    sd_window = float(np.std(p[in_window], ddof=1)) if n_window >= 2 else 0.0
    u_noise = duration * sd_window / math.sqrt(max(n_window, 1))
    u_edges = abs(avg - idle) * period / math.sqrt(6)
    u_samp = math.hypot(u_noise, u_edges)
    u_total = math.sqrt(u_cal ** 2 + u_base ** 2 + u_samp ** 2)
    to_mj = 1000.0 / n

    warnings: list[str] = []
    if n_window < min_window_samples:
        need_s = min_window_samples * period
        need_n = math.ceil(n * need_s / duration) if duration > 0 else n
        warnings.append(
            f"window too short: {duration:.3f} s holds {n_window} samples of {meter} at "
            f"{1 / period:.1f} Hz; at least {min_window_samples} are needed — run ≥ {need_n} "
            f"inferences (≥ {need_s:.1f} s)")
    if rate < rate_tolerance * requested_rate_hz:
        warnings.append(
            f"slow meter: {meter} delivered {rate:.1f} samples/s, {requested_rate_hz:g} were "
            "requested; the meter or its link cannot keep up — lower rate= or expect a larger "
            "uncertainty")
    if len(gaps) and gaps.max() > max(3 * period, 2.0 / requested_rate_hz):
        warnings.append(f"gap: no sample from {meter} for {gaps.max():.2f} s around the window")
    if abs(drift) > max(drift_tolerance * abs(idle), 3 * math.sqrt(
            sd_before ** 2 / n_before + sd_after ** 2 / n_after)):
        warnings.append(
            f"idle drift: idle power went from {before:.4f} W before to {after:.4f} W after "
            f"({100 * drift / before if before else float('inf'):+.1f} %); was the board really "
            "idle (background jobs, thermal throttling, fan)? The drift is in the uncertainty")
    if not significant(net, u_total):
        warnings.append(
            f"not significant: the energy above idle ({net * to_mj:.4g} mJ/inference) is "
            f"within twice its uncertainty ({u_total * to_mj:.3g} mJ); run more inferences or "
            "use a finer meter")
    if skipped:
        warnings.append(f"{meter}: {skipped} corrupt or missing readings were skipped")
    warnings.extend(notes)

    return EnergyResult(
        meter=meter, inferences=n, window_s=duration, avg_power_w=avg, idle_power_w=idle,
        idle_before_w=before, idle_after_w=after, energy_j=energy, net_energy_j=net,
        mj_per_inference=net * to_mj, uncertainty_mj=u_total * to_mj,
        uncertainty_parts_mj={"calibration": u_cal * to_mj, "baseline": u_base * to_mj,
                              "sampling": u_samp * to_mj},
        samples=n_window, samples_total=len(t), sample_rate_hz=rate,
        requested_rate_hz=requested_rate_hz, accuracy=accuracy,
        accuracy_source=accuracy_source, calibration=calibration, warnings=warnings)


def measure(meter: Meter, run: Callable[[int], Any], n: int, *,
            idle_seconds: float = 3.0, settle_seconds: float = 0.5,
            min_window_samples: int = 20, drift_tolerance: float = 0.05,
            rate_tolerance: float = 0.8) -> EnergyResult:
    """Measure the energy of ``run(n)`` (N inferences) with an opened ``meter``.

    The window is the call to ``run``, unless it returns a :class:`RunWindow` that narrows it
    to the inferences themselves; any other return value is kept as ``result.run_output``.
    Extra idle time inside the window (SSH start-up) costs only uncertainty, since idle power
    is subtracted — but energy spent in it (loading the model) is counted: narrow the window
    or warm up before calling ``measure``. ``settle_seconds`` after the window are left
    out of the after-baseline (the board cools down, clocks drop).

    A meter failure raises the driver's :class:`MeterError` subclass with the phase and the
    time into the window in its message (``error.phase``, ``error.seconds_into_window``); a
    caller keeps whatever it measured before (``crisp-edge bench`` keeps its latencies).
    """
    if n < 1:
        raise ArgumentError(f"the number of inferences must be ≥ 1, not {n}")
    marks: dict[str, int] = {}
    meter.start()
    try:
        # On-device meters start a process over SSH first: allow for it.
        first_wait = max(10.0, 2 * meter.timeout_s, 3 / meter.rate_hz)
        if not meter.wait_for_samples(2, timeout_s=first_wait):
            meter.check()
            raise MeterTimeoutError(f"{meter.spec}: no readings within {first_wait:.0f} s of "
                                    "starting")
        marks["idle_before_start"] = time.monotonic_ns()
        _idle(meter, idle_seconds)
        marks["start"] = time.monotonic_ns()
        output = run(n)
        marks["end"] = time.monotonic_ns()
        meter.check()
        if isinstance(output, RunWindow):
            if not marks["start"] <= output.start_ns <= output.end_ns <= marks["end"]:
                raise ArgumentError("run() returned a RunWindow outside the call (use "
                                    "time.monotonic_ns() on this machine)")
            marks["start"], marks["end"] = output.start_ns, output.end_ns
            output = None
        _idle(meter, settle_seconds)
        marks["idle_after_start"] = time.monotonic_ns()
        _idle(meter, idle_seconds)
        marks["idle_after_end"] = time.monotonic_ns()
        # One sample beyond the end, so the after-baseline is covered to its end.
        meter.wait_for_samples(1, after_ns=marks["idle_after_end"])
        meter.stop()
    except MeterError as e:
        raise _in_context(e, meter, marks) from e
    finally:
        if meter.running:
            try:
                meter.stop()
            except MeterError:
                pass  # already reported above, or we are unwinding another error
    result = analyse(meter.samples(), Window(**marks), n, meter=meter.spec,
                   requested_rate_hz=meter.rate_hz, accuracy=meter.power_accuracy,
                   accuracy_source=(f"calibration {meter.calibration.path}"
                                    if meter.calibration is not None else meter.accuracy.source),
                   calibration=(str(meter.calibration.path) if meter.calibration is not None
                                else None),
                   notes=list(meter.notes), skipped=meter.skipped,
                   min_window_samples=min_window_samples, drift_tolerance=drift_tolerance,
                   rate_tolerance=rate_tolerance)
    result.run_output = output
    return result


def _idle(meter: Meter, seconds: float) -> None:
    """Sleep, checking the meter every 50 ms so a failure surfaces at once."""
    deadline = time.monotonic() + seconds
    while True:
        meter.check()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def _in_context(error: MeterError, meter: Meter, marks: dict[str, int]) -> MeterError:
    """The same kind of error, its message saying when in the measurement it happened."""
    at = meter.failed_at_ns or time.monotonic_ns()
    start, end = marks.get("start"), marks.get("end")
    if "idle_before_start" not in marks:
        phase, where, into = "start", "while starting the measurement", None
    elif start is None or at < start:
        phase, where, into = "idle before", "during the idle baseline before the window", None
    elif end is None or at <= end:
        into = (at - start) / 1e9
        phase, where = "window", f"{into:.2f} s into the measurement window"
    else:
        into = (at - start) / 1e9
        phase = "idle after"
        where = f"during the idle baseline after the window ({into:.2f} s after it started)"
    wrapped = type(error)(f"{error} [{where}; the energy of this run is lost, results measured "
                          "before it are not affected]")
    wrapped.phase, wrapped.seconds_into_window = phase, into
    return wrapped
