"""Model zoo in plain torch, parameter-compatible with torchvision (which is not needed).

Each ImageNet architecture has exactly torchvision's module tree, so a checkpoint a user
trained or saved with torchvision loads with ``load_state_dict(strict=True)``; each has a
CIFAR variant for 32×32 inputs with the same parameter names:

- ``resnet18``, ``resnet50``, ``vgg16_bn``, ``mobilenet_v2``: 224×224, exactly torchvision's.
- ``resnet18_cifar``, ``resnet50_cifar`` (32×32): ``conv1`` is 3×3 stride 1 padding 1 and
  ``maxpool`` is ``nn.Identity()``.
- ``vgg16_bn_cifar`` (32×32): same ``features``; ``avgpool`` to 1×1 and a 512-512-N classifier
  (``classifier.0/.3/.6``).
- ``mobilenet_v2_cifar`` (32×32): ``features.0`` and the first block of the 24-channel stage
  (``features.2``) use stride 1, a common CIFAR adaptation: a 32×32 input ends at 4×4 instead
  of 1×1.
- ``tiny_resnet`` (32×32): the demo's small residual CNN (not a torchvision model).

Weights are initialised as torchvision does; nothing is ever downloaded.

>>> model = build_arch("resnet18_cifar", num_classes=10)
>>> input_size("resnet18_cifar")
32
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

# --------------------------------------------------------------------------------- ResNet


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 conv-BN, a residual add, ReLU; a 1×1 projection when the
    shape changes (torchvision's naming: conv1/bn1/conv2/bn2/downsample)."""

    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (torchvision's): 1×1 reduce, 3×3 (carrying the stride), 1×1
    expand ×4, residual add, ReLU; ``cout`` is the block's *inner* width."""

    expansion = 4

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        width, out = cout, cout * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet; ``cifar=True`` swaps the 7×7/2 stem and max pool for a 3×3/1
    conv and an identity (module names unchanged, so state-dict keys stay the same)."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int],
                 num_classes: int = 1000, cifar: bool = False) -> None:
        super().__init__()
        if cifar:
            self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = nn.Identity() if cifar else nn.MaxPool2d(3, 2, 1)
        self._cin = 64
        self.layer1 = self._make_layer(block, 64, layers[0], 1)
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], width: int,
                    blocks: int, stride: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i in range(blocks):
            layers.append(block(self._cin, width, stride if i == 0 else 1))
            self._cin = width * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes: int = 1000) -> ResNet:
    """ResNet-18 for 224×224 inputs (torchvision-compatible; 11.7 M parameters)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def resnet50(num_classes: int = 1000) -> ResNet:
    """ResNet-50 (v1.5) for 224×224 inputs (torchvision-compatible; 25.6 M parameters)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)


def resnet18_cifar(num_classes: int = 100) -> ResNet:
    """ResNet-18 for 32×32 inputs: 3×3/1 stem, no max pool; torchvision parameter names."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, cifar=True)


def resnet50_cifar(num_classes: int = 100) -> ResNet:
    """ResNet-50 for 32×32 inputs: 3×3/1 stem, no max pool; torchvision parameter names."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, cifar=True)


# ------------------------------------------------------------------------------------ VGG

_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    """torchvision's VGG with batch norm: ``features`` (conv-BN-ReLU triples and max pools at
    torchvision's indices), ``avgpool``, ``classifier`` (Linear-ReLU-Dropout ×2, Linear)."""

    def __init__(self, num_classes: int = 1000, cifar: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG16:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                assert isinstance(v, int)
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(True)]
                cin = v
        self.features = nn.Sequential(*layers)
        pool, hidden = ((1, 1), 512) if cifar else ((7, 7), 4096)
        self.avgpool = nn.AdaptiveAvgPool2d(pool)
        self.classifier = nn.Sequential(
            nn.Linear(512 * pool[0] * pool[1], hidden), nn.ReLU(True), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(0.5),
            nn.Linear(hidden, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                assert m.bias is not None  # VGG's convolutions have biases
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


def vgg16_bn(num_classes: int = 1000) -> VGG:
    """VGG-16 with batch norm for 224×224 inputs (torchvision-compatible; 138.4 M parameters)."""
    return VGG(num_classes)


def vgg16_bn_cifar(num_classes: int = 100) -> VGG:
    """VGG-16-BN for 32×32 inputs: same ``features``; 1×1 pool; 512-wide classifier."""
    return VGG(num_classes, cifar=True)


# ---------------------------------------------------------------------------- MobileNetV2


class ConvBNReLU6(nn.Sequential):
    """Conv (no bias, 'same' padding) → BN → ReLU6, as torchvision's Conv2dNormActivation
    (children ``0``/``1``/``2``)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size, stride, (kernel_size - 1) // 2, groups=groups,
                      bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expand (skipped when ``expand_ratio`` is 1), 3×3 depthwise,
    1×1 linear projection; residual add when stride is 1 and the width is unchanged."""

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(cin * expand_ratio))
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(cin, hidden, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


# (expand ratio t, output channels c, repeats n, first stride s), as in the paper.
_MOBILENET_V2 = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                 [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 (width 1.0). ``cifar=True`` sets the stride of ``features.0``
    and of the first 24-channel block to 1, so a 32×32 input ends at 4×4 instead of 1×1."""

    def __init__(self, num_classes: int = 1000, cifar: bool = False) -> None:
        super().__init__()
        cin, last = 32, 1280
        features: list[nn.Module] = [ConvBNReLU6(3, cin, stride=1 if cifar else 2)]
        for stage, (t, c, n, s) in enumerate(_MOBILENET_V2):
            if cifar and stage == 1:
                s = 1
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(ConvBNReLU6(cin, last, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Functional pooling, as torchvision: no ``avgpool`` module in the tree.
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v2(num_classes: int = 1000) -> MobileNetV2:
    """MobileNetV2 for 224×224 inputs (torchvision-compatible; 3.5 M parameters)."""
    return MobileNetV2(num_classes)


def mobilenet_v2_cifar(num_classes: int = 100) -> MobileNetV2:
    """MobileNetV2 for 32×32 inputs (stride 1 in ``features.0`` and ``features.2``)."""
    return MobileNetV2(num_classes, cifar=True)


# ------------------------------------------------------------------------------- demo CNN


class TinyResNet(nn.Module):
    """A small residual CNN for 32×32 inputs that trains in about a minute on two CPU cores.

    Exercises what most CNNs are made of: conv-BN-ReLU, max pooling, residual adds with a
    strided projection, global average pooling, dropout and a linear classifier.
    """

    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(
            nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)
        )
        self.layer1 = BasicBlock(w, w)
        self.pool = nn.MaxPool2d(2)
        self.layer2 = BasicBlock(w, 2 * w, stride=2)
        self.layer3 = BasicBlock(2 * w, 4 * w, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.1)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(self.stem(x))
        x = self.layer3(self.layer2(self.pool(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


def tiny_resnet(num_classes: int = 100) -> TinyResNet:
    """The demo's :class:`TinyResNet` (width 16) for 32×32 inputs."""
    return TinyResNet(num_classes)


# ------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ArchSpec:
    """A zoo entry: how to build it, its input resolution, default classes, what it is."""

    constructor: Callable[[int], nn.Module]
    input_size: int
    num_classes: int
    family: str


ARCHITECTURES: dict[str, ArchSpec] = {
    "resnet18": ArchSpec(resnet18, 224, 1000, "ResNet-18, ImageNet (torchvision)"),
    "resnet50": ArchSpec(resnet50, 224, 1000, "ResNet-50 v1.5, ImageNet (torchvision)"),
    "vgg16_bn": ArchSpec(vgg16_bn, 224, 1000, "VGG-16 with BN, ImageNet (torchvision)"),
    "mobilenet_v2": ArchSpec(mobilenet_v2, 224, 1000, "MobileNetV2, ImageNet (torchvision)"),
    "resnet18_cifar": ArchSpec(resnet18_cifar, 32, 100, "ResNet-18, CIFAR stem"),
    "resnet50_cifar": ArchSpec(resnet50_cifar, 32, 100, "ResNet-50 v1.5, CIFAR stem"),
    "vgg16_bn_cifar": ArchSpec(vgg16_bn_cifar, 32, 100, "VGG-16 with BN, 512-wide head"),
    "mobilenet_v2_cifar": ArchSpec(mobilenet_v2_cifar, 32, 100,
                                   "MobileNetV2, stride 1 in features.0 and features.2"),
    "tiny_resnet": ArchSpec(tiny_resnet, 32, 100, "small residual CNN for demos and tests"),
}


def arch_names() -> list[str]:
    """Names of the zoo's architectures, in registry order."""
    return list(ARCHITECTURES)


def _spec(name: str) -> ArchSpec:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(arch_names())}") \
            from None


def build_arch(name: str, num_classes: int | None = None) -> nn.Module:
    """A freshly initialised zoo model; ``num_classes`` defaults to the entry's (1000 for the
    ImageNet variants, 100 for the 32×32 ones).

    >>> build_arch("mobilenet_v2_cifar", num_classes=5).classifier[1].out_features
    5
    """
    spec = _spec(name)
    n = spec.num_classes if num_classes is None else num_classes
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return spec.constructor(n)


def input_size(name: str) -> int:
    """The side in pixels of the square images the architecture expects (224 or 32)."""
    return _spec(name).input_size
