"""What a ``.crisp`` file holds, as JSON-ready data: the library behind ``crisp-edge inspect``
(the command only prints it)."""

from __future__ import annotations

from typing import Any

import numpy as np

from crisp_edge import format as fmt
from crisp_edge.format.encoding import parse_hybrid
from crisp_edge.runtime import load


def describe(path: str) -> dict[str, Any]:
    """Everything ``crisp-edge inspect`` shows, as JSON-ready data: the Python reader's view of
    every section, value, op and weight, and the runtime's facts (weights, arena, MACs, and the
    kernel that runs each op on this CPU: a hybrid layer may run expanded to dense)."""
    mf = fmt.read_model(path)
    g = mf.graph
    with load(path) as model:
        info = model.info()
        kernels = model.op_kernels()
    ops = []
    for i, op in enumerate(g.ops):
        ops.append({
            "index": i, "kind": op.name, "activation": fmt.ACTIVATION_NAMES[op.activation],
            "inputs": list(op.inputs), "output": op.output,
            "input_shapes": [list(g.values[v].shape) for v in op.inputs],
            "output_shape": list(g.values[op.output].shape), "params": op.named_params(),
            "weight": None if op.weight is None else list(g.tensors[op.weight].dims),
            "bias": None if op.bias is None else list(g.tensors[op.bias].dims),
            "macs": fmt.op_macs(g, op), "effective_macs": fmt.op_effective_macs(g, op),
            "kernel": kernels[i],
            **({"storage": weight_storage(g.tensors[op.weight])} if op.weight is not None
               else {})})
    return {
        "file": path, "file_bytes": mf.file_size, "format_version": "%d.%d" % mf.version,
        "sections": [{"kind": s.name, "required": bool(s.flags & fmt.SECTION_FLAG_REQUIRED),
                      "offset": s.offset, "size": s.size, "crc32": f"0x{s.crc32:08x}",
                      "crc_ok": True} for s in mf.sections],
        "input_value": g.input_value, "output_value": g.output_value,
        "values": [list(v.shape) for v in g.values], "ops": ops,
        "labels": [{"index": i, "class_id": lb.class_id, "name": lb.name}
                   for i, lb in enumerate(mf.labels or [])],
        "provenance": mf.provenance,
        "preprocessing": mf.preprocess.describe() if mf.preprocess is not None else None,
        "runtime": {k: info[k] for k in ("weight_bytes", "arena_bytes", "naive_bytes", "macs",
                                         "effective_macs")},
    }


def weight_storage(t: fmt.Tensor) -> dict[str, Any]:
    """How a weight is stored: encoding, pattern, density (stored / dense values), bytes."""
    dense_values = int(np.prod(t.dims))
    out: dict[str, Any] = {"encoding": t.encoding_name, "bytes": len(t.payload()),
                           "dense_f32_bytes": 4 * dense_values, "pattern": "dense",
                           "density": 1.0}
    if t.encoding in fmt.HYBRID_ENCODINGS:
        h = parse_hybrid(t.payload(), t.dims, t.encoding == fmt.ENCODING_HYBRID_I8)
        hd = h.header
        nm = "" if hd.n == hd.m else f" {hd.n}:{hd.m}" + (f" V={hd.shared_rows}"
                                                          if hd.shared_rows > 1 else "")
        out["pattern"] = f"{hd.block_rows}x{hd.block_cols} blocks{nm}"
        out["kept_blocks"] = f"{hd.kept_blocks}/{hd.nbr * hd.nbc}"
        out["density"] = len(h.values) / dense_values
    return out
