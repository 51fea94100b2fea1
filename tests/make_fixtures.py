"""Generate the runtime's golden fixtures: NAME.crisp, NAME.input.npy, NAME.expected.npy.

    python tests/make_fixtures.py [--out runtime/tests/data]

Small torch models that together use every op kind and the awkward parameter cases (strided,
dilated, grouped, depthwise and 'same'-padded convs; ceil_mode pools, count_include_pad=False,
divisor_override, dilated max pool; adaptive pools; fused add+relu6; linear; softmax). The C test
test_fixtures.c runs each file on NAME.input.npy (batch 2, float32) and compares with
NAME.expected.npy (torch's output). tests/test_fixtures.py checks the committed files still match
what this script produces, so they cannot drift from the writer. Seeds are fixed.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crisp_edge.pack import pack  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "runtime" / "tests" / "data"
CREATED = "2000-01-01T00:00:00Z"  # fixed, so regenerated files are byte-comparable


class Convs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(4, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.b = nn.Conv2d(8, 8, 3, 1, 2, dilation=2, groups=2)
        self.c = nn.Sequential(nn.Conv2d(8, 8, 5, 1, 2, groups=8), nn.BatchNorm2d(8), nn.ReLU6())
        self.d = nn.Conv2d(8, 6, (2, 4), padding="same")
        self.e = nn.Conv2d(6, 5, 3, 3, 4, dilation=(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.e(self.d(self.c(self.b(self.a(x)))))


class Pools(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(F.max_pool2d(x, 3, 1, 1) + F.avg_pool2d(x, 3, 1, 1, divisor_override=7))
        y = F.avg_pool2d(y, (3, 2), 2, 1, ceil_mode=True, count_include_pad=False)
        y = F.relu(F.max_pool2d(y, 2, (2, 1), 1, dilation=2, ceil_mode=True))
        y = F.relu6(F.adaptive_avg_pool2d(y, (3, 2)))
        y = F.avg_pool2d(y, 2, 1, ceil_mode=False, count_include_pad=True)
        return torch.softmax(F.adaptive_avg_pool2d(y, 1).flatten(1), dim=1)


class Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.fc1 = nn.Linear(3, 8)
        self.bn = nn.BatchNorm1d(8)
        self.fc2 = nn.Linear(8, 4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.conv(x) + x)
        y = torch.flatten(y.mean((2, 3), keepdim=True), 1)
        y = F.relu(self.bn(self.fc1(y)))
        return torch.softmax(self.fc2(y), dim=-1)


# name → (model class, per-sample input shape, input scale, labels)
FIXTURES = {
    "convs": (Convs, (4, 13, 11), 1.0, None),
    "pools": (Pools, (3, 17, 15), 4.0, None),  # wide enough that relu6 clamps
    "head": (Head, (3, 6, 5), 3.0, [(3, "cat"), (7, "dog"), (11, "Bär"), (40, "tree frog")]),
}


def _seeded_model(cls: type) -> nn.Module:
    torch.manual_seed(1234)
    model = cls()
    g = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return model.eval()


def build(name: str, out_dir: Path) -> None:
    """Write NAME.crisp, NAME.input.npy and NAME.expected.npy into ``out_dir``."""
    cls, shape, scale, labels = FIXTURES[name]
    model = _seeded_model(cls)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(7)) * scale
    with torch.no_grad():
        expected = model(x).numpy()
    pack(model, x, out_dir / f"{name}.crisp", labels=labels,
         provenance={"created": CREATED, "source": f"tests/make_fixtures.py:{cls.__name__}"})
    for suffix, array in (("input", x.numpy()), ("expected", expected)):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(array, dtype="<f4"))
        (out_dir / f"{name}.{suffix}.npy").write_bytes(buf.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in FIXTURES:
        build(name, args.out)
        size = (args.out / f"{name}.crisp").stat().st_size
        print(f"{args.out / name}.crisp: {size} bytes")


if __name__ == "__main__":
    main()
