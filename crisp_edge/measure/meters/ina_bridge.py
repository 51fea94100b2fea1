"""An INA219/INA226 current sensor behind a small Arduino (boards/meters/ina2xx_bridge/) that
streams timestamped readings over USB serial.

Line format (ASCII, ``\\n``-terminated), written by the sketch:

    # crisp-edge ina2xx bridge v1 chip=INA226 addr=0x40 shunt_ohm=0.1 period_ms=10 id=bench1
    $<t_us>,<bus_mV>,<current_uA>*<HH>
    ! <error text>

``t_us`` is the Arduino's ``micros()`` (u32, wraps every 71.6 min: unwrapped here), ``bus_mV``
the bus voltage at the load side, ``current_uA`` signed, ``HH`` two hex digits: the XOR of
every character between ``$`` and ``*`` (as in NMEA). The header answers a ``?`` line from the
host and is also printed at reset. Readings are stamped on the Arduino's clock and mapped to the
host clock (see ``Meter._host_times``), which removes USB latency jitter and crystal drift.

Corrupt lines (noise, a reset in the middle of a line) fail the checksum and are skipped and
counted; an ``!`` line (no sensor on the bus, I2C error) is a :class:`MeterProtocolError`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from crisp_edge.errors import MeterProtocolError, MeterTimeoutError
from crisp_edge.measure.meters.base import Accuracy, Meter
from crisp_edge.measure.meters.serialport import LineReader, open_serial

# INA226 gain error is ≤ 0.1 %, INA219's ≤ 0.5 % (B grade) — but breakout boards carry 1 %
# shunts, and the shunt tolerance is the gain error. Calibrate to do better.
DEFAULT_ACCURACY = Accuracy(0.012, "assumed 1.2 %: 1 % shunt resistor + INA gain error")
HEADER = "# crisp-edge ina2xx bridge"
_WRAP_US = 1 << 32
_OPEN_WAIT_S = 3.0  # an Arduino resets when the port opens; its bootloader takes ~1.5 s


def checksum(body: str) -> int:
    value = 0
    for ch in body.encode("ascii"):
        value ^= ch
    return value


def parse_line(line: bytes) -> tuple[int, float, float] | None:
    """(t_us, volts, amps) from a data line, or None when it is not a valid one. Garbage
    before the last ``$`` is ignored, so a line glued to noise still parses."""
    text = line.decode("ascii", "replace")
    start = text.rfind("$")
    star = text.rfind("*")
    if start < 0 or star < start or len(text) < star + 3:
        return None
    body = text[start + 1:star]
    try:
        if int(text[star + 1:star + 3], 16) != checksum(body):
            return None
        t_us, mv, ua = (int(x) for x in body.split(","))
    except ValueError:
        return None
    if not 0 <= t_us < _WRAP_US:
        return None
    return t_us, mv / 1000.0, ua / 1e6


def parse_header(line: str) -> dict[str, str]:
    return dict(f.split("=", 1) for f in line[len(HEADER):].split() if "=" in f)


class InaBridgeMeter(Meter):
    kind = "ina"

    def __init__(self, spec: str, port: str, *, baud: int = 115200, rate_hz: float = 100.0,
                 timeout_s: float = 1.0, accuracy: Accuracy = DEFAULT_ACCURACY) -> None:
        super().__init__(spec, rate_hz=rate_hz, timeout_s=timeout_s, accuracy=accuracy)
        self.port_name = port
        self.baud = baud
        self.header: dict[str, str] = {}
        self._port: Any = None
        self._lines: LineReader | None = None

    def _open(self) -> None:
        self._port = open_serial(self.spec, self.port_name, self.baud, 0.05)
        self._lines = LineReader(self._port)
        try:
            self._handshake()
        except BaseException:
            self._close()
            raise

    def _handshake(self) -> None:
        assert self._lines is not None
        deadline = time.monotonic() + max(_OPEN_WAIT_S, self.timeout_s)
        asked_at = 0.0
        data_lines = 0
        while time.monotonic() < deadline:
            if time.monotonic() - asked_at > 0.5:  # ask (again: the first may hit the reset)
                self._port.write(b"?\n")
                asked_at = time.monotonic()
            line = self._lines.readline(0.1)
            if line is None:
                continue
            text = line.decode("ascii", "replace").strip()
            if text.startswith(HEADER):
                self.header = parse_header(text)
                self.identity = (f"{self.header.get('chip', 'INA2xx')} "
                                 f"{self.header.get('id', self.header.get('addr', ''))}").strip()
                return
            if text.startswith("!"):
                raise MeterProtocolError(f"{self.spec}: the bridge reports: {text[1:].strip()}")
            if parse_line(line) is not None:
                data_lines += 1
        if data_lines:
            raise MeterProtocolError(f"{self.spec}: readings arrive but no '{HEADER}' header "
                                     "answers '?'; flash the sketch from "
                                     "boards/meters/ina2xx_bridge/")
        raise MeterTimeoutError(f"{self.spec}: nothing from the INA bridge within "
                                f"{max(_OPEN_WAIT_S, self.timeout_s):.1f} s; is the sketch "
                                f"flashed and the baud rate {self.baud}?")

    def _close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    def _acquire(self, stop: threading.Event) -> None:
        assert self._lines is not None
        last_raw: int | None = None
        wraps = 0
        last_good = time.monotonic()
        while not stop.is_set():
            line = self._lines.readline(0.1)
            now_ns = time.monotonic_ns()
            if line is None:
                if time.monotonic() - last_good > self.timeout_s:
                    raise MeterTimeoutError(f"{self.spec}: no reading for {self.timeout_s} s; "
                                            "the bridge stopped streaming")
                continue
            parsed = parse_line(line)
            if parsed is None:
                text = line.decode("ascii", "replace").strip()
                if text.startswith("!"):
                    raise MeterProtocolError(f"{self.spec}: the bridge reports: "
                                             f"{text[1:].strip()}")
                if text and not text.startswith("#"):
                    self.skipped += 1
                continue
            t_us, volts, amps = parsed
            if last_raw is not None and t_us < last_raw:
                if last_raw < _WRAP_US - 60_000_000:  # not near the top: the Arduino restarted
                    raise MeterProtocolError(
                        f"{self.spec}: the bridge restarted while sampling (its clock went back "
                        f"from {last_raw / 1e6:.1f} s to {t_us / 1e6:.1f} s); check its supply")
                wraps += 1
            last_raw = t_us
            last_good = time.monotonic()
            self._emit(now_ns, volts, amps, volts * amps,
                       device_ns=(t_us + wraps * _WRAP_US) * 1000)
