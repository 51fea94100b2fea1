"""The meter interface: open, start, stop, timestamped samples, energy over a window.

A meter samples in a background thread from ``start()`` to ``stop()``; every sample carries the
host's ``time.monotonic_ns()`` of the moment it was measured, so a caller brackets a workload
with the same clock and asks for the energy between two instants. A failure in the sampling
thread is kept and raised by ``check()``/``stop()`` with the time it happened, never lost.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from crisp_edge.errors import (ArgumentError, MeterDisconnectedError, MeterError,
                               MeterNotFoundError)

if TYPE_CHECKING:
    from crisp_edge.measure.meters.calibration import Calibration

try:  # a hung-up port fails tcflush/tcsetattr with termios.error, which is not an OSError
    import termios

    IO_ERRORS: tuple[type[BaseException], ...] = (OSError, termios.error)
except ImportError:  # not POSIX
    IO_ERRORS = (OSError,)


@dataclass(frozen=True)
class Sample:
    """One reading: host monotonic time (ns), volts, amps, watts (calibrated once the meter
    has a calibration; V and I are always as measured)."""

    t_ns: int
    volts: float
    amps: float
    watts: float


@dataclass(frozen=True)
class Accuracy:
    """The meter's power accuracy before calibration: a relative standard uncertainty of the
    gain (0.005 = 0.5 %) and where that number comes from."""

    gain: float
    source: str


class Meter(ABC):
    """Base of every driver. Subclasses implement ``_open``, ``_close`` and ``_acquire``.

    >>> with open_meter("scpi:/dev/ttyUSB0?rate=10") as meter:    # doctest: +SKIP
    ...     meter.start(); time.sleep(2); meter.stop()
    ...     print(meter.energy(meter.samples()[0].t_ns, meter.samples()[-1].t_ns), "J")
    """

    kind: str = "meter"

    def __init__(self, spec: str, *, rate_hz: float, timeout_s: float,
                 accuracy: Accuracy) -> None:
        self.spec = spec
        self.rate_hz = rate_hz
        self.timeout_s = timeout_s
        self.accuracy = accuracy
        self.identity = ""
        self.calibration: Calibration | None = None
        # Standing caveats a result should carry (e.g. what the PMIC rails leave out).
        self.notes: list[str] = []
        # Records or lines that were corrupt and skipped (resynchronised), for the warnings.
        self.skipped = 0
        self._rows: list[tuple[int, float, float, float, int | None]] = []
        self._lock = threading.Lock()
        self._new_sample = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: MeterError | None = None
        self._error_ns: int | None = None
        self._started_ns: int | None = None
        self._is_open = False

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> Meter:
        """Connect and identify the instrument (sets ``identity``); idempotent."""
        if not self._is_open:
            try:
                self._open()
            except IO_ERRORS as e:
                self._close()
                raise MeterNotFoundError(f"{self.spec}: cannot talk to the device ({e}); is it "
                                         "connected and not in use by another program?") from None
            self._is_open = True
        return self

    def close(self) -> None:
        """Stop sampling (ignoring a stored failure) and release the device."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(self.timeout_s + 5)
            self._thread = None
        if self._is_open:
            self._is_open = False
            self._close()

    def __enter__(self) -> Meter:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Forget earlier samples and start sampling in the background."""
        if not self._is_open:
            self.open()
        if self._thread is not None:
            raise MeterError(f"{self.spec}: already sampling; stop() first")
        with self._lock:
            self._rows.clear()
        self._error = self._error_ns = None
        self._stop.clear()
        self._started_ns = time.monotonic_ns()
        self._thread = threading.Thread(target=self._run, name=f"meter {self.spec}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling; raises the failure of the sampling thread if there was one."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(self.timeout_s + 5)
            if self._thread.is_alive():
                self._fail(MeterError(f"{self.spec}: the sampling thread did not stop within "
                                      f"{self.timeout_s + 5:.0f} s"))
            self._thread = None
        self.check()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def check(self) -> None:
        """Raise the sampling thread's failure, if any."""
        if self._error is not None:
            raise self._error

    @property
    def failed_at_ns(self) -> int | None:
        """Host monotonic time of the failure (None when there was none)."""
        return self._error_ns

    # -- data --------------------------------------------------------------------------------

    def samples(self, t0_ns: int | None = None, t1_ns: int | None = None) -> list[Sample]:
        """Samples so far (calibrated), optionally only those with t0_ns <= t <= t1_ns."""
        with self._lock:
            rows = list(self._rows)
        times = self._host_times(rows)
        out = []
        for t, (_, volts, amps, watts, _) in zip(times, rows):
            if (t0_ns is None or t >= t0_ns) and (t1_ns is None or t <= t1_ns):
                if self.calibration is not None:
                    watts = self.calibration.apply(watts)
                out.append(Sample(int(t), volts, amps, watts))
        return out

    def wait_for_samples(self, count: int, after_ns: int | None = None,
                         timeout_s: float | None = None) -> bool:
        """Block until ``count`` samples newer than ``after_ns`` arrived (or the thread died);
        True when they did."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        with self._new_sample:
            while True:
                have = sum(1 for r in self._rows if after_ns is None or r[0] > after_ns)
                if have >= count:
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or self._error is not None or not self.running:
                    return False
                self._new_sample.wait(min(left, 0.05))

    def energy(self, t0_ns: int, t1_ns: int) -> float:
        """Joules between two host-monotonic instants (trapezoids, edges interpolated)."""
        s = self.samples()
        t = np.array([x.t_ns for x in s], dtype=np.int64)
        p = np.array([x.watts for x in s])
        return integrate_power(t, p, t0_ns, t1_ns)

    @property
    def power_accuracy(self) -> float:
        """Relative standard uncertainty of power: the calibration's, else the datasheet's."""
        return (self.calibration.gain_uncertainty if self.calibration is not None
                else self.accuracy.gain)

    # -- for drivers -------------------------------------------------------------------------

    def _emit(self, t_ns: int, volts: float, amps: float, watts: float,
              device_ns: int | None = None) -> None:
        """Record a reading. ``device_ns`` is the instrument's own clock when it has one; the
        host times are then re-derived from it (see ``_host_times``)."""
        with self._new_sample:
            self._rows.append((t_ns, volts, amps, watts, device_ns))
            self._new_sample.notify_all()

    def _fail(self, error: MeterError) -> None:
        if self._error is None:
            self._error, self._error_ns = error, time.monotonic_ns()
        with self._new_sample:
            self._new_sample.notify_all()

    def _run(self) -> None:
        try:
            self._acquire(self._stop)
        except MeterError as e:
            self._fail(e)
        except IO_ERRORS as e:  # includes serial.SerialException
            self._fail(MeterDisconnectedError(
                f"{self.spec}: lost the connection ({e}); check the cable or Bluetooth link "
                "and that no other program has the port open"))
        except Exception as e:  # a driver bug must still surface, not end the thread silently
            self._fail(MeterError(f"{self.spec}: sampling failed: {type(e).__name__}: {e}"))

    @staticmethod
    def _host_times(rows: list[tuple[int, float, float, float, int | None]]) -> list[int]:
        """Host times of the rows. Rows stamped on the instrument's clock are mapped to the host
        clock by a fit of arrival time against instrument time (rate drift), shifted to the
        lower envelope (a reading cannot arrive before it was taken): the transport's latency
        jitter then no longer moves the timestamps."""
        dev = [r[4] for r in rows]
        if not rows or any(d is None for d in dev):
            return [r[0] for r in rows]
        d0 = dev[0]
        x = np.array([d - d0 for d in dev], dtype=np.float64)  # type: ignore[operator]
        h0 = rows[0][0]
        y = np.array([r[0] - h0 for r in rows], dtype=np.float64)
        slope = 1.0
        if len(rows) >= 20 and x[-1] - x[0] >= 1e9:
            fitted = float(np.polyfit(x, y, 1)[0])
            if 0.98 <= fitted <= 1.02:  # beyond 2 % the clock is wrong, not drifting
                slope = fitted
        intercept = float(np.min(y - slope * x))
        return [h0 + int(round(slope * xi + intercept)) for xi in x]

    @abstractmethod
    def _open(self) -> None:
        """Connect, identify (set ``identity``), raise MeterNotFoundError/ProtocolError."""

    @abstractmethod
    def _close(self) -> None:
        """Release the device."""

    @abstractmethod
    def _acquire(self, stop: threading.Event) -> None:
        """Sample until ``stop`` is set, calling ``_emit``; raise a MeterError on failure.
        Every blocking read must have a timeout so that ``stop`` is noticed."""


class PolledMeter(Meter):
    """A meter that answers one request with one reading (SCPI, UM): ``_poll`` at ``rate_hz``.
    A meter slower than the rate simply yields fewer samples; the energy method's rate check
    reports it."""

    def _acquire(self, stop: threading.Event) -> None:
        period = 1.0 / self.rate_hz
        next_at = time.monotonic()
        while not stop.is_set():
            t_ns, volts, amps, watts = self._poll()
            self._emit(t_ns, volts, amps, watts)
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            else:
                next_at = time.monotonic()  # late: do not try to catch up with a burst

    @abstractmethod
    def _poll(self) -> tuple[int, float, float, float]:
        """One reading: (host ns at the middle of the exchange, V, A, W)."""


def integrate_power(t_ns: np.ndarray | Sequence[int], watts: np.ndarray | Sequence[float],
                    t0_ns: int, t1_ns: int) -> float:
    """∫ P dt in joules over exactly [t0_ns, t1_ns]: trapezoids between samples, with the power
    at t0 and t1 interpolated linearly between the samples around them.

    The samples must cover the interval (one at or before t0, one at or after t1); times need
    not be evenly spaced.

    >>> integrate_power([0, 10**9, 2 * 10**9], [1.0, 3.0, 3.0], 5 * 10**8, 2 * 10**9)
    3.5
    """
    t = np.asarray(t_ns, dtype=np.int64)
    p = np.asarray(watts, dtype=np.float64)
    if t1_ns < t0_ns:
        raise ArgumentError(f"the window ends ({t1_ns}) before it starts ({t0_ns})")
    order = np.argsort(t, kind="stable")
    t, p = t[order], p[order]
    if len(t) == 0 or t[0] > t0_ns or t[-1] < t1_ns:
        raise ArgumentError("the samples do not cover the window: need one at or before its "
                            "start and one at or after its end")
    if t1_ns == t0_ns:
        return 0.0
    # Seconds relative to t0 keep full precision (monotonic ns since boot are large numbers).
    x = (t - t0_ns).astype(np.float64) / 1e9
    span = (t1_ns - t0_ns) / 1e9
    inside = (x > 0) & (x < span)
    xs = np.concatenate(([0.0], x[inside], [span]))
    ps = np.concatenate(([np.interp(0.0, x, p)], p[inside], [np.interp(span, x, p)]))
    return float(np.sum((ps[1:] + ps[:-1]) * np.diff(xs)) / 2)
