"""Why MobileNetV2 sat at exact chance: 2:4 masks on the trained base model, evaluated with the
dense network's BatchNorm statistics and with statistics re-estimated on the user's images.

    python bench/stale_batchnorm.py [--archs mobilenet_v2_cifar,resnet18_cifar] [--k 10]

Uses the base models of `bench/prune_bench.py` (trained there first if missing). No
fine-tuning: only the masks and the statistics change. docs/pruning.md quotes the output.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import prune_bench  # noqa: E402

from crisp_edge.data.sources import open_source  # noqa: E402
from crisp_edge.format.pattern import Pattern  # noqa: E402
from crisp_edge.pruning.masks import find_prunable_layers, hybrid_masks  # noqa: E402
from crisp_edge.pruning.runs import load_base  # noqa: E402
from crisp_edge.pruning.training import (evaluate, make_loader, recalibrate_batchnorm,  # noqa: E402
                                         reduce_head)


def probe(arch: str, k: int, bench_args: argparse.Namespace) -> None:
    model, *_ = load_base(arch, None, prune_bench.train_base(arch, bench_args), None)
    classes = prune_bench.user_classes(k)
    reduce_head(model, classes, 100)
    train = open_source("synthetic:100", split="train", image_size=32,
                        samples_per_class=bench_args.samples_per_class).subset(classes)
    test = open_source("synthetic:100", split="test", image_size=32,
                       samples_per_class=bench_args.test_per_class).subset(classes)
    loader = make_loader(test, 256, False, 0, False)
    x = torch.stack([test[i][0] for i in range(len(test))])

    def report(what: str, net: torch.nn.Module) -> None:
        top1 = evaluate(net, loader, classes, reduced_head=True)["top1"]
        with torch.no_grad():
            answers = torch.bincount(net.eval()(x).argmax(1), minlength=k).tolist()
        print(f"{arch}: {what}: top-1 {100 * top1:.1f} %, answers per class {answers}")

    report("dense", model)
    named = dict(model.named_parameters())
    layers = find_prunable_layers(model, train[0][0][None], Pattern())
    weights = {lay.param: named[lay.param].detach() for lay in layers}
    masks = hybrid_masks(layers, weights, {n: w.abs() for n, w in weights.items()}, Pattern(),
                         1.0, None)  # keep ratio 1: 2:4 only, no block removed
    with torch.no_grad():
        for name, mask in masks.items():
            named[name].mul_(mask)
    report("2:4, dense BatchNorm statistics", model)
    fresh = copy.deepcopy(model)
    recalibrate_batchnorm(fresh, make_loader(train, 64, False, 0, False))
    report("2:4, statistics re-estimated", fresh)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", default="mobilenet_v2_cifar,resnet18_cifar")
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    bench_args = prune_bench.parse_args([])
    for arch in args.archs.split(","):
        probe(arch, args.k, bench_args)


if __name__ == "__main__":
    main()
