"""`make demo`: the whole path on built-in defaults, in about a minute and a half.

Generates the synthetic class-structured data set, trains a small residual CNN, packs it into
a ``.crisp`` file, runs the test set through the C runtime and prints torch vs runtime
accuracy, their agreement, the file size and batch-1 latency (same thread count for both).

    python -m crisp_edge.demo --out demo-output [--train-seconds 60]

(Later stages turn this into the full prune → pack → run flow.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _latency_ms(fn: Callable[[], object], runs: int, warmup: int = 10) -> tuple[float, float]:
    """Median and p90 wall time of ``fn`` in milliseconds after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m crisp_edge.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    ap.add_argument("--classes", type=int, default=10, help="synthetic classes")
    ap.add_argument("--train-per-class", type=int, default=500)
    ap.add_argument("--test-per-class", type=int, default=100)
    ap.add_argument("--train-seconds", type=float, default=60.0, help="training time budget")
    ap.add_argument("--max-epochs", type=int, default=12)
    ap.add_argument("--latency-runs", type=int, default=200)
    args = ap.parse_args(argv)

    import torch

    import crisp_edge
    from crisp_edge.data import class_names, make_synthetic
    from crisp_edge.models import TinyResNet

    torch.manual_seed(0)
    # Training uses every core; latency is measured later with one thread for both systems.
    torch.set_num_threads(os.cpu_count() or 1)
    args.out.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(msg, flush=True)  # noqa: E731

    log(f"crisp-edge demo {crisp_edge.__version__}: synthetic data, {args.classes} classes, 32x32")
    x_train, y_train = make_synthetic(args.classes, args.train_per_class, 32, seed=0, split="train")
    x_test, y_test = make_synthetic(args.classes, args.test_per_class, 32, seed=0, split="test")
    log(f"data: {len(x_train)} training and {len(x_test)} test images")

    model = TinyResNet(num_classes=args.classes)
    log(f"training TinyResNet for up to {args.train_seconds:.0f} s ...")
    t0 = time.perf_counter()
    epochs = train(model, x_train, y_train, args.train_seconds, args.max_epochs, log)
    train_s = time.perf_counter() - t0

    path = args.out / "model.crisp"
    names = class_names(args.classes)
    crisp_edge.pack(model, torch.from_numpy(x_test[:1]), path, labels=list(enumerate(names)))
    torch.save(model.state_dict(), args.out / "model.pt")

    with torch.inference_mode():
        torch_logits = torch.cat([model(torch.from_numpy(x_test[i : i + 256])) for i in range(0, len(x_test), 256)]).numpy()
    runtime_model = crisp_edge.load(path)
    crisp_logits = runtime_model.run(x_test)

    torch_acc = float((torch_logits.argmax(1) == y_test).mean())
    crisp_acc = float((crisp_logits.argmax(1) == y_test).mean())
    agree = float((torch_logits.argmax(1) == crisp_logits.argmax(1)).mean())
    max_err = float(np.abs(torch_logits - crisp_logits).max())
    scale = float(np.abs(torch_logits).max())

    # Same thread count for both: the runtime is single-threaded until its thread pool lands.
    torch.set_num_threads(1)
    sample = x_test[:1]
    sample_t = torch.from_numpy(sample)
    with torch.inference_mode():
        t_med, t_p90 = _latency_ms(lambda: model(sample_t), args.latency_runs)
    c_med, c_p90 = _latency_ms(lambda: runtime_model.run(sample), args.latency_runs)
    info = runtime_model.info()

    size_kib = path.stat().st_size / 1024
    rows = [
        ("", "torch (eager)", "crisp runtime"),
        ("top-1 accuracy (test set)", f"{100 * torch_acc:.2f} %", f"{100 * crisp_acc:.2f} %"),
        ("top-1 agreement with torch", "", f"{100 * agree:.2f} %"),
        ("max |logit difference|", "", f"{max_err:.2e} (logit scale {scale:.1f})"),
        ("model size", f"{sum(p.numel() for p in model.parameters()) * 4 / 1024:.1f} KiB params", f"{size_kib:.1f} KiB file"),
        ("activation arena", "", f"{info['arena_bytes'] / 1024:.1f} KiB (unplanned {info['naive_bytes'] / 1024:.1f} KiB)"),
        ("latency, batch 1, 1 thread, median", f"{t_med:.3f} ms", f"{c_med:.3f} ms"),
        ("latency, p90", f"{t_p90:.3f} ms", f"{c_p90:.3f} ms"),
    ]
    log(f"trained {epochs} epoch(s) in {train_s:.0f} s; packed to {path}\n")
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        log("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    log("\nNote: the runtime here runs its scalar reference kernels; the SIMD kernels and hybrid")
    log("sparsity (crisp-edge prune) are what make it fast on boards.")
    if agree < 0.999:
        log(f"error: runtime and torch disagree on {100 * (1 - agree):.2f} % of the test set")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
