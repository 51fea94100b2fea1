"""``crisp-edge personalize``: adapt a packed model to other or new classes (docs/personalize.md).

    crisp-edge personalize model.crisp --data photos/ --out mine.crisp
    crisp-edge personalize model.crisp --data synthetic:100 --classes 60,61,62 --out new.crisp
    crisp-edge personalize full-head.crisp --classes cat,dog --out pets.crisp
"""

from __future__ import annotations

import json

import click

from crisp_edge.cli.group import main


def _print_result(result: object) -> None:
    from crisp_edge.personalization.local import PersonalizeResult

    assert isinstance(result, PersonalizeResult)
    names = ", ".join(f"{name} (id {cid})" for cid, name in result.classes)
    click.echo(f"{result.out}: {result.mode}, {len(result.classes)} classes: {names}")
    if result.images:
        click.echo("images: " + ", ".join(f"{k} {v}" for k, v in result.images.items()))
    if result.fit and "iterations" in result.fit:
        click.echo(f"fit: {result.fit['iterations']} iterations, loss {result.fit['loss']:.4f}, "
                   f"train top-1 {100 * result.fit['train_accuracy']:.1f} %")
    elif result.fit:
        click.echo(f"tuned the head and {len(result.fit['tuned_ops'])} conv biases: "
                   f"{result.fit['steps']} steps, loss {result.fit['loss_before']:.4f} → "
                   f"{result.fit['loss_after']:.4f}, train top-1 "
                   f"{100 * result.fit['accuracy_after']:.1f} %")
    for name, cov in result.coverage.items():
        shown = "unknown" if cov is None else f"{100 * cov:.1f} %"
        click.echo(f"coverage {name}: {shown}")
    for skipped in result.skipped:
        click.echo(f"skipped {skipped}", err=True)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo("seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in result.seconds.items()))


@main.command("personalize")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", help="Images to learn from: a folder with one sub-folder per class, or "
                             "a data source (e.g. synthetic:100) with --classes.")
@click.option("--classes", help="Without --data: classes of a full-head file to keep "
                                "(re-select). With a data source: the classes to learn.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The new .crisp file (written atomically; MODEL is not changed).")
@click.option("--samples-per-class", default=20, show_default=True, type=click.IntRange(2),
              help="Images per class taken from a data source.")
@click.option("--epochs", default=0, type=click.IntRange(0),
              help="Optimiser iterations of the head fit [default: the library's, 100].")
@click.option("--l2", default=0.0, type=float, help="L2 weight [default: the library's].")
@click.option("--imprint-only", is_flag=True, help="Weight imprinting only, no refinement.")
@click.option("--tune", type=click.Choice(["head", "bias"]), default="head", show_default=True,
              help="What is trained: the head, or also the last stage's biases.")
@click.option("--lr", default=0.0, type=float,
              help="--tune bias: Adam's step size [default: the library's, 1e-3].")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 256))
@click.option("--skip-bad", is_flag=True, help="Skip unreadable images instead of stopping.")
@click.option("--min-coverage", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="Re-select warns for a class with less of its saliency kept.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def personalize_command(model_path: str, data: str | None, classes: str | None, out: str,
                        samples_per_class: int, epochs: int, l2: float, imprint_only: bool,
                        tune: str, lr: float, seed: int, threads: int, skip_bad: bool,
                        min_coverage: float, as_json: bool) -> None:
    """Learn new classes from a few images, or re-select classes of a full-head MODEL, into a
    new .crisp file; the sparsity (the speed) is kept."""
    from crisp_edge.personalization.local import personalize

    result = personalize(model_path, out, data=data, classes=classes,
                         samples_per_class=samples_per_class, epochs=epochs, l2=l2, seed=seed,
                         threads=threads, skip_bad=skip_bad, imprint_only=imprint_only,
                         min_coverage=min_coverage, tune=tune, lr=lr)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print_result(result)
