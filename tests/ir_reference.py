"""An independent interpreter of a ``.crisp`` graph with torch.nn.functional.

It reads the records the writer produced (OHWI weights, four pad fields, fused activations) and
so checks lowering, BN folding and the weight layout without the C runtime.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from crisp_edge import format as fmt


def _activation(x: torch.Tensor, act: int) -> torch.Tensor:
    if act == fmt.ACT_RELU:
        return F.relu(x)
    if act == fmt.ACT_RELU6:
        return F.relu6(x)
    return x


def _op(graph: fmt.Graph, op: fmt.Op, xs: list[torch.Tensor]) -> torch.Tensor:
    n = xs[0].shape[0]
    w = None if op.weight is None else torch.from_numpy(np.array(graph.tensors[op.weight].data))
    b = None if op.bias is None else torch.from_numpy(np.array(graph.tensors[op.bias].data))
    p = op.params
    if op.kind == fmt.OP_CONV2D:
        assert w is not None
        kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups = p
        x = F.pad(xs[0], (pl, pr, pt, pb))
        return F.conv2d(x, w.permute(0, 3, 1, 2), b, (sh, sw), 0, (dh, dw), groups)
    if op.kind == fmt.OP_LINEAR:
        assert w is not None
        return F.linear(xs[0].reshape(n, -1), w, b)
    if op.kind == fmt.OP_ADD:
        return xs[0] + xs[1]
    if op.kind == fmt.OP_RELU:
        return F.relu(xs[0])
    if op.kind == fmt.OP_RELU6:
        return F.relu6(xs[0])
    if op.kind == fmt.OP_MAX_POOL2D:
        kh, kw, sh, sw, ph, pw, dh, dw, ceil = p
        return F.max_pool2d(xs[0], (kh, kw), (sh, sw), (ph, pw), (dh, dw), bool(ceil))
    if op.kind == fmt.OP_AVG_POOL2D:
        kh, kw, sh, sw, ph, pw, ceil, cip, div = p
        return F.avg_pool2d(xs[0], (kh, kw), (sh, sw), (ph, pw), bool(ceil), bool(cip), div or None)
    if op.kind == fmt.OP_GLOBAL_AVG_POOL:
        return xs[0].mean((2, 3)).reshape(n, *graph.values[op.output].shape)
    if op.kind == fmt.OP_ADAPTIVE_AVG_POOL2D:
        return F.adaptive_avg_pool2d(xs[0], tuple(p))
    if op.kind == fmt.OP_RESHAPE:
        return xs[0].reshape(n, *graph.values[op.output].shape)
    if op.kind == fmt.OP_SOFTMAX:
        return F.softmax(xs[0], dim=p[0] + 1)
    raise AssertionError(f"unknown op kind {op.kind}")


def run_graph(graph: fmt.Graph, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Run ``graph`` on a batch ``x`` (N, *input shape); returns (N, *output shape) float32."""
    env = {graph.input_value: torch.as_tensor(np.asarray(x, dtype=np.float32))}
    with torch.no_grad():
        for op in graph.ops:
            y = _activation(_op(graph, op, [env[v] for v in op.inputs]), op.activation)
            expected = (y.shape[0], *graph.values[op.output].shape)
            assert tuple(y.shape) == expected, f"{op.name}: shape {tuple(y.shape)} != {expected}"
            env[op.output] = y
    return env[graph.output_value].numpy()
