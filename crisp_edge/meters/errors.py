"""Typed errors of the power meters.

Every message names the meter (its spec, e.g. ``um25c:/dev/rfcomm0``), says what happened and,
where there is one, what to do. All of them are :class:`crisp_edge.errors.CrispError`, so the
CLI prints them as one line, and ``crisp-edge bench`` can catch :class:`MeterError` around the
energy step and keep the latency results it has already measured.
"""

from __future__ import annotations

from crisp_edge.errors import ArgumentError, CrispError


class MeterError(CrispError):
    """A power meter failed. ``phase`` and ``seconds_into_window`` are set by
    :func:`crisp_edge.energy.measure` when the failure happened during a measurement."""

    phase: str | None = None
    seconds_into_window: float | None = None


class MeterSpecError(MeterError, ArgumentError):
    """A meter spec (``scpi:/dev/ttyUSB0?rate=10``) or calibration file cannot be understood."""


class MeterNotFoundError(MeterError, OSError):
    """The device (serial port, sysfs sensor, vcgencmd) does not exist or cannot be opened."""


class MeterProtocolError(MeterError):
    """The instrument answered, but not with what its protocol promises (an SCPI error, a
    malformed record, an error line from the INA bridge)."""


class MeterTimeoutError(MeterError):
    """The instrument stopped answering within its timeout."""


class MeterDisconnectedError(MeterError):
    """The connection broke (cable pulled, Bluetooth link dropped, SSH session ended)."""
