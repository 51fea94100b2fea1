"""Running the on-device sensors' shell scripts: locally, or on a board over SSH.

On-device sensors (Jetson INA3221 through hwmon sysfs, the Raspberry Pi 5 PMIC through
``vcgencmd``) are read *on the board*. Rather than one SSH round trip per sample, the driver
hands a short, bounded POSIX ``sh`` sampling loop to a **command runner** and reads the
timestamped lines the loop prints, over a single session.

The runner contract (``CommandRunner``)::

    runner(script: str) -> process

runs ``sh -c SCRIPT`` on the device and returns at once with a handle that has

- ``stdout``: a binary file the script's output can be read from line by line (stderr may be
  merged into it or discarded; the scripts report their own errors as lines starting ``!``);
- ``poll() -> int | None``, ``wait(timeout: float | None) -> int``, ``terminate()``, ``kill()``
  — the ``subprocess.Popen`` interface.

``local_runner`` (the default) is ``subprocess.Popen(["sh", "-c", script])``;
``ssh_runner(remote.ssh_command)`` builds one from any function that turns a remote command line
into a local argv (``["ssh", ..., host, command]``).
The loops stop on their own after a bounded number of samples, on SIGTERM/SIGHUP, and when
their stdout closes (SIGPIPE), so a dropped SSH session cannot leave one running.
"""

from __future__ import annotations

import queue
import shlex
import subprocess
import threading
import time
from abc import abstractmethod
from typing import IO, Callable, Protocol

from crisp_edge.errors import (MeterDisconnectedError, MeterNotFoundError, MeterProtocolError,
                               MeterTimeoutError)
from crisp_edge.measure.meters.base import Accuracy, Meter


class DeviceProcess(Protocol):
    stdout: IO[bytes] | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


CommandRunner = Callable[[str], DeviceProcess]


def local_runner(script: str) -> DeviceProcess:
    """Run ``script`` with this machine's ``sh`` (the board itself, or a test's fake tree)."""
    return subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def ssh_runner(ssh_command: Callable[[str], list[str]]) -> CommandRunner:
    """A runner from a function that turns a remote command line into a local argv (such as
    ``crisp_edge.deploy.ssh.Remote.ssh_command``): each script runs as ``sh -c SCRIPT`` over its own
    SSH session, stdout streamed back, stderr merged."""

    def run(script: str) -> DeviceProcess:
        return subprocess.Popen(ssh_command("sh -c " + shlex.quote(script)),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)

    return run


def quote(value: str) -> str:
    return shlex.quote(value)


def run_script(runner: CommandRunner, script: str, spec: str, timeout_s: float) -> list[str]:
    """Run a short script to completion and return its output lines."""
    stream = LineStream(runner(script), spec)
    lines = []
    try:
        while True:
            line = stream.readline(timeout_s)
            if line is None:
                raise MeterNotFoundError(f"{spec}: the device did not answer within "
                                         f"{timeout_s} s")
            if line is LineStream.EOF:
                return lines
            lines.append(line)
    finally:
        stream.close()


class LineStream:
    """Lines of a device process's stdout with a deadline per read (a reader thread does the
    blocking reads, so the sampling thread can notice a stop request)."""

    EOF = "\0eof"

    def __init__(self, process: DeviceProcess, spec: str) -> None:
        if process.stdout is None:
            raise MeterDisconnectedError(f"{spec}: the command runner gave no stdout to read")
        self.process = process
        self.spec = spec
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(process.stdout,),
                                        name=f"device {spec}", daemon=True)
        self._reader.start()

    def _read(self, stdout: IO[bytes]) -> None:
        try:
            for raw in iter(stdout.readline, b""):
                self._queue.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
        except (OSError, ValueError):
            pass  # closed under us by close(): the EOF below is the answer
        self._queue.put(self.EOF)

    def readline(self, timeout_s: float) -> str | None:
        """The next line, ``LineStream.EOF`` at the end, or None on timeout."""
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=2)
        self._reader.join(2)
        if self.process.stdout is not None:
            self.process.stdout.close()


# POSIX sh: the device's wall clock in ns (GNU and busybox date know %N). When a date lacks
# %N the value does not parse and the host's arrival time stands in (see parse_device_ns).
NOW_NS = "$(date +%s%N)"


def parse_device_ns(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) > 12 else None


class DeviceMeter(Meter):
    """A sensor read by a shell loop on the device: ``_sampling_script`` prints lines,
    ``_parse`` turns them into samples. The loop's lines carry the device's time before and
    after each reading; their midpoint, mapped to the host clock, is the sample's time."""

    def __init__(self, spec: str, *, runner: CommandRunner | None, rate_hz: float,
                 timeout_s: float, accuracy: Accuracy, max_seconds: float = 3600) -> None:
        super().__init__(spec, rate_hz=rate_hz, timeout_s=timeout_s, accuracy=accuracy)
        self.runner: CommandRunner = runner or local_runner
        self.max_seconds = max_seconds
        self.host = ""

    @property
    def max_samples(self) -> int:
        """The loop's bound: ``max_seconds`` of sampling at the configured rate."""
        return max(1, int(self.max_seconds * self.rate_hz))

    @property
    def period_s(self) -> str:
        return f"{1.0 / self.rate_hz:.4f}"

    def _close(self) -> None:
        pass  # nothing stays open between sampling runs

    @abstractmethod
    def _sampling_script(self) -> str: ...

    @abstractmethod
    def _parse(self, line: str, received_ns: int) -> None:
        """Consume one line (emit a sample when it completes one)."""

    def _acquire(self, stop: threading.Event) -> None:
        stream = LineStream(self.runner(self._sampling_script()), self.spec)
        last_good = time.monotonic()
        # The first reading pays for process start-up (and the SSH channel): allow for it.
        grace = max(self.timeout_s, 5.0)
        count = len(self._rows)
        try:
            while not stop.is_set():
                line = stream.readline(0.1)
                received = time.monotonic_ns()
                if line is None:
                    if time.monotonic() - last_good > grace:
                        raise MeterTimeoutError(f"{self.spec}: no reading from the device for "
                                                f"{grace:.1f} s")
                    continue
                if line is LineStream.EOF:
                    status = stream.process.poll()
                    raise MeterDisconnectedError(
                        f"{self.spec}: the sampling loop on the device ended (exit status "
                        f"{status}); the SSH session may have dropped")
                if line.startswith("!"):
                    raise MeterProtocolError(f"{self.spec}: {line[1:].strip()}")
                self._parse(line, received)
                if len(self._rows) > count:
                    count, last_good, grace = len(self._rows), time.monotonic(), self.timeout_s
        finally:
            stream.close()
