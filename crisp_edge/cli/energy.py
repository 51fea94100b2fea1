"""``crisp-edge meter read`` (live readings: the quick wiring check) and
``crisp-edge calibrate-meter`` (fit a meter against a known load, write calibration/KEY.json).

    crisp-edge meter read um25c:/dev/rfcomm0 --seconds 5
    crisp-edge calibrate-meter scpi:/dev/ttyUSB0 --reference 0 --reference 5.0 \\
        --reference-accuracy 0.1% --note "Keysight 34465A on a 1 Ω 0.1 % load"

Registered on the main ``crisp-edge`` group where they are defined.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import click

from crisp_edge.cli.group import main

from crisp_edge.measure.meters.base import Meter, Sample


def _percent(text: str) -> float:
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: give e.g. 0.1% or 0.001") from None


def _fmt(value: float, width: int, digits: int) -> str:
    return f"{value:{width}.{digits}f}" if math.isfinite(value) else "—".rjust(width)


def _line(sample: Sample, t0_ns: int) -> str:
    return (f"{(sample.t_ns - t0_ns) / 1e9:8.3f} s  {_fmt(sample.volts, 8, 4)} V  "
            f"{_fmt(sample.amps, 8, 5)} A  {_fmt(sample.watts, 8, 4)} W")


def _sample_for(meter: Meter, seconds: float, echo_from: int | None = None) -> list[Sample]:
    """Sample for ``seconds``; echo each reading when ``echo_from`` (a t0) is given."""
    meter.start()
    shown = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
            meter.check()
            if echo_from is not None:
                new = meter.samples()[shown:]
                for s in new:
                    click.echo(_line(s, echo_from))
                shown += len(new)
    finally:
        meter.stop()
    samples = meter.samples()
    if echo_from is not None:
        for s in samples[shown:]:
            click.echo(_line(s, echo_from))
    return samples


def _mean_power(meter: Meter, samples: list[Sample]) -> float:
    if len(samples) < 2:
        raise click.ClickException(f"{meter.spec}: only {len(samples)} reading(s); sample "
                                   "longer (--seconds)")
    span = samples[-1].t_ns - samples[0].t_ns
    return meter.energy(samples[0].t_ns, samples[-1].t_ns) / (span / 1e9)


@main.group("meter")
def meter_group() -> None:
    """Power meters: live readings to check the wiring.

    \b
    Specs: scpi:/dev/ttyUSB0  um25c:/dev/rfcomm0  um34c:/dev/rfcomm0  ina:/dev/ttyACM0
           ina3221[:RAIL]  pmic      options: ?rate=HZ&timeout=S&accuracy=0.5%&cal=NAME|none
    """


@meter_group.command("read")
@click.argument("spec")
@click.option("--seconds", default=5.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="How long to read.")
@click.option("--calibration-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where calibration files are [default: $CRISP_CALIBRATION_DIR or "
                   "./calibration].")
def meter_read_command(spec: str, seconds: float, calibration_dir: Path | None) -> None:
    """Print live readings of SPEC for a few seconds, then a summary."""
    from crisp_edge.measure.meters import open_meter

    with open_meter(spec, calibration_dir=calibration_dir) as meter:
        cal = (f"calibrated by {meter.calibration.path}" if meter.calibration is not None
               else "not calibrated")
        click.echo(f"{meter.spec}: {meter.identity or meter.kind} ({cal}), "
                   f"{meter.rate_hz:g} readings/s requested")
        for note in meter.notes:
            click.echo(f"note: {note}")
        samples = _sample_for(meter, seconds, echo_from=time.monotonic_ns())
        watts = [s.watts for s in samples]
        if len(samples) < 2:
            raise click.ClickException(f"{spec}: only {len(samples)} reading(s) in {seconds} s")
        span = (samples[-1].t_ns - samples[0].t_ns) / 1e9
        click.echo(f"{len(samples)} readings, {(len(samples) - 1) / span:.1f}/s; power mean "
                   f"{_mean_power(meter, samples):.4f} W, min {min(watts):.4f} W, max "
                   f"{max(watts):.4f} W" + (f"; {meter.skipped} corrupt readings skipped"
                                             if meter.skipped else ""))


@main.command("calibrate-meter")
@click.argument("spec")
@click.option("--reference", "references", multiple=True, required=True, type=float,
              metavar="WATTS",
              help="The true power of one known load (repeat: e.g. 0 and 5.0 to fit gain and "
                   "offset). You are asked to set up each load in turn.")
@click.option("--seconds", default=5.0, show_default=True, type=click.FloatRange(0.5, 600),
              help="Averaging time per load.")
@click.option("--reference-accuracy", default="0.5%", show_default=True,
              help="Relative accuracy of the reference powers (e.g. 0.1%).")
@click.option("--name", help="File name (without .json) [default: from the meter's identity; a "
                             "named file is used with ?cal=NAME].")
@click.option("--note", default="", help="What the reference was (instrument, load).")
@click.option("--calibration-dir", type=click.Path(file_okay=False, path_type=Path),
              help="[default: $CRISP_CALIBRATION_DIR or ./calibration]")
@click.option("--yes", is_flag=True, help="Do not wait for Enter before each load.")
def calibrate_meter_command(spec: str, references: tuple[float, ...], seconds: float,
                            reference_accuracy: str, name: str | None, note: str,
                            calibration_dir: Path | None, yes: bool) -> None:
    """Calibrate SPEC against known loads: P_true = gain · P_measured + offset.

    \b
    For each --reference: set up that load, press Enter, and the meter averages it for
    --seconds. The fit is written to the calibration directory and applied automatically
    whenever the same meter is opened (see calibration/README.md).
    """
    from crisp_edge.measure.meters.calibration import fit_calibration, save_calibration
    from crisp_edge.measure.meters import open_meter

    accuracy = _percent(reference_accuracy)
    raw_spec = spec + ("&" if "?" in spec else "?") + "cal=none"  # fit the raw readings
    points: list[tuple[float, float]] = []
    with open_meter(raw_spec, calibration_dir=calibration_dir) as meter:
        click.echo(f"{spec}: {meter.identity or meter.kind}")
        for reference in references:
            if not yes:
                click.prompt(f"Set up the {reference:g} W load, then press Enter", default="",
                             show_default=False, prompt_suffix=" ")
            measured = _mean_power(meter, _sample_for(meter, seconds))
            click.echo(f"  reference {reference:.4f} W   measured {measured:.4f} W")
            points.append((reference, measured))
        cal = fit_calibration(meter.kind, meter.identity, points,
                              reference_accuracy=accuracy, reference=note, key=name)
    path = save_calibration(cal, calibration_dir)
    click.echo(f"wrote {path}: gain {cal.gain:.5f}, offset {cal.offset_w:+.4f} W, power "
               f"uncertainty {100 * cal.gain_uncertainty:.2f} %")
