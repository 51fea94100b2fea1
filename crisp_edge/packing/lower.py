"""Lower a torch ``nn.Module`` to the ``.crisp`` graph.

Steps: capture with ``torch.export`` (ATen ops, parameters lifted), translate each call into a
small IR with torch semantics and per-sample shapes (``to_ir``), then the passes: fold BatchNorm
into the producing conv/linear (or turn it into a depthwise 1×1 conv), fuse ReLU/ReLU6 (and
SiLU, sigmoid, hardswish, hardsigmoid) into the producing conv/linear/add, drop dead ops;
finally ``to_graph`` emits ``format.Graph`` records with OHWI conv weights. Identities (clone,
eval-mode dropout, alias, same-shape reshape) never become ops. Anything else raises
:class:`UnsupportedOpError` naming the ATen op and the module.

>>> lowered = lower(model, torch.randn(2, 3, 32, 32))          # doctest: +SKIP
>>> lowered.folded_bn, lowered.fused_activations, len(lowered.graph.ops)  # doctest: +SKIP
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from crisp_edge import format as fmt
from crisp_edge.errors import ArgumentError, UnsupportedOpError
from crisp_edge.packing.ir import IRGraph, IROp, fold_batch_norm, fuse_activations, to_graph

if TYPE_CHECKING:
    import torch

SUPPORTED = ("conv2d, linear, batch_norm, relu, relu6, silu, sigmoid, hardswish, hardsigmoid, "
             "add, mul (x · s, s of shape (N, C, 1, 1): squeeze-excite), max_pool2d, avg_pool2d, "
             "adaptive_avg_pool2d, mean(2,3), flatten/view/reshape, dropout, softmax")


@dataclass
class Lowered:
    """Result of :func:`lower`: the graph plus what the passes did."""

    graph: fmt.Graph
    folded_bn: int = 0
    fused_activations: int = 0
    dropped_identities: int = 0
    weight_params: dict[int, str] = field(default_factory=dict)  # tensor id → parameter FQN


def _version() -> str:
    from crisp_edge.version import __version__

    return ".".join(__version__.split(".")[:2])


def _where(node: Any) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "in the model's forward"
    path, cls = list(stack.values())[-1]
    cls_name = cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
    return f"in module '{path}' ({cls_name})" if path else f"in the top-level module ({cls_name})"


def unsupported(node: Any, detail: str = "") -> UnsupportedOpError:
    """The error for a node crisp-edge cannot lower, naming the ATen op and its module."""
    what = f" with {detail}" if detail else ""
    return UnsupportedOpError(f"{node.target} {_where(node)}{what} is not supported by "
                              f"crisp-edge {_version()}; supported: {SUPPORTED}")


def _bind(node: Any) -> dict[str, Any]:
    """Arguments of a call by schema name, defaults filled in."""
    out: dict[str, Any] = {}
    for i, arg in enumerate(node.target._schema.arguments):
        if i < len(node.args) and not arg.kwarg_only:
            out[arg.name] = node.args[i]
        elif arg.name in node.kwargs:
            out[arg.name] = node.kwargs[arg.name]
        else:
            out[arg.name] = arg.default_value if arg.has_default_value() else None
    return out


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    v = [int(x) for x in v]
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def capture(model: "torch.nn.Module", example_input: "torch.Tensor") -> Any:
    """``torch.export`` the eval-mode model and decompose to ATen (keeps conv2d/linear)."""
    import torch

    was_training = model.training
    try:
        with warnings.catch_warnings():  # torch-internal deprecation noise, not the user's
            warnings.simplefilter("ignore", FutureWarning)
            ep = torch.export.export(model.eval(), (example_input,))
            return ep.run_decompositions({})
    except Exception as e:  # torch raises many types here; the user needs the text
        raise UnsupportedOpError(f"torch.export could not capture {type(model).__qualname__}: "
                                 f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                                 ) from e
    finally:
        model.train(was_training)


class _Translator:
    """Walks the exported graph once, building the IR; one method per ATen op family."""

    def __init__(self, ep: Any, batch: int) -> None:
        self.ep, self.batch = ep, batch
        self.ir = IRGraph(values=[], ops=[])
        self.env: dict[Any, Any] = {}
        self.dropped = 0
        consts: dict[str, Any] = {}
        user_inputs: list[str] = []
        self.param_names: dict[str, str] = {}  # placeholder → parameter/buffer FQN
        for spec in ep.graph_signature.input_specs:
            if spec.kind.name == "USER_INPUT":
                user_inputs.append(spec.arg.name)
            elif spec.target in ep.state_dict:
                consts[spec.arg.name] = ep.state_dict[spec.target]
                self.param_names[spec.arg.name] = spec.target
            elif spec.target in ep.constants:
                consts[spec.arg.name] = ep.constants[spec.target]
        if len(user_inputs) != 1:
            raise ArgumentError(f"the model takes {len(user_inputs)} tensor inputs; crisp-edge "
                                "supports models with exactly one image input")
        self.consts, self.user_input = consts, user_inputs[0]

    # -- helpers ---------------------------------------------------------------------------
    def shape(self, node: Any, index: int | None = None) -> tuple[int, ...]:
        val = node.meta.get("val")
        if index is not None:
            val = val[index]
        import torch

        if not isinstance(val, torch.Tensor):
            raise unsupported(node, "a non-tensor result")
        if val.dtype != torch.float32:
            raise unsupported(node, f"dtype {val.dtype} (crisp-edge runs float32)")
        shape = tuple(int(d) for d in val.shape)
        if len(shape) < 2 or shape[0] != self.batch or len(shape) > 5:
            raise unsupported(node, f"result shape {shape}: every value must keep the batch "
                                    f"dim {self.batch} first and have 1 … 4 per-sample dims")
        return shape[1:]

    def value(self, node: Any, arg: Any, what: str) -> int:
        got = self.env.get(arg) if hasattr(arg, "meta") else None
        if not isinstance(got, int):
            raise unsupported(node, f"{what} that is not a computed activation")
        return got

    def param(self, arg: Any) -> str | None:
        """The FQN of the parameter a placeholder argument stands for (None: not one)."""
        return self.param_names.get(getattr(arg, "name", ""))

    def const(self, node: Any, arg: Any, what: str) -> np.ndarray | None:
        if arg is None:
            return None
        t = self.env.get(arg) if hasattr(arg, "meta") else None
        if not isinstance(t, np.ndarray):
            raise unsupported(node, f"a {what} that is not a parameter or buffer")
        return t

    def emit(self, node: Any, kind: str, inputs: list[int], index: int | None = None,
             **kw: Any) -> int:
        out = self.ir.new_value(self.shape(node, index))
        self.ir.ops.append(IROp(kind, inputs, out, source=_where(node), **kw))
        return out

    # -- ops -------------------------------------------------------------------------------
    def conv(self, node: Any, a: dict[str, Any]) -> int:
        if a.get("transposed"):
            raise unsupported(node, "transposed=True (conv_transpose)")
        x, w = self.value(node, a["input"], "an input"), self.const(node, a["weight"], "weight")
        assert w is not None
        if w.ndim != 4:
            raise unsupported(node, f"a rank-{w.ndim} weight (only 2-D convolution)")
        (sh, sw), (dh, dw) = _pair(a["stride"]), _pair(a["dilation"])
        kh, kw = w.shape[2], w.shape[3]
        pad = a["padding"]
        if isinstance(pad, str):
            th, tw = (0, 0) if pad == "valid" else (dh * (kh - 1), dw * (kw - 1))
            pads = (th // 2, tw // 2, th - th // 2, tw - tw // 2)  # torch puts the odd pixel last
        else:
            ph, pw = _pair(pad)
            pads = (ph, pw, ph, pw)
        attrs = dict(stride=(sh, sw), pads=pads, dilation=(dh, dw), groups=int(a["groups"]))
        return self.emit(node, "conv2d", [x], attrs=attrs, weight=w,
                         bias=self.const(node, a["bias"], "bias"), param=self.param(a["weight"]))

    def linear(self, node: Any, a: dict[str, Any]) -> int:
        x = self.value(node, a["input"], "an input")
        if len(self.ir.values[x]) != 1:
            raise unsupported(node, f"a per-sample input of shape {self.ir.values[x]} "
                                    "(flatten to (N, features) before the linear layer)")
        return self.emit(node, "linear", [x], weight=self.const(node, a["weight"], "weight"),
                         bias=self.const(node, a["bias"], "bias"), param=self.param(a["weight"]))

    def batch_norm(self, node: Any, a: dict[str, Any]) -> dict[int, int]:
        x = self.value(node, a["input"], "an input")
        mean, var = self.const(node, a["running_mean"], "running_mean"), \
            self.const(node, a["running_var"], "running_var")
        assert mean is not None and var is not None
        gamma = self.const(node, a["weight"], "weight")
        beta = self.const(node, a["bias"], "bias")
        if len(self.ir.values[x]) < 1 or self.ir.values[x][0] != mean.shape[0]:
            raise unsupported(node, f"a per-sample input of shape {self.ir.values[x]}")
        scale = (np.ones_like(mean) if gamma is None else gamma) / np.sqrt(var + float(a["eps"]))
        shift = (np.zeros_like(mean) if beta is None else beta) - mean * scale
        return {0: self.emit(node, "batch_norm", [x], index=0, weight=scale, bias=shift)}

    def activation(self, node: Any, a: dict[str, Any], name: str) -> int:
        lo, hi = (0, None) if name == "relu" else (a.get("min", a.get("min_val")),
                                                  a.get("max", a.get("max_val")))
        kind = {(0, None): "relu", (0, 6): "relu6"}.get((lo, hi))
        if kind is None:
            raise unsupported(node, f"bounds ({lo}, {hi}); only relu (0, ∞) and relu6 (0, 6)")
        return self.emit(node, kind, [self.value(node, a["self"], "an input")])

    def add(self, node: Any, a: dict[str, Any]) -> int:
        if a["alpha"] != 1:
            raise unsupported(node, f"alpha={a['alpha']}")
        x, y = self.value(node, a["self"], "an operand"), self.value(node, a["other"], "an operand")
        shapes = [tuple(n.meta["val"].shape) for n in (a["self"], a["other"], node)]
        if shapes[0] != shapes[1]:
            raise unsupported(node, f"broadcasting operands {shapes[0]} and {shapes[1]} "
                                    "(both must have the same shape)")
        return self.emit(node, "add", [x, y])

    def mul(self, node: Any, a: dict[str, Any]) -> int:
        """Only the squeeze-excite product x · s, s (N, C, 1, 1) broadcast over H × W (either
        operand order; x may be 1 × 1 itself, as late stages at small inputs are); any other
        product has no op in the format."""
        x, y = self.value(node, a["self"], "an operand"), self.value(node, a["other"], "an operand")
        sx, sy = self.ir.values[x], self.ir.values[y]
        for image, scale in ((x, y), (y, x)):
            si, ss = self.ir.values[image], self.ir.values[scale]
            if len(si) == 3 and ss == (si[0], 1, 1):
                return self.emit(node, "mul_channels", [image, scale])
        raise unsupported(node, f"operands of per-sample shapes {sx} and {sy} (only x · s with x "
                                "(C, H, W) and s (C, 1, 1), the squeeze-excite product)")

    def pool(self, node: Any, a: dict[str, Any], kind: str) -> Any:
        x = self.value(node, a["self"], "an input")
        if len(self.ir.values[x]) != 3:
            raise unsupported(node, f"a per-sample input of shape {self.ir.values[x]}")
        k = _pair(a["kernel_size"])
        attrs = dict(kernel=k, stride=_pair(a["stride"]) if a["stride"] else k,
                     padding=_pair(a["padding"]), ceil_mode=bool(a["ceil_mode"]))
        if kind == "max_pool2d":
            attrs["dilation"] = _pair(a["dilation"])
        else:
            attrs.update(count_include_pad=bool(a["count_include_pad"]),
                         divisor_override=int(a["divisor_override"] or 0))
        if node.target._overloadpacket.__name__ == "max_pool2d_with_indices":
            return {0: self.emit(node, kind, [x], index=0, attrs=attrs)}
        return self.emit(node, kind, [x], attrs=attrs)

    def adaptive(self, node: Any, a: dict[str, Any]) -> int:
        x = self.value(node, a["self"], "an input")
        if len(self.ir.values[x]) != 3:
            raise unsupported(node, f"a per-sample input of shape {self.ir.values[x]}")
        oh, ow = _pair(a["output_size"])
        if (oh, ow) == (1, 1):
            return self.emit(node, "global_avg_pool", [x])
        return self.emit(node, "adaptive_avg_pool2d", [x], attrs=dict(size=(oh, ow)))

    def mean(self, node: Any, a: dict[str, Any]) -> int:
        x = self.value(node, a["self"], "an input")
        rank = len(self.ir.values[x]) + 1
        dims = sorted(d % rank for d in (a["dim"] or []))
        if rank != 4 or dims != [2, 3] or a.get("dtype") is not None:
            raise unsupported(node, f"dim={a['dim']} (only the mean over dims (2, 3) of NCHW)")
        return self.emit(node, "global_avg_pool", [x])

    def reshape(self, node: Any, x_arg: Any) -> int:
        x = self.value(node, x_arg, "an input")
        if self.shape(node) == self.ir.values[x]:
            self.dropped += 1
            return x
        return self.emit(node, "reshape", [x])

    def softmax(self, node: Any, a: dict[str, Any]) -> int:
        x = self.value(node, a["self"], "an input")
        dim = int(a["dim"]) % (len(self.ir.values[x]) + 1)
        if dim == 0 or a.get("dtype") is not None or a.get("half_to_float"):
            raise unsupported(node, f"dim={a['dim']} (softmax over the batch dim)" if dim == 0
                              else "a dtype conversion")
        return self.emit(node, "softmax", [x], attrs=dict(axis=dim - 1))

    def identity(self, node: Any, a: dict[str, Any]) -> int:
        if a.get("train"):
            raise unsupported(node, "train=True (dropout must be in eval mode)")
        self.dropped += 1
        return self.value(node, a.get("self", a.get("input")), "an input")

    def call(self, node: Any) -> Any:
        if node.target is operator.getitem:
            parts, index = self.env.get(node.args[0]), node.args[1]
            if not isinstance(parts, dict) or index not in parts:
                raise unsupported(node, f"index {index} of a multi-result op")
            return parts[index]
        name = getattr(getattr(node.target, "_overloadpacket", None), "__name__", None)
        handler = _HANDLERS.get(name or "")
        if handler is None or not hasattr(node.target, "_schema"):
            raise unsupported(node)
        return handler(self, node, _bind(node))

    def run(self) -> IRGraph:
        import torch

        for node in self.ep.graph.nodes:
            if node.op == "placeholder":
                if node.name == self.user_input:
                    self.ir.input = self.ir.new_value(self.shape(node))
                    self.env[node] = self.ir.input
                elif node.name in self.consts:
                    t = self.consts[node.name]
                    if isinstance(t, torch.Tensor) and t.is_floating_point():
                        t = t.detach().to(torch.float64).numpy()
                    self.env[node] = t
            elif node.op == "call_function":
                self.env[node] = self.call(node)
            elif node.op == "output":
                outs = node.args[0]
                outs = outs if isinstance(outs, (list, tuple)) else (outs,)
                if len(outs) != 1 or not isinstance(self.env.get(outs[0]), int):
                    raise ArgumentError(f"the model returns {len(outs)} results; crisp-edge "
                                        "supports models returning one tensor")
                self.ir.output = self.env[outs[0]]
            else:
                raise unsupported(node, f"graph node kind {node.op!r}")
        return self.ir


_HANDLERS: dict[str, Callable[[_Translator, Any, dict[str, Any]], Any]] = {
    "conv2d": _Translator.conv,
    "convolution": _Translator.conv,
    "linear": _Translator.linear,
    "_native_batch_norm_legit_no_training": _Translator.batch_norm,
    "relu": lambda t, n, a: t.activation(n, a, "relu"),
    "relu6": lambda t, n, a: t.emit(n, "relu6", [t.value(n, a["self"], "an input")]),
    "hardtanh": lambda t, n, a: t.activation(n, a, "hardtanh"),
    "clamp": lambda t, n, a: t.activation(n, a, "clamp"),
    "add": _Translator.add,
    "mul": _Translator.mul,
    "silu": lambda t, n, a: t.emit(n, "silu", [t.value(n, a["self"], "an input")]),
    "sigmoid": lambda t, n, a: t.emit(n, "sigmoid", [t.value(n, a["self"], "an input")]),
    "hardswish": lambda t, n, a: t.emit(n, "hardswish", [t.value(n, a["self"], "an input")]),
    "hardsigmoid": lambda t, n, a: t.emit(n, "hardsigmoid", [t.value(n, a["self"], "an input")]),
    "max_pool2d": lambda t, n, a: t.pool(n, a, "max_pool2d"),
    "max_pool2d_with_indices": lambda t, n, a: t.pool(n, a, "max_pool2d"),
    "avg_pool2d": lambda t, n, a: t.pool(n, a, "avg_pool2d"),
    "adaptive_avg_pool2d": _Translator.adaptive,
    "_adaptive_avg_pool2d": _Translator.adaptive,
    "mean": _Translator.mean,
    "view": lambda t, n, a: t.reshape(n, a["self"]),
    "reshape": lambda t, n, a: t.reshape(n, a["self"]),
    "_unsafe_view": lambda t, n, a: t.reshape(n, a["self"]),
    "flatten": lambda t, n, a: t.reshape(n, a["self"]),
    "squeeze": lambda t, n, a: t.reshape(n, a["self"]),
    "unsqueeze": lambda t, n, a: t.reshape(n, a["self"]),
    "softmax": _Translator.softmax,
    "_softmax": _Translator.softmax,
    "clone": _Translator.identity,
    "alias": _Translator.identity,
    "contiguous": _Translator.identity,
    "detach": _Translator.identity,
    "dropout": _Translator.identity,
    "feature_dropout": _Translator.identity,
}


def to_ir(ep: Any, batch: int) -> tuple[IRGraph, int]:
    """Translate an exported program; returns the IR and the number of identities dropped."""
    t = _Translator(ep, batch)
    return t.run(), t.dropped


def lower(model: "torch.nn.Module", example_input: "torch.Tensor") -> Lowered:
    """Capture ``model`` on ``example_input`` (float32, batch first) and lower it to a graph."""
    import torch

    if not isinstance(example_input, torch.Tensor) or example_input.dtype != torch.float32 \
            or not 2 <= example_input.dim() <= 5:
        raise ArgumentError("example_input must be a float32 torch tensor with a batch dim and "
                            "1 … 4 per-sample dims, e.g. torch.randn(2, 3, 224, 224)")
    ir, dropped = to_ir(capture(model, example_input), int(example_input.shape[0]))
    folded = fold_batch_norm(ir)
    fused = fuse_activations(ir)
    weight_params: dict[int, str] = {}
    graph = to_graph(ir, weight_params)
    return Lowered(graph, folded, fused, dropped, weight_params)
