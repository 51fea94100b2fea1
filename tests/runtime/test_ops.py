"""Every op through pack → load → run (C runtime) against torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import assert_close, torch_reference


class Fn(nn.Module):
    def __init__(self, fn, *children: nn.Module) -> None:
        super().__init__()
        self.fn, self.layers = fn, nn.ModuleList(children)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, *self.layers)


def check(pack_and_run, model: nn.Module, shape: tuple[int, ...], seed: int = 0, scale=1.0):
    torch.manual_seed(seed)
    x = torch.randn(*shape) * scale
    got, report = pack_and_run(model, x)
    assert_close(got, torch_reference(model, x), repr(model))
    return report


# (Cin, Cout, kernel, stride, padding, dilation, groups, bias, H, W)
CONV_CASES = [
    (3, 4, 1, 1, 0, 1, 1, True, 6, 6),
    (3, 5, 3, 1, 1, 1, 1, False, 8, 8),
    (4, 4, 3, 2, 0, 1, 1, True, 9, 9),
    (2, 3, 5, 3, 4, 1, 1, True, 11, 10),      # padding > kernel/2
    (3, 4, 7, 2, 3, 1, 1, False, 15, 13),
    (4, 3, 3, 1, 2, 2, 1, True, 9, 9),
    (2, 2, 3, 2, 5, 3, 1, True, 10, 12),
    (4, 6, 3, 1, 1, 1, 2, True, 7, 7),        # grouped
    (4, 8, 5, 1, 2, 2, 4, False, 12, 12),
    (6, 6, 3, 2, 1, 1, 6, True, 9, 9),        # depthwise
    (6, 6, 3, 1, 1, 1, 6, False, 8, 8),
    (5, 10, 5, 3, 2, 1, 5, True, 13, 13),     # depthwise, channel multiplier 2
    (3, 4, (3, 5), (2, 1), (0, 2), (1, 2), 1, True, 9, 11),
    (3, 4, 1, 2, 0, 1, 1, True, 7, 7),        # strided 1×1 projection
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "conv_k{2}_s{3}_p{4}_d{5}_g{6}_b{7}"
                         .format(*c).replace(" ", ""))
def test_conv2d(pack_and_run, case) -> None:
    cin, cout, k, s, p, d, g, bias, h, w = case
    torch.manual_seed(1)
    conv = nn.Conv2d(cin, cout, k, s, p, d, g, bias=bias)
    report = check(pack_and_run, conv, (2, cin, h, w))
    assert report.ops == 1


@pytest.mark.parametrize("k, d", [(4, 1), (2, 3), ((3, 4), (2, 1))])
def test_conv2d_same_padding(pack_and_run, k, d) -> None:
    torch.manual_seed(2)
    check(pack_and_run, nn.Conv2d(3, 4, k, padding="same", dilation=d), (2, 3, 9, 8))


ACTIVATIONS = [nn.ReLU(), nn.ReLU6(), nn.SiLU(), nn.Sigmoid(), nn.Hardswish(), nn.Hardsigmoid()]


@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: type(a).__name__)
def test_conv_with_fused_activation(pack_and_run, act) -> None:
    torch.manual_seed(3)
    report = check(pack_and_run, nn.Sequential(nn.Conv2d(3, 4, 3), act), (2, 3, 6, 6), scale=8)
    assert report.ops == 1 and report.fused_activations == 1


# (kernel, stride, padding, dilation, ceil_mode, H, W)
MAX_POOL_CASES = [
    (2, 2, 0, 1, False, 8, 8),
    (3, 2, 1, 1, True, 8, 8),
    (3, 3, 0, 1, True, 10, 10),   # last window clipped
    (3, 2, 1, 2, False, 11, 9),   # dilation
    (2, 2, 1, 3, True, 10, 10),
    ((2, 3), (1, 2), (1, 1), 1, False, 7, 8),
    (5, 2, 2, 1, True, 6, 5),     # a window would start in the padding: dropped
]


@pytest.mark.parametrize("case", MAX_POOL_CASES, ids=str)
def test_max_pool2d(pack_and_run, case) -> None:
    k, s, p, d, ceil, h, w = case
    check(pack_and_run, nn.MaxPool2d(k, s, p, d, ceil_mode=ceil), (2, 3, h, w))


# (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, H, W)
AVG_POOL_CASES = [
    (2, 2, 0, False, True, None, 8, 8),
    (3, 2, 1, False, True, None, 9, 9),
    (3, 2, 1, False, False, None, 9, 9),
    (3, 2, 1, True, True, None, 8, 8),     # clipped windows: divisor from the clipped extent
    (3, 2, 1, True, False, None, 8, 8),
    (3, 3, 0, True, True, None, 10, 10),
    (3, 2, 1, True, True, 5, 8, 7),         # divisor_override
    ((2, 3), (2, 1), (1, 1), False, False, None, 7, 8),
    (5, 2, 2, True, True, None, 6, 5),
]


@pytest.mark.parametrize("case", AVG_POOL_CASES, ids=str)
def test_avg_pool2d(pack_and_run, case) -> None:
    k, s, p, ceil, cip, div, h, w = case
    check(pack_and_run, nn.AvgPool2d(k, s, p, ceil, cip, div), (2, 3, h, w))


@pytest.mark.parametrize("size, hw", [((3, 5), (9, 11)), (7, (9, 11)), ((2, 3), (5, 7)),
                                      ((5, 4), (4, 4)), ((1, 3), (6, 6))])
def test_adaptive_avg_pool2d(pack_and_run, size, hw) -> None:
    check(pack_and_run, nn.AdaptiveAvgPool2d(size), (2, 4, *hw))


@pytest.mark.parametrize("fn", [lambda x: F.adaptive_avg_pool2d(x, 1),
                                lambda x: x.mean((2, 3)),
                                lambda x: x.mean((-1, -2), keepdim=True)])
def test_global_avg_pool(pack_and_run, fn) -> None:
    report = check(pack_and_run, Fn(fn), (2, 5, 7, 6))
    assert report.ops == 1


def test_flatten_and_linear(pack_and_run) -> None:
    torch.manual_seed(4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 5, 7))
    assert check(pack_and_run, model, (2, 3, 4, 5)).ops == 2


@pytest.mark.parametrize("bias", [True, False])
def test_linear(pack_and_run, bias: bool) -> None:
    torch.manual_seed(5)
    check(pack_and_run, nn.Linear(33, 9, bias=bias), (3, 33))


def test_view_reshape(pack_and_run) -> None:
    check(pack_and_run, Fn(lambda x: x.view(x.shape[0], 6, 10).reshape(-1, 3, 20, 1)),
          (2, 3, 4, 5))


def test_add_relu_relu6(pack_and_run) -> None:
    torch.manual_seed(6)
    conv = nn.Conv2d(3, 3, 3, padding=1)
    model = Fn(lambda x, c: F.relu6(c(x) + x) + F.relu(x), conv)
    report = check(pack_and_run, model, (2, 3, 6, 6), scale=6)
    assert report.fused_activations == 1  # relu6 into the first add; relu(x) stays an op


@pytest.mark.parametrize("fn", [F.relu, F.relu6, F.silu, torch.sigmoid, F.hardswish,
                                F.hardsigmoid],
                         ids=["relu", "relu6", "silu", "sigmoid", "hardswish", "hardsigmoid"])
def test_standalone_activation(pack_and_run, fn) -> None:
    check(pack_and_run, Fn(fn), (2, 3, 5, 5), scale=8)


@pytest.mark.parametrize("act", ACTIVATIONS[2:], ids=lambda a: type(a).__name__)
def test_1_2_activations_fused_into_linear_and_add(pack_and_run, act) -> None:
    """Fused on every op that carries one; the 1×1, dense and depthwise convs take the
    optimised kernels (gemm, im2col, dwconv) and the linear the gemv."""
    torch.manual_seed(7)
    convs = nn.ModuleList([nn.Conv2d(3, 6, 1), nn.Conv2d(6, 6, 3, padding=1),
                           nn.Conv2d(6, 6, 3, padding=1, groups=6), nn.Linear(6 * 25, 4)])

    def net(x, c):
        a = act(c[0](x))
        b = act(c[2](act(c[1](a))))
        return act(c[3](act(b + a).flatten(1)))

    report = check(pack_and_run, Fn(net, convs), (2, 3, 5, 5), scale=4)
    assert report.ops == 6 and report.fused_activations == 5


@pytest.mark.parametrize("gate_first", [False, True])
def test_squeeze_excite_product(pack_and_run, gate_first: bool) -> None:
    torch.manual_seed(8)
    convs = nn.ModuleList([nn.Conv2d(4, 2, 1), nn.Conv2d(2, 4, 1)])

    def se(x, c):
        s = torch.sigmoid(c[1](F.silu(c[0](x.mean((2, 3), keepdim=True)))))
        return s * x if gate_first else x * s

    check(pack_and_run, Fn(se, convs), (3, 4, 6, 7), scale=3)


@pytest.mark.parametrize("shape, dim", [((2, 10), 1), ((2, 10), -1), ((2, 4, 3, 5), 1),
                                        ((2, 4, 3, 5), -1), ((2, 4, 3, 5), 2)])
def test_softmax(pack_and_run, shape, dim) -> None:
    check(pack_and_run, Fn(lambda x: torch.softmax(x, dim)), shape, scale=10)

