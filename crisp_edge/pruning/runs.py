"""The flows behind ``crisp-edge train / prune / eval / compare``: load or build models, run,
and write checkpoints and reports (only rank 0 writes under ``torchrun``).

>>> run_prune(arch="resnet18_cifar", model_source=None, weights="base.pt",
...           data="synthetic:100", classes="3,7,11", config=PruneConfig(), out="pruned.pt")
...                                                                       # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crisp_edge.pruning import distributed
from crisp_edge.models.checkpoint import (Checkpoint, build_model, build_model_from_checkpoint,
                                          input_size, load_checkpoint, load_weights,
                                          model_for_checkpoint,
                                          remove_resume_state, save_checkpoint)
from crisp_edge.errors import ArgumentError
from crisp_edge.pruning.engine import PruneConfig, prune, result_checkpoint
from crisp_edge.pruning.report import comparison_markdown, comparison_row, write_report
from crisp_edge.pruning.training import (TrainConfig, evaluate, find_head, make_loader, train_model)


def default_image_size(arch: str | None, ckpt: Checkpoint | None = None,
                       model_source: str | None = None) -> int | None:
    """The input side a model expects: the checkpoint's, else the model's own (a zoo or timm
    arch's, an ONNX file's), else None."""
    if ckpt is not None and len(ckpt.input_shape) == 3:
        return int(ckpt.input_shape[-1])
    return input_size(arch, model_source)


def run_train(*, arch: str | None, model_source: str | None, data: str, out: str | Path,
              config: TrainConfig, image_size: int | None = None, num_classes: int | None = None,
              samples_per_class: int | None = None, progress: bool = True) -> Checkpoint:
    """Train a base model on every class of ``data`` and save it as a ``kind="base"`` checkpoint."""
    from crisp_edge.data.sources import open_source

    started = time.perf_counter()
    size = image_size or default_image_size(arch, None, model_source) or 32
    kw: dict[str, Any] = {"seed": 0, "image_size": size}
    train_set = open_source(data, split="train", samples_per_class=samples_per_class, **kw)
    test_set = open_source(data, split="test", **kw)
    classes = int(num_classes or train_set.num_classes)
    if classes < train_set.num_classes:
        raise ArgumentError(f"--num-classes {classes} is smaller than the {train_set.num_classes} "
                            f"classes of {data}")
    model = build_model(arch, model_source, classes)
    history = train_model(model, train_set, config, test_set=test_set,
                          class_ids=list(range(train_set.num_classes)), progress=progress)
    example = train_set[0][0]
    ckpt = Checkpoint(
        kind="base", state_dict=model.state_dict(), num_classes=classes,
        input_shape=list(example.shape), arch=arch, model_source=model_source,
        classes=list(range(classes)), class_names=list(train_set.class_names),
        head={"reduced": False, "module": find_head(model, classes),
              "original_num_classes": classes},
        config=config.to_dict(), data=data,
        report={"history": history, "final": history[-1],
                "wall_time_s": time.perf_counter() - started})
    if distributed.is_main():
        save_checkpoint(ckpt, out)
    distributed.barrier()
    return ckpt


def load_base(arch: str | None, model_source: str | None, weights: str | Path | None,
              num_classes: int | None
              ) -> tuple[nn.Module, str | None, str | None, Checkpoint | None]:
    """The base model to prune: ``weights`` (a crisp-edge checkpoint, or a state dict for
    ``--arch``/``--model``) loaded into a fresh model, or an ONNX ``--model`` with the weights it
    holds (``weights`` None). A checkpoint may name its zoo arch, but never the code to import
    (:func:`model_for_checkpoint`). Returns (model, arch, model source, the checkpoint when
    ``weights`` is one)."""
    if weights is None:
        from crisp_edge.models.onnx_models import build_onnx_model, is_onnx_source

        if arch is not None or not is_onnx_source(model_source):
            raise ArgumentError("give --weights: the trained base model (an ONNX --model "
                                "brings its own)")
        model = build_onnx_model(model_source, num_classes)  # type: ignore[arg-type]
        return model, None, model_source, None
    state, ckpt = load_weights(weights)
    if ckpt is not None:
        if ckpt.head.get("reduced"):
            raise ArgumentError(f"{weights} is already reduced to classes {ckpt.classes}; prune "
                                "from the base model (the output of `crisp-edge train`)")
        arch, model_source = model_for_checkpoint(ckpt, weights, arch=arch,
                                                  model_source=model_source)
        num_classes = num_classes or ckpt.num_classes
    if num_classes is None:
        num_classes = infer_head_size(state)
    model = build_model(arch, model_source, num_classes)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ArgumentError(f"weights {weights} do not fit {arch or model_source} with "
                            f"{num_classes} classes: {e}") from e
    return model, arch, model_source, ckpt


def infer_head_size(state: dict[str, Any]) -> int:
    """Outputs of the last 2-D weight in a state dict (the classifier of a plain state dict)."""
    matrices = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    if not matrices:
        raise ArgumentError("cannot tell the number of classes from the weights; pass "
                            "--num-classes")
    return int(matrices[-1].shape[0])


def _outputs(out: str | Path, report_dir: str | Path | None) -> tuple[Path, Path]:
    out = Path(out)
    base = Path(report_dir) / out.name if report_dir else out
    return out, base


def run_prune(*, arch: str | None, model_source: str | None, weights: str | Path | None,
              data: str, classes: str, config: PruneConfig, out: str | Path,
              report_dir: str | Path | None = None, checkpoint_dir: str | Path | None = None,
              resume: bool = False, num_classes: int | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Prune, then write PRUNED.pt and PRUNED.report.{json,md}; returns the report.

    The per-step state goes to ``checkpoint_dir`` (default ``PRUNED.pt.ckpt/``); once PRUNED.pt
    is written, crisp-edge's files there are removed, and the directory only if crisp-edge
    created it and nothing else is left in it."""
    config.validate()
    model, arch, model_source, ckpt = load_base(arch, model_source, weights, num_classes)
    if config.image_size is None:
        config.image_size = default_image_size(arch, ckpt, model_source)
    out, report_base = _outputs(out, report_dir)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir else out.with_name(out.name + ".ckpt")
    result = prune(model, data, classes, config, progress=progress, checkpoint_dir=ckpt_dir,
                   resume=resume)
    result.report["model"] = arch or model_source
    if distributed.is_main():
        save_checkpoint(result_checkpoint(result, arch=arch, model_source=model_source,
                                          data=data), out)
        write_report(result.report, report_base)
        remove_resume_state(ckpt_dir)  # never rmtree: the directory may be the user's
    distributed.barrier()
    return result.report


def run_eval(path: str | Path, data: str, classes: str | None, split: str = "test",
             batch_size: int = 256, image_size: int | None = None,
             model_source: str | None = None) -> dict[str, Any]:
    """Top-1/top-5 of a base or pruned checkpoint on the user classes of ``data``'s ``split``;
    ``model_source`` (the user's --model) is needed for a checkpoint of a user model."""
    from crisp_edge.data.sources import check_classes_present, open_source, parse_classes, resolve_classes

    ckpt = load_checkpoint(path)
    model = build_model_from_checkpoint(ckpt, model_source=model_source, path=path)
    size = image_size or default_image_size(ckpt.arch, ckpt) or 32
    dataset = open_source(data, split=split, seed=0, image_size=size, augment=False)
    reduced = bool(ckpt.head.get("reduced"))
    if classes:
        ids = resolve_classes(dataset, parse_classes(classes))
    else:
        ids = list(ckpt.user_classes or ckpt.classes) if ckpt.kind == "pruned" else \
            list(range(dataset.num_classes))
    if reduced and not set(ids) <= set(ckpt.classes):
        raise ArgumentError(f"{path} answers only over classes {ckpt.classes}; choose --classes "
                            "among them")
    check_classes_present(dataset, ids)
    loader = make_loader(dataset.subset(ids), batch_size, False, 0, False)
    head_order = list(ckpt.classes) if reduced else ids
    result = evaluate(model, loader, head_order, reduced_head=reduced)
    return {"checkpoint": str(path), "kind": ckpt.kind, "data": data, "split": split,
            "classes": ids, **result}


def run_eval_crisp(path: str | Path, data: str, classes: str | None, split: str = "test",
                   batch_size: int = 256, threads: int = 1) -> dict[str, Any]:
    """Top-1/top-5 of a packed ``.crisp`` model run by the C runtime, measured by the same
    :func:`evaluate` as a torch checkpoint: the file's label map gives the head order and its
    provenance the user's classes (a ``--keep-head`` model answers over all of them)."""
    from crisp_edge.data.sources import check_classes_present, open_source, parse_classes, resolve_classes
    from crisp_edge.runtime import load

    with load(path, threads=threads) as model:
        info = model.info()
        head = [cid for cid, _ in info["labels"]] or list(range(int(np.prod(info["output_shape"]))))
        dataset = open_source(data, split=split, seed=0, image_size=int(info["input_shape"][-1]),
                              augment=False)
        if classes:
            ids = resolve_classes(dataset, parse_classes(classes))
        else:
            # A personalised file answers for its new classes; its "user_classes" are the
            # ones it was pruned for.
            prov = info["provenance"]
            personalized = prov.get("personalized")
            ids = list(head if isinstance(personalized, dict)
                       else prov.get("user_classes") or head)
        if not set(ids) <= set(head):
            raise ArgumentError(f"{path} answers only over classes {head}; choose --classes "
                                "among them")
        check_classes_present(dataset, ids)
        loader = make_loader(dataset.subset(ids), batch_size, False, 0, False)
        result = evaluate(_RuntimeModule(model), loader, head, reduced_head=True)
    return {"model": str(path), "kind": "crisp", "data": data, "split": split, "classes": ids,
            "threads": threads, **result}


class _RuntimeModule(torch.nn.Module):
    """A runtime Model seen as an nn.Module, so :func:`evaluate` treats it like torch's."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # device = CPU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.model.run(x.numpy()))


def run_compare(*, arch: str | None, model_source: str | None, weights: str | Path | None,
                data: str, classes: str, config: PruneConfig, methods: list[str],
                out_dir: str | Path, num_classes: int | None = None,
                progress: bool = True) -> dict[str, Any]:
    """Prune with each of ``methods`` under the same schedule and budget; write one report per
    method and ``compare.{json,md}`` into ``out_dir``. Returns the table."""
    from dataclasses import replace

    from crisp_edge.pruning.baselines import METHODS

    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ArgumentError(f"unknown method(s) {', '.join(unknown) or '(none given)'}; choose "
                            f"from {', '.join(METHODS)}")
    for method in methods:
        replace(config, method=method).validate()
    out_dir = Path(out_dir)
    rows, reports = [], []
    for method in methods:
        model, arch_name, source, ckpt = load_base(arch, model_source, weights, num_classes)
        cfg = replace(config, method=method)
        if cfg.image_size is None:
            cfg.image_size = default_image_size(arch_name, ckpt, source)
        # compare writes reports, no model: the per-class statistics a device needs are skipped
        result = prune(model, data, classes, cfg, progress=progress, class_saliency=False)
        result.report["model"] = arch_name or source
        if distributed.is_main():
            write_report(result.report, out_dir / method)
        rows.append(comparison_row(result.report))
        reports.append(result.report)
    first = reports[0]
    table = {"model": first["model"], "data": data, "classes": first["classes"],
             "class_names": first["class_names"], "eval_split": first["eval_split"],
             "config": {k: v for k, v in first["config"].items() if k != "method"},
             "dense": first["accuracy"]["dense"], "rows": rows}
    if distributed.is_main():
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "compare.json").write_text(json.dumps(table, indent=2) + "\n")
        (out_dir / "compare.md").write_text(comparison_markdown(table))
    distributed.barrier()
    return table
