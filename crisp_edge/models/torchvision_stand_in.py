"""Import timm and onnx2torch without torchvision.

Both import torchvision at import time (timm for ``FrozenBatchNorm2d`` and its data transforms,
onnx2torch for two detection ops), yet neither needs it to build a classifier. torch is pinned
to its 2.13.0 CPU build, and PyPI's torchvision wheels are built against the CUDA torch: one pulls
gigabytes of another torch, and beside ours its C extension fails at import ("operator
torchvision::nms does not exist"). So when torchvision is absent, :func:`without_torchvision`
serves a stand-in package for the length of the import: every ``torchvision.X.Y`` is a
placeholder class that raises ``ImportError`` when constructed or called. Afterwards the
stand-in is gone from ``sys.modules``: later code that imports torchvision gets the ordinary
``ModuleNotFoundError``, and a real torchvision that imports is always used instead.

>>> with without_torchvision():
...     import timm                                                   # doctest: +SKIP
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_ROOT = "torchvision"


class _PlaceholderMeta(type):
    """Attributes of a placeholder class are placeholders too (``InterpolationMode.BILINEAR``)."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _placeholder(f"{cls.__qualname__}.{name}")


def _placeholder(qualname: str) -> type:
    """A class standing for ``qualname``: subclassing it, hashing it and reading its attributes
    work (what importing timm does); constructing or calling it raises ``ImportError``."""

    def absent(*args: Any, **kwargs: Any) -> None:
        raise ImportError(f"{qualname} needs torchvision, which is not installed (crisp-edge "
                          "imports timm and onnx2torch without it; see "
                          "crisp_edge/models/torchvision_stand_in.py)")

    return _PlaceholderMeta(qualname.rpartition(".")[2], (), {
        "__init__": absent, "__qualname__": qualname, "__module__": _ROOT})


class _StandInModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = _placeholder(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``torchvision`` and every submodule as a :class:`_StandInModule` package."""

    def find_spec(self, fullname: str, path: Any, target: Any = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _ROOT and not fullname.startswith(_ROOT + "."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _StandInModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []


def _torchvision_imports() -> bool:
    """Whether a real torchvision is installed and imports. A PyPI torchvision installed beside
    torch's CPU build (pip puts one there for timm unless told --no-deps) is found but fails
    in its C extension; its half-imported modules are dropped and the stand-in used instead."""
    module = sys.modules.get(_ROOT)
    if module is not None:
        return not isinstance(module, _StandInModule)
    if importlib.util.find_spec(_ROOT) is None:
        return False
    try:
        importlib.import_module(_ROOT)
        return True
    except Exception:  # RuntimeError from its operator registrations, ImportError, ...
        for name in [n for n in sys.modules if n == _ROOT or n.startswith(_ROOT + ".")]:
            del sys.modules[name]
        return False


@contextmanager
def without_torchvision() -> Iterator[None]:
    """Within the block, ``import torchvision...`` yields the stand-in when torchvision is not
    installed or does not import (a working one is used); the stand-in is removed at exit."""
    if _torchvision_imports():
        yield
        return
    finder = _StandInFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if n == _ROOT or n.startswith(_ROOT + ".")]:
            if isinstance(sys.modules[name], _StandInModule):
                del sys.modules[name]
