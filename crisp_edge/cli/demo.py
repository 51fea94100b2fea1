"""`make demo`: the whole product path on built-in defaults, in about two minutes.

Generates the synthetic class-structured data set, trains a small residual CNN on all its
classes, specialises it to the user's few classes with CRISP (class-aware hybrid 2:4 + block
pruning with fine-tuning), packs dense, hybrid-sparse and int8 ``.crisp`` files, runs them in
the C runtime and prints accuracy on the user's classes, file size, effective MACs and batch-1
latency (torch and the runtime with the same thread count, in the same run).

    crisp-edge demo --out demo-output [--classes 1,4,7] [--sparsity 0.9]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from crisp_edge.cli.group import main


def _latencies_ms(fns: dict[str, Callable[[], object]], runs: int, warmup: int = 10,
                  rounds: int = 10) -> dict[str, tuple[float, float]]:
    """Median and p90 wall time (ms) of each function, measured in interleaved rounds so that
    clock ramps and cache state favour no system by its position in the list."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1e3)
    out = {}
    for name, ts in times.items():
        ts.sort()
        out[name] = (statistics.median(ts), ts[min(len(ts) - 1, int(0.9 * len(ts)))])
    return out


def train(model, x: np.ndarray, y: np.ndarray, seconds: float, max_epochs: int, log) -> int:  # type: ignore[no-untyped-def]
    """Train with AdamW + cosine decay until ``seconds`` or ``max_epochs`` run out."""
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
    batch = 128
    steps_per_epoch = (len(xt) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=3e-3, total_steps=max_epochs * steps_per_epoch, pct_start=0.15
    )
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    epochs = 0
    model.train()
    while epochs < max_epochs and time.perf_counter() - start < seconds:
        order = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(xt), batch):
            idx = order[i : i + batch]
            xb = xt[idx]
            # Random horizontal flips: cheap augmentation the classes are invariant to.
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb[flip] = xb[flip].flip(-1)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yt[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        epochs += 1
        log(f"  epoch {epochs}: loss {total / len(xt):.3f} ({time.perf_counter() - start:.0f} s)")
    model.eval()
    return epochs


def _accuracy(scores: np.ndarray, labels: np.ndarray, head: list[int]) -> float:
    """Top-1 on ``labels`` (original class ids) when output index i answers class head[i]."""
    return float((np.asarray(head)[scores.argmax(1)] == labels).mean())


def _kernels_note(int8_model: Any) -> str:
    """Which runtime kernels produced the latencies above: the fp32 rows ran the optimised
    kernels of the ISA this CPU selected (not the scalar references), the int8 row the int8
    kernel lists its ops name (qs8_gemm, qs8_spmm, ...), so say which."""
    from crisp_edge.runtime import kernel_isa

    int8 = sorted({k for k in int8_model.op_kernels() if k != "reference"})
    return (f"runtime kernels: {kernel_isa()} (fp32 rows, optimised kernels chosen for this "
            f"CPU; CRISP_MAX_ISA caps them); int8 row: {', '.join(int8) or 'reference'} "
            "(the rest of its ops on the reference kernels)")


@main.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("demo-output"), show_default=True, help="Output folder.")
@click.option("--num-classes", default=10, show_default=True, type=click.IntRange(2),
              help="Synthetic classes in the data.")
@click.option("--classes", default="1,4,7", show_default=True, help="The user's classes (ids).")
@click.option("--sparsity", default=0.9, show_default=True, type=float,
              help="Target sparsity of the body.")
@click.option("--train-per-class", default=500, show_default=True, type=click.IntRange(1))
@click.option("--test-per-class", default=100, show_default=True, type=click.IntRange(1))
@click.option("--train-seconds", default=60.0, show_default=True, type=float,
              help="Base training budget.")
@click.option("--max-epochs", default=12, show_default=True, type=click.IntRange(1))
@click.option("--epochs-per-step", default=2, show_default=True, type=click.IntRange(1),
              help="Fine-tuning per prune step.")
@click.option("--latency-runs", default=200, show_default=True, type=click.IntRange(1))
def demo_command(**options: Any) -> None:
    """Train a small CNN, prune it for 3 of its 10 classes, pack dense / hybrid / int8, run all
    three in the C runtime and print accuracy, size, MACs and latency (`make demo`)."""
    code = run_demo(argparse.Namespace(**options))
    if code:
        sys.exit(code)


def run_demo(args: argparse.Namespace) -> int:
    """The demo with ``args`` (the options of :func:`demo_command`); returns the exit status."""

    import torch

    from crisp_edge.version import __version__
    from crisp_edge.models.checkpoint import save_checkpoint
    from crisp_edge.data.sources import class_names, make_synthetic
    from crisp_edge.models.zoo import TinyResNet
    from crisp_edge.packing.pack import pack, pack_checkpoint
    from crisp_edge.runtime import load
    from crisp_edge.pruning.engine import PruneConfig, prune, result_checkpoint

    classes = [int(c) for c in args.classes.split(",")]
    source = f"synthetic:{args.num_classes}"
    torch.manual_seed(0)
    # Training uses every core; latency is measured later with one thread for every system.
    torch.set_num_threads(os.cpu_count() or 1)
    args.out.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(msg, flush=True)  # noqa: E731

    log(f"crisp-edge demo {__version__}: {source} (32x32), user classes {classes}")
    x_train, y_train = make_synthetic(args.num_classes, args.train_per_class, 32, split="train")
    x_test, y_test = make_synthetic(args.num_classes, args.test_per_class, 32, split="test",
                                    classes=classes)
    log(f"data: {len(x_train)} training images of {args.num_classes} classes; "
        f"{len(x_test)} test images of the user's classes")

    model = TinyResNet(num_classes=args.num_classes)
    log(f"1/4 training the base model (all classes) for up to {args.train_seconds:.0f} s ...")
    t0 = time.perf_counter()
    epochs = train(model, x_train, y_train, args.train_seconds, args.max_epochs, log)
    train_s = time.perf_counter() - t0
    names = class_names(args.num_classes)
    dense_path = args.out / "dense.crisp"
    pack(model, torch.from_numpy(x_test[:1]), dense_path,
                    labels=list(enumerate(names)))

    log(f"2/4 pruning for classes {classes} to {100 * args.sparsity:.0f} % sparsity "
        "(CRISP: class-aware 2:4 shared by 4 rows + 16x16 blocks, iterative fine-tuning) ...")
    t0 = time.perf_counter()
    config = PruneConfig(sparsity=args.sparsity, epochs_per_step=args.epochs_per_step,
                         samples_per_class=args.train_per_class, lr=0.02)
    # prune() works in place (it reduces the head too): keep the base model for comparison.
    result = prune(copy.deepcopy(model), source, classes, config, progress=False)
    prune_s = time.perf_counter() - t0
    ckpt_path = save_checkpoint(result_checkpoint(result, arch="tiny_resnet", data=source),
                                args.out / "pruned.pt")

    log("3/4 packing hybrid-sparse float32 and int8 .crisp files ...")
    sparse_path, int8_path = args.out / "model.crisp", args.out / "model-int8.crisp"
    pack_checkpoint(ckpt_path, sparse_path)
    pack_checkpoint(ckpt_path, int8_path, int8=True, calibration=source)

    log("4/4 running the test set and timing batch-1 inference ...")
    torch.set_num_threads(1)
    x_t = torch.from_numpy(x_test)
    with torch.inference_mode():
        dense_scores = model(x_t).numpy()
        pruned_scores = result.model.eval()(x_t).numpy()
    head = list(result.head_classes)
    runs = {}
    for name, path in (("dense", dense_path), ("sparse", sparse_path), ("int8", int8_path)):
        runs[name] = load(path)
    acc = {
        "torch dense": _accuracy(dense_scores, y_test, list(range(args.num_classes))),
        "torch pruned": _accuracy(pruned_scores, y_test, head),
        "dense": _accuracy(runs["dense"].run(x_test), y_test, list(range(args.num_classes))),
        "sparse": _accuracy(runs["sparse"].run(x_test), y_test, head),
        "int8": _accuracy(runs["int8"].run(x_test), y_test, head),
    }
    agree = float((runs["sparse"].run(x_test).argmax(1) == pruned_scores.argmax(1)).mean())
    sample, sample_t = x_test[:1], x_t[:1]
    systems: dict[str, Callable[[], object]] = {
        "torch dense": lambda: model(sample_t), "torch pruned": lambda: result.model(sample_t)}
    for name, m in runs.items():
        systems[name] = lambda m=m: m.run(sample)
    with torch.inference_mode():
        lat = _latencies_ms(systems, args.latency_runs)
    info = {name: m.info() for name, m in runs.items()}

    def kib(path: Path) -> str:
        return f"{path.stat().st_size / 1024:.1f} KiB"

    def macs(name: str) -> str:
        i = info[name]
        return f"{i['effective_macs'] / 1e6:.2f} M ({100 * i['effective_macs'] / i['macs']:.0f} %)"

    rows = [
        ("", "top-1 (user classes)", "file", "MACs / image", "latency median / p90"),
        ("torch, dense (all classes)", f"{100 * acc['torch dense']:.2f} %", "", "",
         "{:.3f} / {:.3f} ms".format(*lat["torch dense"])),
        ("torch, CRISP-pruned", f"{100 * acc['torch pruned']:.2f} %", "", "",
         "{:.3f} / {:.3f} ms".format(*lat["torch pruned"])),
        ("crisp runtime, dense fp32", f"{100 * acc['dense']:.2f} %", kib(dense_path),
         macs("dense"), "{:.3f} / {:.3f} ms".format(*lat["dense"])),
        ("crisp runtime, hybrid fp32", f"{100 * acc['sparse']:.2f} %", kib(sparse_path),
         macs("sparse"), "{:.3f} / {:.3f} ms".format(*lat["sparse"])),
        ("crisp runtime, hybrid int8", f"{100 * acc['int8']:.2f} %", kib(int8_path),
         macs("int8"), "{:.3f} / {:.3f} ms".format(*lat["int8"])),
    ]
    log(f"\nbase: {epochs} epoch(s) in {train_s:.0f} s; pruning: {prune_s:.0f} s; "
        f"{len(x_test)} test images; batch 1, 1 thread for every row\n")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        log("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    log(f"\ntop-1 agreement of the hybrid runtime with the pruned torch model: {100 * agree:.2f} %")
    log(f"files in {args.out}/: pruned.pt (checkpoint + report), dense.crisp, model.crisp, "
        "model-int8.crisp; `crisp-edge inspect` shows their layers")
    log(_kernels_note(runs["int8"]))
    if agree < 0.999:
        log(f"error: runtime and torch disagree on {100 * (1 - agree):.2f} % of the test set")
        return 1
    return 0


if __name__ == "__main__":
    demo_command(prog_name="python -m crisp_edge.cli.demo")
