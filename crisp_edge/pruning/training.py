"""Training loops shared by ``train``, ``prune`` and the baselines: one epoch, evaluation on the
user's classes, data loaders, head reduction (docs/pruning.md#head-reduction) and the base-model training flow.

Everything is deterministic given the seed: loaders shuffle with a per-epoch seed (the same
permutation in one process and under ``torchrun``), workers are not used, and the data set's
augmentation is a function of (seed, epoch, sample).

>>> loader = make_loader(dataset, batch_size=64, shuffle=True, seed=0)    # doctest: +SKIP
>>> loss = train_epoch(model, loader, opt, sched, loss_fn=nn.CrossEntropyLoss())  # doctest: +SKIP
>>> evaluate(model, make_loader(test, 256, False, 0), [3, 7, 11])          # doctest: +SKIP
{'top1': 0.93, 'top5': 1.0, 'n': 300, 'k': 3}
"""

from __future__ import annotations

import hashlib
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from crisp_edge.pruning import distributed
from crisp_edge.errors import ArgumentError

Hook = Callable[[], None]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so a run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int,
                distributed_: bool | None = None) -> DataLoader:
    """A loader whose order depends only on ``seed`` and the epoch (see :func:`set_epoch`).

    ``batch_size`` is the *global* batch: under ``torchrun`` (``distributed_`` None → detect)
    each rank loads ``batch_size / world_size`` samples of the same permutation, so a step sees
    the same samples as one process would."""
    world = distributed.world_size() if distributed_ is None or distributed_ else 1
    rank = distributed.rank() if world > 1 else 0
    if batch_size < 1:
        raise ArgumentError(f"batch size must be at least 1, got {batch_size}")
    if batch_size % world:
        raise ArgumentError(f"batch size {batch_size} must be a multiple of the {world} ranks")
    # A DistributedSampler with one replica is a seeded, epoch-aware RandomSampler.
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle,
                                 seed=seed, drop_last=False)
    return DataLoader(dataset, batch_size=batch_size // world, sampler=sampler, num_workers=0)


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Select the shuffling order (and the data set's augmentation, when it has any) of
    ``epoch`` for a loader from :func:`make_loader`."""
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
    dataset_set_epoch = getattr(loader.dataset, "set_epoch", None)
    if callable(dataset_set_epoch):
        dataset_set_epoch(epoch)


def label_map(class_ids: Sequence[int], num_original: int) -> torch.Tensor:
    """Lookup table original class id → head index for a head reduced to ``class_ids`` (in that
    order); ids outside the user's classes map to -1."""
    table = torch.full((num_original,), -1, dtype=torch.long)
    for index, cid in enumerate(class_ids):
        table[cid] = index
    return table


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                scheduler: Any, *, loss_fn: Callable[..., torch.Tensor],
                target_map: torch.Tensor | None = None, before_forward: Hook | None = None,
                after_backward: Hook | None = None, after_step: Hook | None = None,
                progress: Callable[[int, float], None] | None = None,
                teacher: nn.Module | None = None) -> float:
    """One pass over ``loader``; returns the mean training loss (averaged over ranks).

    Per batch: ``before_forward()`` → forward → loss → backward → ``after_backward()`` (gradients
    are final here, already averaged under DDP) → ``optimizer.step()`` → ``after_step()`` →
    ``scheduler.step()`` (the schedule is per optimiser step). ``target_map`` turns original
    class ids into head indices; ``progress(batch_size, loss)`` is called after each batch.
    With a ``teacher`` (in eval mode, no gradients) the loss is ``loss_fn(logits, y,
    teacher_logits)`` (see :class:`DistillationLoss`), else ``loss_fn(logits, y)``."""
    model.train()
    device = next(model.parameters()).device
    total, count = torch.zeros((), dtype=torch.float64), 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        if target_map is not None:
            y = target_map.to(device)[y]
        if before_forward is not None:
            before_forward()
        optimizer.zero_grad(set_to_none=True)
        if teacher is not None:
            with torch.no_grad():
                guide = teacher(x)
            loss = loss_fn(model(x), y, guide)
        else:
            loss = loss_fn(model(x), y)
        loss.backward()
        if after_backward is not None:
            after_backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        if scheduler is not None:
            scheduler.step()
        value = float(loss.detach())
        total += value * len(y)
        count += len(y)
        if progress is not None:
            progress(len(y), value)
    stats = torch.tensor([float(total), float(count)], dtype=torch.float64)
    distributed.all_reduce_mean(stats)
    return float(stats[0] / stats[1]) if stats[1] else float("nan")


class DistillationLoss:
    """(1 − α)·CE(student, y) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)) (Hinton et
    al. 2015). ``columns`` restricts both sets of logits to the user's classes before the KL
    term (a kept full head); with a reduced head the teacher's logits already are those."""

    def __init__(self, alpha: float, temperature: float,
                 columns: Sequence[int] | None = None) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ArgumentError(f"--distill-alpha {alpha} must be in [0, 1]")
        if not temperature > 0:
            raise ArgumentError(f"--distill-temperature {temperature} must be > 0")
        self.alpha, self.temperature = alpha, temperature
        self.columns = None if columns is None else torch.as_tensor(list(columns))

    def __call__(self, logits: torch.Tensor, y: torch.Tensor,
                 teacher_logits: torch.Tensor) -> torch.Tensor:
        ce = nn.functional.cross_entropy(logits, y)
        s, t = logits, teacher_logits.detach()
        if self.columns is not None:
            cols = self.columns.to(logits.device)
            s, t = s.index_select(1, cols), t.index_select(1, cols)
        temp = self.temperature
        kd = nn.functional.kl_div(nn.functional.log_softmax(s / temp, dim=1),
                                  nn.functional.log_softmax(t / temp, dim=1),
                                  reduction="batchmean", log_target=True)
        return (1.0 - self.alpha) * ce + self.alpha * temp * temp * kd


class CachedTeacher:
    """A frozen teacher whose logits are computed once per distinct input image.

    The teacher never changes during a run and the fine-tuning epochs revisit the same images,
    so its forward passes (one per image and epoch, 11 epochs by default) are done once, up
    front: every image of ``loader`` and its horizontal flip (the training sets' augmentation,
    :class:`crisp_edge.data.sources.ClassDataset`), in the loader's fixed order. So the logits
    do not depend on how an epoch happens to batch the images, and a resumed run gets the same
    numbers as an uninterrupted one. Images are keyed by a hash of their bytes; one the
    precomputation did not cover (another augmentation) is computed when first seen and kept."""

    def __init__(self, teacher: nn.Module, loader: DataLoader) -> None:
        self.teacher = teacher.eval()
        self.logits: dict[bytes, torch.Tensor] = {}
        self.forwards = 0
        for x, _ in loader:
            self(x)
            self(torch.flip(x, dims=(-1,)))

    @staticmethod
    def _key(image: torch.Tensor) -> bytes:  # 16 bytes, not the image: real images are large
        return hashlib.blake2b(image.contiguous().numpy().tobytes(), digest_size=16).digest()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        keys = [self._key(image) for image in x.detach().cpu()]
        missing = [i for i, key in enumerate(keys) if key not in self.logits]
        if missing:
            out = self.teacher(x[missing] if len(missing) < len(keys) else x).cpu()
            self.forwards += len(missing)
            for i, row in zip(missing, out):
                self.logits.setdefault(keys[i], row.clone())
        return torch.stack([self.logits[key] for key in keys]).to(x.device)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, loader: DataLoader, max_batches: int | None = None
                          ) -> int:
    """Re-estimate every BatchNorm's running mean and variance from scratch on ``loader``
    (an exact average over the batches, not a momentum blend), leaving everything else as it
    was: parameters, training flags and (dropout held in eval mode) the random stream. Masks
    change what every BatchNorm sees; stale statistics from the dense model make the masked
    network look worse than it is. Under ``torchrun`` give every rank the same whole loader
    (``make_loader(..., distributed_=False)``): the ranks then compute identical statistics,
    equal to one process's. Returns the images seen."""
    model = distributed.unwrap(model)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats]
    if not norms:
        return 0
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in norms}
    device = next(model.parameters()).device
    seen = 0
    try:
        model.eval()  # dropout off: no random numbers drawn, activations as at inference
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average = the plain mean over the batches
            m.train()
        for i, (x, _y) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            model(x.to(device))
            seen += len(x)
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        for m, training in modes.items():
            m.training = training
    return seen


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, class_ids: Sequence[int], *,
             reduced_head: bool | None = None) -> dict[str, float | int]:
    """Top-1/top-5 accuracy on the samples of ``class_ids`` that ``loader`` yields.

    With a reduced head (logits over the user's classes in the order of ``class_ids``) a sample
    of class ``class_ids[i]`` is right when index ``i`` ranks first (top-1) or within the first
    five; with a full head the predicted index must equal the original class id. ``reduced_head``
    None infers it from the logit width (== number of user classes). Samples of other classes
    are ignored. Top-5 becomes top-min(5, width) when the head is narrower; ``k`` says which."""
    model.eval()
    device = next(model.parameters()).device
    wanted = set(int(c) for c in class_ids)
    top1 = top5 = n = 0
    k = 5
    for x, y in loader:
        keep = torch.tensor([int(t) in wanted for t in y], dtype=torch.bool)
        if not keep.any():
            continue
        x, y = x[keep].to(device), y[keep]
        logits = model(x).cpu()
        if reduced_head is None:
            reduced_head = logits.shape[1] == len(class_ids)
        if reduced_head:
            if logits.shape[1] != len(class_ids):
                raise ArgumentError(f"the model's head has {logits.shape[1]} outputs but "
                                    f"{len(class_ids)} user classes were given")
            y = label_map(class_ids, max(max(wanted) + 1, int(y.max()) + 1))[y]
        k = min(5, logits.shape[1])
        ranked = logits.topk(k, dim=1).indices
        top1 += int((ranked[:, 0] == y).sum())
        top5 += int((ranked == y[:, None]).any(dim=1).sum())
        n += len(y)
    if n == 0:
        raise ArgumentError("the evaluation data hold no samples of the chosen classes")
    return {"top1": top1 / n, "top5": top5 / n, "n": n, "k": k}


def find_head(model: nn.Module, num_classes: int) -> str:
    """Name of the classifier: the last ``nn.Linear`` with ``num_classes`` outputs."""
    found = [name for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and m.out_features == num_classes]
    if not found:
        raise ArgumentError(f"the model has no nn.Linear classifier with {num_classes} outputs "
                            "to reduce; pass --keep-head to keep the full head")
    return found[-1]


def reduce_head(model: nn.Module, class_ids: Sequence[int], num_classes: int) -> str:
    """Replace the classifier by one keeping only the rows of ``class_ids``, in that order
    (docs/pruning.md#head-reduction). Returns the classifier's module name."""
    name = find_head(model, num_classes)
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old: nn.Linear = getattr(parent, attr)
    rows = torch.tensor(list(class_ids), dtype=torch.long)
    new = nn.Linear(old.in_features, len(rows), bias=old.bias is not None)
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(old.weight[rows])
        if old.bias is not None:
            new.bias.copy_(old.bias[rows])
    setattr(parent, attr, new)
    return name


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float,
                   momentum: float = 0.9) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum (``sgd``) or AdamW (``adamw``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                               nesterov=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ArgumentError(f"unknown optimizer {name!r}; choose sgd or adamw")


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int
                    ) -> torch.optim.lr_scheduler.CosineAnnealingLR:
    """One cosine decay of the learning rate to zero over ``total_steps`` optimiser steps."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))


class Progress:
    """A progress bar (tqdm when installed and enabled) or one plain line when it closes."""

    def __init__(self, total: int, desc: str, enabled: bool = True) -> None:
        self.enabled = enabled and distributed.is_main()
        self.desc, self.total, self.done, self.loss = desc, total, 0, float("nan")
        self.start = time.perf_counter()
        self._bar: Any = None
        if self.enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc=desc, unit="img", leave=False,
                                 file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int, loss: float) -> None:
        self.done += n
        self.loss = loss
        if self._bar is not None:
            self._bar.update(n)
            self._bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    def close(self, message: str = "") -> None:
        if self._bar is not None:
            self._bar.close()
        if self.enabled:
            took = time.perf_counter() - self.start
            print(f"{self.desc}: {message} ({took:.1f} s)", file=sys.stderr, flush=True)


@dataclass
class TrainConfig:
    """Settings of ``crisp-edge train`` (a base model on all classes of a data set)."""

    epochs: int = 10
    lr: float = 0.05
    batch_size: int = 128
    weight_decay: float = 5e-4
    optimizer: str = "sgd"
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_model(model: nn.Module, train_set: Dataset, config: TrainConfig, *,
                test_set: Dataset | None = None, class_ids: Sequence[int] | None = None,
                progress: bool = True) -> list[dict[str, float]]:
    """Train ``model`` on every sample of ``train_set`` with a cosine LR over all epochs
    (augmentation, if any, is the data set's: see :func:`crisp_edge.data.sources.open_source`).

    Returns one record per epoch (loss, and test accuracy over ``class_ids`` when a test set is
    given). Works unchanged under ``torchrun``; the returned model is the unwrapped module."""
    if config.epochs < 1:
        raise ArgumentError(f"epochs must be at least 1, got {config.epochs}")
    seed_everything(config.seed)
    model.to(distributed.device())
    loader = make_loader(train_set, config.batch_size, True, config.seed)
    optimizer = make_optimizer(model, config.optimizer, config.lr, config.weight_decay)
    scheduler = cosine_schedule(optimizer, config.epochs * len(loader))
    wrapped = distributed.wrap(model)
    loss_fn = nn.CrossEntropyLoss()
    test_loader = make_loader(test_set, 256, False, 0, False) if test_set is not None else None
    history = []
    for epoch in range(config.epochs):
        set_epoch(loader, epoch)
        bar = Progress(len(loader.sampler) * distributed.world_size(),
                       f"epoch {epoch + 1}/{config.epochs}", progress)
        loss = train_epoch(wrapped, loader, optimizer, scheduler, loss_fn=loss_fn,
                           progress=lambda n, v: bar.update(n * distributed.world_size(), v))
        record = {"epoch": epoch + 1, "loss": loss}
        if test_loader is not None and class_ids is not None:
            acc = evaluate(model, test_loader, class_ids, reduced_head=False)
            record.update(top1=acc["top1"], top5=acc["top5"])
        bar.close(f"loss {loss:.4f}" + (f", test top-1 {100 * record['top1']:.2f} %"
                                         if "top1" in record else ""))
        history.append(record)
    if not all(math.isfinite(r["loss"]) for r in history):
        raise ArgumentError("training diverged (loss is not finite); lower --lr")
    return history
