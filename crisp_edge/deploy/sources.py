"""Where deploy finds the built-in board profiles and the C runtime's sources it cross-builds.

Each exists once, in the source tree: ``boards/*.toml``, and ``CMakeLists.txt`` + ``cmake/`` +
``runtime/`` (its tests left out). A wheel carries them as package data under
``crisp_edge/_data/`` (``boards/`` and ``source/``: the top-level CMakeLists.txt installs them
when scikit-build-core builds a wheel), found here with :mod:`importlib.resources`. An editable
install or a ``PYTHONPATH`` checkout has no such copy and reads the checkout itself, so what a
developer edits is what gets built.

>>> runtime_source_dir()                  # doctest: +SKIP
PosixPath('/usr/lib/python3/site-packages/crisp_edge/_data/source')
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

from crisp_edge.errors import DeployError


def _package_data() -> Path | None:
    """``crisp_edge/_data`` of an installed wheel, as a directory on disk (None elsewhere)."""
    data = importlib.resources.files("crisp_edge") / "_data"
    # A wheel is installed as plain files, so the Traversable is a real path (cmake needs one).
    if isinstance(data, os.PathLike) and data.is_dir():
        return Path(data)
    return None


def checkout_dir() -> Path | None:
    """The source checkout this package is imported from (editable install or PYTHONPATH),
    or None for an installed wheel."""
    root = Path(__file__).resolve().parents[2]
    if (root / "runtime" / "CMakeLists.txt").is_file() and (root / "boards").is_dir():
        return root
    return None


def builtin_boards_dir() -> Path | None:
    """The directory of the built-in board profiles (None when neither is there)."""
    data = _package_data()
    if data is not None:
        return data / "boards"
    root = checkout_dir()
    return root / "boards" if root is not None else None


def runtime_source_dir() -> Path:
    """The CMake source directory of the runtime (the one a board build configures)."""
    data = _package_data()
    if data is not None and (data / "source" / "CMakeLists.txt").is_file():
        return data / "source"
    root = checkout_dir()
    if root is not None:
        return root
    raise DeployError("the runtime's sources are not installed with crisp-edge (no "
                      "crisp_edge/_data/source); reinstall it from a wheel or sdist "
                      "(pip install crisp-edge) or run it from a checkout")
