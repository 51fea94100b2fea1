"""Field commands of ``crisp-edge``: boards, deploy, bench, report (registered on the main
group where they are defined).

    crisp-edge boards
    crisp-edge deploy --board rpi4 --model model.crisp --out rpi4-bundle.tar.gz
    crisp-edge deploy --board rpi4 --model model.crisp --host pi@192.168.1.20
    crisp-edge bench --board rpi4 --host pi@192.168.1.20 --out pi.json
    crisp-edge bench --board rpi4 --hosts fleet.txt --model model.crisp --out fleet.json
    crisp-edge bench --board rpi4 --host pi@192.168.1.20 --meter um25c:/dev/rfcomm0 --json pi.json
    crisp-edge bench --board jetson-orin-nano --host nvidia@orin --energy --json orin.json
    crisp-edge report pi.json fleet.json --out-dir report/

``bench`` exits 0 when everything asked for was measured, 1 on an error (nothing written: a
bad option, a meter that cannot be opened, an unreachable --host) or when a fleet board
failed, and 3 when the latency results were written but energy is missing for some entries
(their ``energy_error`` says why).
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path

import click

from crisp_edge.cli.group import main

from crisp_edge.deploy.boards import list_boards, load_board, search_dirs
from crisp_edge.deploy.build import TOOLCHAINS, build_runtime
from crisp_edge.deploy.bundle import DEFAULT_REMOTE_DIR, deploy, make_bundle
from crisp_edge.deploy.ssh import Remote

# bench: latency results written, energy missing somewhere (see energy_error in the JSON).
EXIT_ENERGY_INCOMPLETE = 3


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


_toolchain_option = click.option(
    "--toolchain", type=click.Choice(TOOLCHAINS),
    help="Compiler for the board's runtime: gcc (the system's, e.g. aarch64-linux-gnu-gcc) or "
         "zig (from the ziglang package: pip install 'crisp-edge[deploy]'; static musl tools) "
         "[default: gcc if installed, else zig].")


@main.command("boards")
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


@main.command("deploy")
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
@_toolchain_option
def deploy_command(board: str, models: tuple[str, ...], host: str | None, out: str | None,
                   no_dense_twin: bool, ssh_config: str | None, remote_dir: str,
                   jobs: int, toolchain: str | None) -> None:
    """Build the runtime for a board, bundle it with MODELs and install it over SSH.

    \b
      crisp-edge deploy --board rpi4 --model model.crisp --out rpi4-bundle.tar.gz
      crisp-edge deploy --board rpi4 --model model.crisp --host pi@192.168.1.20

    On the device the bundle goes to REMOTE_DIR/releases/ID; after its checksums are verified
    and a smoke inference of it passed, `current` switches to it atomically (the bundle before
    becomes `previous`); if anything fails, `current` is not touched. One deploy at a time per
    device: another one running is an error, not a wait. Deploying the installed bundle again
    does nothing.
    """
    if host is None and out is None:
        raise click.UsageError("give --host to install on a device, or --out to write the "
                               "bundle archive")
    profile = load_board(board)
    build = build_runtime(profile, toolchain=toolchain, jobs=jobs, log=_log)
    with tempfile.TemporaryDirectory(prefix="crisp-bundle-") as tmp:
        bundle = make_bundle(profile, models, build, Path(out) if out else Path(tmp),
                             dense_twins=not no_dense_twin, log=_log)
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
    from crisp_edge.measure.energy import per_joule_text

    where = f"{result['host']} ({result['board']['name']}"
    where += ", EMULATED: " + result["runner"] + ")" if result["emulated"] else ")"
    _log(f"{where}: cpu {result['device']['cpu_model']}, bundle {result['bundle_id']}")
    for m in result["models"]:
        cells = ", ".join(f"{r['threads']}t {r['median_ms']:.3f} ms" for r in m["results"])
        _log(f"  {m['name']:<24} sparsity {100 * m['mac_sparsity']:5.1f} %  median {cells}")
    if "note" in result:
        _log(f"  note: {result['note']}")
    tflite = (result.get("tflite") or {}).get("results", [])
    entries = [(m["name"], r) for m in result["models"] for r in m["results"]]
    entries += [("TFLite", r) for r in tflite]
    for name, r in entries:
        e = r.get("energy")
        if e is not None:
            _log(f"  energy {name:<17} {r['threads']}t {e['mj_per_inference']:.4g} ± "
                 f"{e['uncertainty_mj']:.2g} mJ/inference, {e['avg_power_w']:.3f} W average "
                 f"({e['idle_power_w']:.3f} W idle), {per_joule_text(e)}"
                 + (f"; {len(e['warnings'])} warning(s)" if e["warnings"] else ""))


def _energy_outcome(result: dict) -> bool:
    """Say which entries have no energy and why; True when any."""
    from crisp_edge.measure.fieldenergy import energy_problems

    problems = list(energy_problems(result))
    if problems:
        _log(f"energy: not measured for {len(problems)} entr{'y' if len(problems) == 1 else 'ies'}"
             " (the latency results are complete and written):")
        for where, message in problems:
            _log(f"  {where}: {message}")
    return bool(problems)


@main.command("bench")
@click.option("--board", help="Board profile name or .toml file [required unless every line "
                              "of --hosts names its board].")
@click.option("--host", help="user@address of the device; without --host/--hosts the board's "
                             "binaries run on this machine (under qemu for another arch).")
@click.option("--hosts", "hosts_file", type=click.Path(exists=True, dir_okay=False),
              help="A fleet: one 'HOST [BOARD]' per line, benchmarked concurrently.")
@click.option("--model", "models", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Deploy and benchmark this .crisp (repeatable) [default: the installed "
                   "bundle's models].")
@click.option("--threads", help="Thread counts, e.g. 1,2,4 or 1..4 [default: 1, 2, 4 … the "
                                "cores online on the device, at most the board's].")
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(0, 100000))
@click.option("--runs", default=20, show_default=True, type=click.IntRange(10, 1000000))
@click.option("--tflite", type=click.Path(exists=True, dir_okay=False),
              help="Also time this .tflite with the TFLite interpreter on the device (when "
                   "tflite-runtime or ai-edge-litert is installed there).")
@click.option("--out", "--json", "out", type=click.Path(dir_okay=False),
              help="Write the JSON here [stdout].")
@click.option("--meter", metavar="SPEC",
              help="Also measure energy per inference with this power meter: scpi:/dev/ttyUSB0, "
                   "um25c:/dev/rfcomm0, um34c:…, ina:/dev/ttyACM0 (on this machine), ina3221"
                   "[:RAIL], pmic (on the board); options ?rate=HZ&cal=NAME… (docs/energy.md). "
                   "Not with --hosts.")
@click.option("--energy", is_flag=True,
              help="Measure energy with the board's own sensor (its profile's power_method: "
                   "ina3221 on a Jetson, pmic on a Pi 5); with --hosts, each board's own.")
@click.option("--energy-window", default=5.0, show_default=True,
              type=click.FloatRange(0.1, 3600), metavar="SECONDS",
              help="Least time the inferences of one energy window take (at least 25 meter "
                   "samples either way).")
@click.option("--energy-idle-seconds", default=3.0, show_default=True,
              type=click.FloatRange(0.1, 600), metavar="SECONDS",
              help="Idle baseline before and after each window.")
@click.option("--energy-settle-seconds", default=0.5, show_default=True,
              type=click.FloatRange(0, 600), metavar="SECONDS",
              help="Left out after each window before the idle baseline after it.")
@click.option("--calibration-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Meter calibration files [default: $CRISP_CALIBRATION_DIR or ./calibration].")
@_ssh_config_option
@_remote_dir_option
@click.option("--jobs", default=8, show_default=True, type=click.IntRange(1, 1024),
              help="Boards benchmarked at once with --hosts.")
@click.option("--local", "local_args", is_flag=False, flag_value="", default=None,
              metavar="[ARGS]", help="Instead: crisp-edge against torch, ONNX Runtime and TFLite "
              "on this machine (crisp-edge peerbench; ARGS are its options, quoted).")
@_toolchain_option
def bench_command(board: str | None, host: str | None, hosts_file: str | None,
                  models: tuple[str, ...], threads: str | None, warmup: int, runs: int,
                  tflite: str | None, out: str | None, meter: str | None, energy: bool,
                  energy_window: float, energy_idle_seconds: float,
                  energy_settle_seconds: float, calibration_dir: Path | None,
                  ssh_config: str | None, remote_dir: str, jobs: int,
                  local_args: str | None, toolchain: str | None) -> None:
    """Measure latency, throughput and memory of crisp models on a board (or a fleet), or
    against the peer runtimes on this machine (--local); with --meter or --energy, energy per
    inference too.

    \b
      crisp-edge bench --board rpi4 --host pi@192.168.1.20 --out pi4.json
      crisp-edge bench --board rpi4 --hosts fleet.txt --model model.crisp --out fleet.json
      crisp-edge bench --board rpi4 --model model.crisp        # here, under qemu-aarch64
      crisp-edge bench --board rpi4 --host pi@pi4 --meter um25c:/dev/rfcomm0 --json pi4.json
      crisp-edge bench --board rpi5 --host pi@pi5 --energy     # the Pi 5's PMIC
      crisp-edge bench --local                                 # docs/benchmarks.md
      crisp-edge bench --local "--archs resnet50 --threads 2"

    The meter is opened first (a missing one stops here, nothing measured); latencies are
    measured and kept, then one energy window per model and thread count. Exit status: 0 all
    measured, 1 error or a failed fleet board, 3 latencies written but energy missing for some
    entries (energy_error in the JSON says why).
    """
    from crisp_edge.measure import fieldbench
    from crisp_edge.measure import fieldenergy, fleet
    if local_args is not None:
        import shlex

        from crisp_edge.cli.peerbench import peerbench_command
        if board or host or hosts_file or models or meter or energy:
            raise click.UsageError("--local measures this machine against the peer runtimes; "
                                   "it takes no --board/--host/--hosts/--model/--meter/--energy")
        peerbench_command.main(args=shlex.split(local_args),
                               prog_name="crisp-edge bench --local")
    if host and hosts_file:
        raise click.UsageError("give --host or --hosts, not both")
    if hosts_file and meter:
        # A serial meter sits between one supply and one board; it cannot measure a fleet.
        raise click.UsageError("--meter measures one board: run --host HOST --meter SPEC per "
                               "board, or --hosts with --energy to use each board's own sensor")
    counts = _thread_list(threads)
    kw = dict(threads=counts, warmup=warmup, runs=runs,
              tflite=Path(tflite) if tflite else None)
    energy_options = fieldenergy.EnergyOptions(
        min_window_s=energy_window, idle_seconds=energy_idle_seconds,
        settle_seconds=energy_settle_seconds, calibration_dir=calibration_dir)
    if hosts_file:
        entries = fieldbench.read_hosts(hosts_file, board)
        result = fleet.bench_fleet(entries, ssh_config=Path(ssh_config) if ssh_config
                                        else None, jobs=jobs, log=_log, models=models,
                                        remote_dir=remote_dir, toolchain=toolchain,
                                        energy=energy_options if energy else None, **kw)
        for r in result["results"]:
            _summary(r)
        for f in result["failures"]:
            _log(f"{f['host']} ({f['board']}): FAILED: {f['error']}")
    else:
        if board is None:
            raise click.UsageError("give --board (crisp-edge boards lists them)")
        if not host and not models:
            raise click.UsageError("give --host (or --hosts) to measure on devices, or --model "
                                   "to measure the board's binaries on this machine")
        profile = load_board(board)
        remote = _remote(host, ssh_config) if host else None
        spec = fieldenergy.meter_spec(profile, meter, energy)
        # Opened before any latency run: a missing meter stops the command here.
        plan = (fieldenergy.open_plan(spec, remote, energy_options, log=_log,
                                      label=host or "local") if spec else None)
        with plan or contextlib.nullcontext():
            if remote is not None:
                result = fieldbench.bench_host(profile, remote, models=models,
                                               remote_dir=remote_dir, log=_log, energy=plan,
                                               toolchain=toolchain, **kw)
            else:
                result = fieldbench.bench_local(profile, models, log=_log, energy=plan,
                                                toolchain=toolchain, **kw)
        _summary(result)
    text = json.dumps(result, indent=2)
    if out:
        Path(out).write_text(text + "\n")
        _log(f"wrote {out}")
    else:
        click.echo(text)
    energy_missing = _energy_outcome(result)
    if result.get("failures"):
        sys.exit(1)
    if energy_missing:
        sys.exit(EXIT_ENERGY_INCOMPLETE)


@main.command("report")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out-dir", required=True, type=click.Path(file_okay=False),
              help="Where report.md, report.html and the plots go.")
def report_command(results: tuple[str, ...], out_dir: str) -> None:
    """Render bench RESULTS (JSON files from crisp-edge bench) as Markdown and HTML with plots.

    \b
      crisp-edge report pi4.json pi5.json fleet.json --out-dir report/
    """
    from crisp_edge.measure.fieldreport import write_report

    written = write_report([Path(r) for r in results], Path(out_dir))
    for path in written:
        click.echo(f"wrote {path}")
