"""Int8 post-training quantisation (crisp_edge.packing.quantize) and the numpy executor of the spec's
integer semantics (crisp_edge.reference.int8), checked against float torch and a literal scalar
implementation of docs/format.md."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import randomize_batch_norm
from crisp_edge import format as fmt
from crisp_edge.reference import int8 as qexec
from crisp_edge.reference.run import run_graph
from crisp_edge.packing.lower import lower
from crisp_edge.packing.quantize import (activation_qparams, bias_safe_scales, calibrate,
                                 quantize_graph)
from nets import TinyMobileNetV2, TinyResNet, TinyVGG

F32 = np.float32


@pytest.mark.parametrize("lo, hi, scale, zero_point", [
    (-1.0, 3.0, 4 / 255, -64),        # −128 − rint(−63.75)
    (0.5, 6.0, 6 / 255, -128),        # range widened to include 0
    (-2.0, -1.0, 2 / 255, 127),
    (0.0, 0.0, 1 / 255, -128),        # a constant zero value
])
def test_activation_qparams(lo: float, hi: float, scale: float, zero_point: int) -> None:
    s, z = activation_qparams(lo, hi)
    assert s == float(F32(scale)) and z == zero_point


def test_requantize_rounds_half_to_even_clamps_and_maps_nan_low() -> None:
    scaled = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, np.nan, 300, -300, 126.5], F32)
    got = qexec.requantize(scaled, 0, -128, 127)
    assert got.tolist() == [0, 2, 2, 0, -2, -2, -128, 127, -128, 126]
    assert qexec.requantize(np.array([0.5, 2.5], F32), 3, 4, 5).tolist() == [4, 5]


def test_activation_ranges_and_int32_bias() -> None:
    relu6 = fmt.Value((1,), fmt.DTYPE_I8, 0.05, -100)
    assert qexec.activation_range(fmt.ACT_RELU6, relu6) == (-100, 20)
    assert qexec.activation_range(fmt.ACT_RELU, relu6) == (-100, 127)
    assert qexec.activation_range(fmt.ACT_RELU6, fmt.Value((1,), 2, 6 / 255, -128)) == (-128, 127)
    assert qexec.activation_range(fmt.ACT_NONE, relu6) == (-128, 127)
    scales = np.array([1.0, 1.0, 0.5], F32)
    bias = np.array([2.5, 3.5, -2.5], F32)
    assert qexec.int32_bias(bias, 1.0, scales).tolist() == [2, 4, -5]
    assert qexec.multipliers(0.1, scales, 0.3).dtype == np.float32


def _scalar_conv(x_q, zx, w_q, sw, bias, sx, sy, zy, params, act_lo, act_hi):
    """docs/format.md's int8 conv, one output at a time with Python integers."""
    kh, kw, sh, sw_, pt, pl, pb, pr, dh, dw, groups = params
    n, cin, h, w = x_q.shape
    cout = w_q.shape[0]
    ho = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    wo = (w + pl + pr - dw * (kw - 1) - 1) // sw_ + 1
    cin_g, cout_g = cin // groups, cout // groups
    out = np.zeros((n, cout, ho, wo), np.int8)
    for b in range(n):
        for c in range(cout):
            g = c // cout_g
            bq = int(np.rint(np.float64(bias[c]) / (np.float64(F32(sx)) * np.float64(sw[c]))))
            mult = F32(np.float64(F32(sx)) * np.float64(sw[c]) / np.float64(F32(sy)))
            for oy in range(ho):
                for ox in range(wo):
                    acc = bq
                    for i in range(kh):
                        for j in range(kw):
                            y, xx = oy * sh - pt + i * dh, ox * sw_ - pl + j * dw
                            for ci in range(cin_g):
                                xv = int(x_q[b, g * cin_g + ci, y, xx]) if 0 <= y < h and \
                                    0 <= xx < w else zx
                                acc += (xv - zx) * int(w_q[c, i, j, ci])
                    v = F32(zy) + np.rint(F32(acc) * mult)
                    out[b, c, oy, ox] = int(min(max(v, act_lo), act_hi))
    return out


@pytest.mark.parametrize("params", [
    (3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), (3, 2, 2, 1, 0, 1, 2, 0, 1, 2, 2),
    (5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 4), (1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1)])
def test_int8_conv_matches_a_literal_scalar_implementation(params) -> None:
    rng = np.random.default_rng(sum(params))
    kh, kw, groups = params[0], params[1], params[10]
    cin, cout = 4, 8
    x_q = rng.integers(-128, 128, (2, cin, 7, 6)).astype(np.int8)
    w = rng.standard_normal((cout, kh, kw, cin // groups)).astype(F32)
    bias = rng.standard_normal(cout).astype(F32)
    from crisp_edge.format import encoding as enc
    q_w, s_w = enc.quantize_rows(w.reshape(cout, -1))
    sx, zx, sy, zy = 0.03, 5, 0.07, -20
    h, wd = 7, 6
    ho = (h + params[4] + params[6] - params[8] * (kh - 1) - 1) // params[2] + 1
    wo = (wd + params[5] + params[7] - params[9] * (kw - 1) - 1) // params[3] + 1
    graph = fmt.Graph(
        [fmt.Value((cin, h, wd), fmt.DTYPE_I8, sx, zx),
         fmt.Value((cout, ho, wo), fmt.DTYPE_I8, sy, zy)],
        [fmt.Tensor.encoded(fmt.ENCODING_DENSE_I8, w.shape, enc.encode_dense_int8(w.reshape(
            cout, -1))), fmt.Tensor(bias)],
        [fmt.Op(fmt.OP_CONV2D, (0,), 1, 0, 1, fmt.ACT_RELU, params)], 0, 1)
    got = qexec.eval_int8_op(graph, graph.ops[0], [x_q])
    sy32 = graph.values[1]
    expected = _scalar_conv(x_q, zx, q_w.reshape(w.shape), s_w, bias, sx, sy32.scale, zy,
                            params, zy, 127)
    assert np.array_equal(got, expected)


class Pools(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(F.max_pool2d(x, 3, 1, 1) + F.avg_pool2d(x, 3, 1, 1, divisor_override=7))
        y = F.avg_pool2d(y, (3, 2), 2, 1, ceil_mode=True, count_include_pad=False)
        y = F.relu(F.max_pool2d(y, 2, (2, 1), 1, dilation=2, ceil_mode=True))
        y = F.adaptive_avg_pool2d(y, (3, 2))
        y = F.avg_pool2d(y, 2, 1, ceil_mode=False, count_include_pad=True)
        return F.adaptive_avg_pool2d(y, 1).flatten(1)


def _quantized(model: nn.Module, shape: tuple[int, ...], seed: int = 0,
               scale: float = 1.0) -> tuple[fmt.Graph, fmt.Graph, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    calib = torch.randn(32, *shape, generator=g) * scale
    graph = lower(model.eval(), calib[:2]).graph
    qgraph = quantize_graph(graph, calibrate(graph, calib))
    x = (torch.randn(64, *shape, generator=g) * scale).numpy()
    return graph, qgraph, x


def test_pools_adds_and_activations_track_float_within_a_few_steps() -> None:
    graph, qgraph, x = _quantized(Pools(), (3, 17, 15), scale=4.0)
    y_float, y_int8 = run_graph(graph, x), qexec.run_int8(qgraph, x)
    step = qgraph.values[qgraph.ops[-1].inputs[0]].scale
    assert np.abs(y_int8 - y_float).max() <= 6 * step


def _check_structure(qgraph: fmt.Graph) -> None:
    assert qgraph.ops[0].kind == fmt.OP_QUANTIZE and qgraph.ops[-1].kind == fmt.OP_DEQUANTIZE
    assert qgraph.values[qgraph.input_value].dtype == fmt.DTYPE_F32
    assert qgraph.values[qgraph.output_value].dtype == fmt.DTYPE_F32
    for op in qgraph.ops:
        x, y = qgraph.values[op.inputs[0]], qgraph.values[op.output]
        if op.kind in (fmt.OP_MAX_POOL2D, fmt.OP_RESHAPE, fmt.OP_RELU, fmt.OP_RELU6):
            assert (y.dtype, y.scale, y.zero_point) == (x.dtype, x.scale, x.zero_point)
        if op.kind in (fmt.OP_CONV2D, fmt.OP_LINEAR):
            assert qgraph.tensors[op.weight].encoding == fmt.ENCODING_DENSE_I8
            assert x.dtype == y.dtype == fmt.DTYPE_I8


@pytest.mark.parametrize("net", [TinyResNet, TinyMobileNetV2, TinyVGG])
def test_int8_networks_agree_with_float(net: type) -> None:
    torch.manual_seed(0)
    model = randomize_batch_norm(net())
    graph, qgraph, x = _quantized(model, (3, 32, 32))
    _check_structure(qgraph)
    y_float, y_int8 = run_graph(graph, x), qexec.run_int8(qgraph, x)
    scale = float(np.abs(y_float).max())
    assert np.abs(y_int8 - y_float).max() <= 0.03 * scale
    # Random networks on noise have logits within ~1 % of each other; trained ones are
    # checked for top-1 agreement in test_pack_pruned.py.
    assert (y_int8.argmax(1) == y_float.argmax(1)).mean() >= 0.9


def test_softmax_runs_in_float_after_a_dequantize() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3),
                          nn.Softmax(dim=1))
    graph, qgraph, x = _quantized(model, (3, 2, 2))
    kinds = [op.kind for op in qgraph.ops]
    assert kinds[-2:] == [fmt.OP_DEQUANTIZE, fmt.OP_SOFTMAX]
    assert qgraph.values[qgraph.output_value].dtype == fmt.DTYPE_F32
    assert np.abs(qexec.run_int8(qgraph, x) - run_graph(graph, x)).max() < 0.05


def test_large_bias_with_tiny_weights_keeps_the_int32_accumulator_in_range() -> None:
    layer = nn.Linear(64, 4)
    with torch.no_grad():
        layer.weight.mul_(1e-7)
        layer.bias.copy_(torch.tensor([50.0, -80.0, 3.0, 0.0]))
    graph, qgraph, x = _quantized(nn.Sequential(nn.Flatten(), layer), (64,))
    op = next(o for o in qgraph.ops if o.kind == fmt.OP_LINEAR)
    q_w, s_w = qgraph.tensors[op.weight].quantized()
    s_x = qgraph.values[op.inputs[0]].scale
    bias_q = qexec.int32_bias(qgraph.tensors[op.bias].dense(), s_x, s_w)
    assert (np.abs(bias_q) + 255 * np.abs(q_w.astype(np.int64)).sum(1) < 2**31 - 1).all()
    assert np.abs(qexec.run_int8(qgraph, x) - run_graph(graph, x)).max() < 1.0
    assert bias_safe_scales(None, 0.1, 64) is None


def test_percentile_calibration_clips_outliers() -> None:
    graph = lower(nn.Sequential(nn.Flatten(), nn.ReLU()), torch.randn(2, 4, 8, 8)).graph
    calib = torch.randn(16, 4, 8, 8)
    calib[0, 0, 0, 0] = 1000.0
    full = calibrate(graph, calib)
    clipped = calibrate(graph, calib, percentile=99.9)
    assert full[graph.input_value][1] == 1000.0
    assert clipped[graph.input_value][1] < 10.0
    assert calibrate(graph, [(calib[:8], None), (calib[8:], None)]) == full


@pytest.mark.parametrize("tail, text", [
    (nn.SiLU(), "op 0 (CONV2D with a fused silu, layer 0.weight) has no int8 kernel"),
    (nn.Sequential(nn.MaxPool2d(2), nn.Hardsigmoid()), "op 2 (HARDSIGMOID) has no int8 kernel"),
])
def test_int8_refuses_the_float32_only_activations(tmp_path, tail, text: str) -> None:
    """silu, sigmoid, hardswish, hardsigmoid and MUL_CHANNELS have float32 kernels only."""
    from crisp_edge.errors import UnsupportedOpError
    from crisp_edge.packing.pack import pack

    model = nn.Sequential(nn.Conv2d(3, 4, 3), tail)
    with pytest.raises(UnsupportedOpError, match=r"int8: " + text.replace("(", r"\(")
                       .replace(")", r"\)") + r".*pack this model without --int8"):
        pack(model, torch.randn(2, 3, 8, 8), tmp_path / "q.crisp", int8=True,
             calibration=torch.randn(4, 3, 8, 8))
    assert not (tmp_path / "q.crisp").exists()
