"""Per-layer encoding plans for ``crisp_edge.pack``: which pattern each weight is stored with.

Three modes: ``"dense"`` stores everything dense; ``"auto"`` detects each weight's pattern from
its zeros (:func:`crisp_edge.packing.patterns.choose_encoding`); ``"checkpoint"`` uses the pruning
checkpoint's pattern per layer role (first conv and depthwise: dense; classifier: N:M only;
body: hybrid; a layer exempt from N:M: block only), falling back to auto-detection, with the
reason reported, for a layer whose zeros do not fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from crisp_edge import format as fmt
from crisp_edge.errors import ArgumentError
from crisp_edge.format.pattern import Pattern
from crisp_edge.packing.patterns import EncodingChoice, choose_encoding, describe, misfit

MODES = ("auto", "checkpoint", "dense")


@dataclass(frozen=True)
class LayerInfo:
    """What the pruning stage says about one prunable layer (docs/checkpoint.md ``layers``)."""

    name: str
    param: str
    role: str  # "first" | "depthwise" | "classifier" | "body"
    blocks: bool
    nm: bool

    @classmethod
    def of(cls, item: Any) -> "LayerInfo":
        """From a checkpoint dict or a ``crisp_edge.pruning.masks.PrunableLayer``."""
        get: Any = item.get if isinstance(item, Mapping) else lambda k: getattr(item, k)
        return cls(str(get("name")), str(get("param")), str(get("role")), bool(get("blocks")),
                   bool(get("nm")))


def role_pattern(layer: LayerInfo, pattern: Pattern) -> Pattern | None:
    """The layout the checkpoint's pattern gives a layer of this role (None: dense)."""
    if layer.role in ("first", "depthwise") or not (layer.blocks or layer.nm):
        return None
    if layer.role == "classifier" or not layer.blocks:
        return Pattern(pattern.n, pattern.m, pattern.block_rows, None, pattern.shared_rows)
    if not layer.nm:
        return Pattern(1, 1, pattern.block_rows, pattern.block_cols)
    return pattern


def weight_ops(graph: fmt.Graph) -> list[tuple[int, fmt.Op]]:
    """(op index, op) of every conv2d/linear with a weight, in execution order."""
    return [(i, op) for i, op in enumerate(graph.ops)
            if op.kind in (fmt.OP_CONV2D, fmt.OP_LINEAR) and op.weight is not None]


def layer_name(param: str | None, op_index: int) -> str:
    if param is None:
        return f"op {op_index}"
    return param[:-len(".weight")] if param.endswith(".weight") else param


def _matrix(t: fmt.Tensor) -> np.ndarray:
    return np.asarray(t.dense(), np.float32).reshape(t.dims[0], -1)


def plan_encodings(graph: fmt.Graph, weight_params: Mapping[int, str], mode: str, *,
                   int8: bool = False, pattern: Any = None,
                   layers: Iterable[Any] | None = None) -> dict[int, EncodingChoice]:
    """Weight tensor id → how it is stored, for every conv/linear weight of ``graph``."""
    if mode not in MODES:
        raise ArgumentError(f"pattern mode must be one of {', '.join(MODES)}, got {mode!r}")
    infos: dict[str, LayerInfo] = {}
    ckpt_pattern = None
    if mode == "checkpoint":
        if pattern is None or layers is None:
            raise ArgumentError("pattern mode 'checkpoint' needs the checkpoint's pattern and "
                                "layers; use 'auto' for a model pruned elsewhere")
        ckpt_pattern = Pattern.of(pattern)
        infos = {info.param: info for info in map(LayerInfo.of, layers)}
    plan: dict[int, EncodingChoice] = {}
    for index, op in weight_ops(graph):
        assert op.weight is not None
        t = graph.tensors[op.weight]
        param = weight_params.get(op.weight)
        name = layer_name(param, index)
        w = _matrix(t)
        if mode == "dense":
            plan[op.weight] = describe(w, None, int8, name, "dense requested")
            continue
        if mode == "auto":
            plan[op.weight] = choose_encoding(w, int8=int8, tap_cols=t.dims[-1], name=name)
            continue
        assert ckpt_pattern is not None
        info = infos.get(param or "")
        if info is None:
            choice = choose_encoding(w, int8=int8, tap_cols=t.dims[-1], name=name)
            choice.reason = "not a prunable layer of the checkpoint; auto-detected" + \
                (f" ({choice.reason})" if choice.reason else "")
            plan[op.weight] = choice
            continue
        wanted = role_pattern(info, ckpt_pattern)
        problem = None if wanted is None else misfit(w, wanted, t.dims[-1])
        if problem is None:
            plan[op.weight] = describe(w, wanted, int8, name,
                                       f"{info.role} layer: dense" if wanted is None else "")
            continue
        choice = choose_encoding(w, int8=int8, tap_cols=t.dims[-1], name=name)
        choice.reason = f"zeros do not fit {wanted} ({problem}); auto-detected" + \
            (f": {choice.reason}" if choice.reason else "")
        plan[op.weight] = choice
    return plan
