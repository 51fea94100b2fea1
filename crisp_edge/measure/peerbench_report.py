"""The Markdown report and plots of :mod:`crisp_edge.measure.peerbench` (docs/benchmarks.md): tables
of every measured system, the issue-15 targets checked against the numbers, the per-layer
microbenchmark, and matplotlib figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PEER_NAMES = ("torch", "onnxruntime", "tflite")


def fastest_peer(row: dict[str, Any]) -> tuple[str, float] | None:
    """(name, median ms) of the fastest peer timed in this row, or None."""
    peers = [(n, row["systems"][n]["median_ms"]) for n in PEER_NAMES if n in row["systems"]]
    return min(peers, key=lambda p: p[1]) if peers else None


def crisp_ms(row: dict[str, Any]) -> float:
    s = row["systems"]
    return (s.get("crisp hybrid") or s["crisp"])["median_ms"]


def _cell(row: dict[str, Any], name: str) -> str:
    s = row["systems"].get(name)
    if s is None:
        return "skipped" if name in row.get("skipped", {}) else "–"
    return f"{s['median_ms']:.2f} ({s['p90_ms']:.2f})"


def crisp_dense_ms(rows: list[dict[str, Any]], row: dict[str, Any]) -> float | None:
    """crisp's dense file for ``row``: timed in the row itself, else (a report from before
    crisp dense ran in every row) in the sparsity-0 row of its model and thread count."""
    if "crisp dense" in row["systems"]:
        return float(row["systems"]["crisp dense"]["median_ms"])
    arch, threads = row["arch"], row["threads"]
    for r in rows:
        if r["arch"] == arch and r["threads"] == threads and r["sparsity"] == 0:
            s = r["systems"].get("crisp dense") or r["systems"].get("crisp")
            return s["median_ms"] if s else None
    return None


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each issue-15 target the results can decide."""
    out: list[tuple[str, str, bool | None]] = []
    rows = results["rows"]
    # (arch, V) → the speed-up over the fastest dense peer the issue asks for at 90 %.
    wanted = {("resnet50", 1): 4.0, ("resnet50", 4): 5.0, ("mobilenet_v2", 1): 2.0,
              ("mobilenet_v2", 4): 2.0}
    for r in rows:
        factor = wanted.get((r["arch"], r.get("shared_rows", 1)))
        peer = fastest_peer(r)
        if factor is None or peer is None or abs(r["sparsity"] - 0.9) > 1e-9:
            continue
        speed = peer[1] / crisp_ms(r)
        out.append((f"{r['arch']} {_label(r)}, {r['threads']} thr: crisp ≥ {factor:g}× faster "
                    f"than the fastest dense peer",
                    f"{speed:.2f}× ({crisp_ms(r):.2f} ms vs {peer[0]} {peer[1]:.2f} ms)",
                    speed >= factor))
    for r in rows:
        dense = crisp_dense_ms(rows, r)
        if r["sparsity"] > 0 and dense is not None:
            ratio = dense / crisp_ms(r)
            out.append((f"{r['arch']} {_label(r)}, {r['threads']} thr: crisp sparse ≥ 1.0× "
                        f"crisp dense", f"{ratio:.2f}× ({crisp_ms(r):.2f} vs {dense:.2f} ms)",
                        ratio >= 1.0))
    for r in rows:
        if r["sparsity"] == 0 and "crisp dense" in r["systems"] or (
                r["sparsity"] == 0 and "crisp" in r["systems"]):
            peer = fastest_peer(r)
            if peer is None:
                continue
            dense = (r["systems"].get("crisp dense") or r["systems"]["crisp"])["median_ms"]
            ratio = dense / peer[1]
            out.append((f"{r['arch']} dense, {r['threads']} thr: crisp within 1.5× of the "
                        f"fastest peer", f"{ratio:.2f}× ({dense:.2f} ms vs {peer[0]} "
                        f"{peer[1]:.2f} ms)", ratio <= 1.5))
    for r in rows:
        if r["threads"] > 1:
            name = "crisp hybrid" if "crisp hybrid" in r["systems"] else "crisp"
            t = r["systems"][name]
            out.append((f"{r['arch']} {_label(r)}, {r['threads']} thr: crisp p90 ≤ 1.15 × "
                        f"median", f"{t['p90_ms'] / t['median_ms']:.2f} ({t['p90_ms']:.2f} / "
                        f"{t['median_ms']:.2f} ms)", t["p90_ms"] <= 1.15 * t["median_ms"]))
    for r in rows:
        if r.get("peak_rss_mb") is not None:
            out.append((f"{r['arch']} {_label(r)}, {r['threads']} thr: peak "
                        f"memory ≤ file + 2 × activations + 16 MB",
                        f"{r['peak_rss_mb']:.1f} MB vs {r['memory_bound_mb']:.1f} MB",
                        r["peak_rss_mb"] <= r["memory_bound_mb"]))
    layers = results.get("layers") or []
    if layers:
        best = max(layer["dense_gflops"] for layer in layers)
        for variant in ("per-row", "row-shared V=4"):
            fracs = [fraction_of_ideal(layer, variant, s, best)
                     for layer in layers for s in layer["hybrid"].get(variant, {})]
            if fracs:
                worst = min(fracs)
                out.append((f"hybrid layer ({variant}) ≥ 50 % of best dense GFLOP/s ÷ d",
                            f"worst {100 * worst:.0f} %, median "
                            f"{100 * sorted(fracs)[len(fracs) // 2]:.0f} % of {len(fracs)} "
                            f"layer×density cases", worst >= 0.5))
    return out


def _load(row: dict[str, Any]) -> str:
    return f"{row['load_ms']:.0f} ms" if row.get("load_ms") is not None else "–"


# Kernel names of Model.op_kernels() → the layer form they mean (runtime/README.md, "Dense or
# sparse, per layer"); ops on other kernels (depthwise, pools, ADD) have no form to choose.
FORMS = (("spmm (filled)", "filled"), ("spmm", "runs"), ("spmv", "runs"), ("nmv24", "in file"),
         ("gemm (expanded)", "expanded"),
         ("gemv (expanded)", "expanded"), ("gemm (dense copy)", "copied"),
         ("gemv (dense copy)", "copied"), ("gemm", "dense"), ("gemv", "dense"),
         ("qs8_spmm (filled)", "filled"), ("qs8_spmm", "runs"), ("qs8_gemv (dense copy)", "copied"),
         ("qs8_gemm", "dense"), ("qs8_gemv", "dense"))


def _forms(row: dict[str, Any]) -> str:
    """How many conv/linear layers run in each form, e.g. "runs 33 · expanded 1 · dense 1"."""
    counts: dict[str, int] = {}
    for kernel in row.get("op_kernels") or []:
        # A 1 x 1 conv fused into the depthwise conv after it keeps its form (runtime/README.md,
        # "Expand fusion"): "gemm (expanded, fused into next)" is an expanded layer.
        kernel = kernel.replace(", fused into next)", ")").replace(" (fused into next)", "")
        form = dict(FORMS).get(kernel)
        if form is not None:
            counts[form] = counts.get(form, 0) + 1
    order = ("runs", "filled", "in file", "expanded", "copied", "dense")
    return " · ".join(f"{f} {counts[f]}" for f in order if f in counts) or "–"


def _label(row: dict[str, Any]) -> str:
    v = row.get("shared_rows", 1)
    return f"{round(100 * row['sparsity'])} %" + (f" V={v}" if v > 1 else "")


def fraction_of_ideal(layer: dict[str, Any], variant: str, s: str, best_dense: float) -> float:
    h = layer["hybrid"][variant][s]
    return h["dense_equivalent_gflops"] * h["density"] / best_dense


def _order_text(order: str) -> str:
    blocks = ("each system back to back (0.25 s of quiet, a warm-up of at least 0.1 s, then half "
              "the runs), in two passes of opposite order, so its weights stay in cache between "
              "calls as in a camera loop")
    if order == "blocks":
        return f"at every thread count {blocks}."
    if order == "interleaved":
        return ("at every thread count single calls interleaved in rotating order, so each call "
                "starts with the caches the other systems left.")
    return ("single calls interleaved in rotating order with 1 thread (each call starts with the "
            f"caches the other systems left); with 2 threads {blocks}, because a runtime's "
            "spinning worker threads would otherwise share the cores with the next system.")


def render(results: dict[str, Any], figures: list[str] | None = None) -> str:
    lines = ["# Benchmarks: crisp-edge vs torch, ONNX Runtime and TFLite (XNNPACK)", "",
             "Written by `crisp_edge/measure/peerbench.py` (`make bench`, or `crisp-edge bench --local`).",
             "", f"Command: `{results['command']}`", "",
             f"Machine: {results['cpu']} ({results['machine']}), Python {results['python']}; "
             + ", ".join(f"{k} {v}" for k, v in results["versions"].items()) + ".", "",
             "Batch 1, 224×224 input, the same input and weights for every system in a row, "
             "timed in interleaved rounds; each cell is the median (p90) latency in ms. "
             "Sparsity is the fraction of the prunable weights removed (2:4 inside a balanced set "
             "of 16×16 blocks in every block layer, chosen by magnitude; first conv and depthwise "
             "convs stay dense; the classifier gets 2:4 only); V=4 rows use the row-shared N:M "
             "variant (4 rows of a block share each 2:4 selection, docs/pruning.md#row-shared-nm), the others the "
             "paper's per-row N:M. The peers run the dense model in "
             "every row (their speed does not depend on the weight values), and so does crisp "
             "(\"crisp dense\": the dense file, so sparse against dense compares times from the "
             "same rounds), timed together with crisp: " + _order_text(results.get("order", "auto")) + " Peak RSS: `crisp-bench` on the same file (its own VmHWM), against the bound "
             "file + 2 × activation arena + 16 MB; load: `crisp-bench`'s load time of the file (open, "
             "verify, pack). Layer forms: how many conv and linear layers run as sparse runs, filled "
             "runs, sparse on the file's 2:4 encoding in place, expanded to dense from the file, dense from a copy made at load, or dense in the file "
             "(runtime/README.md, \"Dense or sparse, per layer\").", ""]
    for threads in sorted({r["threads"] for r in results["rows"]}):
        lines += [f"## {threads} thread{'s' if threads > 1 else ''}", "",
                  "| model | sparsity | eff. MACs | crisp | crisp dense | torch | ONNX Runtime | "
                  "TFLite | crisp vs fastest peer | peak RSS (bound) | load | layer forms |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in results["rows"]:
            if r["threads"] != threads:
                continue
            peer = fastest_peer(r)
            speed = f"{peer[1] / crisp_ms(r):.2f}× ({peer[0]})" if peer else "–"
            crisp_name = "crisp hybrid" if "crisp hybrid" in r["systems"] else "crisp"
            rss = (f"{r['peak_rss_mb']:.0f} ({r['memory_bound_mb']:.0f}) MB"
                   if r.get("peak_rss_mb") is not None else "–")
            lines.append(
                f"| {r['arch']} | {_label(r)} | "
                f"{100 * r['effective_macs'] / r['macs']:.0f} % | {_cell(r, crisp_name)} | "
                f"{_cell(r, 'crisp dense')} | {_cell(r, 'torch')} | {_cell(r, 'onnxruntime')} | "
                f"{_cell(r, 'tflite')} | {speed} | {rss} | {_load(r)} | {_forms(r)} |")
        lines.append("")
    skipped = {(n, why) for r in results["rows"] for n, why in r.get("skipped", {}).items()}
    if skipped:
        lines += ["Skipped peers:", ""] + [f"- {n}: {why}" for n, why in sorted(skipped)] + [""]
    lines += ["## Targets (issue 15)", "", "| target | measured | met |", "|---|---|:-:|"]
    for name, measured, met in targets(results):
        lines.append(f"| {name} | {measured} | {'✓' if met else '✗'} |")
    lines.append("")
    layers = results.get("layers") or []
    if layers:
        best = max(layer["dense_gflops"] for layer in layers)
        variants = sorted({v for layer in layers for v in layer["hybrid"]})
        dens = sorted({s for layer in layers for v in layer["hybrid"].values() for s in v},
                      key=float)
        lines += ["## Per-layer microbenchmark (1 thread)", "",
                  "ResNet-50 conv shapes (Cin, H, W, Cout, k, stride) as one-layer models. Dense "
                  "GFLOP/s = 2 · MACs / time; hybrid cells: dense-equivalent GFLOP/s and, in "
                  f"brackets, the fraction of the ideal (best dense {best:.0f} GFLOP/s ÷ d, d = "
                  "effective / dense MACs). Target: ≥ 50 %.", "",
                  "| layer | dense GFLOP/s | " + " | ".join(
                      f"{v} s={float(s):.2f}" for v in variants for s in dens) + " |",
                  "|---|---:|" + "---:|" * (len(variants) * len(dens))]
        for layer in layers:
            cells = []
            for v in variants:
                for s in dens:
                    h = layer["hybrid"].get(v, {}).get(s)
                    cells.append("–" if h is None else
                                 f"{h['dense_equivalent_gflops']:.0f} "
                                 f"({100 * fraction_of_ideal(layer, v, s, best):.0f} %)")
            lines.append(f"| {tuple(layer['shape'])} | {layer['dense_gflops']:.0f} | "
                         + " | ".join(cells) + " |")
        lines.append("")
    profiled = [r for r in results["rows"] if r.get("profile")
                and (r["sparsity"] == 0 or abs(r["sparsity"] - 0.9) < 1e-9)]
    if profiled:
        lines += ["## Where crisp's time goes", "",
                  "`crisp-bench --profile` on the same files (separate runs): per op kind and "
                  "kernel, ms per image, share, and effective GFLOP/s (2 × executed MACs / time).",
                  "", "| model | threads | op / kernel: ms (share, GFLOP/s) |", "|---|---:|---|"]
        for r in profiled:
            parts = []
            for p in r["profile"][:6]:
                rate = (f", {2 * p['effective_macs'] / (p['ms'] * 1e6):.0f} GFLOP/s"
                        if p["effective_macs"] and p["ms"] > 0 else "")
                parts.append(f"{p['kind'].lower()}/{p['kernel']}: {p['ms']:.2f} "
                             f"({100 * p['share']:.0f} %{rate})")
            lines.append(f"| {r['arch']} {_label(r)} | {r['threads']} | " + "; ".join(parts) + " |")
        lines.append("")
    for fig in figures or []:
        lines += [f"![{fig}]({fig})", ""]
    lines.append(f"Total benchmark time: {results.get('wall_time_s', 0):.0f} s.")
    lines.append("")
    return "\n".join(lines)


def plots(results: dict[str, Any], directory: Path, stem: str) -> list[str]:
    """Latency vs sparsity per architecture (one panel per thread count); returns file names
    relative to ``directory``. No matplotlib → no figures (the tables stand alone)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    names = []
    archs = list(dict.fromkeys(r["arch"] for r in results["rows"]))
    threads = sorted({r["threads"] for r in results["rows"]})
    for arch in archs:
        fig, axes = plt.subplots(1, len(threads), figsize=(5 * len(threads), 3.6), squeeze=False)
        for ax, t in zip(axes[0], threads):
            rows = sorted((r for r in results["rows"] if r["arch"] == arch and r["threads"] == t
                           and r.get("shared_rows", 1) == 1), key=lambda r: r["sparsity"])
            shared = sorted((r for r in results["rows"] if r["arch"] == arch and r["threads"] == t
                             and r.get("shared_rows", 1) > 1), key=lambda r: r["sparsity"])
            xs = [100 * r["sparsity"] for r in rows]
            ax.plot(xs, [crisp_ms(r) for r in rows], "o-", label="crisp (per-row N:M)")
            if shared:
                ax.plot([100 * r["sparsity"] for r in shared], [crisp_ms(r) for r in shared],
                        "o:", label=f"crisp (row-shared V={shared[0]['shared_rows']})")
            for peer in PEER_NAMES:
                pts = [(100 * r["sparsity"], r["systems"][peer]["median_ms"]) for r in rows
                       if peer in r["systems"]]
                if pts:
                    ax.plot(*zip(*pts), "s--", label=peer)
            ax.set_title(f"{arch}, {t} thread{'s' if t > 1 else ''}")
            ax.set_xlabel("sparsity of prunable weights (%)")
            ax.set_ylabel("median latency (ms)")
            ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        name = f"{stem}-{arch}.png"
        fig.savefig(directory / name, dpi=100)
        plt.close(fig)
        names.append(name)
    return names
