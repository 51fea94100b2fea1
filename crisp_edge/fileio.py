"""Atomic file writes, the one way crisp-edge writes a file a reader may open at any time.

The data goes to a temporary file in the target's own directory (``.NAME.XXXXXXXX.tmp``, so the
rename never crosses a file system), is flushed and fsynced, renamed over the target, and the
directory is fsynced: a reader sees the old file or the complete new one, and a crash or power
loss at any point leaves no torn file under the final name (at worst a ``.NAME.*.tmp`` file,
which :func:`leftovers` finds). A failed write removes its temporary file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces ``path`` when the block ends without an
    exception (and is discarded when it raises)."""
    target = Path(path)
    directory = target.parent.resolve()
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` by ``data`` atomically (see the module docstring)."""
    with atomic_writer(path, mode=mode) as f:
        f.write(data)


def leftovers(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary files an interrupted :func:`atomic_writer` of ``path`` may have left."""
    target = Path(path)
    return sorted(target.parent.glob(f".{target.name}.*.tmp"))


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is; some file systems (and
    # platforms without O_DIRECTORY semantics) refuse to open or fsync a directory: then the
    # rename is as durable as that file system makes it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
