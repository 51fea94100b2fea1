"""ONNX files as models: ``--model MODEL.onnx`` (and ``crisp-edge pack MODEL.onnx``) converted to
a torch ``nn.Module`` by onnx2torch, which then prunes and packs through the same torch path as
any other model.

Before conversion, two things common in real files are smoothed over, since onnx2torch refuses
them: initializers reached through ``Identity`` nodes (torch's TorchScript exporter writes these
for weights it deduplicated) become initializers of their own, and a file whose opset is newer
than onnx2torch converts is brought down to opset :data:`FALLBACK_OPSET` with ONNX's version
converter. An ONNX file is data, not code: converting it runs none of its contents.

>>> model = build_onnx_model("model.onnx")                       # doctest: +SKIP
>>> onnx_input_shape("model.onnx")                               # doctest: +SKIP
(3, 32, 32)
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from crisp_edge.errors import ArgumentError, FormatError, UnsupportedOpError
from crisp_edge.models.torchvision_stand_in import without_torchvision

if TYPE_CHECKING:
    from torch import nn

FALLBACK_OPSET = 17  # the newest opset onnx2torch 1.5 converts every classifier op at


def is_onnx_source(source: str | None) -> bool:
    """Whether a ``--model`` value is an ONNX file (by its ``.onnx`` suffix)."""
    return source is not None and source.lower().endswith(".onnx")


def _modules() -> tuple[Any, Any]:
    try:
        import onnx

        with without_torchvision():
            import onnx2torch
    except ImportError as e:
        raise ArgumentError(f"ONNX models need onnx and onnx2torch, which are not installed "
                            f"({e}); install them with `pip install onnx && pip install "
                            "--no-deps onnx2torch==1.5.15` (--no-deps: its torchvision would "
                            "pull another torch)") from None
    return onnx, onnx2torch


def load_onnx(path: str | os.PathLike[str]) -> Any:
    """The ``onnx.ModelProto`` of ``path``, checked by ONNX's checker."""
    onnx, _ = _modules()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ArgumentError(f"ONNX file {path!r} does not exist")
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model)
    except Exception as e:  # protobuf and the checker raise several types
        raise FormatError(f"{path!r} is not a valid ONNX model: {type(e).__name__}: {e}") from e
    return model


def _image_inputs(model: Any) -> list[Any]:
    """Graph inputs that are not initializers (older exporters list weights as inputs too)."""
    weights = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in weights]


def onnx_input_shape(path: str | os.PathLike[str], model: Any = None) -> tuple[int, ...] | None:
    """The per-sample input shape (C, H, W) of the file's one input, None when a dimension
    other than the batch is symbolic (then ``pack`` needs --input-shape)."""
    model = model if model is not None else load_onnx(path)
    inputs = _image_inputs(model)
    if len(inputs) != 1:
        raise ArgumentError(f"{os.fspath(path)!r} has {len(inputs)} inputs; crisp-edge supports "
                            "models with exactly one image input")
    dims = inputs[0].type.tensor_type.shape.dim
    sizes = [d.dim_value if d.HasField("dim_value") else 0 for d in dims[1:]]
    return tuple(sizes) if sizes and all(s > 0 for s in sizes) else None


def _inline_identity_initializers(model: Any) -> None:
    """Replace each ``Identity`` of an initializer by a copy of the initializer under the
    Identity's output name (onnx2torch needs conv/gemm weights to be initializers)."""
    onnx, _ = _modules()
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in initializers:
            copy = onnx.TensorProto()
            copy.CopyFrom(initializers[node.input[0]])
            copy.name = node.output[0]
            graph.initializer.append(copy)
            initializers[copy.name] = copy
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)


def _opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _convert(model: Any, path: str) -> "nn.Module":
    onnx, onnx2torch = _modules()
    try:
        return onnx2torch.convert(model)
    except NotImplementedError as e:
        if _opset(model) > FALLBACK_OPSET:
            try:
                older = onnx.version_converter.convert_version(model, FALLBACK_OPSET)
            except Exception:  # the version converter cannot bring every file down
                older = None
            if older is not None:
                return _convert(older, path)
        found = re.search(r"operation_type='([^']*)', version=(\d+)", str(e))
        what = f"the ONNX op {found[1]} (opset {found[2]})" if found else str(e)
        raise UnsupportedOpError(f"{path!r}: onnx2torch cannot convert {what}; re-export the "
                                 "model without it") from e
    except Exception as e:  # onnx2torch raises KeyError/ValueError/... on graphs it cannot map
        raise UnsupportedOpError(f"{path!r}: onnx2torch could not convert the model: "
                                 f"{type(e).__name__}: {e}") from e


def _last_linear(model: "nn.Module") -> tuple[str, Any] | None:
    from torch import nn

    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return found[-1] if found else None


def build_onnx_model(path: str | os.PathLike[str], num_classes: int | None = None
                     ) -> "nn.Module":
    """The ONNX file at ``path`` as a torch module (in eval mode) with the file's weights. With
    ``num_classes`` different from the outputs of its last linear layer (the classifier), that
    layer is replaced by a fresh one of ``num_classes`` outputs, as ``num_classes=`` does for a
    zoo or timm model: a pruned checkpoint's reduced head then loads into it."""
    from torch import nn

    path = os.fspath(path)
    model = load_onnx(path)
    _inline_identity_initializers(model)
    module = _convert(model, path)
    head = _last_linear(module)
    if num_classes is not None and (head is None or head[1].out_features != num_classes):
        if head is None:
            raise ArgumentError(f"{path!r} has no linear classifier to give {num_classes} "
                                "outputs")
        name, old = head
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, nn.Linear(old.in_features, num_classes, bias=old.bias is not None))
    return module.eval()
