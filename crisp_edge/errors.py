"""Typed exceptions of crisp-edge: every exception it raises is defined here and derives from
:class:`CrispError` (the CLI prints those as one line), grouped by stage.

Every failure of the C runtime arrives as a ``crisp_status`` plus a message; the binding turns it
into the subclass of :class:`CrispError` below that matches the status, with the C message as the
exception text. The Python reader of ``.crisp`` files (``crisp_edge.format``) and the packer raise
the same classes, so a caller handles a corrupt file the same way whichever side found it.

The errors of the later stages (pruning, deploy, measure) come from Python, not the runtime. The
power meters' messages name the meter (its spec, e.g. ``um25c:/dev/rfcomm0``), say what happened
and, where there is one, what to do; ``crisp-edge bench`` catches :class:`MeterError` around the
energy step and keeps the latency results it has already measured.

>>> try:
...     crisp_edge.load("broken.crisp")          # doctest: +SKIP
... except crisp_edge.errors.ChecksumError as e:
...     print(e.status, e)
"""

from __future__ import annotations


# Base: every crisp-edge error.
class CrispError(Exception):
    """Base of every crisp-edge error. ``status`` is the C ``crisp_status`` value (None when the
    error did not come from, or does not correspond to, a runtime status)."""

    status: int | None = None


# The runtime's statuses, one class each (the .crisp reader and the packer raise them too).
class ArgumentError(CrispError, ValueError):
    """A bad argument: a closed model, a wrong option value (``CRISP_ERR_ARGUMENT``)."""

    status = 1


class CrispIOError(CrispError, OSError):
    """The file cannot be opened, read or mapped (``CRISP_ERR_IO``)."""

    status = 2


class FormatError(CrispError):
    """The file is malformed: magic, sizes, offsets, counts, graph (``CRISP_ERR_FORMAT``)."""

    status = 3


class ChecksumError(FormatError):
    """A CRC32 does not match: the file is corrupt (``CRISP_ERR_CHECKSUM``)."""

    status = 4


class VersionError(CrispError):
    """The file needs a newer (or older) runtime (``CRISP_ERR_VERSION``)."""

    status = 5


class UnsupportedError(CrispError):
    """A valid file uses an op or encoding this build lacks (``CRISP_ERR_UNSUPPORTED``)."""

    status = 6


class ShapeError(CrispError, ValueError):
    """The input or output does not fit the model (``CRISP_ERR_SHAPE``)."""

    status = 7


class OutOfMemoryError(CrispError, MemoryError):
    """An allocation failed (``CRISP_ERR_NOMEM``)."""

    status = 8


class MemoryLimitError(OutOfMemoryError):
    """The model would need more memory than the limit allows; refused before allocating
    (``CRISP_ERR_LIMIT``). Raise the limit with ``crisp_edge.load(..., max_memory_mb=...)`` or
    the ``CRISP_MAX_MEMORY_MB`` environment variable. An :class:`OutOfMemoryError`, so code
    catching that still catches it."""

    status = 10


class InternalError(CrispError):
    """A bug in the runtime; please report it with the model file (``CRISP_ERR_INTERNAL``)."""

    status = 9


# Packing (crisp_edge.packing).
class UnsupportedOpError(UnsupportedError):
    """At pack time: the torch model uses an op or an argument crisp-edge cannot lower."""


# Loading libcrisp (crisp_edge.runtime).
class LibraryNotFoundError(CrispError, OSError):
    """The shared library libcrisp (or its header) cannot be found or opened."""

    status = None


class LibraryVersionError(CrispError):
    """The shared library's version differs from the Python package's."""

    status = None


# Models (crisp_edge.models): checkpoints and the user's model files.
class ModelCodeRequiredError(ArgumentError):
    """A checkpoint was made with a user model file (``FILE.py:CLASS``): crisp-edge imports
    that code only when the user names it with ``--model``, never because a data file says so."""


# Pruning (crisp_edge.pruning): a signal to stop, not a failure.
class StopPruning(CrispError):
    """Raise from ``on_step_end`` to stop a run after a checkpointed step (resumable)."""


# Deploy (crisp_edge.deploy): board profiles, SSH to the device, bundles.
class BoardProfileError(ArgumentError):
    """A board profile is missing, malformed, or has a field with a wrong value."""


class RemoteError(CrispError):
    """A command on the device failed, or the device did not answer in time."""


class UnreachableError(RemoteError):
    """The device cannot be reached over the network."""


class HostKeyError(RemoteError):
    """The device's SSH host key is unknown or changed: refused, never skipped."""


class AuthenticationError(RemoteError):
    """The device refused the login."""


class DiskFullError(RemoteError):
    """The device has no room for what was sent to it."""


class DeployError(CrispError):
    """Building, bundling or installing for a board failed."""


class DeviceBusyError(DeployError):
    """Another operation (a deploy, a personalize) holds the device's install-directory lock."""


# Measure (crisp_edge.measure): power meters, field benchmarks, peer runtimes.
class MeterError(CrispError):
    """A power meter failed. ``phase`` and ``seconds_into_window`` are set by
    :func:`crisp_edge.measure.energy.measure` when the failure happened during a measurement."""

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


class BenchError(CrispError):
    """A field benchmark could not run or its output could not be read."""


class PeerUnavailableError(CrispError):
    """A peer that cannot run here (not installed, or its converter failed): reported, skipped."""


_BY_STATUS: dict[int, type[CrispError]] = {
    cls.status: cls  # type: ignore[misc]
    for cls in (
        ArgumentError,
        CrispIOError,
        FormatError,
        ChecksumError,
        VersionError,
        UnsupportedError,
        ShapeError,
        OutOfMemoryError,
        InternalError,
        MemoryLimitError,
    )
}


def error_for_status(status: int, message: str) -> CrispError:
    """The exception for a failed C call: the class matching ``status`` carrying ``message``.

    An unknown status (a newer library) becomes a plain :class:`CrispError` with that status."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        err = CrispError(f"{message} (status {status})")
        err.status = status
        return err
    return cls(message)
