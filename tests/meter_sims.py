"""Serial power meters simulated on pseudo-terminals, each speaking its real protocol.

A simulator owns a pty pair; the driver opens ``sim.path`` (the slave) with pyserial exactly as
it would open /dev/ttyUSB0 or /dev/rfcomm0. A thread answers on the master side until
``stop()`` (or the ``with`` block ends); ``disconnect_after`` closes the master mid-run, which
the driver sees as a hang-up (EIO), like a pulled cable. The power drawn is a function of the
simulator's elapsed time, or of anything the test changes (``load``).

The encoders here are written from the protocol descriptions (docs/energy.md), independently
of the drivers' decoders, so a scaling or offset error in a driver fails the tests.
"""

from __future__ import annotations

import os
import random
import select
import struct
import threading
import time
import tty
from typing import Callable

PowerFn = Callable[[float], tuple[float, float]]  # elapsed s → (volts, amps)


def constant(volts: float, amps: float) -> PowerFn:
    return lambda t: (volts, amps)


class PtySim:
    """Base: a thread reading the master side and calling ``on_bytes``."""

    def __init__(self, power: PowerFn, *, disconnect_after: float | None = None,
                 silent: bool = False) -> None:
        self.power = power
        self.disconnect_after = disconnect_after
        self.silent = silent
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.t0 = time.monotonic()
        self.disconnected = False
        self.rng = random.Random(1234)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> PtySim:
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(3)
        assert not self._thread.is_alive(), "simulator thread did not stop"
        self._close()

    def _close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self.master = self.slave = -1

    def disconnect(self) -> None:
        """Hang up: the driver's next read or write fails with EIO."""
        self.disconnected = True
        self._close()

    def write(self, data: bytes) -> None:
        if not self.disconnected:
            os.write(self.master, data)

    def _loop(self) -> None:
        while not self._stop.is_set() and not self.disconnected:
            if self.disconnect_after is not None and self.elapsed() > self.disconnect_after:
                self.disconnect()
                return
            self.tick()
            ready, _, _ = select.select([self.master], [], [], 0.005)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not self.silent:
                self.on_bytes(data)

    def tick(self) -> None:
        """Called every few ms (streaming simulators send from here)."""

    def on_bytes(self, data: bytes) -> None:
        raise NotImplementedError


class ScpiSim(PtySim):
    """An SCPI power supply: ``*IDN?``, ``MEAS:VOLT?``, ``MEAS:CURR?``, ``SYST:ERR?``.

    ``unsupported`` commands are not answered and queue ``-113,"Undefined header"`` (what real
    instruments do); ``bad_replies`` maps a command to a reply text and a queued error;
    ``garbage_every`` > 0 puts noise before every k-th reply; ``delay`` slows every reply."""

    def __init__(self, power: PowerFn, *, idn: str = "ACME,PSU-3005,SN0042,1.07",
                 delay: float = 0.0, unsupported: tuple[str, ...] = (),
                 bad_replies: dict[str, tuple[str, str]] | None = None,
                 garbage_every: int = 0, **kw: object) -> None:
        super().__init__(power, **kw)  # type: ignore[arg-type]
        self.idn = idn
        self.delay = delay
        self.unsupported = set(unsupported)
        self.bad_replies = bad_replies or {}
        self.garbage_every = garbage_every
        self.errors: list[str] = []
        self.replies = 0
        self._buf = b""

    def on_bytes(self, data: bytes) -> None:
        self._buf += data
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            self._command(line.decode().strip().upper())

    def _reply(self, text: str) -> None:
        if self.delay:
            time.sleep(self.delay)
        self.replies += 1
        if self.garbage_every and self.replies % self.garbage_every == 0:
            self.write(bytes(self.rng.randrange(256) for _ in range(7)).replace(b"\n", b""))
        self.write(text.encode() + b"\r\n")

    def _command(self, cmd: str) -> None:
        volts, amps = self.power(self.elapsed())
        if cmd in self.unsupported:
            self.errors.append('-113,"Undefined header"')
        elif cmd in self.bad_replies:
            reply, error = self.bad_replies[cmd]
            self.errors.append(error)
            self._reply(reply)
        elif cmd == "*IDN?":
            self._reply(self.idn)
        elif cmd == "SYST:ERR?":
            self._reply(self.errors.pop(0) if self.errors else '+0,"No error"')
        elif cmd == "MEAS:VOLT?":
            self._reply(f"{volts:.4f}")
        elif cmd == "MEAS:CURR?":
            self._reply(f"{amps:.5E}")
        else:
            self.errors.append('-113,"Undefined header"')


# RDTech UM: model ids and scales per libsigrok's rdtech-um driver.
UM_MODELS = {"UM24C": (0x0963, 100, 1000), "UM25C": (0x09C9, 1000, 10000),
             "UM34C": (0x0D4C, 100, 1000)}
UM34C_POSITIONS = (1, 3, 7, 9, 15, 17, 19, 23, 31, 39, 41, 45, 49, 53, 55, 57, 59, 63, 67, 69,
                   73, 79, 83, 89, 97, 99, 109, 111, 113, 119, 121, 127)


def um_record(model: str, volts: float, amps: float, temperature: int = 27) -> bytes:
    """The 130-byte answer to 0xF0, big-endian, as the meter sends it."""
    model_id, v_scale, i_scale = UM_MODELS[model]
    raw_v, raw_i = round(volts * v_scale), round(amps * i_scale)
    raw_p = round(raw_v / v_scale * raw_i / i_scale * 1000)  # the meter's own V·I, in mW
    rec = bytearray(130)
    struct.pack_into(">HHHIHH", rec, 0, model_id, raw_v, raw_i, raw_p, temperature,
                     temperature * 9 // 5 + 32)
    struct.pack_into(">H", rec, 14, 1)                     # selected data group
    struct.pack_into(">II", rec, 16 + 8, 1234, 6170)       # group 1: mAh, mWh
    struct.pack_into(">HHH", rec, 96, 59, 61, 7)           # D+ , D- (10 mV), charge mode
    struct.pack_into(">I", rec, 112, 3661)                 # recording time, s
    struct.pack_into(">I", rec, 122, 1000)                 # load impedance, 0.1 Ω
    if model == "UM34C":
        checksum = 0
        for position in UM34C_POSITIONS:
            checksum ^= rec[position]
        rec[129] = checksum
    else:
        rec[128:130] = b"\xff\xf1"
    return bytes(rec)


class UmSim(PtySim):
    """A UM24C/UM25C/UM34C: answers each 0xF0 with a record. ``garbage_every`` > 0 sends noise
    (including stray model-id bytes) before every k-th record; ``delay`` slows replies."""

    def __init__(self, model: str, power: PowerFn, *, delay: float = 0.0,
                 garbage_every: int = 0, **kw: object) -> None:
        super().__init__(power, **kw)  # type: ignore[arg-type]
        self.model = model
        self.delay = delay
        self.garbage_every = garbage_every
        self.requests = 0

    def on_bytes(self, data: bytes) -> None:
        for byte in data:
            if byte != 0xF0:
                continue  # other commands (screen, groups) change nothing we measure
            self.requests += 1
            if self.delay:
                time.sleep(self.delay)
            if self.garbage_every and self.requests % self.garbage_every == 0:
                model_id = struct.pack(">H", UM_MODELS[self.model][0])
                noise = bytes(self.rng.randrange(256) for _ in range(40))
                self.write(noise[:10] + model_id + noise[10:] + model_id[:1])
            self.write(um_record(self.model, *self.power(self.elapsed())))


def nmea_xor(body: str) -> int:
    value = 0
    for ch in body.encode():
        value ^= ch
    return value


class InaBridgeSim(PtySim):
    """The Arduino INA2xx bridge: a header (at start and on ``?``), then ``$t_us,mV,uA*HH``
    every ``period`` seconds on the Arduino's clock, which runs ``clock_ratio`` fast.
    ``garbage_every`` > 0 corrupts every k-th line; ``error`` replaces everything with one
    ``!`` line (no sensor found); ``micros_start`` sets the u32 counter's start (wrap tests)."""

    HEADER = "# crisp-edge ina2xx bridge v1 chip=INA226 addr=0x40 shunt_ohm=0.1 period_ms={} id=sim"

    def __init__(self, power: PowerFn, *, period: float = 0.01, clock_ratio: float = 1.0,
                 garbage_every: int = 0, error: str | None = None, micros_start: int = 0,
                 **kw: object) -> None:
        super().__init__(power, **kw)  # type: ignore[arg-type]
        self.period = period
        self.clock_ratio = clock_ratio
        self.garbage_every = garbage_every
        self.error = error
        self.micros_start = micros_start
        self.lines = 0
        self.emitted_ns: list[int] = []  # host time of each reading, for the clock tests
        self._next = 0.0

    def _header(self) -> None:
        self.write((self.error or self.HEADER.format(round(self.period * 1000))).encode()
                   + b"\r\n")

    def on_bytes(self, data: bytes) -> None:
        if b"?" in data:
            self._header()

    def tick(self) -> None:
        now = self.elapsed()
        if self.error or now < self._next:
            return
        self._next = max(self._next + self.period, now - self.period)
        volts, amps = self.power(now)
        self.emitted_ns.append(int((self.t0 + now) * 1e9))
        t_us = (self.micros_start + int(now * 1e6 * self.clock_ratio)) % (1 << 32)
        body = f"{t_us},{round(volts * 1000)},{round(amps * 1e6)}"
        line = f"${body}*{nmea_xor(body):02X}\r\n".encode()
        self.lines += 1
        if self.garbage_every and self.lines % self.garbage_every == 0:
            damaged = bytearray(line)
            damaged[3] ^= 0x04  # one flipped bit: the checksum must catch it
            self.write(b"\x00\xfe" + bytes(damaged))
        else:
            self.write(line)
