"""Field commands of ``crisp-edge``: boards, deploy, bench, report (registered on the main
group by :func:`register`).

    crisp-edge boards
    crisp-edge deploy --board rpi4 --model model.crisp --out rpi4-bundle.tar.gz
    crisp-edge deploy --board rpi4 --model model.crisp --host pi@192.168.1.20
    crisp-edge bench --board rpi4 --host pi@192.168.1.20 --out pi.json
    crisp-edge bench --board rpi4 --hosts fleet.txt --model model.crisp --out fleet.json
    crisp-edge report pi.json fleet.json --out-dir report/
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from crisp_edge.boards import list_boards, load_board, search_dirs
from crisp_edge.deploy import DEFAULT_REMOTE_DIR, build_runtime, deploy, make_bundle
from crisp_edge.ssh import Remote


def _log(message: str) -> None:
    click.echo(message, err=True)


def _remote(host: str, ssh_config: str | None) -> Remote:
    return Remote(host, config=Path(ssh_config) if ssh_config else None)


_ssh_config_option = click.option(
    "--ssh-config", type=click.Path(exists=True, dir_okay=False),
    help="An ssh config file to use instead of ~/.ssh/config (ssh -F).")
_remote_dir_option = click.option(
    "--remote-dir", default=DEFAULT_REMOTE_DIR, show_default=True,
    help="Install directory on the device (relative to the login's home unless absolute).")


@click.command("boards")
@click.option("--json", "as_json", is_flag=True, help="Print the profiles as JSON.")
def boards_command(as_json: bool) -> None:
    """List the board profiles (built-in and your own).

    Add a board by writing ~/.config/crisp-edge/boards/NAME.toml (fields: boards/README.md).
    """
    boards, errors = list_boards()
    if as_json:
        click.echo(json.dumps({name: {**b.to_dict(), "source": b.source}
                               for name, b in boards.items()}, indent=2))
    else:
        for name, b in sorted(boards.items()):
            threads = f"{b.default_threads} thread{'s' if b.default_threads > 1 else ''}"
            click.echo(f"{name:<18} {b.description}: {b.cores}x {b.cpu}, {b.arch}, "
                       f"{','.join(b.isa_features) or 'baseline ISA'}, {threads}, "
                       f"power: {b.power_method}")
        click.echo("searched: " + ", ".join(str(d) for d in search_dirs()), err=True)
    for path, message in errors.items():
        click.echo(f"crisp-edge: error: {message}", err=True)
    if errors:
        sys.exit(1)


@click.command("deploy")
@click.option("--board", required=True, help="Board profile name or .toml file (crisp-edge boards).")
@click.option("--model", "models", required=True, multiple=True,
              type=click.Path(exists=True, dir_okay=False), help="A .crisp model (repeatable).")
@click.option("--host", help="user@address (or a Host of ~/.ssh/config) to install on.")
@click.option("--out", type=click.Path(), help="Where to write the bundle archive (a file or a "
                                               "directory) [required without --host].")
@click.option("--no-dense-twin", is_flag=True,
              help="Leave out the dense copies of hybrid models that bench compares against.")
@_ssh_config_option
@_remote_dir_option
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(1, 256),
              help="Parallel compile jobs for the cross build.")
def deploy_command(board: str, models: tuple[str, ...], host: str | None, out: str | None,
                   no_dense_twin: bool, ssh_config: str | None, remote_dir: str,
                   jobs: int) -> None:
    """Build the runtime for a board, bundle it with MODELs and install it over SSH.

    \b
      crisp-edge deploy --board rpi4 --model model.crisp --out rpi4-bundle.tar.gz
      crisp-edge deploy --board rpi4 --model model.crisp --host pi@192.168.1.20

    On the device the bundle goes to REMOTE_DIR/releases/ID, `current` switches to it
    atomically after its checksums are verified, and a smoke inference runs; if anything
    fails, `current` goes back to the previous bundle. Deploying the installed bundle again
    does nothing.
    """
    if host is None and out is None:
        raise click.UsageError("give --host to install on a device, or --out to write the "
                               "bundle archive")
    profile = load_board(board)
    build = build_runtime(profile, jobs=jobs, log=_log)
    with tempfile.TemporaryDirectory(prefix="crisp-bundle-") as tmp:
        bundle = make_bundle(profile, models, build, Path(out) if out else Path(tmp),
                             dense_twins=not no_dense_twin)
        click.echo(f"bundle {bundle.bundle_id}: "
                   + (f"{bundle.path} " if out else "")
                   + f"({bundle.path.stat().st_size // 1024} KiB)")
        if host is None:
            return
        result = deploy(bundle, _remote(host, ssh_config), profile, remote_dir=remote_dir,
                        log=_log)
    if result.status == "unchanged":
        click.echo(f"{host}: bundle {result.bundle_id} is already current in "
                   f"{result.remote_dir}; nothing to do")
        return
    click.echo(f"{host}: installed bundle {result.bundle_id} in {result.remote_dir}/current"
               + (f" (previous: {result.previous})" if result.previous else ""))
    click.echo(f"{host}: smoke inference: {result.smoke}")
    if result.emulated:
        click.echo(f"{host}: note: this device is not a {profile.name}; its binaries ran "
                   f"emulated under `{result.runner}`")


def _thread_list(text: str | None) -> list[int] | None:
    if text is None:
        return None
    counts: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("..")
            counts += range(int(lo), int(hi or lo) + 1)
    except ValueError:
        raise click.BadParameter(f"{text!r}: give thread counts like 1,2,4 or 1..4") from None
    if not counts or any(not 1 <= c <= 256 for c in counts):
        raise click.BadParameter(f"{text!r}: thread counts are 1..256")
    return counts


def _summary(result: dict) -> None:
    where = f"{result['host']} ({result['board']['name']}"
    where += ", EMULATED: " + result["runner"] + ")" if result["emulated"] else ")"
    _log(f"{where}: cpu {result['device']['cpu_model']}, bundle {result['bundle_id']}")
    for m in result["models"]:
        cells = ", ".join(f"{r['threads']}t {r['median_ms']:.3f} ms" for r in m["results"])
        _log(f"  {m['name']:<24} sparsity {100 * m['mac_sparsity']:5.1f} %  median {cells}")
    if "note" in result:
        _log(f"  note: {result['note']}")


@click.command("bench")
@click.option("--board", help="Board profile name or .toml file [required unless every line "
                              "of --hosts names its board].")
@click.option("--host", help="user@address of the device; without --host/--hosts the board's "
                             "binaries run on this machine (under qemu for another arch).")
@click.option("--hosts", "hosts_file", type=click.Path(exists=True, dir_okay=False),
              help="A fleet: one 'HOST [BOARD]' per line, benchmarked concurrently.")
@click.option("--model", "models", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Deploy and benchmark this .crisp (repeatable) [default: the installed "
                   "bundle's models].")
@click.option("--threads", help="Thread counts, e.g. 1,2,4 or 1..4 [default: 1, 2, 4 … cores].")
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(0, 100000))
@click.option("--runs", default=20, show_default=True, type=click.IntRange(10, 1000000))
@click.option("--tflite", type=click.Path(exists=True, dir_okay=False),
              help="Also time this .tflite with the TFLite interpreter on the device (when "
                   "tflite-runtime or ai-edge-litert is installed there).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the JSON here [stdout].")
@_ssh_config_option
@_remote_dir_option
@click.option("--jobs", default=8, show_default=True, type=click.IntRange(1, 1024),
              help="Boards benchmarked at once with --hosts.")
@click.option("--local", "local_args", is_flag=False, flag_value="", default=None,
              metavar="[ARGS]", help="Instead: crisp-edge against torch, ONNX Runtime and TFLite "
              "on this machine (python -m crisp_edge.peerbench; ARGS are its options, quoted).")
def bench_command(board: str | None, host: str | None, hosts_file: str | None,
                  models: tuple[str, ...], threads: str | None, warmup: int, runs: int,
                  tflite: str | None, out: str | None, ssh_config: str | None, remote_dir: str,
                  jobs: int, local_args: str | None) -> None:
    """Measure latency, throughput and memory of crisp models on a board (or a fleet), or
    against the peer runtimes on this machine (--local).

    \b
      crisp-edge bench --board rpi4 --host pi@192.168.1.20 --out pi4.json
      crisp-edge bench --board rpi4 --hosts fleet.txt --model model.crisp --out fleet.json
      crisp-edge bench --board rpi4 --model model.crisp        # here, under qemu-aarch64
      crisp-edge bench --local                                 # docs/benchmarks.md
      crisp-edge bench --local "--archs resnet50 --threads 2"
    """
    from crisp_edge import fieldbench

    if local_args is not None:
        import shlex

        from crisp_edge import peerbench

        if board or host or hosts_file or models:
            raise click.UsageError("--local measures this machine against the peer runtimes; "
                                   "it takes no --board/--host/--hosts/--model")
        sys.exit(peerbench.main(shlex.split(local_args)))
    if host and hosts_file:
        raise click.UsageError("give --host or --hosts, not both")
    counts = _thread_list(threads)
    kw = dict(threads=counts, warmup=warmup, runs=runs,
              tflite=Path(tflite) if tflite else None)
    if hosts_file:
        entries = fieldbench.read_hosts(hosts_file, board)
        result = fieldbench.bench_fleet(entries, ssh_config=Path(ssh_config) if ssh_config
                                        else None, jobs=jobs, log=_log, models=models,
                                        remote_dir=remote_dir, **kw)
        for r in result["results"]:
            _summary(r)
        for f in result["failures"]:
            _log(f"{f['host']} ({f['board']}): FAILED: {f['error']}")
    else:
        if board is None:
            raise click.UsageError("give --board (crisp-edge boards lists them)")
        profile = load_board(board)
        if host:
            result = fieldbench.bench_host(profile, _remote(host, ssh_config), models=models,
                                           remote_dir=remote_dir, log=_log, **kw)
        elif models:
            result = fieldbench.bench_local(profile, models, log=_log, **kw)
        else:
            raise click.UsageError("give --host (or --hosts) to measure on devices, or --model "
                                   "to measure the board's binaries on this machine")
        _summary(result)
    text = json.dumps(result, indent=2)
    if out:
        Path(out).write_text(text + "\n")
        _log(f"wrote {out}")
    else:
        click.echo(text)
    if result.get("failures"):
        sys.exit(1)


@click.command("report")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out-dir", required=True, type=click.Path(file_okay=False),
              help="Where report.md, report.html and the plots go.")
def report_command(results: tuple[str, ...], out_dir: str) -> None:
    """Render bench RESULTS (JSON files from crisp-edge bench) as Markdown and HTML with plots.

    \b
      crisp-edge report pi4.json pi5.json fleet.json --out-dir report/
    """
    from crisp_edge.fieldreport import write_report

    written = write_report([Path(r) for r in results], Path(out_dir))
    for path in written:
        click.echo(f"wrote {path}")


def register(group: click.Group) -> None:
    """Add the field commands to the ``crisp-edge`` group."""
    for command in (boards_command, deploy_command, bench_command, report_command):
        group.add_command(command)
