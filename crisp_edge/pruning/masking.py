"""Keeping a model on its masks while it fine-tunes: hard masking or SR-STE (docs/pruning.md#saliency).

Hard masking (default): weights are multiplied by their masks whenever the masks change and after
every optimiser step, and the gradients of removed weights are zeroed, so removed weights stay
exact zeros throughout.

SR-STE (sparse-refined straight-through estimator, Zhou et al. 2021): the dense weights are kept;
every forward pass sees the masked weights (the dense values are swapped out just before the
forward and back in right after the backward), the gradient w.r.t. the masked weights is applied
to the dense ones unchanged (straight-through), and removed weights get an extra decay:
``grad += λ · (¬mask) · W`` (λ = 2e-4 by default). Swapping values in place keeps the parameter
objects, names and state-dict keys unchanged, so it works as well under DDP.

Either way :meth:`Masker.finalize` leaves the weights with the masks applied (exact zeros).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from crisp_edge.errors import ArgumentError

MODES = ("hard", "sr-ste")


class Masker:
    """Applies bool ``masks`` (keyed by parameter name) to ``params`` in the chosen ``mode``.

    Use its methods as the hooks of :func:`crisp_edge.pruning.training.train_epoch`:
    ``before_forward``, ``after_backward`` (after saliency accumulation), ``after_step``."""

    def __init__(self, params: Mapping[str, nn.Parameter], mode: str = "hard",
                 decay: float = 2e-4) -> None:
        if mode not in MODES:
            raise ArgumentError(f"masking must be one of {', '.join(MODES)}, got {mode!r}")
        if decay < 0:
            raise ArgumentError(f"the SR-STE decay must be ≥ 0, got {decay}")
        self.params = dict(params)
        self.mode = mode
        self.decay = decay
        self.masks: dict[str, torch.Tensor] = {}
        self._dense: dict[str, torch.Tensor] | None = None

    def set_masks(self, masks: Mapping[str, torch.Tensor]) -> None:
        """Use ``masks`` from now on (hard masking zeroes the removed weights at once)."""
        self.masks = {}
        for key, mask in masks.items():
            if key not in self.params:
                continue
            p = self.params[key]
            if tuple(mask.shape) != tuple(p.shape):
                raise ArgumentError(f"mask of {key} has shape {tuple(mask.shape)}, the weight "
                                    f"{tuple(p.shape)}")
            self.masks[key] = mask.to(device=p.device, dtype=torch.bool)
        if self.mode == "hard":
            self.apply()

    @torch.no_grad()
    def apply(self) -> None:
        """Multiply every masked weight by its mask (removed weights become exact zeros)."""
        for key, mask in self.masks.items():
            self.params[key].mul_(mask)

    @torch.no_grad()
    def before_forward(self) -> None:
        """SR-STE: keep the dense values aside and put the masked ones in place."""
        if self.mode != "sr-ste" or not self.masks:
            return
        self._dense = {k: self.params[k].detach().clone() for k in self.masks}
        self.apply()

    @torch.no_grad()
    def after_backward(self) -> None:
        """Hard: zero the gradients of removed weights. SR-STE: restore the dense weights and add
        the decay λ·(¬mask)·W to the (straight-through) gradient."""
        for key, mask in self.masks.items():
            p = self.params[key]
            if self.mode == "hard":
                if p.grad is not None:
                    p.grad.mul_(mask)
                continue
            if self._dense is not None:
                p.copy_(self._dense[key])
            if p.grad is not None and self.decay:
                p.grad.add_(p.detach() * ~mask, alpha=self.decay)
        self._dense = None

    def after_step(self) -> None:
        """Hard: re-apply the masks after the optimiser moved the weights."""
        if self.mode == "hard":
            self.apply()

    @contextmanager
    def masked(self) -> Iterator[None]:
        """Evaluate with the masked weights: a no-op for hard masking; SR-STE swaps the dense
        weights out for the duration of the block."""
        if self.mode != "sr-ste" or not self.masks:
            yield
            return
        dense = {k: self.params[k].detach().clone() for k in self.masks}
        self.apply()
        try:
            yield
        finally:
            with torch.no_grad():
                for key, value in dense.items():
                    self.params[key].copy_(value)

    def finalize(self) -> None:
        """Leave the weights with the masks applied, for good."""
        self._dense = None
        self.apply()
