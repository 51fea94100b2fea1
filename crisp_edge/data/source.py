"""Back ends of :mod:`crisp_edge.data.sources`: one module per kind of data source.

Each back end is a *source*: the class names, one original class id per sample
(``targets``, known without decoding any image) and ``load(i)``, which decodes, resizes and
normalises sample ``i``. :class:`crisp_edge.data.sources.ClassDataset` wraps a source with class
subsetting and augmentation, so the back ends stay small.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch


class Source(Protocol):
    """What :class:`crisp_edge.data.sources.ClassDataset` needs from a back end."""

    spec: str  # how the user named the data, e.g. "cifar100:/data/c100"
    split: str  # "train", "test" or "calibration"
    class_names: list[str]  # index = original class id
    targets: np.ndarray  # int64 original class id of each sample

    def load(self, index: int) -> torch.Tensor:
        """Sample ``index`` as a normalised float32 ``(3, size, size)`` tensor."""
        ...


def normalise(image: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``(image - mean) / std`` per channel of a float ``(3, H, W)`` tensor in 0..1."""
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (image - m) / s
