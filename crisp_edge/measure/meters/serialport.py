"""Opening serial ports (USB-serial, USB CDC, Bluetooth rfcomm) with errors that say what to
do, and reading lines with a deadline. pyserial is imported here only, so the rest of
crisp-edge works on a board without it."""

from __future__ import annotations

import os
import time
from typing import Any

from crisp_edge.errors import MeterNotFoundError


def open_serial(spec: str, port: str, baud: int, read_timeout_s: float) -> Any:
    """A ``serial.Serial`` on ``port`` (8N1, no flow control) with a read timeout."""
    try:
        import serial
    except ImportError:
        raise MeterNotFoundError(f"{spec}: serial meters need pyserial: "
                                 "pip install 'crisp-edge[field]'") from None
    if not os.path.exists(port):
        hint = ("bind the meter first: sudo rfcomm bind 0 <MAC>  (find the MAC with "
                "bluetoothctl scan on)" if "rfcomm" in port else
                "is the instrument plugged in? `ls /dev/ttyUSB* /dev/ttyACM*` lists serial ports")
        raise MeterNotFoundError(f"{spec}: {port} does not exist; {hint}")
    try:
        return serial.Serial(port, baudrate=baud, timeout=read_timeout_s,
                             write_timeout=max(read_timeout_s, 1.0))
    except serial.SerialException as e:
        errno = getattr(e, "errno", None)
        hint = ("; add yourself to the port's group: sudo usermod -aG dialout $USER (then log "
                "in again)" if errno == 13 else "")
        raise MeterNotFoundError(f"{spec}: cannot open {port}: {e}{hint}") from None


class LineReader:
    """Lines from a serial port with a deadline per call; a partial line is kept for the next
    call, so a short deadline (to notice a stop request) never cuts a line in two."""

    def __init__(self, port: Any, limit: int = 4096) -> None:
        self.port = port
        self.limit = limit
        self._buf = bytearray()

    def readline(self, timeout_s: float) -> bytes | None:
        """The next line without its end of line, or None when ``timeout_s`` passes first.
        The port's own read timeout bounds each read, so this returns within about
        ``timeout_s`` plus that timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[:end + 1]
                return line.rstrip(b"\r")
            if len(self._buf) >= self.limit:  # a runaway line without an end: hand it over
                line = bytes(self._buf)
                self._buf.clear()
                return line
            if time.monotonic() >= deadline:
                return None
            waiting = self.port.in_waiting
            self._buf += self.port.read(max(1, min(waiting, self.limit)))

    def clear(self) -> None:
        """Drop the partial line and whatever the port has buffered."""
        self._buf.clear()
        self.port.reset_input_buffer()
