"""Typed exceptions of crisp-edge.

Every failure of the C runtime arrives as a ``crisp_status`` plus a message; the binding turns it
into the subclass of :class:`CrispError` below that matches the status, with the C message as the
exception text. The Python reader of ``.crisp`` files (``crisp_edge.format``) and the packer raise
the same classes, so a caller handles a corrupt file the same way whichever side found it.

>>> try:
...     crisp_edge.load("broken.crisp")          # doctest: +SKIP
... except crisp_edge.errors.ChecksumError as e:
...     print(e.status, e)
"""

from __future__ import annotations


class CrispError(Exception):
    """Base of every crisp-edge error. ``status`` is the C ``crisp_status`` value (None when the
    error did not come from, or does not correspond to, a runtime status)."""

    status: int | None = None


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


class InternalError(CrispError):
    """A bug in the runtime; please report it with the model file (``CRISP_ERR_INTERNAL``)."""

    status = 9


class UnsupportedOpError(UnsupportedError):
    """At pack time: the torch model uses an op or an argument crisp-edge cannot lower."""


class LibraryNotFoundError(CrispError, OSError):
    """The shared library libcrisp (or its header) cannot be found or opened."""

    status = None


class LibraryVersionError(CrispError):
    """The shared library's version differs from the Python package's."""

    status = None


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
