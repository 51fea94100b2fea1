"""timm architectures as ``--arch timm:NAME``: ``timm.create_model(NAME, pretrained=False,
num_classes=N)``, with the user's own weights loaded afterwards; nothing is ever downloaded.

timm is an optional dependency (the ``import`` extra, installed with ``--no-deps``: it would pull
torchvision, see :mod:`crisp_edge.models.torchvision_stand_in`). Which timm models pack is
decided by their ops (README, "pack"): ResNets, RegNets, MobileNetV2 and MNASNet do; models
with SiLU, hard-swish or squeeze-excite (EfficientNet, MobileNetV3, LCNet) stop at ``pack``
with an error naming the op and module.

>>> model = build_timm_arch("timm:resnet18", num_classes=5)      # doctest: +SKIP
>>> timm_input_size("timm:resnet18")                             # doctest: +SKIP
224
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from crisp_edge.errors import ArgumentError
from crisp_edge.models.torchvision_stand_in import without_torchvision

if TYPE_CHECKING:
    from torch import nn

PREFIX = "timm:"


def is_timm_arch(arch: str | None) -> bool:
    """Whether ``arch`` names a timm model (``timm:NAME``)."""
    return arch is not None and arch.startswith(PREFIX)


def _timm() -> Any:
    try:
        with without_torchvision():
            import timm
    except ImportError as e:
        raise ArgumentError(f"--arch {PREFIX}NAME needs timm, which is not installed ({e}); "
                            "install it with `pip install --no-deps timm==1.0.31 pyyaml "
                            "huggingface_hub safetensors` (--no-deps: timm's torchvision "
                            "would pull another torch)") from None
    return timm


def _name(arch: str) -> str:
    name = arch[len(PREFIX):]
    timm = _timm()
    if not name or not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=8) if name else []
        raise ArgumentError(f"timm has no model {name!r}"
                            + (f"; similar names: {', '.join(close)}" if close else
                               "; list them with python -c 'import timm; "
                               "print(timm.list_models())'"))
    return str(name)


def build_timm_arch(arch: str, num_classes: int) -> "nn.Module":
    """A fresh timm model for ``timm:NAME`` with ``num_classes`` outputs and random weights
    (``pretrained=False``: load the user's local weights into it)."""
    name = _name(arch)
    try:
        return _timm().create_model(name, pretrained=False, num_classes=num_classes)
    except Exception as e:  # timm raises many types for a model it cannot build this way
        raise ArgumentError(f"timm could not build {name!r} with num_classes={num_classes}: "
                            f"{type(e).__name__}: {e}") from e


def timm_input_size(arch: str) -> int | None:
    """The input side of ``timm:NAME``'s default configuration (224 for most), None when timm
    does not say or the model is square-less."""
    cfg = _timm().get_pretrained_cfg(_name(arch))
    size = getattr(cfg, "input_size", None) if cfg is not None else None
    if not size or len(size) != 3 or size[1] != size[2]:
        return None
    return int(size[2])
