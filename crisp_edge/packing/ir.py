"""The lowering IR and its passes: torch semantics, per-sample shapes, numpy weights.

``crisp_edge.packing.lower`` builds an :class:`IRGraph` from a torch.export graph; the passes
here fold BatchNorm into the producing conv/linear (or turn it into a depthwise 1×1 conv), fuse
activations (ReLU, ReLU6, SiLU, sigmoid, hardswish, hardsigmoid) into the producing
conv/linear/add, and ``to_graph`` emits the live ops as ``.crisp`` records (values renumbered,
conv weights OIHW → OHWI, float32).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crisp_edge import format as fmt
from crisp_edge.errors import ArgumentError

@dataclass
class IROp:
    """One op with torch semantics. Conv weights stay OIHW (float64) until ``to_graph``."""

    kind: str
    inputs: list[int]
    output: int
    attrs: dict[str, Any] = field(default_factory=dict)
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    activation: str = "none"
    source: str = ""
    param: str | None = None  # FQN of the torch parameter the weight came from


@dataclass
class IRGraph:
    """Values are per-sample shapes indexed by id; ops are in execution order."""

    values: list[tuple[int, ...]]
    ops: list[IROp]
    input: int = 0
    output: int = 0

    def new_value(self, shape: tuple[int, ...]) -> int:
        self.values.append(tuple(shape))
        return len(self.values) - 1

    def users(self) -> dict[int, int]:
        counts: dict[int, int] = {self.output: 1}
        for op in self.ops:
            for v in op.inputs:
                counts[v] = counts.get(v, 0) + 1
        return counts


def _producers(ir: IRGraph) -> dict[int, IROp]:
    return {op.output: op for op in ir.ops}


def fold_batch_norm(ir: IRGraph) -> int:
    """Fold each BatchNorm into the conv/linear it follows (when it is that output's only user);
    a BatchNorm elsewhere becomes a depthwise 1×1 conv. Returns the number folded."""
    folded, users, producers = 0, ir.users(), _producers(ir)
    new_ops: list[IROp] = []
    for op in ir.ops:
        if op.kind != "batch_norm":
            new_ops.append(op)
            continue
        x = op.inputs[0]
        prod = producers.get(x)
        assert op.weight is not None and op.bias is not None
        if prod is not None and prod.kind in ("conv2d", "linear") and users.get(x) == 1 \
                and prod.activation == "none" and prod.weight is not None:
            prod.weight = prod.weight * op.weight.reshape((-1,) + (1,) * (prod.weight.ndim - 1))
            prod.bias = (0.0 if prod.bias is None else prod.bias) * op.weight + op.bias
            prod.output = op.output
            producers[op.output] = prod
            folded += 1
            continue
        shape, c = ir.values[x], op.weight.shape[0]
        conv = IROp("conv2d", [x], op.output, weight=op.weight.reshape(c, 1, 1, 1), bias=op.bias,
                    attrs=dict(stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=c),
                    source=op.source)
        if len(shape) == 3:
            new_ops.append(conv)
            continue
        # (C) or (C, L): view as (C, L, 1) around the depthwise conv.
        as_image = (c, int(np.prod(shape[1:], dtype=np.int64)), 1)
        v_in, v_out = ir.new_value(as_image), ir.new_value(as_image)
        conv.inputs, conv.output = [v_in], v_out
        new_ops += [IROp("reshape", [x], v_in, source=op.source), conv,
                    IROp("reshape", [v_out], op.output, source=op.source)]
    ir.ops = new_ops
    return folded


ACTIVATIONS = ("relu", "relu6", "silu", "sigmoid", "hardswish", "hardsigmoid")


def fuse_activations(ir: IRGraph) -> int:
    """Fuse each activation (ReLU, ReLU6, SiLU, sigmoid, hardswish, hardsigmoid) into the
    conv/linear/add producing its input when it is that output's only user. Returns the number
    fused."""
    fused, users, producers = 0, ir.users(), _producers(ir)
    kept: list[IROp] = []
    for op in ir.ops:
        prod = producers.get(op.inputs[0])
        if op.kind in ACTIVATIONS and prod is not None and users.get(op.inputs[0]) == 1 \
                and prod.kind in ("conv2d", "linear", "add") and prod.activation == "none":
            prod.activation, prod.output = op.kind, op.output
            producers[op.output] = prod
            fused += 1
        else:
            kept.append(op)
    ir.ops = kept
    return fused


def _params(op: IROp) -> tuple[int, ...]:
    a = op.attrs
    if op.kind == "conv2d":
        assert op.weight is not None
        t, l, b, r = a["pads"]
        return (op.weight.shape[2], op.weight.shape[3], *a["stride"], t, l, b, r, *a["dilation"],
                a["groups"])
    if op.kind == "max_pool2d":
        return (*a["kernel"], *a["stride"], *a["padding"], *a["dilation"], int(a["ceil_mode"]))
    if op.kind == "avg_pool2d":
        return (*a["kernel"], *a["stride"], *a["padding"], int(a["ceil_mode"]),
                int(a["count_include_pad"]), a["divisor_override"])
    if op.kind == "adaptive_avg_pool2d":
        return tuple(a["size"])
    if op.kind == "softmax":
        return (a["axis"],)
    return ()


_KINDS = {"conv2d": fmt.OP_CONV2D, "linear": fmt.OP_LINEAR, "add": fmt.OP_ADD,
          "relu": fmt.OP_RELU, "relu6": fmt.OP_RELU6, "max_pool2d": fmt.OP_MAX_POOL2D,
          "avg_pool2d": fmt.OP_AVG_POOL2D, "global_avg_pool": fmt.OP_GLOBAL_AVG_POOL,
          "adaptive_avg_pool2d": fmt.OP_ADAPTIVE_AVG_POOL2D, "reshape": fmt.OP_RESHAPE,
          "softmax": fmt.OP_SOFTMAX, "silu": fmt.OP_SILU, "sigmoid": fmt.OP_SIGMOID,
          "hardswish": fmt.OP_HARDSWISH, "hardsigmoid": fmt.OP_HARDSIGMOID,
          "mul_channels": fmt.OP_MUL_CHANNELS}
_ACTS = {"none": fmt.ACT_NONE, "relu": fmt.ACT_RELU, "relu6": fmt.ACT_RELU6,
         "silu": fmt.ACT_SILU, "sigmoid": fmt.ACT_SIGMOID, "hardswish": fmt.ACT_HARDSWISH,
         "hardsigmoid": fmt.ACT_HARDSIGMOID}


def to_graph(ir: IRGraph, weight_params: dict[int, str] | None = None) -> fmt.Graph:
    """Emit the live ops as ``.crisp`` records: renumber values, OHWI conv weights, float32.
    ``weight_params`` (if given) receives tensor id → source parameter FQN of each weight."""
    live, needed = [], {ir.output}
    for op in reversed(ir.ops):
        if op.output in needed:
            live.append(op)
            needed.update(op.inputs)
    live.reverse()
    if not live:
        raise ArgumentError("the model computes nothing (its output is its input); "
                            "there is nothing to pack")
    ids = {ir.input: 0}
    graph = fmt.Graph([fmt.Value(ir.values[ir.input])], [], [], 0, 0)

    def tensor(a: np.ndarray | None) -> int | None:
        if a is None:
            return None
        graph.tensors.append(fmt.Tensor(np.ascontiguousarray(a, dtype=np.float32)))
        return len(graph.tensors) - 1

    for op in live:
        for what, a in (("weight", op.weight), ("bias", op.bias)):
            if a is not None and not np.isfinite(a).all():
                raise ArgumentError(
                    f"{op.param or op.kind}: the {what} (after folding BatchNorm) holds NaN or "
                    "infinite values; the model is broken (a diverged training run?): retrain or "
                    "fix it before packing")
        w = op.weight
        if op.kind == "conv2d" and w is not None:
            w = w.transpose(0, 2, 3, 1)  # OIHW → OHWI
        weight, bias = tensor(w), tensor(op.bias)
        if weight is not None and op.param is not None and weight_params is not None:
            weight_params[weight] = op.param
        ids[op.output] = len(graph.values)
        graph.values.append(fmt.Value(ir.values[op.output]))
        graph.ops.append(fmt.Op(_KINDS[op.kind], tuple(ids[v] for v in op.inputs), ids[op.output],
                                weight, bias, _ACTS[op.activation], _params(op)))
    graph.output_value = ids[ir.output]
    return graph
