"""Generate the runtime's golden fixtures: NAME.crisp, NAME.input.npy, NAME.expected.npy.

    python tests/make_fixtures.py [--out runtime/tests/data]

Small torch models that together use every op kind and the awkward parameter cases (strided,
dilated, grouped, depthwise and 'same'-padded convs; ceil_mode pools, count_include_pad=False,
divisor_override, dilated max pool; adaptive pools; fused add+relu6; linear; softmax; ``excite``:
the 1.2 activations fused and standalone, the squeeze-excite product), every
weight encoding (``sparse``: HYBRID_F32 with partial edge blocks, N:M only, block only and
rows sharing one selection; ``quant``: int8 with QUANTIZE/DEQUANTIZE, DENSE_I8 and HYBRID_I8).
The C test test_fixtures.c runs each file on NAME.input.npy (batch 2, float32) and compares with
NAME.expected.npy (torch's output; for ``quant`` the output of crisp_edge.reference.int8, the spec's
integer arithmetic). tests/runtime/test_fixtures.py checks the committed files still match what this
script produces, so they cannot drift from the writer. Seeds are fixed.
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

from crisp_edge.packing.pack import pack  # noqa: E402
from crisp_edge.reference.int8 import run_int8  # noqa: E402
from crisp_edge.format import read_model  # noqa: E402

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


def _zero_nm(weight: torch.Tensor, n: int, m: int, shared_rows: int = 1) -> None:
    """Keep the n largest of every m consecutive (kh, kw, cin)-ordered weights per run of rows."""
    w = weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1) if weight.dim() == 4 else weight
    rows = w.shape[0]
    groups = w.reshape(rows, -1, m).clone()
    runs = groups.reshape(-1, shared_rows, groups.shape[1], m) if rows % shared_rows == 0 \
        else None
    score = groups.abs() if runs is None else runs.abs().sum(1, keepdim=True).expand_as(
        runs).reshape(groups.shape)
    groups.scatter_(-1, score.argsort(-1, descending=True)[..., n:], 0.0)
    flat = groups.reshape(w.shape)
    if weight.dim() == 4:
        flat = flat.reshape(weight.shape[0], weight.shape[2], weight.shape[3], weight.shape[1])
        flat = flat.permute(0, 3, 1, 2)
    weight.copy_(flat)


class Sparse(nn.Module):
    """Weights whose zeros follow the hybrid patterns, so pattern-auto packs them sparse."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(8, 20, 3, padding=1)        # hybrid 2:4 with removed blocks
        self.b = nn.Conv2d(20, 40, 1, bias=False)      # block only
        self.c = nn.Conv2d(40, 24, 3, 2, 1)            # rows sharing 2:8 selections (V = 4)
        self.fc = nn.Linear(24, 5)                     # N:M only 1:4
        with torch.no_grad():
            _zero_nm(self.a.weight, 2, 4)
            self.a.weight[:16, :, 1:, :] = 0.0
            self.b.weight[16:32, :16] = 0.0
            self.b.weight[:8, 16:] = 0.0
            _zero_nm(self.c.weight, 2, 8, shared_rows=4)
            self.c.weight[8:16] = 0.0
            _zero_nm(self.fc.weight, 1, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.b(F.relu(self.a(x))))
        y = F.relu6(self.c(y))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


class Quant(nn.Module):
    """Packed int8: hybrid and dense int8 weights, depthwise, add, every pool, softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(4, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, 2, 1, groups=16), nn.ReLU())
        self.pw = nn.Conv2d(16, 16, 1)
        self.fc = nn.Linear(16 * 2 * 2, 6)
        self.fc2 = nn.Linear(16, 6, bias=False)
        with torch.no_grad():
            _zero_nm(self.a[0].weight, 2, 4)
            _zero_nm(self.pw.weight, 2, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(self.a(x))
        y = F.relu(y + self.pw(y))
        y = F.max_pool2d(y, 3, 1, 1, ceil_mode=True) + \
            F.avg_pool2d(y, 3, 1, 1, count_include_pad=False)
        y = F.avg_pool2d(y, (3, 2), 2, 1, ceil_mode=True)
        logits = self.fc(torch.flatten(F.adaptive_avg_pool2d(y, (2, 2)), 1)) + \
            self.fc2(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))
        return torch.softmax(logits, dim=1)


class Excite(nn.Module):
    """The 1.2 ops: silu/hardswish/sigmoid fused into convs, a squeeze-excite product, the
    standalone activations after a pool (nothing to fuse into), hardsigmoid on a (C,1,1) gate."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.SiLU())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8),
                                nn.Hardswish())
        self.reduce, self.expand = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 8, 1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(self.a(x))
        y = y * torch.sigmoid(self.expand(F.silu(self.reduce(y.mean((2, 3), keepdim=True)))))
        y = F.hardsigmoid(F.adaptive_avg_pool2d(y, 1)) * y
        p = F.max_pool2d(y, 2)
        y = F.hardswish(p) + torch.sigmoid(p) + F.silu(p)
        return self.fc(torch.flatten(y.mean((2, 3)), 1))


# name → (model class, per-sample input shape, input scale, labels, int8)
FIXTURES = {
    "convs": (Convs, (4, 13, 11), 1.0, None, False),
    "pools": (Pools, (3, 17, 15), 4.0, None, False),  # wide enough that relu6 clamps
    "head": (Head, (3, 6, 5), 3.0, [(3, "cat"), (7, "dog"), (11, "Bär"), (40, "tree frog")],
             False),
    "sparse": (Sparse, (8, 9, 7), 1.0, None, False),
    "quant": (Quant, (4, 11, 9), 2.0, None, True),
    "excite": (Excite, (4, 9, 8), 2.0, None, False),
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
    cls, shape, scale, labels, int8 = FIXTURES[name]
    model = _seeded_model(cls)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(7)) * scale
    calibration = torch.randn(32, *shape, generator=torch.Generator().manual_seed(8)) * scale
    with torch.no_grad():
        expected = model(x).numpy()
    path = out_dir / f"{name}.crisp"
    # portable: the committed files keep their patterns whatever CPU regenerates them (the
    # runtime's tests need the sparse encodings; "host" would store 2:4-only convs dense).
    pack(model, x, path, labels=labels, int8=int8, calibration=calibration if int8 else None,
         provenance={"created": CREATED, "source": f"tests/make_fixtures.py:{cls.__name__}"},
         isa="portable")
    if int8:
        expected = run_int8(read_model(path).graph, x.numpy())
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
