"""``crisp-edge personalize``: adapt a packed model to other or new classes (docs/personalize.md).

    crisp-edge personalize model.crisp --data photos/ --out mine.crisp
    crisp-edge personalize model.crisp --data synthetic:100 --classes 60,61,62 --out new.crisp
    crisp-edge personalize full-head.crisp --classes cat,dog --out pets.crisp

On a board (the installed bundle's model, with the board's own crisp-personalize; the old
release is kept for rollback):

    crisp-edge personalize --board rpi4 --host pi@pi4 --data photos/ [--model NAME]
    crisp-edge personalize --board rpi4 --host pi@pi4 --classes cat,dog
    crisp-edge personalize --host pi@pi4 --rollback
"""

from __future__ import annotations

import json

import click

from crisp_edge.cli.group import main
from crisp_edge.deploy.bundle import DEFAULT_REMOTE_DIR


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


def _print_board_result(result: object, rollback_hint: str) -> None:
    from crisp_edge.personalization.board import BoardPersonalizeResult

    assert isinstance(result, BoardPersonalizeResult)
    for line in result.tool_output:
        click.echo(f"  {line}")
    names = ", ".join(f"{name} (id {cid})" for cid, name in result.classes)
    click.echo(f"{result.host}: {result.model}: {result.mode}, {len(result.classes)} classes: "
               f"{names}")
    click.echo(f"{result.host}: installed bundle {result.bundle_id} as {result.remote_dir}/"
               f"{result.release} (current); previous: {result.previous or 'none'}")
    if result.smoke:
        click.echo(f"{result.host}: smoke inference: {result.smoke}")
    if result.runner != "native":
        click.echo(f"{result.host}: note: the board's binaries ran emulated under "
                   f"`{result.runner}`")
    click.echo(f"roll back with: {rollback_hint}")


@main.command("personalize")
@click.argument("model_path", metavar="[MODEL]", required=False,
                type=click.Path(exists=True, dir_okay=False))
@click.option("--data", help="Images to learn from: a folder with one sub-folder per class, or "
                             "(here only) a data source (e.g. synthetic:100) with --classes.")
@click.option("--classes", help="Without --data: classes of a full-head file to keep "
                                "(re-select). With a data source: the classes to learn.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="The new .crisp file (written atomically; MODEL is not changed). Required "
                   "without --host; with --host, also keep a copy of the new model here.")
@click.option("--host", help="user@address (or a Host of ~/.ssh/config): personalise the model "
                             "installed there, on the board.")
@click.option("--board", help="With --host: the board profile (crisp-edge boards) [default: the "
                              "installed bundle's; when given, it must be that one].")
@click.option("--model", "board_model", metavar="NAME",
              help="With --host: which model of the installed bundle [default: its first].")
@click.option("--rollback", is_flag=True,
              help="With --host: make the previous release current again (after a smoke test "
                   "of it); run it again to go forward.")
@click.option("--ssh-config", type=click.Path(exists=True, dir_okay=False),
              help="An ssh config file to use instead of ~/.ssh/config (ssh -F).")
@click.option("--remote-dir", default=DEFAULT_REMOTE_DIR, show_default=True,
              help="Install directory on the device (as for deploy).")
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
@click.option("--threads", type=click.IntRange(1, 256),
              help="Threads [default: 1 here, the board profile's default_threads on a board].")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable images instead of stopping.")
@click.option("--min-coverage", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="Re-select warns for a class with less of its saliency kept.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def personalize_command(model_path: str | None, data: str | None, classes: str | None,
                        out: str | None, host: str | None, board: str | None,
                        board_model: str | None, rollback: bool, ssh_config: str | None,
                        remote_dir: str, samples_per_class: int, epochs: int, l2: float,
                        imprint_only: bool, tune: str, lr: float, seed: int,
                        threads: int | None, skip_bad: bool,
                        min_coverage: float, as_json: bool) -> None:
    """Learn new classes from a few images, or re-select classes of a full-head MODEL, into a
    new .crisp file; the sparsity (the speed) is kept.

    \b
      crisp-edge personalize model.crisp --data photos/ --out mine.crisp
      crisp-edge personalize full-head.crisp --classes cat,dog --out pets.crisp

    With --host, on the board: the installed bundle's model is personalised by the board's own
    crisp-personalize and installed as a new release (checksummed, smoke-tested, switched
    atomically); the release before stays as `previous` for --rollback. If anything fails,
    `current` is not changed.

    \b
      crisp-edge personalize --board rpi4 --host pi@pi4 --data photos/ [--model NAME]
      crisp-edge personalize --board rpi4 --host pi@pi4 --classes cat,dog
      crisp-edge personalize --host pi@pi4 --rollback
    """
    if host is None:
        for flag, value in (("--board", board), ("--model", board_model),
                            ("--rollback", rollback), ("--ssh-config", ssh_config)):
            if value:
                raise click.UsageError(f"{flag} goes with --host (personalising on a board)")
        if model_path is None or out is None:
            raise click.UsageError("give MODEL and --out (or --host to personalise the model "
                                   "installed on a board)")
        from crisp_edge.personalization.local import personalize

        result = personalize(model_path, out, data=data, classes=classes,
                             samples_per_class=samples_per_class, epochs=epochs, l2=l2,
                             seed=seed, threads=threads or 1, skip_bad=skip_bad,
                             imprint_only=imprint_only, min_coverage=min_coverage, tune=tune,
                             lr=lr)
        if as_json:
            click.echo(json.dumps(result.to_dict(), indent=2))
        else:
            _print_result(result)
        return
    _board_command(model_path, data, classes, out, host, board, board_model, rollback,
                   ssh_config, remote_dir, epochs, l2, imprint_only, tune, lr, seed, threads,
                   skip_bad, min_coverage, as_json)


def _board_command(model_path: str | None, data: str | None, classes: str | None,
                   out: str | None, host: str, board: str | None, board_model: str | None,
                   rollback: bool, ssh_config: str | None, remote_dir: str, epochs: int,
                   l2: float, imprint_only: bool, tune: str, lr: float, seed: int,
                   threads: int | None,
                   skip_bad: bool, min_coverage: float, as_json: bool) -> None:
    from pathlib import Path

    from crisp_edge.deploy.boards import load_board
    from crisp_edge.deploy.ssh import Remote
    from crisp_edge.personalization.board import personalize_on_board, rollback_on_board

    if model_path is not None:
        raise click.UsageError("with --host the model is the one installed on the board: "
                               "name it with --model NAME, not a local file")
    remote = Remote(host, config=Path(ssh_config) if ssh_config else None)
    profile = load_board(board) if board else None
    hint = f"crisp-edge personalize --host {host} --rollback" + (
        f" --remote-dir {remote_dir}" if remote_dir != DEFAULT_REMOTE_DIR else "") + (
        f" --ssh-config {ssh_config}" if ssh_config else "")
    if rollback:
        if data or classes or board_model or out:
            raise click.UsageError("--rollback takes no --data, --classes, --model or --out")
        back = rollback_on_board(remote, profile, remote_dir=remote_dir, log=_log)
        if as_json:
            click.echo(json.dumps(back.to_dict(), indent=2))
            return
        what = (f"personalised {back.personalized.get('model')} "
                f"({', '.join(n for _, n in back.personalized.get('classes', []))})"
                if back.personalized else "as deployed")
        click.echo(f"{host}: current is {back.remote_dir}/{back.current} again (bundle "
                   f"{back.bundle_id}, models {what}); previous: {back.previous}")
        if back.smoke:
            click.echo(f"{host}: smoke inference: {back.smoke}")
        click.echo(f"go forward again with: {hint}")
        return
    if data is not None and not Path(data).is_dir():
        raise click.UsageError(f"--data {data}: on a board, give a folder of images (one "
                               "sub-folder per class); data sources need the host")
    result = personalize_on_board(remote, profile, data=data, classes=classes,
                                  model=board_model, remote_dir=remote_dir, threads=threads,
                                  skip_bad=skip_bad, epochs=epochs, l2=l2,
                                  imprint_only=imprint_only, tune=tune, lr=lr, seed=seed,
                                  min_coverage=min_coverage, log=_log,
                                  keep_copy=Path(out) if out else None)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print_board_result(result, hint)


def _log(message: str) -> None:
    click.echo(message, err=True)
