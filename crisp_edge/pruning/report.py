"""Pruning reports: per-layer density, MACs (dense vs effective), bytes, accuracy per step, and
the table of ``crisp-edge compare``; written as JSON and Markdown.

MACs come from one hooked forward pass: a conv costs Cout·K·Ho·Wo (K = kh·kw·Cin/groups), a
linear layer in·out per sample. A pruned layer's *effective* MACs are its dense MACs × its
density. Bytes: dense fp32 = 4 per weight; the sparse estimate depends on the encoding the
method's masks allow (hybrid: kept values·4 + ⌈log2 M⌉ bits per kept value + 8 bytes per kept
block, see :func:`layer_bytes`); parameters outside the prunable layers count 4 bytes each in
both columns.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

# How each method's masks would be stored (the packer's choice for that structure).
METHOD_ENCODING = {
    "crisp": "hybrid", "magnitude-hybrid": "hybrid", "nm-only": "nm", "block-only": "block",
    "unstructured": "csr", "channel": "rows",
}


def count_macs(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """Multiply-accumulates per sample of every Conv2d/Linear module, from one forward pass."""
    macs: dict[str, int] = {}
    handles = []

    def hook(name: str):  # type: ignore[no-untyped-def]
        def fn(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            per_sample = output[0]
            if isinstance(module, nn.Conv2d):
                k = module.in_channels // module.groups * math.prod(module.kernel_size)
                macs[name] = macs.get(name, 0) + int(per_sample.numel()) * k
            else:
                macs[name] = macs.get(name, 0) + int(per_sample.numel()) * module.in_features
        return fn

    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            handles.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example[:1])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return macs


def weight_matrix(t: torch.Tensor) -> torch.Tensor:
    """A weight (or mask) as matrix of docs/pruning.md#the-pattern: Cout rows × K columns ordered (kh, kw, cin)."""
    return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1) if t.dim() == 4 else t.reshape(
        t.shape[0], -1)


def kept_blocks(mask: torch.Tensor, block_rows: int, block_cols: int) -> int:
    """Number of Br × Bc tiles (edge tiles partial) holding at least one kept weight."""
    mat = weight_matrix(mask).bool()
    rows, cols = mat.shape
    nbr, nbc = -(-rows // block_rows), -(-cols // block_cols)
    padded = torch.zeros(nbr * block_rows, nbc * block_cols, dtype=torch.bool)
    padded[:rows, :cols] = mat
    tiles = padded.reshape(nbr, block_rows, nbc, block_cols)
    return int(tiles.any(dim=3).any(dim=1).sum())


def layer_bytes(mask: torch.Tensor | None, numel: int, pattern: dict[str, int], encoding: str,
                blocks: bool, nm: bool) -> int:
    """Estimated stored bytes of one layer's weights under ``encoding``.

    hybrid: values·4 + ⌈values·⌈log2 M⌉/8⌉ + 8·kept blocks (N:M indices only where the layer
    has N:M, block overhead only where it has blocks); nm / block: the matching part of that;
    csr (unstructured): values·4 + ⌈values·⌈log2 K⌉/8⌉ + 4·(rows+1); rows (channel pruning):
    values·4 (kept filters stored dense). A layer without a mask is dense: numel·4."""
    if mask is None:
        return 4 * numel
    values = int(mask.sum())
    if encoding == "rows":
        return 4 * values
    if encoding == "csr":
        mat = weight_matrix(mask)
        bits = max(1, math.ceil(math.log2(max(2, mat.shape[1]))))
        return 4 * values + math.ceil(values * bits / 8) + 4 * (mat.shape[0] + 1)
    use_nm = nm and encoding in ("hybrid", "nm")
    use_blocks = blocks and encoding in ("hybrid", "block")
    total = 4 * values
    if use_nm:
        total += math.ceil(values * max(1, math.ceil(math.log2(pattern["m"]))) / 8)
    if use_blocks:
        total += 8 * kept_blocks(mask, pattern["block_rows"], pattern["block_cols"])
    if not use_nm and not use_blocks:
        return 4 * numel
    return total


def layer_rows(model: nn.Module, layers: Sequence[Any], masks: dict[str, torch.Tensor],
               pattern: dict[str, int], macs: dict[str, int], encoding: str
               ) -> list[dict[str, Any]]:
    """One record per prunable layer: role, shape, density, MACs and bytes."""
    params = dict(model.named_parameters())
    rows = []
    for layer in layers:
        weight = params[layer.param]
        mask = masks.get(layer.param)
        density = 1.0 if mask is None else float(mask.float().mean())
        dense_macs = macs.get(layer.name, 0)
        rows.append({
            "name": layer.name, "param": layer.param, "kind": layer.kind, "role": layer.role,
            "shape": list(weight.shape), "blocks": bool(layer.blocks), "nm": bool(layer.nm),
            "weights": weight.numel(), "kept": weight.numel() if mask is None else int(mask.sum()),
            "density": density, "dense_macs": dense_macs,
            "effective_macs": round(dense_macs * density),
            "dense_bytes": 4 * weight.numel(),
            "sparse_bytes": layer_bytes(mask, weight.numel(), pattern, encoding,
                                        layer.blocks, layer.nm),
        })
    return rows


def summarize(model: nn.Module, layers: Sequence[Any], masks: dict[str, torch.Tensor],
              pattern: dict[str, int], example: torch.Tensor, method: str) -> dict[str, Any]:
    """Layers, totals of MACs and bytes, achieved sparsity of a pruned model."""
    macs = count_macs(model, example)
    rows = layer_rows(model, layers, masks, pattern, macs, METHOD_ENCODING.get(method, "hybrid"))
    in_layers = {r["param"] for r in rows}
    other_params = sum(p.numel() for n, p in model.named_parameters() if n not in in_layers)
    other_macs = sum(v for k, v in macs.items() if k not in {r["name"] for r in rows})
    weights = sum(r["weights"] for r in rows)
    kept = sum(r["kept"] for r in rows)
    dense_macs = sum(r["dense_macs"] for r in rows) + other_macs
    eff_macs = sum(r["effective_macs"] for r in rows) + other_macs
    dense_bytes = sum(r["dense_bytes"] for r in rows) + 4 * other_params
    sparse_bytes = sum(r["sparse_bytes"] for r in rows) + 4 * other_params
    return {
        "layers": rows,
        "sparsity": {"achieved": 1.0 - kept / weights if weights else 0.0,
                     "prunable_weights": weights, "kept_weights": kept},
        "macs": {"dense": dense_macs, "effective": eff_macs,
                 "ratio": eff_macs / dense_macs if dense_macs else 1.0},
        "bytes": {"dense_fp32": dense_bytes, "sparse_estimate": sparse_bytes,
                  "encoding": METHOD_ENCODING.get(method, "hybrid"),
                  "ratio": sparse_bytes / dense_bytes if dense_bytes else 1.0},
    }


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f} %"


def to_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown page."""
    cfg = report.get("config", {})
    acc = report.get("accuracy", {})
    names = report.get("class_names") or [str(c) for c in report.get("classes", [])]
    lines = [
        f"# Pruning report: {report.get('model', '?')}, method {report.get('method', '?')}", "",
        f"- classes: {', '.join(f'{c} ({n})' for c, n in zip(report.get('classes', []), names))}",
        f"- data: `{report.get('data')}` (accuracy on the `{report.get('eval_split')}` split, "
        f"user classes only, head {'reduced' if report.get('head_reduced') else 'full'})",
        f"- pattern: {cfg.get('nm')} inside {cfg.get('block')} blocks, shared rows "
        f"{cfg.get('shared_rows')}; target sparsity {_pct(cfg.get('sparsity'))}, achieved "
        f"{_pct(report['sparsity']['achieved'])} of the prunable weights",
        f"- dense accuracy: top-1 {_pct(acc.get('dense', {}).get('top1'))}, top-5 "
        f"{_pct(acc.get('dense', {}).get('top5'))}; pruned: top-1 "
        f"{_pct(acc.get('final', {}).get('top1'))}, top-5 {_pct(acc.get('final', {}).get('top5'))}",
        f"- MACs per image: dense {report['macs']['dense']:,}, effective "
        f"{report['macs']['effective']:,} ({100 * report['macs']['ratio']:.1f} %)",
        f"- weights: dense fp32 {report['bytes']['dense_fp32']:,} bytes, {report['bytes']['encoding']}"
        f" estimate {report['bytes']['sparse_estimate']:,} bytes "
        f"({100 * report['bytes']['ratio']:.1f} %)",
        f"- wall time: {report.get('wall_time_s', 0.0):.1f} s", "",
        "## Steps", "",
        "| step | kept-block ratio | density | loss | top-1 | top-5 | seconds |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report.get("steps", []):
        lines.append(f"| {s['step']} | {s['keep_ratio']:.3f} | {s['density']:.4f} | "
                     f"{s['loss']:.4f} | {_pct(s['top1'])} | {_pct(s['top5'])} | "
                     f"{s['seconds']:.1f} |")
    lines += ["", "## Layers", "",
              "| layer | role | shape | blocks | N:M | density | dense MACs | effective MACs | "
              "dense bytes | sparse bytes |", "|---|---|---|:-:|:-:|---:|---:|---:|---:|---:|"]
    for r in report.get("layers", []):
        lines.append(f"| `{r['name']}` | {r['role']} | {'×'.join(map(str, r['shape']))} | "
                     f"{'✓' if r['blocks'] else '–'} | {'✓' if r['nm'] else '–'} | "
                     f"{r['density']:.4f} | {r['dense_macs']:,} | {r['effective_macs']:,} | "
                     f"{r['dense_bytes']:,} | {r['sparse_bytes']:,} |")
    lines += ["", "## Configuration", "", "```json", json.dumps(cfg, indent=2, sort_keys=True),
              "```", ""]
    return "\n".join(lines)


def write_report(report: dict[str, Any], base: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``BASE.report.json`` and ``BASE.report.md``; returns both paths."""
    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    stem = base.with_suffix("") if base.suffix == ".pt" else base
    json_path = stem.with_name(stem.name + ".report.json")
    md_path = stem.with_name(stem.name + ".report.md")
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(report), encoding="utf-8")
    return json_path, md_path


def comparison_row(report: dict[str, Any]) -> dict[str, Any]:
    """The line of one method in the compare table."""
    return {
        "method": report["method"],
        "top1": report["accuracy"]["final"]["top1"], "top5": report["accuracy"]["final"]["top5"],
        "sparsity": report["sparsity"]["achieved"],
        "effective_macs": report["macs"]["effective"], "dense_macs": report["macs"]["dense"],
        "bytes": report["bytes"]["sparse_estimate"], "dense_bytes": report["bytes"]["dense_fp32"],
        "encoding": report["bytes"]["encoding"], "wall_time_s": report["wall_time_s"],
    }


def comparison_markdown(table: dict[str, Any]) -> str:
    """The compare table (dense first, then one row per method) as Markdown."""
    dense = table["dense"]
    lines = [f"# Method comparison: {table['model']}, classes {table['classes']}", "",
             f"Data `{table['data']}`, accuracy on the `{table['eval_split']}` split (user classes "
             f"only); target sparsity {_pct(table['config']['sparsity'])}, pattern "
             f"{table['config']['nm']} in {table['config']['block']} blocks; same schedule "
             f"({table['config']['steps']} block steps × {table['config']['epochs_per_step']} "
             "epoch(s)) for every method.", "",
             "| method | top-1 | top-5 | sparsity | effective MACs | bytes (encoding) | wall s |",
             "|---|---:|---:|---:|---:|---:|---:|",
             f"| dense | {_pct(dense['top1'])} | {_pct(dense['top5'])} | 0.00 % | "
             f"{table['rows'][0]['dense_macs']:,} | {table['rows'][0]['dense_bytes']:,} (fp32) | – |"
             if table["rows"] else "| dense | – | – | – | – | – | – |"]
    for r in table["rows"]:
        lines.append(f"| {r['method']} | {_pct(r['top1'])} | {_pct(r['top5'])} | "
                     f"{_pct(r['sparsity'])} | {r['effective_macs']:,} | "
                     f"{r['bytes']:,} ({r['encoding']}) | {r['wall_time_s']:.1f} |")
    return "\n".join(lines) + "\n"
