"""SCPI bench instruments on a USB-serial port: power supplies that read back their output
(``MEAS:VOLT?``, ``MEAS:CURR?``) and multimeters measuring the board's supply current.

Each poll asks for voltage then current and stamps the reading at the middle of the exchange;
power is V·I. A DMM that measures current only takes a fixed voltage (``?volts=5.1``), and
instruments with other command spellings take ``?volt_cmd=...&curr_cmd=MEAS:CURR:DC?``.

What goes wrong, and what the driver does:
- no reply within the timeout: ask ``SYST:ERR?``; an error there (``-113,"Undefined header"``)
  means the command is not understood → :class:`MeterProtocolError` naming command and error;
  otherwise → :class:`MeterTimeoutError`;
- a reply that is not a number: ``SYST:ERR?`` again; an error → MeterProtocolError, none →
  garbage on the line: flush, count it in ``skipped``, ask again (three tries).
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from crisp_edge.errors import MeterProtocolError, MeterSpecError, MeterTimeoutError
from crisp_edge.measure.meters.base import Accuracy, PolledMeter
from crisp_edge.measure.meters.serialport import LineReader, open_serial

# Bench supplies read back to about ±(0.05 … 0.5) % + offset; we assume the looser end for an
# instrument we know nothing about. Override per instrument with ?accuracy= or calibrate.
DEFAULT_ACCURACY = Accuracy(0.005, "assumed 0.5 % (typical bench supply read-back); set "
                                   "?accuracy= from the datasheet or calibrate")
_TRIES = 3
_QUERY = re.compile(r"\*?[A-Za-z][A-Za-z0-9:]*\?")


class ScpiMeter(PolledMeter):
    kind = "scpi"

    def __init__(self, spec: str, port: str, *, baud: int = 9600, rate_hz: float = 5.0,
                 timeout_s: float = 1.0, accuracy: Accuracy = DEFAULT_ACCURACY,
                 volt_cmd: str = "MEAS:VOLT?", curr_cmd: str = "MEAS:CURR?",
                 fixed_volts: float | None = None) -> None:
        super().__init__(spec, rate_hz=rate_hz, timeout_s=timeout_s, accuracy=accuracy)
        for name, cmd in (("volt_cmd", volt_cmd), ("curr_cmd", curr_cmd)):
            # Sent verbatim to a power supply: "MEAS:VOLT?;:OUTP OFF" or "VOLT 30" would
            # change its output. Only a single query passes.
            if not _QUERY.fullmatch(cmd):
                raise MeterSpecError(f"{spec}: {name}={cmd!r} is not a single SCPI query "
                                     "(letters, digits and colons ending in '?', e.g. "
                                     "MEAS:CURR:DC?); nothing that sets the instrument is sent")
        self.port_name = port
        self.baud = baud
        self.volt_cmd = volt_cmd
        self.curr_cmd = curr_cmd
        self.fixed_volts = fixed_volts
        self._port: Any = None
        self._lines: LineReader | None = None
        self._io_lock = threading.Lock()

    def _open(self) -> None:
        self._port = open_serial(self.spec, self.port_name, self.baud, 0.05)
        self._lines = LineReader(self._port)
        self._lines.clear()
        try:
            self.identity = self.query("*IDN?").strip()
        except MeterTimeoutError:
            self._close()
            raise MeterTimeoutError(
                f"{self.spec}: no answer to *IDN? within {self.timeout_s} s; check the baud "
                f"rate (?baud=, now {self.baud}), that the instrument is in remote/SCPI mode "
                "and that its line ending is LF") from None
        if not self.identity:
            self._close()
            raise MeterProtocolError(f"{self.spec}: empty answer to *IDN?")

    def _close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    def query(self, command: str) -> str:
        """Send one command and return its reply line (stale input is dropped first)."""
        assert self._port is not None and self._lines is not None, "meter is not open"
        with self._io_lock:
            self._lines.clear()
            self._port.write(command.encode("ascii") + b"\n")
            self._port.flush()
            line = self._lines.readline(self.timeout_s)
        if line is None:
            raise MeterTimeoutError(f"{self.spec}: no reply to {command} within "
                                    f"{self.timeout_s} s")
        return line.decode("ascii", "replace").strip()

    def _system_error(self) -> str | None:
        """The instrument's first queued error (``-113,"Undefined header"``), None if none."""
        try:
            reply = self.query("SYST:ERR?")
        except MeterTimeoutError:
            return None
        code = reply.partition(",")[0].strip()
        try:
            return None if int(code) == 0 else reply
        except ValueError:
            return None

    def _number(self, command: str) -> float:
        reply = ""
        for _ in range(_TRIES):
            try:
                reply = self.query(command)
            except MeterTimeoutError:
                error = self._system_error()
                if error:
                    raise MeterProtocolError(
                        f"{self.spec}: no reply to {command}; the instrument reports {error}. "
                        "It may spell the command differently: set ?volt_cmd= / ?curr_cmd= "
                        "(e.g. MEAS:CURR:DC?)") from None
                raise
            try:
                return float(reply.rstrip("VAva \t"))
            except ValueError:
                pass
            error = self._system_error()
            if error:
                raise MeterProtocolError(f"{self.spec}: {command} answered {reply!r}; the "
                                         f"instrument reports {error}")
            self.skipped += 1  # garbage on the line: the next query starts clean
        raise MeterProtocolError(f"{self.spec}: {_TRIES} unreadable replies to {command} in a "
                                 f"row (last {reply!r}); check the baud rate and cable")

    def _poll(self) -> tuple[int, float, float, float]:
        t0 = time.monotonic_ns()
        volts = self.fixed_volts if self.fixed_volts is not None else self._number(self.volt_cmd)
        amps = self._number(self.curr_cmd)
        t1 = time.monotonic_ns()
        return (t0 + t1) // 2, volts, amps, volts * amps
