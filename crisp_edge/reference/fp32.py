"""A float interpreter of a ``.crisp`` graph with torch.nn.functional.

It reads the records the writer produced (OHWI weights, four pad fields, fused activations,
hybrid-sparse weights decoded to dense) and so checks lowering, BN folding and the weight layout
without the C runtime. :func:`execute` shows every intermediate value to an observer (activation
calibration for int8 uses it) and frees each value after its last use.

>>> y = execute(read_model("model.crisp").graph, x).numpy()     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from crisp_edge import format as fmt
from crisp_edge.errors import UnsupportedError

Observer = Callable[[int, torch.Tensor], None]


_ACTIVATIONS: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {
    fmt.ACT_RELU: F.relu, fmt.ACT_RELU6: F.relu6, fmt.ACT_SILU: F.silu,
    fmt.ACT_SIGMOID: torch.sigmoid, fmt.ACT_HARDSWISH: F.hardswish,
    fmt.ACT_HARDSIGMOID: F.hardsigmoid}
# The standalone activation ops: op kind → activation code.
_ACTIVATION_OF_OP = {op: act for act, op in fmt.ACTIVATION_OPS.items()}


def _activation(x: torch.Tensor, act: int) -> torch.Tensor:
    f = _ACTIVATIONS.get(act)
    return x if f is None else f(x)


class WeightCache:
    """Dense float32 torch tensors of a graph's constants, decoded once."""

    def __init__(self, graph: fmt.Graph) -> None:
        self.graph = graph
        self._cache: dict[int, torch.Tensor] = {}

    def __call__(self, tensor_id: int | None) -> torch.Tensor | None:
        if tensor_id is None:
            return None
        if tensor_id not in self._cache:
            dense = np.array(self.graph.tensors[tensor_id].dense(), dtype=np.float32)
            self._cache[tensor_id] = torch.from_numpy(dense)
        return self._cache[tensor_id]


def eval_op(graph: fmt.Graph, op: fmt.Op, xs: list[torch.Tensor],
            weights: WeightCache) -> torch.Tensor:
    """One float op on batched inputs (N, *shape), fused activation included."""
    n = xs[0].shape[0]
    w, b, p = weights(op.weight), weights(op.bias), op.params
    out_shape = graph.values[op.output].shape
    if op.kind == fmt.OP_CONV2D:
        assert w is not None
        kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups = p
        x = F.pad(xs[0], (pl, pr, pt, pb))
        y = F.conv2d(x, w.permute(0, 3, 1, 2), b, (sh, sw), 0, (dh, dw), groups)
    elif op.kind == fmt.OP_LINEAR:
        assert w is not None
        y = F.linear(xs[0].reshape(n, -1), w, b)
    elif op.kind == fmt.OP_ADD:
        y = xs[0] + xs[1]
    elif op.kind == fmt.OP_RELU:
        y = F.relu(xs[0])
    elif op.kind == fmt.OP_RELU6:
        y = F.relu6(xs[0])
    elif op.kind == fmt.OP_MAX_POOL2D:
        kh, kw, sh, sw, ph, pw, dh, dw, ceil = p
        y = F.max_pool2d(xs[0], (kh, kw), (sh, sw), (ph, pw), (dh, dw), bool(ceil))
    elif op.kind == fmt.OP_AVG_POOL2D:
        kh, kw, sh, sw, ph, pw, ceil, cip, div = p
        y = F.avg_pool2d(xs[0], (kh, kw), (sh, sw), (ph, pw), bool(ceil), bool(cip), div or None)
    elif op.kind == fmt.OP_GLOBAL_AVG_POOL:
        y = xs[0].mean((2, 3)).reshape(n, *out_shape)
    elif op.kind == fmt.OP_ADAPTIVE_AVG_POOL2D:
        y = F.adaptive_avg_pool2d(xs[0], (p[0], p[1]))
    elif op.kind == fmt.OP_RESHAPE:
        y = xs[0].reshape(n, *out_shape)
    elif op.kind in _ACTIVATION_OF_OP:
        y = _activation(xs[0], _ACTIVATION_OF_OP[op.kind])
    elif op.kind == fmt.OP_MUL_CHANNELS:
        y = xs[0] * xs[1].reshape(n, -1, 1, 1)
    elif op.kind == fmt.OP_SOFTMAX:
        y = F.softmax(xs[0], dim=p[0] + 1)
    else:
        raise UnsupportedError(f"op {op.name} is not a float op; run int8 graphs with "
                               "crisp_edge.reference.int8")
    return _activation(y, op.activation)


def last_uses(graph: fmt.Graph) -> dict[int, int]:
    """Value id → index of the last op reading it (the output value: never freed)."""
    last = {v: i for i, op in enumerate(graph.ops) for v in op.inputs}
    last[graph.output_value] = len(graph.ops)
    return last


def execute(graph: fmt.Graph, x: np.ndarray | torch.Tensor,
            observer: Observer | None = None) -> torch.Tensor:
    """Run the float ``graph`` on a batch ``x`` (N, *input shape) and return its output tensor.

    ``observer(value_id, tensor)`` sees the input and every op output as it is computed."""
    if any(v.dtype != fmt.DTYPE_F32 for v in graph.values):
        raise UnsupportedError("the graph has int8 values; run it with crisp_edge.reference.int8")
    weights = WeightCache(graph)
    env = {graph.input_value: torch.as_tensor(np.asarray(x, dtype=np.float32))}
    if observer is not None:
        observer(graph.input_value, env[graph.input_value])
    last = last_uses(graph)
    with torch.no_grad():
        for i, op in enumerate(graph.ops):
            y = eval_op(graph, op, [env[v] for v in op.inputs], weights)
            expected = (y.shape[0], *graph.values[op.output].shape)
            if tuple(y.shape) != expected:
                raise UnsupportedError(f"GRPH: op {i} ({op.name}): computed shape "
                                       f"{tuple(y.shape)}, the file says {expected}")
            env[op.output] = y
            if observer is not None:
                observer(op.output, y)
            for v in set(op.inputs):
                if last.get(v, -1) <= i:
                    del env[v]
    return env[graph.output_value]
