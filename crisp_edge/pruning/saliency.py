"""Class-aware saliency (docs/pruning.md#saliency).

G = mean over minibatches of |∂L/∂W| for every prunable weight, with L the cross-entropy on
samples of the user's classes only. G is accumulated during the fine-tuning passes (the
``after_backward`` hook of :func:`crisp_edge.pruning.training.train_epoch` calls
:meth:`SaliencyAccumulator.accumulate`) and measured by :func:`measure_saliency` before step 0.
The weight saliency is S = |W ⊙ G| (:func:`weight_saliency`); a block's score is Σ S over it.

Under DDP the gradients seen after ``backward`` are already averaged over the ranks (the global
batch), so G matches a single-process run; :meth:`SaliencyAccumulator.mean` still all-reduces
G so every rank holds bit-identical values and computes identical masks.

:func:`per_class_block_saliency` gives the per-class statistics on-device re-personalisation
needs: Σ S per block for each user class (one backward pass per class over that class's samples),
stored as float16 tensors (classes, block rows, block columns).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from crisp_edge.pruning import distributed
from crisp_edge.format.pattern import Pattern
from crisp_edge.pruning.masks import PrunableLayer, block_scores, to_matrix
from crisp_edge.pruning.training import make_loader


class SaliencyAccumulator:
    """Running Σ |grad| over minibatches for a set of parameters (keyed by parameter name)."""

    def __init__(self, params: Mapping[str, nn.Parameter]) -> None:
        self.params = dict(params)
        self.sums = {k: torch.zeros_like(p, dtype=torch.float64) for k, p in self.params.items()}
        self.batches = 0

    def accumulate(self) -> None:
        """Add |∂L/∂W| of the current ``.grad`` of every parameter (call after ``backward``)."""
        for key, p in self.params.items():
            if p.grad is not None:
                self.sums[key] += p.grad.detach().abs().to(torch.float64)
        self.batches += 1

    def reset(self) -> None:
        """Start a new mean."""
        for s in self.sums.values():
            s.zero_()
        self.batches = 0

    def mean(self) -> dict[str, torch.Tensor]:
        """G (float32) per parameter: the mean over the accumulated minibatches, averaged over the
        ranks so every rank holds the same values."""
        if self.batches == 0:
            raise RuntimeError("no minibatch was accumulated; the data loader yielded nothing")
        out = {}
        for key, s in self.sums.items():
            g = (s / self.batches).to(torch.float32)
            out[key] = distributed.all_reduce_mean(g)
        return out


def prunable_params(model: nn.Module, layers: Sequence[PrunableLayer]) -> dict[str, nn.Parameter]:
    """The weight parameter of every layer that has blocks or N:M (keyed by parameter name)."""
    named = dict(distributed.unwrap(model).named_parameters())
    return {layer.param: named[layer.param] for layer in layers if layer.blocks or layer.nm}


def measure_saliency(model: nn.Module, loader: DataLoader,
                     params: Mapping[str, nn.Parameter], *,
                     loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                     target_map: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """G over one pass of ``loader`` without updating anything (eval mode: BatchNorm uses its
    running statistics and dropout is off). ``model`` may be DDP-wrapped; gradients are left
    cleared afterwards."""
    acc = SaliencyAccumulator(params)
    was_training = model.training
    model.eval()
    device = next(iter(params.values())).device
    try:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            if target_map is not None:
                y = target_map.to(device)[y]
            model.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            acc.accumulate()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return acc.mean()


def weight_saliency(weights: Mapping[str, torch.Tensor],
                    grads: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """S = |W ⊙ G| per parameter (docs/pruning.md#saliency)."""
    return {k: (weights[k].detach().float() * g).abs() for k, g in grads.items()}


def per_class_block_saliency(model: nn.Module, dataset: Any, class_ids: Sequence[int],
                             layers: Sequence[PrunableLayer], pattern: Pattern, *,
                             batch_size: int,
                             loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                             target_map: torch.Tensor | None = None,
                             ) -> dict[str, torch.Tensor]:
    """Σ S per block and per class, float16 (len(class_ids), block rows, block columns), for
    every block layer (keyed by parameter name). S uses the model's current weights (the
    engine measures the dense model, before any mask) and G measured on that class's samples
    only; the class order is ``class_ids``'s."""
    block_layers = [layer for layer in layers if layer.blocks]
    params = prunable_params(model, block_layers)
    per_layer: dict[str, list[torch.Tensor]] = {layer.param: [] for layer in block_layers}
    for cid in class_ids:
        subset: Dataset = dataset.subset([cid])
        loader = make_loader(subset, batch_size, False, 0)
        grads = measure_saliency(model, loader, params, loss_fn=loss_fn, target_map=target_map)
        for key, s in weight_saliency({k: p for k, p in params.items()}, grads).items():
            sums = block_scores(to_matrix(s.cpu()), pattern.block_rows, pattern.block_cols)
            per_layer[key].append(sums)
    limit = torch.finfo(torch.float16).max
    return {k: torch.stack(v).clamp(max=limit).to(torch.float16) for k, v in per_layer.items()}
