"""RDTech UM24C / UM25C / UM34C USB meters over Bluetooth serial (``/dev/rfcommN``).

Protocol (as implemented by libsigrok's ``rdtech-um`` driver): the host sends one byte 0xF0;
the meter answers with a 130-byte record, big-endian:

    offset 0   u16  model id: 0x0963 UM24C, 0x09C9 UM25C, 0x0D4C UM34C
    offset 2   u16  voltage: UM25C in mV (/1000), UM24C/UM34C in 10 mV (/100)
    offset 4   u16  current: UM25C in 0.1 mA (/10000), UM24C/UM34C in mA (/1000)
    offset 6   u32  power in mW (/1000)
    offset 10  u16  temperature °C  …  (groups, D+/D-, charge mode, time, impedance)
    offset 128 u16  end: 0xFFF1 on UM24C/UM25C; UM34C puts an XOR checksum of 32 fixed
                    positions in the last byte

The UM25C's finer scaling (1 mV, 0.1 mA) is why it is the better choice of the family for
sub-watt boards. A record is accepted when its model id is the expected one and its power
agrees with V·I (which garbage never does); records are found again after garbage by scanning
for the model id, byte by byte, as libsigrok does. An unexpected end marker is counted in
``marker_mismatches`` and noted once, not fatal: descriptions of the end bytes differ between
sources and firmware revisions.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Any

from crisp_edge.errors import MeterProtocolError, MeterTimeoutError
from crisp_edge.measure.meters.base import Accuracy, PolledMeter
from crisp_edge.measure.meters.serialport import open_serial

REQUEST = b"\xf0"
RECORD_LEN = 130
UM34C_CHECKSUM_POSITIONS = (1, 3, 7, 9, 15, 17, 19, 23, 31, 39, 41, 45, 49, 53, 55, 57, 59, 63,
                            67, 69, 73, 79, 83, 89, 97, 99, 109, 111, 113, 119, 121, 127)
_FAILED_POLLS = 3  # a Bluetooth link drops a reply now and then; three in a row is an outage


@dataclass(frozen=True)
class UmModel:
    name: str
    model_id: int
    volts_per_lsb: float
    amps_per_lsb: float
    accuracy: Accuracy


MODELS = {
    "um24c": UmModel("UM24C", 0x0963, 0.01, 0.001,
                     Accuracy(0.01, "assumed 1 % (UM24C: 10 mV / 1 mA resolution)")),
    "um25c": UmModel("UM25C", 0x09C9, 0.001, 0.0001,
                     Accuracy(0.0015, "UM25C specification: V ±0.05 %, I ±0.1 % (+ digits)")),
    "um34c": UmModel("UM34C", 0x0D4C, 0.01, 0.001,
                     Accuracy(0.01, "assumed 1 % (UM34C: 10 mV / 1 mA resolution)")),
}
_BY_ID = {m.model_id: m for m in MODELS.values()}


@dataclass(frozen=True)
class UmReading:
    model: UmModel
    volts: float
    amps: float
    watts: float
    temperature_c: int
    marker: bytes
    marker_ok: bool


def end_marker_ok(record: bytes, model: UmModel) -> bool:
    if model.name == "UM34C":
        checksum = 0
        for position in UM34C_CHECKSUM_POSITIONS:
            checksum ^= record[position]
        return checksum == record[-1]
    return record[-2:] == b"\xff\xf1"


def decode_record(record: bytes, model: UmModel) -> UmReading | None:
    """The reading in a 130-byte record, or None when it is not a valid record of ``model``."""
    if len(record) != RECORD_LEN:
        return None
    model_id, raw_v, raw_i, raw_p, temp = struct.unpack_from(">HHHIH", record, 0)
    if model_id != model.model_id:
        return None
    volts, amps, watts = raw_v * model.volts_per_lsb, raw_i * model.amps_per_lsb, raw_p / 1000
    # The meter computes P itself; garbage that happens to start with the id will not agree.
    if abs(watts - volts * amps) > 0.02 * max(watts, volts * amps) + 0.01:
        return None
    return UmReading(model, volts, amps, watts, temp, record[-2:], end_marker_ok(record, model))


class UmMeter(PolledMeter):
    def __init__(self, spec: str, port: str, model: UmModel, *, baud: int = 9600,
                 rate_hz: float = 5.0, timeout_s: float = 1.0,
                 accuracy: Accuracy | None = None) -> None:
        super().__init__(spec, rate_hz=rate_hz, timeout_s=timeout_s,
                         accuracy=accuracy or model.accuracy)
        self.kind = model.name.lower()
        self.model = model
        self.port_name = port
        self.baud = baud
        self.marker_mismatches = 0
        self._port: Any = None
        self._buf = bytearray()
        self._received = bytearray()  # everything of the last request, for diagnostics

    def _open(self) -> None:
        self._port = open_serial(self.spec, self.port_name, self.baud, 0.05)
        try:
            self._request()
        except MeterTimeoutError as e:
            other = self._other_model()
            self._close()
            if other is not None:
                raise MeterProtocolError(
                    f"{self.spec}: this is a {other.name}, not a {self.model.name}; use "
                    f"{other.name.lower()}:{self.port_name}") from None
            raise MeterTimeoutError(f"{e}; is the meter on, paired and bound to "
                                    f"{self.port_name}?") from None
        except BaseException:
            self._close()
            raise
        self.identity = self.model.name

    def _other_model(self) -> UmModel | None:
        """Another UM model whose id appears in what arrived (a wrong spec, e.g. um25c on a
        UM34C), so the error can say which spec to use."""
        for model in _BY_ID.values():
            at = self._received.find(struct.pack(">H", model.model_id))
            if model is not self.model and at >= 0 and decode_record(
                    bytes(self._received[at:at + RECORD_LEN]), model) is not None:
                return model
        return None

    def _close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    def _take_record(self) -> UmReading | None:
        """The first valid record in the buffer (dropping garbage before it), if complete."""
        id_bytes = struct.pack(">H", self.model.model_id)
        start = 0
        while True:
            at = self._buf.find(id_bytes, start)
            if at < 0:
                dropped = len(self._buf) - 1
                if dropped > 0:  # keep the last byte: it may be the first byte of an id
                    del self._buf[:dropped]
                return None
            if len(self._buf) - at < RECORD_LEN:
                del self._buf[:at]
                return None
            reading = decode_record(bytes(self._buf[at:at + RECORD_LEN]), self.model)
            if reading is not None:
                if at > 0:
                    self.skipped += 1
                del self._buf[:at + RECORD_LEN]
                return reading
            start = at + 1

    def _request(self) -> UmReading:
        """Send 0xF0 and wait for a valid record (stale bytes of a late reply are dropped)."""
        self._port.reset_input_buffer()
        self._buf.clear()
        self._received.clear()
        self._port.write(REQUEST)
        self._port.flush()
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            chunk = self._port.read(max(1, self._port.in_waiting))
            self._buf += chunk
            if len(self._received) < 4 * RECORD_LEN:
                self._received += chunk
            reading = self._take_record()
            if reading is not None:
                if not reading.marker_ok:
                    self.marker_mismatches += 1
                    if self.marker_mismatches == 1:
                        self.notes.append(f"{self.spec}: unexpected end marker "
                                          f"0x{reading.marker.hex()} in a "
                                          f"{self.model.name} record (accepted: V·I = P)")
                return reading
        got = f"; {len(self._received)} unusable bytes arrived" if self._received else ""
        raise MeterTimeoutError(f"{self.spec}: no valid {RECORD_LEN}-byte {self.model.name} "
                                f"record within {self.timeout_s} s of request 0xF0{got}")

    def _poll(self) -> tuple[int, float, float, float]:
        for attempt in range(_FAILED_POLLS):
            t0 = time.monotonic_ns()
            try:
                reading = self._request()
            except MeterTimeoutError as e:
                if attempt == _FAILED_POLLS - 1:
                    raise MeterTimeoutError(f"{e} ({_FAILED_POLLS} requests in a row); the "
                                            "Bluetooth link may have dropped") from None
                self.skipped += 1
                continue
            t1 = time.monotonic_ns()
            return (t0 + t1) // 2, reading.volts, reading.amps, reading.watts
        raise AssertionError("unreachable")
