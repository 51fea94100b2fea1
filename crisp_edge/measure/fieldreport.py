"""Render field benchmark results (``crisp-edge bench`` JSON, single boards or fleets) as
Markdown and self-contained HTML with plots: latency vs sparsity per board, speedup over the
dense twin and over TFLite, peak memory; and, when the results carry ``energy`` (``crisp-edge
bench --meter``/``--energy``), energy per inference of the hybrid, its dense twin and TFLite side
by side, with average power and inferences per joule.

>>> write_report([Path("pi4.json"), Path("fleet.json")], Path("report"))   # doctest: +SKIP
[PosixPath('report/report.md'), PosixPath('report/report.html'), ...]
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from crisp_edge.errors import ArgumentError
from crisp_edge.measure.energy import NOT_SIGNIFICANT, SIGNIFICANCE, per_joule, significant
from crisp_edge.measure.fieldbench import FLEET_FORMAT, RESULT_FORMAT


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


def _comparisons(result: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any],
                                                            dict[str, Any] | None,
                                                            dict[str, Any] | None]]:
    """(model, threads, its result, its dense twin's result, TFLite's result) per hybrid model
    and thread count; TFLite's model is the user's own, so it is set against the first model
    only. Missing counterparts are None."""
    models = {m["name"]: m for m in result["models"]}
    tflite = _tflite_by_threads(result)
    first = next((m["name"] for m in result["models"] if m["role"] == "model"), None)
    for m in result["models"]:
        if m["role"] != "model":
            continue
        twin = next((d for d in models.values() if d.get("dense_twin_of") == m["name"]), None)
        for threads, r in sorted(_by_threads(m).items()):
            dense = _by_threads(twin).get(threads) if twin else None
            lite = tflite.get(threads) if m["name"] == first else None
            yield m["name"], threads, r, dense, lite


def speedups(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per hybrid model and thread count: dense-twin median / model median, and TFLite median
    / model median (see :func:`_comparisons`)."""
    return [{"model": name, "threads": threads,
             "over_dense": dense["median_ms"] / r["median_ms"] if dense else None,
             "over_tflite": lite["median_ms"] / r["median_ms"] if lite else None}
            for name, threads, r, dense, lite in _comparisons(result)]


def _energy(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    return entry.get("energy") if entry else None


def energy_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per hybrid model and thread count: the ``energy`` of the model, its dense twin and
    TFLite (see :func:`_comparisons`), None where not measured."""
    return [{"model": name, "threads": threads, "hybrid": _energy(r), "dense": _energy(dense),
             "tflite": _energy(lite)}
            for name, threads, r, dense, lite in _comparisons(result)]


def _has_energy(result: dict[str, Any]) -> bool:
    entries = [r for m in result["models"] for r in m["results"]]
    entries += (result.get("tflite") or {}).get("results", [])
    return bool(result.get("energy_error")) or any(
        "energy" in r or "energy_error" in r for r in entries)


def _mj(energy: dict[str, Any] | None) -> str:
    """mJ/inference with its standard uncertainty."""
    if energy is None:
        return "–"
    return f"{energy['mj_per_inference']:.4g} ± {energy['uncertainty_mj']:.2g}"


def _ratio(energy: dict[str, Any] | None, hybrid: dict[str, Any] | None) -> str:
    # Dividing by a hybrid energy indistinguishable from zero gives an absurd ratio.
    if energy is None or hybrid is None or not significant(hybrid["mj_per_inference"],
                                                           hybrid["uncertainty_mj"]):
        return "–"
    return f"{energy['mj_per_inference'] / hybrid['mj_per_inference']:.2f}"


def _energy_plot(results: list[dict[str, Any]], out_dir: Path) -> Path:
    """Grouped bars: mJ/inference of hybrid, dense twin and TFLite per board, model and thread
    count, with ±1 standard uncertainty."""
    import matplotlib.pyplot as plt

    groups = [(f"{_label(r)}\n{row['model']} {row['threads']}t", row) for r in results
              for row in energy_rows(r)]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) + 2), 4.5))
    for offset, key, name in ((-0.27, "hybrid", "hybrid-sparse"), (0, "dense", "dense twin"),
                              (0.27, "tflite", "TFLite")):
        xs = [i + offset for i, (_, row) in enumerate(groups) if row[key] is not None]
        found = [row[key] for _, row in groups if row[key] is not None]
        if found:
            ax.bar(xs, [e["mj_per_inference"] for e in found], 0.27, label=name,
                   yerr=[e["uncertainty_mj"] for e in found], capsize=3)
    ax.set_xticks(range(len(groups)), [name for name, _ in groups], fontsize=6, rotation=30,
                  ha="right")
    ax.set_xlim(-0.7, len(groups) - 0.3)  # one group must not stretch its bars across the plot
    ax.set(ylabel="energy per inference (mJ, ±1 u)",
           title="Energy per inference above idle: hybrid vs dense vs TFLite")
    ax.legend(fontsize=7)
    return _save(fig, out_dir / "energy.png")


def _energy_blocks(result: dict[str, Any]) -> list[Block]:
    """The energy tables of one board: side by side, then every measured entry."""
    blocks = []
    measured = energy_rows(result)
    if any(row["hybrid"] or row["dense"] or row["tflite"] for row in measured):
        blocks.append(Block("table", (
            ["model", "threads", "hybrid mJ/inference", "dense mJ/inference",
             "TFLite mJ/inference", "dense / hybrid", "TFLite / hybrid"],
            [[row["model"], str(row["threads"]), _mj(row["hybrid"]), _mj(row["dense"]),
              _mj(row["tflite"]), _ratio(row["dense"], row["hybrid"]),
              _ratio(row["tflite"], row["hybrid"])] for row in measured])))
    entries = [(m["name"], m["role"], r) for m in result["models"] for r in m["results"]]
    entries += [("TFLite", "tflite", r) for r in (result.get("tflite") or {}).get("results", [])]
    rows, problems = [], []
    for name, role, r in entries:
        e = r.get("energy")
        if e is not None:
            rows.append([name, role, str(r["threads"]), _mj(e), _fmt(e["avg_power_w"]),
                         _fmt(e["idle_power_w"]), _fmt(per_joule(e), 1), str(e["inferences"]),
                         _fmt(e["window_s"], 2), str(e["samples"]),
                         "; ".join(e.get("warnings", [])) or "–"])
        elif "energy_error" in r:
            problems.append(f"{name} {r['threads']}t: {r['energy_error']}")
    if rows:
        settings = result["settings"].get("energy") or {}
        blocks.append(Block("text", f"Energy: meter {settings.get('meter', '?')} "
                                    f"({settings.get('identity') or 'unidentified'}); energy "
                                    "per inference is above idle power, ± one standard "
                                    "uncertainty (docs/energy.md); inferences/J and ratios are "
                                    f"– where the {NOT_SIGNIFICANT} (within {SIGNIFICANCE:g} u "
                                    "of zero)."))
        blocks.append(Block("table", (["model", "role", "threads", "mJ/inference",
                                       "avg W", "idle W", "inferences/J", "N", "window s",
                                       "samples", "warnings"], rows)))
    if result.get("energy_error"):
        problems.insert(0, result["energy_error"])
    blocks += [Block("text", "**Energy not measured: " + p + "**") for p in problems]
    return blocks


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
    if any(row["hybrid"] or row["dense"] or row["tflite"] for r in results
           for row in energy_rows(r)):
        written.append(_energy_plot(results, out_dir))
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
        if _has_energy(result):
            blocks += _energy_blocks(result)
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
