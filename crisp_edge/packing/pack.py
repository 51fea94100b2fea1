"""Pack a torch image classifier into one ``.crisp`` file.

>>> report = pack(model, torch.randn(2, 3, 32, 32), "model.crisp",
...               labels=[(7, "cat"), (12, "dog")])          # doctest: +SKIP
>>> print(report)                                              # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from pathlib import Path

import numpy as np

from crisp_edge import format as fmt
from crisp_edge.fileio import write_atomic
from crisp_edge.errors import ArgumentError
from crisp_edge.packing.forms import check_isa, dense_by_cost
from crisp_edge.packing.patterns import encode_weight

if TYPE_CHECKING:
    import torch


STORED_DENSE = "stored dense, pruned"  # how a row says :mod:`crisp_edge.packing.forms` chose


@dataclass
class LayerRow:
    """How one conv/linear weight was stored."""

    name: str
    encoding: str
    pattern: str
    density: float
    bytes: int
    dense_bytes: int
    dense_macs: int
    effective_macs: int
    note: str = ""


@dataclass
class PackReport:
    """What :func:`pack` wrote; ``str(report)`` is a summary line plus a per-layer table."""

    path: str
    bytes: int
    ops: int
    folded_bn: int
    fused_activations: int
    dropped_identities: int
    macs: int
    effective_macs: int = 0
    int8: bool = False
    layers: list[LayerRow] = field(default_factory=list)
    preprocess: fmt.Preprocess | None = None

    @property
    def notes(self) -> list[str]:
        """The layers stored differently from what was asked (fallbacks, and pruned convs
        stored dense for the target's kernels), one line each."""
        return [f"{row.name}: {row.note}" for row in self.layers if row.note]

    def table(self) -> str:
        """The per-layer table: encoding, pattern, density, bytes, MACs."""
        head = (f"{'layer':<28} {'encoding':<10} {'pattern':<20} {'density':>7} {'KiB':>9} "
                f"{'dense KiB':>9} {'MMACs':>8} {'eff MMACs':>9}")
        lines = [head, "-" * len(head)]
        for r in self.layers:
            lines.append(f"{r.name[-28:]:<28} {r.encoding:<10} {r.pattern:<20} {r.density:>7.3f} "
                         f"{r.bytes / 1024:>9.1f} {r.dense_bytes / 1024:>9.1f} "
                         f"{r.dense_macs / 1e6:>8.2f} {r.effective_macs / 1e6:>9.2f}")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    def __str__(self) -> str:
        kind = "int8" if self.int8 else "float32"
        summary = (f"wrote {self.path}: {self.bytes} bytes, {self.ops} ops, {kind} "
                   f"({self.folded_bn} BatchNorm folded, {self.fused_activations} activations "
                   f"fused, {self.dropped_identities} identities dropped), {self.macs:,} MACs "
                   f"per sample ({self.effective_macs:,} effective)")
        summary += "\n" + preprocess_line(self.preprocess)
        return summary + ("\n" + self.table() if self.layers else "")


REPACK_HINT = "repack with --mean/--std/--resize/--channel-order to personalise from images"


def preprocess_line(prep: fmt.Preprocess | Mapping[str, Any] | None) -> str:
    """One line saying how images become the input, from a record or its
    :meth:`~crisp_edge.format.Preprocess.describe` dict (``pack``'s report, ``inspect``)."""
    if prep is None:
        return f"preprocessing: not stored ({REPACK_HINT})"
    d = prep.describe() if isinstance(prep, fmt.Preprocess) else prep
    resize = d["resize"] + (f" {d['resize_size']}" if d["resize_size"] else "")
    mean = ",".join(f"{v:.4g}" for v in d["mean"])
    std = ",".join(f"{v:.4g}" for v in d["std"])
    return (f"preprocessing: {d['width']}x{d['height']} {d['channel_order']}, resize {resize}, "
            f"scale {d['scale']:.6g}, mean {mean}, std {std}")


def resolve_preprocess(base: fmt.Preprocess | None, input_shape: Iterable[int],
                       overrides: Mapping[str, Any] | None) -> fmt.Preprocess | None:
    """``base`` (e.g. a data source's) with the fields of ``overrides`` replaced: ``mean``,
    ``std`` (3 floats each), ``resize`` (an int or ``"none"``, ``"stretch"``,
    ``"shorter_side"``), ``resize_size``, ``channel_order`` (an int, ``"rgb"``, ``"bgr"``),
    ``scale``; height and width from ``input_shape`` (C, H, W). Without a base, ``mean`` and
    ``std`` are needed. No overrides: ``base`` as it is."""
    if not overrides:
        return base
    shape = [int(d) for d in input_shape]
    if len(shape) != 3 or shape[0] != 3:
        raise ArgumentError(f"preprocessing needs a (3,H,W) input; the model takes {tuple(shape)}")
    unknown = set(overrides) - {"mean", "std", "resize", "resize_size", "channel_order", "scale"}
    if unknown:
        raise ArgumentError(f"preprocess: unknown field(s) {', '.join(sorted(unknown))}")
    if base is None and not {"mean", "std"} <= set(overrides):
        raise ArgumentError("preprocessing needs --mean and --std (the data source is unknown)")
    fields: dict[str, Any] = {"mean": None, "std": None, "resize": fmt.RESIZE_NONE,
                              "resize_size": 0, "channel_order": fmt.CHANNELS_RGB,
                              "scale": 1 / 255}
    if base is not None:
        fields.update(mean=base.mean, std=base.std, resize=base.resize,
                      resize_size=base.resize_size, channel_order=base.channel_order,
                      scale=base.scale)
    fields.update(overrides)
    resize = fields["resize"]
    if isinstance(resize, str):
        names = {n: k for k, n in fmt.RESIZE_NAMES.items()}
        key = resize.replace("-", "_").lower()
        if key not in names:
            raise ArgumentError(f"resize {resize!r}: use none, stretch or shorter_side")
        resize = names[key]
    order = fields["channel_order"]
    if isinstance(order, str):
        if order.upper() not in ("RGB", "BGR"):
            raise ArgumentError(f"channel order {order!r}: use rgb or bgr")
        order = fmt.CHANNELS_BGR if order.upper() == "BGR" else fmt.CHANNELS_RGB
    size = int(fields["resize_size"])
    if "resize" in overrides and "resize_size" not in overrides:
        size = max(shape[1], shape[2]) if resize == fmt.RESIZE_SHORTER_SIDE else 0
    prep = fmt.Preprocess(shape[1], shape[2], tuple(fields["mean"]), tuple(fields["std"]),
                          resize, size, order, float(fields["scale"]))
    problem = prep.problem(shape)
    if problem is not None:
        raise ArgumentError(f"preprocess: {problem}")
    return prep


def state_dict_sha256(model: "torch.nn.Module") -> str:
    """SHA-256 over the bytes of every state-dict tensor, in the state dict's key order."""
    import torch

    h = hashlib.sha256()
    for tensor in model.state_dict().values():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _labels(labels: Iterable[tuple[int, str]] | None, count: int) -> list[fmt.Label] | None:
    if labels is None:
        return None
    out = [fmt.Label(int(class_id), str(name)) for class_id, name in labels]
    if len(out) != count:
        raise ArgumentError(f"labels: {len(out)} given, but the model has {count} outputs "
                            "(one (class_id, name) per output index)")
    for i, label in enumerate(out):
        raw = label.name.encode("utf-8")
        if len(raw) > fmt.MAX_LABEL_NAME_BYTES or b"\0" in raw:
            raise ArgumentError(f"labels: name {i} is longer than {fmt.MAX_LABEL_NAME_BYTES} "
                                "bytes or contains NUL")
        if not -2**31 <= label.class_id < 2**31:
            raise ArgumentError(f"labels: class id {label.class_id} does not fit in int32")
    return out


def _apply_masks(graph: fmt.Graph, weight_params: Mapping[int, str],
                 masks: Mapping[str, Any]) -> None:
    """Zero each weight where its parameter's mask is False (conv masks OIHW → OHWI). Folded
    BatchNorm scales whole rows, so it neither adds nor removes zeros."""
    for tid, param in weight_params.items():
        if param not in masks:
            continue
        keep = np.asarray(masks[param].detach().cpu().numpy() if hasattr(masks[param], "detach")
                          else masks[param], dtype=bool)
        t = graph.tensors[tid]
        if keep.ndim == 4:
            keep = keep.transpose(0, 2, 3, 1)
        if keep.shape != t.dims:
            raise ArgumentError(f"mask of {param} has shape {keep.shape}, its weight "
                                f"{t.dims} (OHWI)")
        t.data = np.where(keep, t.data, np.float32(0)).astype(np.float32)


def _saliency(stats: Mapping[str, Any], weight_params: Mapping[int, str],
              tensor_map: Mapping[int, int] | None) -> list[fmt.Saliency]:
    """SALY records from ``{param or layer name: (classes, nbr, nbc)}`` statistics."""
    by_param = {param: tid for tid, param in weight_params.items()}
    records = []
    for key, data in stats.items():
        tid = by_param.get(key, by_param.get(f"{key}.weight"))
        if tid is None:
            raise ArgumentError(f"saliency statistics for {key!r}, which is no conv/linear "
                                "weight of the packed graph")
        arr = np.asarray(data.detach().cpu().float().numpy() if hasattr(data, "detach") else data,
                         dtype=np.float16)
        name = key[:-len(".weight")] if key.endswith(".weight") else key
        records.append(fmt.Saliency(tensor_map[tid] if tensor_map else tid, name, arr))
    return records


def _store_dense_by_cost(graph: fmt.Graph, plan: dict[int, Any],
                         unencoded: Mapping[int, fmt.Tensor], isa: str) -> str:
    """Store dense (``unencoded``: the weights before encoding, their zeros as zeros) the
    convs :func:`crisp_edge.packing.forms.dense_by_cost` names for ``isa``, noting why in
    their plan entry; returns the tier packed for."""
    ops, tier = dense_by_cost(graph, isa)
    for index in ops:
        tid = graph.ops[index].weight
        assert tid is not None
        was = plan[tid]
        graph.tensors[tid] = encode_weight(unencoded[tid], None, False)
        plan[tid] = dataclasses.replace(
            was, encoding=fmt.ENCODING_DENSE_F32, pattern=None, density=1.0,
            bytes=len(graph.tensors[tid].payload()),
            reason=f"{STORED_DENSE} {was.pattern}: it runs dense on {tier}"
            + (f" ({was.reason})" if was.reason else ""))
    return tier


def _rows(graph: fmt.Graph, plan: Mapping[int, Any], tensor_map: Mapping[int, int]
          ) -> list[LayerRow]:
    from crisp_edge.packing.plan import weight_ops

    new_to_old = {new: old for old, new in tensor_map.items()}
    rows = []
    for _, op in weight_ops(graph):
        assert op.weight is not None
        t, choice = graph.tensors[op.weight], plan[new_to_old[op.weight]]
        rows.append(LayerRow(choice.name, t.encoding_name, str(choice.pattern or "dense"),
                             choice.density, len(t.payload()), choice.dense_bytes,
                             fmt.op_macs(graph, op), fmt.op_effective_macs(graph, op),
                             choice.reason if "auto-detected" in choice.reason or
                             choice.reason.startswith(("no pattern", STORED_DENSE)) else ""))
    return rows


def pack(model: "torch.nn.Module", example_input: "torch.Tensor", path: str | os.PathLike[str],
         *, labels: Iterable[tuple[int, str]] | None = None,
         provenance: Mapping[str, Any] | None = None, masks: Mapping[str, Any] | None = None,
         pattern: Any = None, layers: Iterable[Any] | None = None, int8: bool = False,
         calibration: Any = None, pattern_mode: str = "auto",
         saliency: Mapping[str, Any] | None = None, percentile: float | None = None,
         preprocess: fmt.Preprocess | None = None, isa: str = "host") -> PackReport:
    """Lower ``model`` (traced on ``example_input``, float32 with a batch dim) and write it to
    ``path`` as a ``.crisp`` file.

    ``labels`` gives one ``(class_id, name)`` per output index; ``provenance`` entries are merged
    into (and may override) the PROV JSON, which always records ``crisp_edge_version``,
    ``created``, ``source``, ``source_sha256``, ``input_shape``, ``int8`` and ``pattern_mode``.

    Weights: ``masks`` ({parameter: bool tensor}) are applied first. ``pattern_mode="auto"``
    stores each conv/linear weight in the smallest layout its zeros allow (hybrid, N:M only,
    block only or dense; see :func:`crisp_edge.packing.patterns.choose_encoding`); ``"checkpoint"`` uses
    ``pattern`` per the roles in ``layers`` (a pruning checkpoint's fields), falling back to
    auto for a layer that does not fit; ``"dense"`` stores everything dense. A float32 pruned
    conv the runtime's cost table runs dense on kernel tier ``isa`` is then stored dense
    (:mod:`crisp_edge.packing.forms`; ``"host"``: this machine's tier, ``"portable"``: keep
    every pattern, or ``"avx512f"``, ``"avx2_fma"``, ``"neon"``, ``"scalar"``: pack for the
    board's tier); the PROV JSON records the tier as ``isa`` (``"portable"`` for int8, which
    has no dense choice). ``int8=True``
    quantises (:mod:`crisp_edge.packing.quantize`) with activation ranges from ``calibration`` images
    (an array/tensor (N, *input shape) or an iterable of batches; min/max, or ``percentile``).
    ``saliency`` ({parameter or layer: (classes, nbr, nbc)}) is stored in SALY.
    ``preprocess`` (a :class:`crisp_edge.format.Preprocess`: how an image file becomes the
    input) is stored in PREP so the runtime can take images (``crisp_image_load``); without
    it the file has no PREP and the runtime refuses images, saying how to repack.

    The model's train/eval mode is left as it was. Raises
    :class:`~crisp_edge.errors.UnsupportedOpError` for an op the runtime lacks,
    :class:`~crisp_edge.errors.ArgumentError` for bad arguments.
    """
    from crisp_edge.version import __version__
    from crisp_edge.packing.lower import lower
    from crisp_edge.packing.plan import plan_encodings
    from crisp_edge.packing.quantize import calibrate, quantize_graph, refuse_float_only_ops

    if int8 and calibration is None:
        raise ArgumentError("int8 packing needs calibration images (a few per user class)")
    check_isa(isa)
    lowered = lower(model, example_input)
    graph = lowered.graph
    if masks:
        _apply_masks(graph, lowered.weight_params, masks)
    plan = plan_encodings(graph, lowered.weight_params, pattern_mode, int8=int8,
                          pattern=pattern, layers=layers)
    tensor_map: dict[int, int] = {}
    packed_for = "portable"  # int8: no dense choice
    if int8:
        refuse_float_only_ops(graph, lowered.weight_params)
        ranges = calibrate(graph, calibration, percentile=percentile)
        graph = quantize_graph(graph, ranges, {t: c.pattern for t, c in plan.items()},
                               tensor_map)
    else:
        unencoded = {tid: graph.tensors[tid] for tid in plan}
        for tid, choice in plan.items():
            graph.tensors[tid] = encode_weight(graph.tensors[tid], choice.pattern, False)
        tensor_map = {t: t for t in range(len(graph.tensors))}
        packed_for = _store_dense_by_cost(graph, plan, unencoded, isa)
    out_count = int(np.prod(graph.values[graph.output_value].shape))
    cls = type(model)
    prov: dict[str, Any] = {
        "crisp_edge_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": f"{cls.__module__}.{cls.__qualname__}",
        "source_sha256": state_dict_sha256(model),
        "input_shape": list(graph.values[graph.input_value].shape),
        "int8": int8,
        "pattern_mode": pattern_mode,
        "isa": packed_for,
    }
    prov.update(provenance or {})
    try:
        json.dumps(prov)
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"provenance must be JSON-serialisable: {e}") from None
    saly = _saliency(saliency, lowered.weight_params, tensor_map) if saliency else None
    if preprocess is not None:
        problem = preprocess.problem(graph.values[graph.input_value].shape)
        if problem is not None:
            raise ArgumentError(f"preprocess: {problem}")
    data = fmt.encode_model(fmt.ModelFile(graph, _labels(labels, out_count), prov, saly,
                                          preprocess=preprocess))
    write_atomic(path, data)
    return PackReport(os.fspath(path), len(data), len(graph.ops), lowered.folded_bn,
                      lowered.fused_activations, lowered.dropped_identities,
                      sum(fmt.op_macs(graph, op) for op in graph.ops),
                      sum(fmt.op_effective_macs(graph, op) for op in graph.ops), int8,
                      _rows(graph, plan, tensor_map), preprocess)


def _file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_labels(ckpt: Any, outputs: int) -> list[tuple[int, str]]:
    """(class id, name) per output index: the user classes in head order for a reduced head,
    every original class (user classes named) for a kept head."""
    names = dict(zip(ckpt.classes, ckpt.class_names))
    if len(ckpt.classes) == outputs:
        ids = list(ckpt.classes)
    elif int(ckpt.head.get("original_num_classes", -1)) == outputs:
        ids = list(range(outputs))
    else:
        raise ArgumentError(f"the checkpoint's model has {outputs} outputs but names "
                            f"{len(ckpt.classes)} classes (head {ckpt.head}); it is inconsistent")
    return [(int(i), str(names.get(i, f"class {i}"))) for i in ids]


def calibration_images(spec: str, image_size: int, classes: Iterable[int] | None = None,
                       limit: int = 256) -> "torch.Tensor":
    """Up to ``limit`` images, spread evenly over the calibration split of the data source
    ``spec`` (the syntax of ``crisp-edge prune --data``), of ``classes`` (default all), as
    float32 (N, C, H, W)."""
    import torch

    from crisp_edge.data.sources import open_source

    data = open_source(spec, split="calibration", image_size=image_size, augment=False)
    if classes is not None:
        data = data.subset(list(classes))
    if len(data) == 0:
        raise ArgumentError(f"{spec!r} has no calibration images"
                            + (f" of classes {list(classes)}" if classes is not None else ""))
    step = max(1, len(data) // limit)
    return torch.stack([data[i][0] for i in range(0, len(data), step)][:limit]).float()


def _without_directories(spec: str | None) -> str | None:
    """A data spec with its path cut to the last component: ``imagefolder:/home/ann/photos`` →
    ``imagefolder:photos``; specs without a path stay as they are."""
    if not spec or ":" not in spec:
        return spec
    kind, rest = spec.split(":", 1)
    if "/" not in rest and os.sep not in rest:
        return spec
    return f"{kind}:{Path(rest.rstrip('/')).name}"


def _model_source_provenance(model_source: str | None) -> dict[str, Any]:
    """``model_source`` as ``FILE.py:CLASS`` or ``MODEL.onnx`` with the file's name only, and
    its sha256."""
    if not model_source:
        return {"model_source": model_source}
    from crisp_edge.models.onnx_models import is_onnx_source

    if is_onnx_source(model_source):
        path, cls = model_source, ""
    else:
        path, _, cls = model_source.rpartition(":")
    name = f"{Path(path).name}:{cls}" if cls else Path(path).name
    out: dict[str, Any] = {"model_source": name if path else model_source}
    if path and Path(path).is_file():
        out["model_source_sha256"] = _file_sha256(path)
    return out


def pack_checkpoint(checkpoint_path: str | os.PathLike[str], out_path: str | os.PathLike[str],
                    *, model_source: str | None = None, int8: bool = False,
                    calibration: Any = None, pattern_mode: str = "checkpoint",
                    percentile: float | None = None,
                    preprocess: fmt.Preprocess | Mapping[str, Any] | None = None,
                    isa: str = "host") -> PackReport:
    """Pack a pruning checkpoint (docs/checkpoint.md): the model rebuilt with its masked
    weights, labels from ``classes``/``class_names``, each prunable layer encoded with the
    checkpoint's pattern per its role (``pattern_mode="checkpoint"``; a layer whose zeros do not
    fit is auto-detected and reported), SALY from the saliency statistics, provenance with the
    pruning config, pattern and the checkpoint's hash. ``int8=True`` needs ``calibration``:
    images (array/tensor/iterable of batches) or a data source spec string, from which up to
    256 images of the user's classes are used. A checkpoint of a user model needs
    ``model_source`` (the user's ``FILE.py:CLASS``): the checkpoint never chooses code to run.

    PREP (how an image becomes the input) comes from the checkpoint's data source
    (:func:`crisp_edge.data.sources.source_preprocess`: synthetic, CIFAR-100 or an image
    folder, at the checkpoint's input size); ``preprocess`` replaces it (a
    :class:`crisp_edge.format.Preprocess`) or some of its fields (a mapping, see
    :func:`resolve_preprocess`). With neither, the file has no PREP. ``isa`` as
    :func:`pack`."""
    import torch

    from crisp_edge.data.sources import source_preprocess

    from crisp_edge.models.checkpoint import (build_model_from_checkpoint, load_checkpoint,
                                              model_for_checkpoint)

    ckpt = load_checkpoint(checkpoint_path)
    arch, model_source = model_for_checkpoint(ckpt, checkpoint_path, model_source=model_source)
    model = build_model_from_checkpoint(ckpt, arch=arch, model_source=model_source,
                                        path=checkpoint_path)
    if isinstance(calibration, str):
        # The user's classes: with --keep-head, ``classes`` lists every class of the head.
        calibration = calibration_images(calibration, int(ckpt.input_shape[-1]),
                                         ckpt.user_classes or ckpt.classes)
    example = torch.zeros(2, *[int(d) for d in ckpt.input_shape])
    with torch.no_grad():
        outputs = int(np.prod(model(example).shape[1:]))
    provenance = {
        # File names and hashes only: a model file travels to boards and other people, and
        # the packer's directories (/home/NAME/...) are none of their business.
        "checkpoint": Path(checkpoint_path).name,
        "checkpoint_sha256": _file_sha256(checkpoint_path),
        "checkpoint_kind": ckpt.kind,
        "arch": arch,  # what was built: the user's --model wins over the checkpoint's arch
        **_model_source_provenance(model_source),
        "pattern": ckpt.pattern,
        "pruning": ckpt.config,
        "classes": [int(c) for c in ckpt.classes],
        # What `crisp-edge eval` measures by default (a --keep-head head answers over all).
        "user_classes": [int(c) for c in (ckpt.user_classes or ckpt.classes)],
        "head": ckpt.head,
        "data": _without_directories(ckpt.data),
        "pruned_with": ckpt.crisp_edge_version,
    }
    try:
        json.dumps(provenance)
    except (TypeError, ValueError):
        provenance = json.loads(json.dumps(provenance, default=str))
    mode = pattern_mode
    if mode == "checkpoint" and (ckpt.pattern is None or not ckpt.layers):
        mode = "auto"  # a base checkpoint: no pruning pattern to follow
    shape = [int(d) for d in ckpt.input_shape]
    if isinstance(preprocess, fmt.Preprocess):
        prep: fmt.Preprocess | None = preprocess
    else:
        base = None
        if ckpt.data and len(shape) == 3 and shape[0] == 3 and shape[1] == shape[2]:
            base = source_preprocess(ckpt.data, shape[2])
        prep = resolve_preprocess(base, shape, preprocess)
    return pack(model, example, out_path, labels=checkpoint_labels(ckpt, outputs),
                provenance=provenance, masks=ckpt.masks or None, pattern=ckpt.pattern,
                layers=ckpt.layers, int8=int8, calibration=calibration, pattern_mode=mode,
                saliency=ckpt.saliency or None, percentile=percentile, preprocess=prep,
                isa=isa)
