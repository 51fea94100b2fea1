"""Tiny models and data for the pruning tests (fast on two CPU cores).

``TinyNet``'s body convs have 32 output channels and K = 9·16 or 9·32 columns, so with 8×8
blocks each has 4 block-rows and 18–36 block-columns (the last ones partial when K is not a
multiple of 8 is avoided here; edge blocks are covered by the mask tests).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

NET_SOURCE = '''
import torch
from torch import nn


class TinyNet(nn.Module):
    """first conv (dense) → two body convs → global pool → classifier; optional BatchNorm."""

    def __init__(self, num_classes: int = 10, batch_norm: bool = True) -> None:
        super().__init__()
        norm = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = norm(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = norm(32)
        self.conv3 = nn.Conv2d(32, 32, 3, stride=2, padding=1, bias=False)
        self.bn3 = norm(32)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.relu(self.bn3(self.conv3(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class TinyNetNoBN(TinyNet):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(num_classes, batch_norm=False)
'''

_namespace: dict[str, object] = {}
exec(compile(NET_SOURCE, "prune_helpers.NET_SOURCE", "exec"), _namespace)
TinyNet: type[nn.Module] = _namespace["TinyNet"]  # type: ignore[assignment]
TinyNetNoBN: type[nn.Module] = _namespace["TinyNetNoBN"]  # type: ignore[assignment]

DATA = "synthetic:10"
IMAGE_SIZE = 16
SAMPLES = 16  # training samples per class


def write_net(directory: Path) -> str:
    """Write the nets to ``directory/tinynet.py`` and return the ``FILE.py:TinyNet`` spec."""
    path = directory / "tinynet.py"
    path.write_text(NET_SOURCE)
    return f"{path}:TinyNet"


def tiny_model(num_classes: int = 10, batch_norm: bool = True, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return TinyNet(num_classes, batch_norm=batch_norm)


def tiny_config(**overrides: object):  # type: ignore[no-untyped-def]
    """A PruneConfig that runs in about a second on the tiny data."""
    from crisp_edge.pruning.engine import PruneConfig

    base = dict(sparsity=0.75, nm="2:4", block="8x8", steps=2, epochs_per_step=1, lr=0.05,
                batch_size=16, image_size=IMAGE_SIZE, samples_per_class=SAMPLES, seed=0,
                final_epochs=0)
    base.update(overrides)
    return PruneConfig(**base)  # type: ignore[arg-type]
