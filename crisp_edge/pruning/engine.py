"""The CRISP pruning engine: class-aware saliency → hybrid masks → fine-tuning, iteratively.

Schedule (docs/pruning.md): step 0 applies N:M (every block kept) and fine-tunes; steps 1 … K
lower the kept-block ratio to ρ = (1 − sparsity)/(N/M) along ``schedule_shape`` (cubic by
default: big cuts first, small ones near the target; K = 4 unless given); every step
fine-tunes E epochs and the last one E + ``final_epochs``; ONE cosine learning-rate schedule
spans them all; masks are cumulative; after each mask change BatchNorm statistics are
re-estimated; fine-tuning distils from the dense model (logits restricted to the user's classes)
when ``distill`` is on; the saliency G used at step s is the mean |∂L/∂W| of step s − 1's
fine-tuning pass (a measuring pass before step 0). How the block budget of a step is shared among
layers is :mod:`crisp_edge.pruning.allocation`'s. The baselines of :mod:`crisp_edge.pruning.baselines` run under
the same schedule with the same progress values.

>>> result = prune(model, "synthetic:100", [3, 7, 11], PruneConfig(sparsity=0.9))  # doctest: +SKIP
>>> result.report["accuracy"]["final"]                                          # doctest: +SKIP
{'top1': 0.97, 'top5': 1.0, 'n': 300, 'k': 3}
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from crisp_edge.pruning import distributed

from crisp_edge.pruning import recipe
from crisp_edge.pruning.allocation import Allocation
from crisp_edge.pruning.baselines import METHODS, READS_SALIENCY, MaskRequest, check_nm_score
from crisp_edge.models.checkpoint import (check_resume_dir, load_resume_state, rng_state,
                                          save_resume_state, set_rng_state)
from crisp_edge.errors import ArgumentError
from crisp_edge.pruning.masking import MODES, Masker
from crisp_edge.format.pattern import Pattern
from crisp_edge.pruning.masks import (PrunableLayer, find_prunable_layers, keep_ratio_for_sparsity,
                                      model_density, parse_block, parse_nm)
from crisp_edge.pruning.report import summarize
from crisp_edge.pruning.saliency import (SaliencyAccumulator, measure_saliency, per_class_block_saliency,
                                 prunable_params, weight_saliency)
from crisp_edge.pruning.training import (CachedTeacher, DistillationLoss, Progress,
                                         cosine_schedule, evaluate, find_head, label_map,
                                         make_loader, make_optimizer, recalibrate_batchnorm,
                                         reduce_head, seed_everything, set_epoch, train_epoch)

BLOCKS_PER_STEP = 0.1  # the linear schedule's default: 10 % of the blocks go per step
SCHEDULES: dict[str, Callable[[float], float]] = {
    "linear": lambda t: t,
    "cubic": lambda t: 1.0 - (1.0 - t) ** 3,
}


@dataclass
class PruneConfig:
    """Every setting of a pruning run (the CLI flags of ``crisp-edge prune``)."""

    method: str = "crisp"
    sparsity: float = 0.9
    nm: str = "2:4"
    block: str = "16x16"
    shared_rows: int = recipe.SHARED_ROWS
    steps: int | None = None
    epochs_per_step: int = 1
    lr: float = 0.01
    batch_size: int = 64
    weight_decay: float = 5e-4
    optimizer: str = "sgd"
    masking: str = "hard"
    srste_decay: float = 2e-4
    keep_head: bool = False
    seed: int = 0
    image_size: int | None = None  # None: 32 (the CLI passes the model's input size)
    samples_per_class: int | None = None
    data_seed: int = 0
    # Layer allocation, schedule and recovery (docs/pruning.md says how each default was chosen).
    allocation: str = recipe.ALLOCATION
    allocation_floor: float = recipe.ALLOCATION_FLOOR
    schedule_shape: str = recipe.SCHEDULE
    final_epochs: int = recipe.FINAL_EPOCHS
    distill: bool = recipe.DISTILL
    distill_alpha: float = recipe.DISTILL_ALPHA
    distill_temperature: float = recipe.DISTILL_TEMPERATURE
    bn_recalibrate: bool = recipe.BN_RECALIBRATE
    nm_score: str = recipe.NM_SCORE
    # Evaluation: test images per class (None: the source's default) and per-step evaluation.
    test_samples_per_class: int | None = None
    eval_steps: bool = True

    def pattern(self) -> Pattern:
        """The hybrid pattern of ``nm``, ``block`` and ``shared_rows`` (validated)."""
        n, m = parse_nm(self.nm)
        br, bc = parse_block(self.block)
        return Pattern(n, m, br, bc, self.shared_rows).validate()

    def allocation_rule(self) -> Allocation:
        """The layer-allocation rule of ``allocation`` and ``allocation_floor``."""
        return Allocation(self.allocation, self.allocation_floor)

    def validate(self) -> Pattern:
        """Check every setting; an ArgumentError (a ValueError) says what to change."""
        if self.method not in METHODS:
            raise ArgumentError(f"unknown method {self.method!r}; choose one of "
                                f"{', '.join(METHODS)}")
        pattern = self.pattern()
        if not 0.0 < self.sparsity < 1.0:
            raise ArgumentError(f"sparsity {self.sparsity} must be in (0, 1), e.g. 0.9")
        rho = keep_ratio_for_sparsity(self.sparsity, pattern)  # below N:M's own → error
        self.allocation_rule().validate(rho)
        check_nm_score(self.nm_score)
        DistillationLoss(self.distill_alpha, self.distill_temperature)  # checks α and T
        checks = [(self.steps is None or self.steps >= 1, f"steps must be ≥ 1, got {self.steps}"),
                  (self.epochs_per_step >= 1,
                   f"epochs per step must be ≥ 1, got {self.epochs_per_step}"),
                  (self.lr > 0, f"learning rate must be > 0, got {self.lr}"),
                  (self.batch_size >= 1, f"batch size must be ≥ 1, got {self.batch_size}"),
                  (self.weight_decay >= 0, f"weight decay must be ≥ 0, got {self.weight_decay}"),
                  (self.optimizer in ("sgd", "adamw"),
                   f"optimizer must be sgd or adamw, got {self.optimizer!r}"),
                  (self.masking in MODES,
                   f"masking must be one of {', '.join(MODES)}, got {self.masking!r}"),
                  (self.srste_decay >= 0, f"SR-STE decay must be ≥ 0, got {self.srste_decay}"),
                  (self.schedule_shape in SCHEDULES, f"--schedule must be one of "
                   f"{', '.join(SCHEDULES)}, got {self.schedule_shape!r}"),
                  (self.final_epochs >= 0, f"--final-epochs must be ≥ 0, got {self.final_epochs}"),
                  (self.test_samples_per_class is None or self.test_samples_per_class >= 1,
                   f"test samples per class must be ≥ 1, got {self.test_samples_per_class}")]
        for ok, message in checks:
            if not ok:
                raise ArgumentError(message)
        return pattern

    def block_steps(self) -> int:
        """K: the steps after step 0. Default: 4 with the cubic schedule (its cuts shrink by
        themselves near the target), ⌈(1 − ρ)/0.1⌉ with the linear one (10 % of the blocks per
        step); 0 when N:M alone reaches the target."""
        rho = keep_ratio_for_sparsity(self.sparsity, self.pattern())
        if self.steps is not None:
            return self.steps
        if rho >= 1.0:
            return 0
        if self.schedule_shape == "cubic":
            return recipe.CUBIC_STEPS
        return max(0, math.ceil((1.0 - rho) / BLOCKS_PER_STEP - 1e-9))

    def schedule(self) -> list[tuple[float, float]]:
        """(progress p, kept-block ratio) for steps 0 … K, ratio = 1 − p·(1 − ρ): ``linear``
        p = s/K; ``cubic`` p = 1 − (1 − s/K)³ (Zhu & Gupta 2017: large cuts early while the
        network is redundant, small ones near the target). Baselines get the same p."""
        rho = keep_ratio_for_sparsity(self.sparsity, self.pattern())
        k = self.block_steps()
        if k == 0:
            return [(1.0, rho)]
        shape = SCHEDULES[self.schedule_shape]
        return [(shape(s / k), 1.0 - shape(s / k) * (1.0 - rho)) for s in range(k + 1)]

    def step_epochs(self) -> list[int]:
        """Fine-tuning epochs of each step: E, and E + ``final_epochs`` at the last one."""
        n = len(self.schedule())
        return [self.epochs_per_step + (self.final_epochs if s == n - 1 else 0)
                for s in range(n)]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "steps": self.block_steps()}


@dataclass
class PruneResult:
    """What :func:`prune` returns: the pruned model (masks applied), its masks, the report, the
    per-class block saliency statistics, and what a checkpoint needs besides."""

    model: nn.Module
    masks: dict[str, torch.Tensor]
    report: dict[str, Any]
    saliency_stats: dict[str, torch.Tensor]
    layers: list[PrunableLayer] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    head_classes: list[int] = field(default_factory=list)
    head_class_names: list[str] = field(default_factory=list)
    head: dict[str, Any] = field(default_factory=dict)
    pattern: dict[str, int] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    input_shape: list[int] = field(default_factory=list)


def open_data(data: Any, eval_data: Any, config: PruneConfig, split: str = "train"
              ) -> tuple[Any, Any, str, str]:
    """(train set, evaluation set, source text, evaluation split) from a SOURCE string or data
    sets. Without ``eval_data`` a SOURCE's ``test`` split is used; a data set given as an object
    is evaluated on itself (the report says so)."""
    from crisp_edge.data.sources import open_source

    kw: dict[str, Any] = {"seed": config.data_seed, "image_size": config.image_size or 32}
    test_kw = {**kw, "samples_per_class": config.test_samples_per_class}
    if isinstance(data, str):
        train = open_source(data, split=split, samples_per_class=config.samples_per_class, **kw)
        source = data
    else:
        train, source = data, type(data).__name__
    if isinstance(eval_data, str):
        return train, open_source(eval_data, split="test", **test_kw), source, "test"
    if eval_data is not None:
        return train, eval_data, source, "test"
    if isinstance(data, str):
        return train, open_source(data, split="test", **test_kw), source, "test"
    return train, train, source, "train"


def _check_classes(train: Any, test: Any, classes: Sequence[int | str] | str) -> list[int]:
    from crisp_edge.data.sources import check_classes_present, parse_classes, resolve_classes

    items = parse_classes(classes) if isinstance(classes, str) else list(classes)
    ids = resolve_classes(train, items)
    if not ids:
        raise ArgumentError("give at least one class, e.g. --classes 3,7,11")
    if len(set(ids)) != len(ids):
        raise ArgumentError(f"classes {ids} name a class twice")
    check_classes_present(train, ids)
    if test is not train:
        check_classes_present(test, ids)
    return ids


def _last_linear(model: nn.Module) -> str | None:
    """Name of the last nn.Linear (the classifier of a kept head), None if there is none."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return names[-1] if names else None


def _fingerprint(config: PruneConfig, classes: list[int], model: nn.Module) -> dict[str, Any]:
    return {"config": config.to_dict(), "classes": classes,
            "shapes": {k: list(v.shape) for k, v in model.state_dict().items()}}


def prune(model: nn.Module, data: Any, classes: Sequence[int | str] | str,
          config: PruneConfig | None = None, *, eval_data: Any = None, progress: bool = True,
          checkpoint_dir: str | Path | None = None, resume: bool = False,
          on_step_end: Callable[[int, dict[str, Any]], None] | None = None,
          class_saliency: bool = True) -> PruneResult:
    """Prune ``model`` for ``classes`` of ``data`` (a SOURCE like ``synthetic:100`` or a data
    set from :func:`crisp_edge.data.sources.open_source`) under ``config``.

    Every input is validated before any training. With ``checkpoint_dir`` the full state is
    saved after every step; ``resume=True`` continues from the last saved step and ends with the
    same weights as an uninterrupted run. ``on_step_end(step, record)`` runs after each step's
    checkpoint (raise :class:`StopPruning` there to stop). ``model`` is modified in place (head
    reduced unless ``config.keep_head``) and returned in the result with its masks applied.
    ``class_saliency=False`` skips the per-class statistics (``saliency_stats`` is then empty:
    a checkpoint saved from it cannot be re-personalised on the device); a benchmark that saves
    no model uses it, and it changes nothing else of the run."""
    config = config or PruneConfig()
    started = time.perf_counter()
    pattern = config.validate()
    schedule = config.schedule()
    train_set, test_set, source, eval_split = open_data(data, eval_data, config)
    class_ids = _check_classes(train_set, test_set, classes)
    if resume and checkpoint_dir is None:
        raise ArgumentError("resume needs a checkpoint directory")
    if checkpoint_dir is not None and not resume:
        check_resume_dir(checkpoint_dir)  # a resume reads (and so checks) the state itself
    num_original = int(train_set.num_classes)
    head_name = find_head(model, num_original) if not config.keep_head else None
    if config.distill:
        check_dense(model)

    seed_everything(config.seed)
    # channels_last: oneDNN's native layout for CPU convolutions; a training step runs 7–32 %
    # faster (docs/pruning.md, "What a run costs"). The weights' values are unchanged.
    model.to(distributed.device(), memory_format=torch.channels_last)
    if head_name is not None:
        reduce_head(model, class_ids, num_original)
    target_map = label_map(class_ids, num_original) if head_name is not None else None
    user_train, user_test = train_set.subset(class_ids), test_set.subset(class_ids)
    example = user_train[0][0][None]
    layers = find_prunable_layers(model, example, pattern)
    params = prunable_params(model, layers)
    named = dict(model.named_parameters())
    all_weights = {layer.param: named[layer.param] for layer in layers}  # exempt layers too
    loss_fn = nn.CrossEntropyLoss()
    teacher, train_loss = None, loss_fn
    if config.distill:
        teacher = dense_teacher(model)
        train_loss = DistillationLoss(config.distill_alpha, config.distill_temperature,
                                      None if head_name is not None else class_ids)
    loader = make_loader(user_train, config.batch_size, True, config.seed)
    # BatchNorm re-estimation: the whole training set on every rank (identical statistics).
    bn_loader = make_loader(user_train, config.batch_size, False, 0, False)
    if teacher is not None:  # two forward passes over the user's images, not one per epoch
        teacher = CachedTeacher(teacher, bn_loader)
    test_loader = make_loader(user_test, 256, False, 0, False)
    step_epochs = config.step_epochs()
    optimizer = make_optimizer(model, config.optimizer, config.lr, config.weight_decay)
    scheduler = cosine_schedule(optimizer, sum(step_epochs) * len(loader))
    masker = Masker(params, config.masking, config.srste_decay)
    # Class-aware saliency costs a measuring pass before step 0 and a float64 sum per batch;
    # only the methods that rank by it pay for it.
    reads_saliency = config.method in READS_SALIENCY
    accumulator = SaliencyAccumulator(params) if reads_saliency else None
    reduced = head_name is not None
    loud = progress and distributed.is_main()
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if loud else (lambda msg: None)

    wrapped = distributed.wrap(model)
    state = load_resume_state(checkpoint_dir) if resume else None
    masks: dict[str, torch.Tensor] | None = None
    if state is not None:
        if state["fingerprint"] != _fingerprint(config, class_ids, model):
            raise ArgumentError(f"{checkpoint_dir} holds a run with other settings, classes or "
                                "model; resume with the same flags, or drop --resume to start "
                                "over")
        if class_saliency and not state["class_saliency"]:
            # Measured on the dense model before step 0: a resumed run cannot make them now.
            raise ArgumentError(f"{checkpoint_dir} holds a run started without the per-class "
                                "statistics (class_saliency=False), which a device needs to "
                                "re-personalise the model; resume it with class_saliency=False "
                                "or drop --resume to start over")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        masks, grads = state["masks"], state["saliency"]
        class_stats = state["class_saliency"]
        steps_done: list[dict[str, Any]] = state["steps"]
        dense_acc = state["dense_accuracy"]
        set_rng_state(state["rng"])
        first = int(state["step"]) + 1
        started -= float(state["elapsed"])  # wall time counts the interrupted part too
        masker.set_masks(masks)
        log(f"resuming after step {first - 1} from {checkpoint_dir}")
    else:
        dense_acc = evaluate(model, test_loader, class_ids, reduced_head=reduced)
        log(f"dense: top-1 {100 * dense_acc['top1']:.2f} % on {len(class_ids)} classes")
        if reads_saliency:
            grads = measure_saliency(wrapped, loader, params, loss_fn=loss_fn,
                                     target_map=target_map)
        else:
            # Iterating a DataLoader draws its base seed from the global generator; the skipped
            # pass makes that one draw too, so dropout (MobileNetV2's classifier) sees the same
            # random numbers with or without it.
            iter(loader)
            grads = None
        class_stats = head_class_saliency(wrapped, train_set, class_ids, num_original, reduced,
                                          layers, pattern, config, loss_fn, target_map) \
            if class_saliency else {}
        steps_done, first = [], 0

    def after_backward() -> None:
        if accumulator is not None:
            accumulator.accumulate()
        masker.after_backward()

    for step in range(first, len(schedule)):
        step_start = time.perf_counter()
        p, keep = schedule[step]
        weights = {k: v.detach().cpu() for k, v in all_weights.items()}  # mask math on CPU
        saliency = None if grads is None else \
            weight_saliency(weights, {k: g.cpu() for k, g in grads.items()})
        request = MaskRequest(layers, weights, saliency, pattern, config.sparsity, p, masks,
                              config.allocation_rule(), config.nm_score)
        masks = METHODS[config.method](request)
        for mask in masks.values():
            distributed.broadcast(mask)
        masker.set_masks(masks)
        epochs, done = step_epochs[step], sum(step_epochs[:step])
        if config.bn_recalibrate:
            set_epoch(bn_loader, done)  # the augmentation of the coming epoch, also on resume
            with masker.masked():
                recalibrate_batchnorm(model, bn_loader)
        if accumulator is not None:
            accumulator.reset()
        loss = float("nan")
        for epoch in range(epochs):
            set_epoch(loader, done + epoch)
            bar = Progress(len(user_train), f"step {step}/{len(schedule) - 1} epoch "
                           f"{epoch + 1}/{epochs}", progress)
            loss = train_epoch(wrapped, loader, optimizer, scheduler, loss_fn=train_loss,
                               target_map=target_map, before_forward=masker.before_forward,
                               after_backward=after_backward, after_step=masker.after_step,
                               progress=lambda n, v: bar.update(n * distributed.world_size(), v),
                               teacher=teacher)
            bar.close(f"loss {loss:.4f}")
        grads = accumulator.mean() if accumulator is not None else None
        acc: dict[str, Any] = {"top1": None, "top5": None}
        if config.eval_steps or step == len(schedule) - 1:
            with masker.masked():
                acc = evaluate(model, test_loader, class_ids, reduced_head=reduced)
        density = model_density(masks, layers)["prunable"]
        record = {"step": step, "progress": p, "keep_ratio": keep, "density": density,
                  "loss": loss, "top1": acc["top1"], "top5": acc["top5"],
                  "seconds": time.perf_counter() - step_start}
        steps_done.append(record)
        shown = "" if acc["top1"] is None else \
            f", top-1 {100 * acc['top1']:.2f} %, top-5 {100 * acc['top5']:.2f} %"
        log(f"step {step}/{len(schedule) - 1}: kept-block ratio {keep:.3f}, density "
            f"{density:.4f}{shown}")
        if checkpoint_dir is not None:
            if distributed.is_main():
                save_resume_state(checkpoint_dir, {
                    "step": step, "model": model.state_dict(), "optimizer":
                    optimizer.state_dict(), "scheduler": scheduler.state_dict(), "masks": masks,
                    "saliency": grads, "rng": rng_state(), "steps": steps_done,
                    "dense_accuracy": dense_acc, "class_saliency": class_stats,
                    "elapsed": time.perf_counter() - started,
                    "fingerprint": _fingerprint(config, class_ids, model)})
            distributed.barrier()
        if on_step_end is not None:
            on_step_end(step, record)

    assert masks is not None
    masker.finalize()
    final = evaluate(model, test_loader, class_ids, reduced_head=reduced)
    names = list(getattr(train_set, "class_names", []) or [])
    class_names = [names[c] if c < len(names) else str(c) for c in class_ids]
    head_classes = class_ids if reduced else list(range(num_original))
    head_class_names = [names[c] if c < len(names) else str(c) for c in head_classes]
    head = {"reduced": reduced, "module": head_name or _last_linear(model),
            "original_num_classes": num_original}
    pattern_dict = asdict(pattern)
    report = {
        "model": type(model).__name__, "method": config.method, "data": source,
        "eval_split": eval_split, "classes": class_ids, "class_names": class_names,
        "head_reduced": reduced, "config": config.to_dict(),
        "accuracy": {"dense": dense_acc, "final": final}, "steps": steps_done,
        "budget": budget(config, len(user_train), any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()),
            len(class_saliency_data(train_set, class_ids, num_original, reduced)[1])
            if class_saliency else 0),
        **summarize(model, layers, masks, pattern_dict, example, config.method),
        "wall_time_s": time.perf_counter() - started,
        "world_size": distributed.world_size(),
    }
    return PruneResult(model=model.eval(), masks={k: v.cpu() for k, v in masks.items()},
                       report=report, saliency_stats=class_stats, layers=layers, classes=class_ids,
                       class_names=class_names, head_classes=head_classes,
                       head_class_names=head_class_names, head=head, pattern=pattern_dict,
                       config=config.to_dict(), input_shape=list(example.shape[1:]))


# Images per class for the per-class block saliency (SALY): enough for a stable share per
# block, and bounded so a --keep-head run over a 1000-class head stays cheap.
CLASS_SALIENCY_SAMPLES = 64


def class_saliency_data(train_set: Any, class_ids: list[int], num_original: int,
                        reduced: bool) -> tuple[list[int], Any]:
    """The head's classes in its order, and the training images measured for them."""
    classes = class_ids if reduced else list(range(num_original))
    return classes, train_set.subset(classes, per_class=CLASS_SALIENCY_SAMPLES)


def head_class_saliency(model: nn.Module, train_set: Any, class_ids: list[int],
                        num_original: int, reduced: bool, layers: list[PrunableLayer],
                        pattern: Any, config: PruneConfig, loss_fn: Any,
                        target_map: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Per-class block saliency of the *dense* model (before any mask) for every class of the
    head, in the head's order: the user's classes, or all of them with ``keep_head``. Measured
    before pruning so that a class's share in the blocks the file keeps (its coverage, which
    on-device re-selection reports) means something: with the final masked weights a removed
    block scores 0 and every class would be covered 100 %. The global RNG is left as it was,
    so the statistics change nothing of the pruning run."""
    classes, data = class_saliency_data(train_set, class_ids, num_original, reduced)
    state = rng_state()
    try:
        return per_class_block_saliency(model, data, classes, layers, pattern,
                                        batch_size=config.batch_size, loss_fn=loss_fn,
                                        target_map=target_map)
    finally:
        set_rng_state(state)


def budget(config: PruneConfig, train_images: int, batchnorm: bool = True,
           class_saliency_images: int | None = None) -> dict[str, int]:
    """What a run costs in image passes (one image through the model once), so methods and
    settings are compared at equal budget: fine-tuning (forward + backward), the saliency
    passes (forward + backward: the measuring pass before step 0, made only by the methods that
    rank by saliency, and the per-class statistics of the head's classes,
    ``class_saliency_images``, default ``train_images``, 0 when skipped), BatchNorm
    re-estimation (only for a model with BatchNorm; under torchrun every rank makes these
    passes) and the teacher's forwards (forward only: the training images and their flips,
    once, :class:`CachedTeacher`)."""
    tune = sum(config.step_epochs()) * train_images
    recalibrate = config.bn_recalibrate and batchnorm
    stats = train_images if class_saliency_images is None else class_saliency_images
    measure = train_images if config.method in READS_SALIENCY else 0
    return {"fine_tune": tune, "saliency": measure + stats,
            "bn_recalibration": len(config.schedule()) * train_images if recalibrate else 0,
            "teacher_forward": 2 * train_images if config.distill else 0}


def check_dense(model: nn.Module) -> None:
    """An ArgumentError if the conv/linear weights of ``model`` are already mostly exact zeros:
    a pruned model is no dense teacher for distillation."""
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w.detach() == 0).sum()) for w in weights)
    if total and zeros / total > 0.5:
        raise ArgumentError(f"distillation needs a dense teacher, but the model to prune is "
                            f"already {100 * zeros / total:.0f} % zeros in its conv and linear "
                            "weights; prune from the dense base model, or pass --no-distill")


def dense_teacher(model: nn.Module) -> nn.Module:
    """A frozen copy of the dense ``model`` (see :func:`check_dense`) for distillation."""
    teacher = copy.deepcopy(distributed.unwrap(model)).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def result_checkpoint(result: PruneResult, *, arch: str | None = None,
                      model_source: str | None = None, data: str | None = None) -> Any:
    """The ``kind="pruned"`` :class:`crisp_edge.models.checkpoint.Checkpoint` of a result."""
    from crisp_edge.models.checkpoint import Checkpoint

    module = result.head.get("module")
    head_size = result.model.get_submodule(module).out_features if module else \
        len(result.classes) if result.head.get("reduced") else \
        int(result.head["original_num_classes"])
    return Checkpoint(
        kind="pruned", state_dict=result.model.state_dict(), num_classes=head_size,
        input_shape=result.input_shape, arch=arch, model_source=model_source,
        masks=result.masks, pattern=result.pattern,
        layers=[{"name": lay.name, "param": lay.param, "kind": lay.kind, "role": lay.role,
                 "blocks": lay.blocks, "nm": lay.nm} for lay in result.layers],
        classes=result.head_classes, class_names=result.head_class_names,
        user_classes=result.classes, head=result.head,
        config=result.config, report=result.report, saliency=result.saliency_stats,
        data=data if data is not None else result.report.get("data"))
