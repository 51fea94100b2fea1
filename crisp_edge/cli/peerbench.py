"""``crisp-edge peerbench`` (``make bench``): crisp-edge against torch, ONNX Runtime and TFLite on
this machine (:mod:`crisp_edge.measure.peerbench`; docs/benchmarks.md)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from crisp_edge.cli.group import main


def _floats(text: str) -> list[float]:
    return [float(s) for s in text.split(",") if s]


def _ints(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s]


def _names(text: str) -> list[str]:
    return [s for s in text.split(",") if s]


@main.command("peerbench")
@click.option("--archs", default="resnet50,mobilenet_v2,vgg16_bn", show_default=True)
@click.option("--sparsities", default="0,0.5,0.75,0.9,0.95", show_default=True,
              help="Fractions of the prunable weights removed.")
@click.option("--shared-rows", default="1,4", show_default=True,
              help="N:M variants: 1 = per-row (the paper's), V > 1 = V rows of a block share "
              "each selection (docs/pruning.md#row-shared-nm), measured above 50 %.")
@click.option("--threads", default="1,2", show_default=True)
@click.option("--peers", default="torch,onnxruntime,tflite", show_default=True)
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(0))
@click.option("--runs", default=10, show_default=True, type=click.IntRange(1))
@click.option("--layers/--no-layers", default=True, show_default=True,
              help="Also run the per-layer microbenchmark.")
@click.option("--layer-sparsities", default="0.5,0.75,0.9,0.95", show_default=True)
@click.option("--layer-runs", default=15, show_default=True, type=click.IntRange(1))
@click.option("--crisp-bench", default=None,
              help="crisp-bench binary for the peak-memory column ('' to skip) [default: "
              "build/native/runtime/crisp-bench].")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where converted models go [default: bench-results/peers].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Markdown report, JSON and plots beside it [default: docs/benchmarks.md].")
@click.option("--order", type=click.Choice(["auto", "interleaved", "blocks"]), default="auto",
              show_default=True,
              help="interleaved: single calls in rotating order (each starts with cold caches); "
              "blocks: each system back to back (warm caches, as a camera loop); auto: "
              "interleaved at 1 thread, blocks at more.")
@click.option("--quick", is_flag=True,
              help="A smoke run: mobilenet_v2 only, sparsity 0 and 0.9, 1 thread, 3 runs.")
def peerbench_command(archs: str, sparsities: str, shared_rows: str, threads: str, peers: str,
                      warmup: int, runs: int, layers: bool, layer_sparsities: str,
                      layer_runs: int, crisp_bench: str | None, work_dir: Path | None,
                      out: Path | None, order: str, quick: bool) -> None:
    """Time crisp dense and hybrid against the peer runtimes, same input, same threads."""
    from crisp_edge.measure import peerbench

    options = peerbench.Options(
        archs=_names(archs), sparsities=_floats(sparsities), shared_rows=_ints(shared_rows),
        threads=_ints(threads), peers=_names(peers), warmup=warmup, runs=runs, layers=layers,
        layer_sparsities=_floats(layer_sparsities), layer_runs=layer_runs, quick=quick,
        order=order)
    if crisp_bench is not None:
        options.crisp_bench = crisp_bench
    if work_dir is not None:
        options.work_dir = work_dir
    if out is not None:
        options.out = out
    command = "crisp-edge peerbench " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    sys.exit(peerbench.run(options, command))
