"""The ``crisp-edge`` command line: train, prune and evaluate torch models; pack a model, run
and inspect ``.crisp`` files.

    crisp-edge train --arch resnet18_cifar --data synthetic:100 --epochs 30 --out base.pt
    crisp-edge prune --weights base.pt --data synthetic:100 --classes 3,7,11 --out pruned.pt
    crisp-edge eval pruned.pt --data synthetic:100
    crisp-edge compare --weights base.pt --data synthetic:100 --classes 3,7,11 --out-dir cmp
    crisp-edge pack --model nets.py:SmallNet --num-classes 10 --weights w.pt \\
                    --input-shape 3,32,32 --labels labels.txt --out model.crisp
    crisp-edge run model.crisp images.npy --top-k 3
    crisp-edge inspect model.crisp [--json]

Errors print ``crisp-edge: error: <message>`` and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import numpy as np

from crisp_edge import format as fmt
from crisp_edge.pruning import recipe
from crisp_edge.cli.group import main
from crisp_edge.packing.describe import describe
from crisp_edge.packing.pack import preprocess_line
from crisp_edge.packing.forms import CHOICES as ISA_CHOICES
from crisp_edge.errors import ArgumentError



def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of integers") from None
    if not 1 <= len(dims) <= 4 or any(d < 1 for d in dims):
        raise click.BadParameter(f"{text!r}: give 1 … 4 positive dims, e.g. 3,224,224")
    return dims


def read_labels(path: str) -> list[tuple[int, str]]:
    """One line per output index: ``CLASS_ID<TAB>NAME``, or just ``NAME`` (class id = index)."""
    labels = []
    with open(path, encoding="utf-8") as f:
        for index, line in enumerate(f.read().splitlines()):
            class_id, tab, name = line.partition("\t")
            if tab:
                try:
                    labels.append((int(class_id), name))
                except ValueError:
                    raise ArgumentError(f"{path}:{index + 1}: class id {class_id!r} before the "
                                        "tab is not an integer") from None
            else:
                labels.append((index, line))
    return labels


@main.command("pack")
@click.argument("checkpoint", required=False, metavar="[CHECKPOINT.pt | MODEL.onnx]",
                type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "model_spec", metavar="FILE.py:CLASS",
              help="The torch nn.Module class to pack, or the class of a CHECKPOINT of your "
                   "own model (a checkpoint names only zoo archs; it never chooses code to run).")
@click.option("--arch", help="A zoo architecture or timm:NAME to pack with --weights.")
@click.option("--num-classes", type=click.IntRange(min=1), help="Passed as num_classes=.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="State dict (or checkpoint with 'state_dict') to load.")
@click.option("--input-shape", metavar="C,H,W",
              help="Per-sample input shape, e.g. 3,224,224.")
@click.option("--labels", "labels_path", type=click.Path(exists=True, dir_okay=False),
              help="One line per output: CLASS_ID<TAB>NAME, or NAME (class id = line index).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .crisp.")
@click.option("--pattern", "pattern_mode", type=click.Choice(["checkpoint", "auto", "dense"]),
              help="Weight layouts: the checkpoint's pruning pattern per layer, auto-detected "
                   "from each weight's zeros, or all dense. [default: checkpoint for a "
                   "CHECKPOINT, auto for --model]")
@click.option("--isa", type=click.Choice(list(ISA_CHOICES)), default="host", show_default=True,
              help="The kernels the file is for: a pruned float32 conv their cost table runs "
                   "dense (a 2:4-only one) with rows of 1024 or more weights is stored dense, "
                   "so it runs as fast as the dense model's; host is this machine's, portable "
                   "keeps every pattern (smaller file; the runtime then expands such layers "
                   "as it runs or copies them at load). Pack for the board's kernels (neon "
                   "for a Raspberry Pi or Jetson); int8 files ignore it.")
@click.option("--int8", is_flag=True, help="Quantise to int8 (needs --calibration).")
@click.option("--calibration", metavar="SOURCE",
              help="int8 activation ranges from images of this data source (same syntax as "
                   "prune --data; a checkpoint's user classes only).")
@click.option("--percentile", type=click.FloatRange(50, 100),
              help="Calibrate to this percentile of |activation| instead of min/max.")
@click.option("--mean", metavar="R,G,B", help="Image preprocessing stored in the file (PREP): "
              "per-channel mean of the 0..1 pixels [default: the checkpoint's data source's].")
@click.option("--std", metavar="R,G,B", help="Per-channel std (PREP), like --mean.")
@click.option("--resize", metavar="POLICY",
              help="How an image of another size becomes the input (PREP): none (must already "
                   "be H x W), stretch (to H x W), shorter_side[:S] (shorter side to S, default "
                   "max(H, W), then the centre crop).")
@click.option("--channel-order", type=click.Choice(["rgb", "bgr"], case_sensitive=False),
              help="Channel order of the model's input (PREP) [default: rgb].")
def pack_command(checkpoint: str | None, model_spec: str | None, arch: str | None,
                 num_classes: int | None,
                 weights: str | None, input_shape: str | None, labels_path: str | None, out: str,
                 pattern_mode: str | None, isa: str, int8: bool, calibration: str | None,
                 percentile: float | None, mean: str | None, std: str | None,
                 resize: str | None, channel_order: str | None) -> None:
    """Pack a pruning/training CHECKPOINT, an ONNX file, or a torch model (--model class or
    --arch, with --weights) into a .crisp file.

    The file stores how an image becomes the input (PREP) when it is known: from a
    CHECKPOINT's data source, or from --mean/--std/--resize/--channel-order (which override
    the source's); the device then runs the model on image files.

    \b
      crisp-edge pack pruned.pt --out model.crisp
      crisp-edge pack pruned.pt --int8 --calibration synthetic:100 --out model-int8.crisp
      crisp-edge pack pruned.pt --model net.py:Net --out m.crisp   # your own model's checkpoint
      crisp-edge pack --model net.py:Net --weights w.pt --input-shape 3,32,32 --out m.crisp
      crisp-edge pack --arch timm:resnet18 --weights w.pt --input-shape 3,224,224 --out m.crisp
      crisp-edge pack model.onnx --out m.crisp      # input shape from the file
      crisp-edge pack --model net.py:Net --weights w.pt --input-shape 3,224,224 \\
          --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --resize shorter_side:256 --out m.crisp
    """
    if int8 and not calibration:
        raise click.UsageError("--int8 needs --calibration SOURCE (images for activation ranges)")
    prep = _preprocess_options(mean, std, resize, channel_order)
    from crisp_edge.models.onnx_models import is_onnx_source

    if checkpoint and is_onnx_source(checkpoint):
        if model_spec or arch or weights:
            raise click.UsageError("an ONNX file holds its graph and weights: give no --model, "
                                   "--arch or --weights with it")
        model_spec, checkpoint = checkpoint, None
    if checkpoint:
        if arch:
            raise click.UsageError("--arch does not apply to a CHECKPOINT (it names its arch)")
        if weights or input_shape or num_classes or labels_path:
            raise click.UsageError("give either a CHECKPOINT or --weights/--input-shape/"
                                   "--num-classes/--labels, not both")
        from crisp_edge.packing.pack import pack_checkpoint

        report = pack_checkpoint(checkpoint, out, model_source=model_spec, int8=int8,
                                 calibration=calibration,
                                 pattern_mode=pattern_mode or "checkpoint", percentile=percentile,
                                 preprocess=prep or None, isa=isa)
        click.echo(str(report))
        return
    if pattern_mode == "checkpoint":
        raise click.UsageError("--pattern checkpoint needs a CHECKPOINT; use auto or dense")
    import torch

    from crisp_edge.packing.pack import calibration_images, pack, resolve_preprocess

    if not input_shape and not is_onnx_source(model_spec):
        raise click.UsageError("give a CHECKPOINT or MODEL.onnx, or --model FILE.py:CLASS / "
                               "--arch NAME with --input-shape")
    given_shape = _shape(input_shape) if input_shape else None
    model, file_shape = _model_to_pack(model_spec, arch, num_classes, weights)
    shape = given_shape or file_shape
    if shape is None:
        raise click.UsageError(f"{model_spec}'s input has symbolic dimensions: give "
                               "--input-shape C,H,W")
    preprocess = resolve_preprocess(None, shape, prep) if prep else None
    labels = read_labels(labels_path) if labels_path else None
    images = calibration_images(calibration, shape[-1]) if calibration else None
    example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    click.echo(str(pack(model, example, out, labels=labels, int8=int8, calibration=images,
                        pattern_mode=pattern_mode or "auto", percentile=percentile,
                        preprocess=preprocess, isa=isa)))


def _model_to_pack(model_spec: str | None, arch: str | None, num_classes: int | None,
                   weights: str | None) -> tuple[Any, tuple[int, ...] | None]:
    """The model ``pack`` builds without a checkpoint, and its input shape when it has one."""
    from crisp_edge.models.onnx_models import build_onnx_model, is_onnx_source, onnx_input_shape

    if bool(model_spec) == bool(arch):
        raise click.UsageError("give a CHECKPOINT or MODEL.onnx, or one of --model "
                               "FILE.py:CLASS and --arch NAME")
    if is_onnx_source(model_spec):
        return build_onnx_model(model_spec, num_classes), onnx_input_shape(model_spec)
    if model_spec:
        from crisp_edge.models.spec import build_model

        return build_model(model_spec, num_classes, weights), None
    from crisp_edge.models.checkpoint import build_model as build_arch, load_weights
    from crisp_edge.pruning.runs import infer_head_size

    if not weights:
        raise click.UsageError("--arch needs --weights (a state dict or checkpoint): "
                               "crisp-edge never downloads weights")
    state, _ = load_weights(weights)
    model = build_arch(arch, None, num_classes or infer_head_size(state))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ArgumentError(f"weights {weights!r} do not fit {arch}: {e}") from e
    return model.eval(), None


def _floats3(option: str, text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise click.BadParameter(f"{text!r}: give three comma-separated numbers, e.g. "
                                 "0.485,0.456,0.406", param_hint=option)
    return values  # type: ignore[return-value]


def _preprocess_options(mean: str | None, std: str | None, resize: str | None,
                        channel_order: str | None) -> dict[str, Any]:
    """The PREP fields the pack options give (see resolve_preprocess)."""
    out: dict[str, Any] = {}
    if mean is not None:
        out["mean"] = _floats3("--mean", mean)
    if std is not None:
        out["std"] = _floats3("--std", std)
    if resize is not None:
        policy, colon, size = resize.partition(":")
        policy = policy.replace("-", "_").lower()
        if policy not in ("none", "stretch", "shorter_side") or \
                (colon and (policy != "shorter_side" or not size.isdigit())):
            raise click.BadParameter(f"{resize!r}: use none, stretch or shorter_side[:S]",
                                     param_hint="--resize")
        out["resize"] = policy
        if colon:
            out["resize_size"] = int(size)
    if channel_order is not None:
        out["channel_order"] = channel_order.lower()
    return out


@main.command("run")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.argument("input_path", metavar="INPUT.npy", type=click.Path(exists=True, dir_okay=False))
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--output", type=click.Path(dir_okay=False), help="Save all outputs as .npy.")
def run_command(model_path: str, input_path: str, top_k: int, output: str | None) -> None:
    """Run MODEL on a batch (N, C, H, W) from INPUT.npy and print the top-k per sample."""
    from crisp_edge.runtime import load

    try:
        x = np.load(input_path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ArgumentError(f"cannot read {input_path} as a .npy array: {e}") from None
    with load(model_path) as model:
        y = model.run(x)
        names = dict(enumerate(model.labels))
    if output:
        np.save(output, y)
    for n, scores in enumerate(y.reshape(len(y), -1)):
        # Descending, NaN last, ties to the lower index: the same order as crisp-run.
        for rank, index in enumerate(np.argsort(-scores, kind="stable")[:top_k]):
            label = (f" class {names[index][0]} {_quote(names[index][1])}" if index in names
                     else f" class {index}")
            click.echo(f"sample {n}: #{rank + 1} index {index}{label} score {scores[index]:.4f}")


def _quote(name: str) -> str:
    """A label as crisp-run prints it: double quotes, backslash escapes, \\xNN for controls."""
    body = "".join("\\" + c if c in '"\\' else f"\\x{ord(c):02x}" if ord(c) < 0x20 else c
                   for c in name)
    return f'"{body}"'


def _print_description(d: dict[str, Any]) -> None:
    out = click.echo
    shape = {i: tuple(v) for i, v in enumerate(d["values"])}
    out(f"{d['file']}: .crisp format {d['format_version']}, {d['file_bytes']} bytes")
    out(f"input v{d['input_value']} {shape[d['input_value']]}  "
        f"output v{d['output_value']} {shape[d['output_value']]}")
    out("sections:")
    for s in d["sections"]:
        need = "required" if s["required"] else "optional"
        out(f"  {s['kind']:<4} {need}  offset {s['offset']:>8}"
            f"  size {s['size']:>8}  crc32 {s['crc32']} {'ok' if s['crc_ok'] else 'BAD'}")
    out(f"values: {len(d['values'])}")
    out(f"ops: {len(d['ops'])}")
    for op in d["ops"]:
        params = " ".join(f"{k}={v}" for k, v in op["params"].items())
        tensors = "".join(f" {k}={tuple(op[k])}" for k in ("weight", "bias") if op[k])
        act = f"+{op['activation']}" if op["activation"] != "none" else ""
        ins = ",".join(f"v{v}" for v in op["inputs"])
        out(f"  {op['index']:>3} {op['kind'] + act:<22} {ins} -> v{op['output']} "
            f"{tuple(op['output_shape'])}  {params}{tensors}  macs={op['macs']:,}")
    layers = [op for op in d["ops"] if "storage" in op]
    if layers:
        out("weights:")
        out(f"  {'op':>3} {'encoding':<10} {'pattern':<24} {'blocks':>11} {'density':>7} "
            f"{'KiB':>9} {'dense KiB':>9} {'MMACs':>9} {'eff MMACs':>9}  kernel here")
        for op in layers:
            st = op["storage"]
            out(f"  {op['index']:>3} {st['encoding']:<10} {st['pattern']:<24} "
                f"{st.get('kept_blocks', ''):>11} {st['density']:>7.3f} {st['bytes'] / 1024:>9.1f} "
                f"{st['dense_f32_bytes'] / 1024:>9.1f} {op['macs'] / 1e6:>9.2f} "
                f"{op['effective_macs'] / 1e6:>9.2f}  {op['kernel']}")
    if d["labels"]:
        out("labels:")
        for lb in d["labels"]:
            out(f"  {lb['index']:>3}: class {lb['class_id']} \"{lb['name']}\"")
    if d["provenance"] is not None:
        out("provenance: " + json.dumps(d["provenance"], sort_keys=True))
    out(preprocess_line(d["preprocessing"]))
    r = d["runtime"]
    saved = 100.0 * (1 - r["arena_bytes"] / r["naive_bytes"]) if r["naive_bytes"] else 0.0
    out(f"weights: {r['weight_bytes']} bytes; peak activation memory (arena): "
        f"{r['arena_bytes']} bytes (naive {r['naive_bytes']}, {saved:.0f}% saved)")
    out(f"MACs per sample: {r['macs']:,} dense, {r['effective_macs']:,} effective "
        f"({100 * r['effective_macs'] / max(1, r['macs']):.1f} %)")


@main.command("inspect")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def inspect_command(model_path: str, as_json: bool) -> None:
    """Show a .crisp file: header, sections, values, ops, labels, provenance, memory."""
    d = describe(model_path)
    if as_json:
        json.dump(d, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_description(d)


# --- train / prune / eval / compare ---------------------------------------------------------

def _model_options(f: Any) -> Any:
    f = click.option("--model", "model_source", metavar="FILE.py:CLASS|MODEL.onnx",
                     help="Your own nn.Module class (constructed with num_classes=), needed "
                     "with a checkpoint of it too: a checkpoint never chooses code to run; or "
                     "an ONNX file (converted by onnx2torch, its weights included).")(f)
    f = click.option("--arch", help="A zoo architecture (e.g. resnet18_cifar) or a timm model "
                     "timm:NAME (built with pretrained=False: bring --weights).")(f)
    return f


def _prune_options(f: Any) -> Any:
    """The flags ``prune`` and ``compare`` share."""
    options = [
        click.option("--weights", type=click.Path(exists=True, dir_okay=False),
                     help="The base model: BASE.pt from `crisp-edge train` (it names a zoo "
                     "--arch, not a --model), or a state dict; not needed for an ONNX --model "
                     "(its own weights)."),
        click.option("--data", required=True, metavar="SOURCE",
                     help="synthetic[:N], cifar100:DIR or an ImageFolder directory."),
        click.option("--classes", required=True, help="User classes by id or name: 3,7,11."),
        click.option("--sparsity", default=0.9, show_default=True, type=float),
        click.option("--nm", default="2:4", show_default=True, help="N:M inside kept blocks."),
        click.option("--block", default="16x16", show_default=True, help="Block rows x cols."),
        click.option("--shared-rows", default=recipe.SHARED_ROWS, show_default=True, type=int,
                     help="Rows of a block sharing one N:M selection: 4 runs 1.5-2x faster at "
                     "the same accuracy (docs/pruning.md); 1 = per-row, the paper."),
        click.option("--steps", type=int, help="Block steps after step 0 [default: 4 with the "
                     "cubic schedule, 10 % of the blocks per step with the linear one]."),
        click.option("--epochs-per-step", default=1, show_default=True, type=int),
        click.option("--masking", default="hard", show_default=True,
                     type=click.Choice(["hard", "sr-ste"])),
        click.option("--keep-head", is_flag=True, help="Keep every class in the classifier."),
        click.option("--lr", default=0.01, show_default=True, type=float),
        click.option("--batch-size", default=64, show_default=True, type=int),
        click.option("--weight-decay", default=5e-4, show_default=True, type=float),
        click.option("--optimizer", default="sgd", show_default=True,
                     type=click.Choice(["sgd", "adamw"])),
        click.option("--seed", default=0, show_default=True, type=int),
        click.option("--image-size", type=int, help="Input side [default: the model's]."),
        click.option("--samples-per-class", type=int, help="Training samples per class "
                     "(synthetic: renders; real data: the first N)."),
        click.option("--num-classes", type=int, help="Head size of a plain state dict."),
        click.option("--quiet", is_flag=True, help="No progress output."),
        click.option("--allocation", default=recipe.ALLOCATION, show_default=True,
                     help="How each step's block budget is shared among layers: global, "
                     "normalized, lamp or uniform (docs/pruning.md)."),
        click.option("--allocation-floor", default=recipe.ALLOCATION_FLOOR, show_default=True,
                     type=float, help="Lowest kept-block ratio of any layer (0 = none; at most "
                     "the target's ratio)."),
        click.option("--schedule", "schedule_shape", default=recipe.SCHEDULE,
                     show_default=True, help="How the kept-block ratio falls: linear or cubic."),
        click.option("--final-epochs", default=recipe.FINAL_EPOCHS, show_default=True,
                     type=int, help="Extra fine-tuning epochs at the final sparsity."),
        click.option("--distill/--no-distill", default=recipe.DISTILL, show_default=True,
                     help="Distil from the dense model (its logits on the user's classes)."),
        click.option("--distill-alpha", default=recipe.DISTILL_ALPHA, show_default=True,
                     type=float, help="Weight of the distillation term (1 − α on the labels)."),
        click.option("--distill-temperature", default=recipe.DISTILL_TEMPERATURE,
                     show_default=True, type=float),
        click.option("--bn-recalibrate/--no-bn-recalibrate", default=recipe.BN_RECALIBRATE,
                     show_default=True,
                     help="Re-estimate BatchNorm statistics after every mask change."),
        click.option("--nm-score", default=recipe.NM_SCORE, show_default=True,
                     help="crisp: rank the N:M groups inside kept blocks by the class-aware "
                     "saliency or by magnitude (blocks are always chosen by saliency)."),
        click.option("--test-samples-per-class", type=int,
                     help="Test images per class for the accuracy figures [default: the "
                     "source's]."),
    ]
    for option in reversed(options):
        f = option(f)
    return _model_options(f)


def _prune_config(method: str, kw: dict[str, Any]) -> Any:
    from crisp_edge.pruning.engine import PruneConfig

    return PruneConfig(
        method=method, sparsity=kw["sparsity"], nm=kw["nm"], block=kw["block"],
        shared_rows=kw["shared_rows"], steps=kw["steps"], epochs_per_step=kw["epochs_per_step"],
        lr=kw["lr"], batch_size=kw["batch_size"], weight_decay=kw["weight_decay"],
        optimizer=kw["optimizer"], masking=kw["masking"], keep_head=kw["keep_head"],
        seed=kw["seed"], image_size=kw["image_size"], samples_per_class=kw["samples_per_class"],
        allocation=kw["allocation"], allocation_floor=kw["allocation_floor"],
        schedule_shape=kw["schedule_shape"], final_epochs=kw["final_epochs"],
        distill=kw["distill"], distill_alpha=kw["distill_alpha"],
        distill_temperature=kw["distill_temperature"], bn_recalibrate=kw["bn_recalibrate"],
        nm_score=kw["nm_score"], test_samples_per_class=kw["test_samples_per_class"])


def _need_model(arch: str | None, model_source: str | None, optional: bool = False) -> None:
    if arch and model_source:
        raise ArgumentError("give either --arch or --model, not both")
    if not optional and not (arch or model_source):
        raise ArgumentError("give --arch NAME or --model FILE.py:CLASS")


@main.command("train")
@_model_options
@click.option("--data", required=True, metavar="SOURCE", help="synthetic[:N], cifar100:DIR, "
              "or an ImageFolder directory.")
@click.option("--epochs", required=True, type=click.IntRange(min=1))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="BASE.pt to write.")
@click.option("--lr", default=0.05, show_default=True, type=float)
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--weight-decay", default=5e-4, show_default=True, type=float)
@click.option("--optimizer", default="sgd", show_default=True, type=click.Choice(["sgd", "adamw"]))
@click.option("--image-size", type=click.IntRange(min=8), help="[default: the model's]")
@click.option("--samples-per-class", type=click.IntRange(min=1), help="Synthetic data only.")
@click.option("--num-classes", type=click.IntRange(min=1), help="[default: the data's]")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--quiet", is_flag=True, help="No progress output.")
def train_command(arch: str | None, model_source: str | None, data: str, epochs: int, out: str,
                  lr: float, batch_size: int, weight_decay: float, optimizer: str,
                  image_size: int | None, samples_per_class: int | None,
                  num_classes: int | None, seed: int, quiet: bool) -> None:
    """Train a base model on every class of SOURCE (cosine LR; runs under torchrun too)."""
    from crisp_edge.pruning import distributed
    from crisp_edge.pruning.runs import run_train
    from crisp_edge.pruning.training import TrainConfig

    _need_model(arch, model_source)
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay,
                         optimizer=optimizer, seed=seed)
    with distributed.session():
        ckpt = run_train(arch=arch, model_source=model_source, data=data, out=out, config=config,
                         image_size=image_size, num_classes=num_classes,
                         samples_per_class=samples_per_class, progress=not quiet)
        if distributed.is_main():
            final = ckpt.report["final"]
            click.echo(f"wrote {out}: test top-1 {100 * final['top1']:.2f} %, top-5 "
                       f"{100 * final['top5']:.2f} % over {ckpt.num_classes} classes")


@main.command("prune")
@_prune_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PRUNED.pt to write.")
@click.option("--method", default="crisp", show_default=True)
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its checkpoint.")
@click.option("--report-dir", type=click.Path(file_okay=False),
              help="Where PRUNED.report.{json,md} go [default: next to --out].")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False),
              help="Per-step state for --resume [default: PRUNED.pt.ckpt/]; afterwards only "
                   "crisp-edge's own files there are deleted.")
def prune_command(arch: str | None, model_source: str | None, weights: str | None, data: str,
                  classes: str, out: str, method: str, resume: bool, report_dir: str | None,
                  checkpoint_dir: str | None, num_classes: int | None, quiet: bool,
                  **kw: Any) -> None:
    """Prune a trained model for the user's classes (CRISP hybrid N:M + block sparsity)."""
    from crisp_edge.pruning import distributed
    from crisp_edge.pruning.runs import run_prune

    _need_model(arch, model_source, optional=True)
    config = _prune_config(method, kw)
    config.validate()
    with distributed.session():
        report = run_prune(arch=arch, model_source=model_source, weights=weights, data=data,
                           classes=classes, config=config, out=out, report_dir=report_dir,
                           checkpoint_dir=checkpoint_dir, resume=resume,
                           num_classes=num_classes, progress=not quiet)
        if distributed.is_main():
            acc = report["accuracy"]
            click.echo(f"wrote {out}: sparsity {100 * report['sparsity']['achieved']:.1f} %, "
                       f"top-1 {100 * acc['final']['top1']:.2f} % (dense "
                       f"{100 * acc['dense']['top1']:.2f} %), effective MACs "
                       f"{100 * report['macs']['ratio']:.1f} % of dense")


@main.command("eval")
@click.argument("checkpoint", metavar="MODEL.pt", type=click.Path(dir_okay=False))
@click.option("--data", required=True, metavar="SOURCE")
@click.option("--classes", help="User classes [default: the checkpoint's, or all].")
@click.option("--split", default="test", show_default=True,
              type=click.Choice(["train", "test"]))
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--image-size", type=click.IntRange(min=8), help="[default: the checkpoint's]")
@click.option("--model", "model_source", metavar="FILE.py:CLASS|MODEL.onnx",
              help="The class of a checkpoint of your own model (a checkpoint names only zoo "
                   "archs; it never chooses code to run), or the ONNX file it came from.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Runtime threads (.crisp models).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def eval_command(checkpoint: str, data: str, classes: str | None, split: str, batch_size: int,
                 image_size: int | None, model_source: str | None, threads: int,
                 as_json: bool) -> None:
    """Top-1/top-5 on the user's classes of a base or pruned checkpoint (torch) or of a packed
    .crisp model (through the C runtime, measured the same way)."""
    from crisp_edge.pruning.runs import run_eval, run_eval_crisp

    if _is_crisp_file(checkpoint):
        if image_size or model_source:
            raise click.UsageError("--image-size and --model do not apply to a .crisp model "
                                   "(it holds its graph and a fixed input shape)")
        result = run_eval_crisp(checkpoint, data, classes, split, batch_size, threads)
    else:
        result = run_eval(checkpoint, data, classes, split, batch_size, image_size,
                          model_source)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{checkpoint} ({result['kind']}): top-1 {100 * result['top1']:.2f} %, "
                   f"top-{result['k']} {100 * result['top5']:.2f} % on {result['n']} {split} "
                   f"samples of {len(result['classes'])} classes")


def _is_crisp_file(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(fmt.MAGIC)) == fmt.MAGIC
    except OSError as e:
        raise ArgumentError(f"cannot read {path}: {e.strerror}") from None


@main.command("compare")
@_prune_options
@click.option("--methods", default="crisp,magnitude-hybrid,unstructured,nm-only,block-only,channel",
              show_default=True, help="Comma-separated methods to run.")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False))
def compare_command(arch: str | None, model_source: str | None, weights: str | None, data: str,
                    classes: str, methods: str, out_dir: str, num_classes: int | None,
                    quiet: bool, **kw: Any) -> None:
    """Run several methods under the same schedule and budget; write one table."""
    from crisp_edge.pruning import distributed
    from crisp_edge.pruning.runs import run_compare

    _need_model(arch, model_source, optional=True)
    names = [m.strip() for m in methods.split(",") if m.strip()]
    config = _prune_config(names[0] if names else "crisp", kw)
    with distributed.session():
        table = run_compare(arch=arch, model_source=model_source, weights=weights, data=data,
                            classes=classes, config=config, methods=names, out_dir=out_dir,
                            num_classes=num_classes, progress=not quiet)
        if distributed.is_main():
            click.echo(f"wrote {out_dir}/compare.md and compare.json")
            for row in table["rows"]:
                click.echo(f"  {row['method']:<17} top-1 {100 * row['top1']:6.2f} %  sparsity "
                           f"{100 * row['sparsity']:5.1f} %  MACs {row['effective_macs']:,}")



if __name__ == "__main__":
    main()
