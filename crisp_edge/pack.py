"""Pack a torch image classifier into one ``.crisp`` file.

>>> report = pack(model, torch.randn(2, 3, 32, 32), "model.crisp",
...               labels=[(7, "cat"), (12, "dog")])          # doctest: +SKIP
>>> print(report)                                              # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from crisp_edge import format as fmt
from crisp_edge.errors import ArgumentError

if TYPE_CHECKING:
    import torch


@dataclass
class PackReport:
    """What :func:`pack` wrote."""

    path: str
    bytes: int
    ops: int
    folded_bn: int
    fused_activations: int
    dropped_identities: int
    macs: int

    def __str__(self) -> str:
        return (f"wrote {self.path}: {self.bytes} bytes, {self.ops} ops "
                f"({self.folded_bn} BatchNorm folded, {self.fused_activations} activations fused, "
                f"{self.dropped_identities} identities dropped), {self.macs:,} MACs per sample")


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


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and ``os.replace``,
    so readers see the old file or the complete new one, never a half-written one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def pack(model: "torch.nn.Module", example_input: "torch.Tensor", path: str | os.PathLike[str],
         *, labels: Iterable[tuple[int, str]] | None = None,
         provenance: Mapping[str, Any] | None = None) -> PackReport:
    """Lower ``model`` (traced on ``example_input``, float32 with a batch dim) and write it to
    ``path`` as a ``.crisp`` file.

    ``labels`` gives one ``(class_id, name)`` per output index; ``provenance`` entries are merged
    into (and may override) the PROV JSON, which always records ``crisp_edge_version``,
    ``created``, ``source``, ``source_sha256`` and ``input_shape``. The model's train/eval mode
    is left as it was. Raises :class:`~crisp_edge.errors.UnsupportedOpError` for an op the
    runtime lacks, :class:`~crisp_edge.errors.ArgumentError` for bad arguments.
    """
    import crisp_edge
    from crisp_edge.lower import lower

    lowered = lower(model, example_input)
    graph = lowered.graph
    out_count = int(np.prod(graph.values[graph.output_value].shape))
    cls = type(model)
    prov: dict[str, Any] = {
        "crisp_edge_version": crisp_edge.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": f"{cls.__module__}.{cls.__qualname__}",
        "source_sha256": state_dict_sha256(model),
        "input_shape": list(graph.values[graph.input_value].shape),
    }
    prov.update(provenance or {})
    try:
        json.dumps(prov)
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"provenance must be JSON-serialisable: {e}") from None
    data = fmt.encode_model(fmt.ModelFile(graph, _labels(labels, out_count), prov))
    write_atomic(path, data)
    return PackReport(os.fspath(path), len(data), len(graph.ops), lowered.folded_bn,
                      lowered.fused_activations, lowered.dropped_identities,
                      sum(fmt.op_macs(graph, op) for op in graph.ops))
