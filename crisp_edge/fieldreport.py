"""Render field benchmark results (``crisp-edge bench`` JSON, single boards or fleets) as
Markdown and self-contained HTML with plots: latency vs sparsity per board, speedup over the
dense twin and over TFLite, peak memory.

>>> write_report([Path("pi4.json"), Path("fleet.json")], Path("report"))   # doctest: +SKIP
[PosixPath('report/report.md'), PosixPath('report/report.html'), ...]
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from crisp_edge.errors import ArgumentError
from crisp_edge.fieldbench import FLEET_FORMAT, RESULT_FORMAT


@dataclass
class Block:
    """One piece of the report: kind is heading, text, table or image."""

    kind: str
    content: Any


def load_results(paths: Sequence[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The per-board results and the fleet failures in ``paths`` (single or fleet files)."""
    results: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ArgumentError(f"{path}: not a JSON file from crisp-edge bench ({e})") from None
        kind = doc.get("format") if isinstance(doc, dict) else None
        if kind == RESULT_FORMAT:
            results.append(doc)
        elif kind == FLEET_FORMAT:
            results += doc["results"]
            failures += doc["failures"]
        else:
            raise ArgumentError(f"{path}: format {kind!r} is neither {RESULT_FORMAT!r} nor "
                                f"{FLEET_FORMAT!r}; give files written by crisp-edge bench")
    if not results:
        raise ArgumentError("no benchmark results in " + ", ".join(map(str, paths)))
    return results, failures


def _label(result: dict[str, Any]) -> str:
    text = f"{result['board']['name']} @ {result['host']}"
    return text + " (emulated)" if result["emulated"] else text


def _by_threads(model: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {r["threads"]: r for r in model["results"]}


def _tflite_by_threads(result: dict[str, Any]) -> dict[int, dict[str, Any]]:
    t = result.get("tflite") or {}
    return {r["threads"]: r for r in t.get("results", [])} if t.get("benchmarked") else {}


def speedups(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per hybrid model and thread count: dense-twin median / model median, and TFLite median
    / model median (TFLite's model is the user's own; it is set against the first model)."""
    models = {m["name"]: m for m in result["models"]}
    tflite = _tflite_by_threads(result)
    first = next((m["name"] for m in result["models"] if m["role"] == "model"), None)
    rows = []
    for m in result["models"]:
        if m["role"] != "model":
            continue
        twin = next((d for d in models.values() if d.get("dense_twin_of") == m["name"]), None)
        for threads, r in sorted(_by_threads(m).items()):
            dense = _by_threads(twin).get(threads) if twin else None
            lite = tflite.get(threads) if m["name"] == first else None
            rows.append({"model": m["name"], "threads": threads,
                         "over_dense": dense["median_ms"] / r["median_ms"] if dense else None,
                         "over_tflite": lite["median_ms"] / r["median_ms"] if lite else None})
    return rows


def _plots(results: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    written = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for result in results:
        points = sorted((m["mac_sparsity"] * 100, _by_threads(m)[max(_by_threads(m))]["median_ms"])
                        for m in result["models"])
        ax.plot([p[0] for p in points], [p[1] for p in points], "o--" if result["emulated"]
                else "o-", label=f"{_label(result)}, {max(result['settings']['threads'])} threads")
    ax.set(xlabel="MAC sparsity (%)", ylabel="median latency (ms)", yscale="log",
           title="Latency vs sparsity per board")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.legend(fontsize=7)
    written.append(_save(fig, out_dir / "latency_vs_sparsity.png"))

    bars = [(f"{_label(r)}\n{s['model']} {s['threads']}t", s) for r in results
            for s in speedups(r)]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(bars) + 2), 4.5))
    xs = range(len(bars))
    ax.bar([x - 0.2 for x in xs], [s["over_dense"] or 0 for _, s in bars], 0.4,
           label="over dense (same runtime)")
    ax.bar([x + 0.2 for x in xs], [s["over_tflite"] or 0 for _, s in bars], 0.4,
           label="over TFLite")
    ax.axhline(1, color="grey", lw=0.8)
    ax.set_xticks(list(xs), [name for name, _ in bars], fontsize=6, rotation=30, ha="right")
    ax.set(ylabel="speedup (×)", title="Speedup of the hybrid-sparse model")
    ax.legend(fontsize=7)
    written.append(_save(fig, out_dir / "speedup.png"))

    items = [(f"{_label(r)}\n{m['name']}", _by_threads(m)[max(_by_threads(m))]["peak_rss_kb"]
              / 1024) for r in results for m in r["models"]]
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(items) + 2), 4.5))
    ax.bar(range(len(items)), [v for _, v in items])
    ax.set_xticks(range(len(items)), [n for n, _ in items], fontsize=6, rotation=30, ha="right")
    ax.set(ylabel="peak resident memory (MiB)", title="Peak memory of crisp-bench per model")
    written.append(_save(fig, out_dir / "memory.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _blocks(results: list[dict[str, Any]], failures: list[dict[str, Any]],
            images: list[Path]) -> list[Block]:
    blocks = [Block("heading", "crisp-edge field benchmark")]
    blocks += [Block("image", path) for path in images]
    for result in results:
        dev, before = result["device"], result["readings"]["before"]
        blocks.append(Block("heading", _label(result)))
        facts = (f"Board profile {result['board']['name']} ({result['board']['description']}); "
                 f"device {dev.get('board_model') or dev.get('hostname')}, CPU "
                 f"{dev.get('cpu_model') or 'unknown'}, {dev.get('cpus_online')} CPUs online; "
                 f"bundle {result['bundle_id']}; {result['settings']['runs']} runs after "
                 f"{result['settings']['warmup']} warm-up, {result['started_at']}. Governor "
                 f"{json.dumps(before['governor'])}, frequency (kHz) "
                 f"{json.dumps(before['freq_khz'])}, temperature (°C) before/after "
                 f"{json.dumps(before['temperature_c'])} / "
                 f"{json.dumps(result['readings']['after']['temperature_c'])}.")
        blocks.append(Block("text", facts))
        if result.get("note"):
            blocks.append(Block("text", "**" + result["note"] + "**"))
        gains = {(s["model"], s["threads"]): s for s in speedups(result)}
        rows = []
        for m in result["models"]:
            for r in m["results"]:
                s = gains.get((m["name"], r["threads"]), {})
                rows.append([m["name"], m["role"], f"{100 * m['mac_sparsity']:.1f} %",
                             str(r["threads"]), _fmt(r["median_ms"]), _fmt(r["p90_ms"]),
                             _fmt(r["p99_ms"]), _fmt(r["throughput_ips"], 1),
                             _fmt(r["peak_rss_kb"] / 1024, 1), _fmt(s.get("over_dense"), 2),
                             _fmt(s.get("over_tflite"), 2)])
        blocks.append(Block("table", (["model", "role", "MAC sparsity", "threads", "median ms",
                                       "p90 ms", "p99 ms", "inferences/s", "peak MiB",
                                       "× dense", "× TFLite"], rows)))
        tflite = result.get("tflite") or {}
        if not tflite.get("benchmarked"):
            blocks.append(Block("text", "TFLite: " + str(tflite.get("reason", "not measured"))))
    if failures:
        blocks.append(Block("heading", "Boards that failed"))
        blocks.append(Block("table", (["host", "board", "error"],
                                      [[f["host"], f["board"], f["error"]] for f in failures])))
    return blocks


def _markdown(blocks: list[Block], out_dir: Path) -> str:
    parts = []
    for i, b in enumerate(blocks):
        if b.kind == "heading":
            parts.append(("# " if i == 0 else "## ") + b.content)
        elif b.kind == "text":
            parts.append(b.content)
        elif b.kind == "image":
            parts.append(f"![{b.content.stem}]({b.content.relative_to(out_dir)})")
        else:
            header, rows = b.content
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                      for row in rows]
            parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _html(blocks: list[Block]) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>crisp-edge field "
             "benchmark</title><style>body{font-family:sans-serif;max-width:70em;margin:auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
             "text-align:right}img{max-width:100%}</style></head><body>"]
    for i, b in enumerate(blocks):
        if b.kind == "heading":
            tag = "h1" if i == 0 else "h2"
            parts.append(f"<{tag}>{html.escape(b.content)}</{tag}>")
        elif b.kind == "text":
            text = html.escape(b.content)
            if text.startswith("**") and text.endswith("**"):
                text = f"<strong>{text[2:-2]}</strong>"
            parts.append(f"<p>{text}</p>")
        elif b.kind == "image":
            data = base64.b64encode(b.content.read_bytes()).decode()
            parts.append(f"<img alt='{b.content.stem}' src='data:image/png;base64,{data}'>")
        else:
            header, rows = b.content
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header)
                         + "</tr>" + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>"
                                                              for c in row) + "</tr>"
                                             for row in rows) + "</table>")
    return "\n".join(parts) + "\n</body></html>\n"


def write_report(paths: Sequence[Path], out_dir: Path) -> list[Path]:
    """Write report.md, report.html (plots embedded) and the plot PNGs into ``out_dir``."""
    results, failures = load_results(paths)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = _plots(results, out_dir)
    blocks = _blocks(results, failures, images)
    md, page = out_dir / "report.md", out_dir / "report.html"
    md.write_text(_markdown(blocks, out_dir))
    page.write_text(_html(blocks))
    return [md, page, *images]
