"""`make bench-prune`: CRISP vs the dense model vs every baseline on the synthetic 100-class set.

For each architecture (CIFAR-size ResNet-18 and MobileNetV2 by default) a base model is trained
on all 100 classes (cached by its settings), then for each number of user classes k (2, 5, 10;
the first k of a fixed seeded permutation of the class ids) every method prunes it to the target
sparsity under the same schedule and budget (`crisp-edge compare`). Writes a Markdown table with
the exact command and a JSON file with every number.

    python bench/prune_bench.py                       # full scale (hours on 2 cores)
    python bench/prune_bench.py --quick               # minutes: proves the pipeline works

The paper's claim under test: CRISP stays close to dense and ahead of class-agnostic
(magnitude-hybrid) and channel pruning at the same sparsity.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
METHODS = ["crisp", "magnitude-hybrid", "unstructured", "nm-only", "block-only", "channel"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", default="resnet18_cifar,mobilenet_v2_cifar")
    ap.add_argument("--k", default="2,5,10", help="numbers of user classes")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--nm", default="2:4")
    ap.add_argument("--block", default="16x16")
    ap.add_argument("--samples-per-class", type=int, default=100,
                    help="synthetic training renders per class (base training and pruning)")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=15, help="base-model training epochs")
    ap.add_argument("--base-lr", type=float, default=0.05)
    ap.add_argument("--epochs-per-step", type=int, default=1)
    ap.add_argument("--steps", type=int, default=None, help="block steps [default: 10 %% per step]")
    ap.add_argument("--lr", type=float, default=0.01, help="fine-tuning learning rate")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch threads [default: all cores]")
    ap.add_argument("--out-dir", type=Path, default=REPO / "bench-results" / "prune")
    ap.add_argument("--doc", type=Path, default=None,
                    help="Markdown output [default: docs/prune-benchmark.md; with --quick "
                         "OUT_DIR/prune-benchmark.md]")
    ap.add_argument("--quick", action="store_true",
                    help="tiny scale (8 samples/class, 1 base epoch, k=2, 2 steps, 16 px)")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples_per_class, args.epochs, args.k, args.steps = 8, 1, "2", 2
        args.image_size, args.batch_size = 16, 16
        args.out_dir = args.out_dir.with_name(args.out_dir.name + "-quick")
    if args.doc is None:
        args.doc = args.out_dir / "prune-benchmark.md" if args.quick else \
            REPO / "docs" / "prune-benchmark.md"
    return args


def user_classes(k: int, num_classes: int = 100) -> list[int]:
    """The first k ids of a fixed permutation (seed 0): the same classes in every run."""
    return [int(c) for c in np.random.default_rng(0).permutation(num_classes)[:k]]


def base_model(arch: str, args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """Train (or reuse) the base model of ``arch`` for these settings."""
    from crisp_edge.checkpoint import load_checkpoint
    from crisp_edge.runs import run_train
    from crisp_edge.training import TrainConfig

    config = TrainConfig(epochs=args.epochs, lr=args.base_lr, batch_size=128)
    key = json.dumps([arch, args.samples_per_class, args.image_size, config.to_dict()])
    path = args.out_dir / f"base-{arch}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.pt"
    if not path.is_file():
        print(f"[bench] training {arch} base model → {path}", flush=True)
        run_train(arch=arch, model_source=None, data="synthetic:100", out=path, config=config,
                  image_size=args.image_size, samples_per_class=args.samples_per_class)
    else:
        print(f"[bench] reusing {path}", flush=True)
    return path, load_checkpoint(path).report


def run(args: argparse.Namespace) -> dict[str, Any]:
    from crisp_edge.pruning import PruneConfig
    from crisp_edge.runs import run_compare

    if args.threads:
        torch.set_num_threads(args.threads)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    methods = [m for m in args.methods.split(",") if m]
    results: dict[str, Any] = {"runs": [], "bases": {}}
    for arch in args.archs.split(","):
        path, base_report = base_model(arch, args)
        results["bases"][arch] = {"path": str(path), "final": base_report["final"],
                                  "wall_time_s": base_report["wall_time_s"]}
        for k in (int(v) for v in args.k.split(",")):
            classes = user_classes(k)
            config = PruneConfig(sparsity=args.sparsity, nm=args.nm, block=args.block,
                                 steps=args.steps, epochs_per_step=args.epochs_per_step,
                                 lr=args.lr, batch_size=args.batch_size,
                                 image_size=args.image_size,
                                 samples_per_class=args.samples_per_class)
            print(f"[bench] {arch}, k={k} classes {classes}", flush=True)
            started = time.perf_counter()
            table = run_compare(arch=arch, model_source=None, weights=path, data="synthetic:100",
                                classes=",".join(map(str, classes)), config=config,
                                methods=methods, out_dir=args.out_dir / f"{arch}-k{k}",
                                progress=False)
            results["runs"].append({"arch": arch, "k": k, "classes": classes,
                                    "dense": table["dense"], "rows": table["rows"],
                                    "config": table["config"],
                                    "wall_time_s": time.perf_counter() - started})
    return results


def markdown(results: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    methods = [m for m in args.methods.split(",") if m]
    lines = ["# Pruning benchmark: CRISP vs dense vs baselines", "",
             f"Synthetic 100-class data ({args.samples_per_class} training renders per class, "
             f"30 test renders per class, {args.image_size}×{args.image_size}); target sparsity "
             f"{100 * args.sparsity:.0f} %, {args.nm} in {args.block} blocks; every method under "
             "the same schedule (steps, epochs, one cosine LR). Top-1 accuracy on the user "
             "classes (test split, reduced head); in brackets the achieved sparsity of the "
             "prunable layers.", "",
             f"Command: `{command}`", "",
             f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
             f"torch {torch.__version__}.", "", "## Base models (all 100 classes)", "",
             "| arch | test top-1 | test top-5 | training time |", "|---|---:|---:|---:|"]
    for arch, base in results["bases"].items():
        f = base["final"]
        lines.append(f"| {arch} | {100 * f['top1']:.2f} % | {100 * f['top5']:.2f} % | "
                     f"{base['wall_time_s']:.0f} s |")
    lines += ["", "## Top-1 on the user classes", "",
              "| arch | k | dense | " + " | ".join(methods) + " |",
              "|---|---:|---:|" + "---:|" * len(methods)]
    for r in results["runs"]:
        rows = {row["method"]: row for row in r["rows"]}
        cells = [f"{100 * rows[m]['top1']:.1f} % ({100 * rows[m]['sparsity']:.0f} %)"
                 for m in methods]
        lines.append(f"| {r['arch']} | {r['k']} | {100 * r['dense']['top1']:.1f} % | "
                     + " | ".join(cells) + " |")
    lines += ["", "## Wall time per method (s) and effective MACs (% of dense)", "",
              "| arch | k | " + " | ".join(methods) + " |", "|---|---:|" + "---:|" * len(methods)]
    for r in results["runs"]:
        rows = {row["method"]: row for row in r["rows"]}
        lines.append(f"| {r['arch']} | {r['k']} | " + " | ".join(
            f"{rows[m]['wall_time_s']:.0f} s / {100 * rows[m]['effective_macs'] / rows[m]['dense_macs']:.0f} %"
            for m in methods) + " |")
    lines += ["", "Per-run reports (every step, every layer): "
              f"`{args.out_dir.relative_to(REPO) if args.out_dir.is_relative_to(REPO) else args.out_dir}/"
              "<arch>-k<k>/<method>.report.md`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python bench/prune_bench.py " + " ".join(shlex.quote(a) for a in
                                                         (argv if argv is not None else sys.argv[1:]))
    started = time.perf_counter()
    results = run(args)
    results["wall_time_s"] = time.perf_counter() - started
    results["args"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results["command"] = command.strip()
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(markdown(results, args, command.strip()), encoding="utf-8")
    args.doc.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"[bench] wrote {args.doc} and {args.doc.with_suffix('.json')} "
          f"({results['wall_time_s']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
