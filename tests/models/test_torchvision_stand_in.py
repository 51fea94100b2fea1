"""The torchvision stand-in that timm and onnx2torch import through (no torchvision needed)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from crisp_edge.models.torchvision_stand_in import without_torchvision


def _torchvision_modules() -> list[str]:
    return [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]


def test_stand_in_serves_imports_and_fails_on_use(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    # A torchvision whose import fails, as PyPI's does beside torch's CPU build.
    (tmp_path / "torchvision").mkdir()
    (tmp_path / "torchvision" / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert not _torchvision_modules()
    with without_torchvision():
        from torchvision.ops.misc import FrozenBatchNorm2d  # type: ignore[import-not-found]
        import torchvision.transforms as transforms  # type: ignore[import-not-found]
        from torchvision.transforms.functional import (  # type: ignore[import-not-found]
            InterpolationMode)

        class MaybeToTensor(transforms.ToTensor):  # what timm.data does at import time
            pass

        modes = {InterpolationMode.BILINEAR: "bilinear", InterpolationMode.NEAREST: "nearest"}
        assert len(modes) == 2
    with pytest.raises(ImportError, match="FrozenBatchNorm2d needs torchvision"):
        FrozenBatchNorm2d(8)
    with pytest.raises(ImportError, match="needs torchvision"):
        MaybeToTensor()
    assert not _torchvision_modules()  # gone: later imports see the real state again
    with pytest.raises(RuntimeError, match="nms does not exist"):
        importlib.import_module("torchvision")
    for name in _torchvision_modules():
        del sys.modules[name]
