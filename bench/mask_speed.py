"""CPU seconds per `hybrid_masks` step (one thread) on the zoo's CIFAR-shape models: the N:M
step from scratch (keep 1.0), then block steps down to ρ = 0.2 on random saliency.

    python bench/mask_speed.py [--archs resnet18_cifar,mobilenet_v2_cifar,resnet50_cifar]

CPU time (`time.process_time`), not wall time, so other work on the machine does not count.
tests/pruning/test_masks.py checks that the masks equal the sorting definition.
"""

from __future__ import annotations

import argparse
import time

import torch

from crisp_edge.format.pattern import Pattern
from crisp_edge.models.zoo import build_arch
from crisp_edge.pruning.masks import find_prunable_layers, hybrid_masks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", default="resnet18_cifar,mobilenet_v2_cifar,resnet50_cifar")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for arch in args.archs.split(","):
        model = build_arch(arch, num_classes=5)
        layers = find_prunable_layers(model, torch.randn(1, 3, 32, 32), Pattern())
        named = dict(model.named_parameters())
        gen = torch.Generator().manual_seed(0)
        weights = {lay.param: named[lay.param].detach() for lay in layers}
        saliency = {k: (w * torch.rand(w.shape, generator=gen)).abs() for k, w in weights.items()}
        previous, seconds = None, []
        for keep in (1.0, 0.6, 0.4, 0.3, 0.2):
            start = time.process_time()
            previous = hybrid_masks(layers, weights, saliency, Pattern(), keep, previous)
            seconds.append(time.process_time() - start)
        print(f"{arch}: CPU s per step " + " ".join(f"{s:.2f}" for s in seconds))


if __name__ == "__main__":
    main()
