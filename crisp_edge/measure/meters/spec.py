"""Meter specs — ``KIND[:TARGET][?OPTION=VALUE&...]`` — and ``open_meter``.

    scpi:/dev/ttyUSB0?rate=10&baud=115200     SCPI supply or DMM on a USB-serial port
    um25c:/dev/rfcomm0   um34c:…   um24c:…     RDTech USB meter over Bluetooth serial
    ina:/dev/ttyACM0                           INA219/INA226 Arduino bridge
    ina3221   ina3221:VDD_CPU_GPU_CV           Jetson INA3221 rail (VDD_IN/POM_5V_IN), on device
    pmic                                       Raspberry Pi 5 PMIC rails, on device

Options for every kind: ``rate`` (Hz), ``timeout`` (s), ``accuracy`` (``0.5%`` or ``0.005``:
the uncalibrated power accuracy), ``cal`` (calibration file name, or ``none``). Per kind:
``baud`` (serial kinds); ``volt_cmd``, ``curr_cmd``, ``volts`` (scpi); ``root`` (ina3221, the
sysfs root, default /sys).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl

from crisp_edge.errors import MeterSpecError
from crisp_edge.measure.meters.base import Accuracy, Meter
from crisp_edge.measure.meters.device import CommandRunner

COMMON_OPTIONS = {"rate", "timeout", "accuracy", "cal"}
SERIAL_KINDS = {"scpi", "um24c", "um25c", "um34c", "ina"}
ON_DEVICE_KINDS = {"ina3221", "pmic"}
KIND_OPTIONS = {
    "scpi": {"baud", "volt_cmd", "curr_cmd", "volts"},
    "um24c": {"baud"}, "um25c": {"baud"}, "um34c": {"baud"}, "ina": {"baud"},
    "ina3221": {"root"}, "pmic": set(),
}
EXAMPLES = ("scpi:/dev/ttyUSB0", "um25c:/dev/rfcomm0", "um34c:/dev/rfcomm0", "ina:/dev/ttyACM0",
            "ina3221[:RAIL]", "pmic")


# Board profiles' power_method (boards/*.toml) → the spec of the sensor on the board.
# The ina3221 driver finds the hwmon or the IIO (ina3221x) interface by itself.
ON_BOARD_SPECS = {"ina3221-hwmon": "ina3221", "ina3221-iio": "ina3221", "vcgencmd-pmic": "pmic"}


def board_meter_spec(power_method: str) -> str | None:
    """The meter spec for a board profile's ``power_method``, or None when the board has no
    sensor of its own ("external-meter": give ``--meter``; "none")."""
    return ON_BOARD_SPECS.get(power_method)


@dataclass(frozen=True)
class MeterSpec:
    text: str
    kind: str
    target: str
    options: dict[str, str]

    def number(self, name: str, default: float, low: float, high: float) -> float:
        if name not in self.options:
            return default
        raw = self.options[name]
        try:
            value = float(raw)
        except ValueError:
            raise MeterSpecError(f"{self.text}: {name}={raw!r} is not a number") from None
        if not low <= value <= high:
            raise MeterSpecError(f"{self.text}: {name}={raw} is outside {low:g} … {high:g}")
        return value

    def accuracy(self, default: Accuracy) -> Accuracy:
        raw = self.options.get("accuracy")
        if raw is None:
            return default
        try:
            value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        except ValueError:
            raise MeterSpecError(f"{self.text}: accuracy={raw!r}: give e.g. 0.5% or 0.005") \
                from None
        if not 0 < value < 0.5:
            raise MeterSpecError(f"{self.text}: accuracy={raw} is not a plausible relative "
                                 "accuracy (0 … 50 %)")
        return Accuracy(value, f"given in the spec (accuracy={raw})")


def parse_spec(text: str) -> MeterSpec:
    """Split and check a spec; unknown kinds and options are errors that list the valid ones."""
    head, _, query = text.strip().partition("?")
    kind, _, target = head.partition(":")
    kind = kind.lower()
    if kind not in KIND_OPTIONS:
        raise MeterSpecError(f"unknown meter {text!r}; use one of {', '.join(EXAMPLES)}")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise MeterSpecError(f"{text}: options must look like ?rate=10&baud=9600") from None
    options = dict(pairs)
    allowed = COMMON_OPTIONS | KIND_OPTIONS[kind]
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise MeterSpecError(f"{text}: unknown option {', '.join(unknown)} for {kind}; "
                             f"options are {', '.join(sorted(allowed))}")
    if kind in SERIAL_KINDS and not target:
        raise MeterSpecError(f"{text}: {kind} needs a serial port, e.g. {kind}:/dev/ttyUSB0")
    if kind == "pmic" and target:
        raise MeterSpecError(f"{text}: pmic takes no target; write just pmic")
    return MeterSpec(text.strip(), kind, target, options)


def build_meter(spec: MeterSpec, remote: CommandRunner | None = None) -> Meter:
    """The driver for a parsed spec, not yet opened."""
    builders: dict[str, Callable[[MeterSpec, CommandRunner | None], Meter]] = {
        "scpi": _scpi, "um24c": _um, "um25c": _um, "um34c": _um, "ina": _ina,
        "ina3221": _ina3221, "pmic": _pmic}
    return builders[spec.kind](spec, remote)


def open_meter(spec: str, *, calibration_dir: Path | str | None = None,
               remote: CommandRunner | None = None) -> Meter:
    """Parse ``spec``, connect, identify the instrument and attach its calibration.

    Serial meters (scpi, um*, ina) sit on the host, between the supply and the board.
    On-device sensors (ina3221, pmic) run a sampling loop on the board through ``remote``
    (see :mod:`crisp_edge.measure.meters.device`); without it they read this machine.

    >>> meter = open_meter("um25c:/dev/rfcomm0?rate=5")      # doctest: +SKIP
    >>> meter.identity, meter.calibration
    ('UM25C', None)
    """
    from crisp_edge.measure.meters.calibration import find_calibration

    parsed = parse_spec(spec)
    meter = build_meter(parsed, remote)
    meter.open()
    try:
        meter.calibration = find_calibration(
            meter.kind, meter.identity, parsed.options.get("cal"),
            Path(calibration_dir) if calibration_dir is not None else None)
    except BaseException:
        meter.close()
        raise
    return meter


def _common(spec: MeterSpec, rate: float, timeout: float) -> dict[str, float]:
    return {"rate_hz": spec.number("rate", rate, 0.01, 10000),
            "timeout_s": spec.number("timeout", timeout, 0.05, 600)}


def _baud(spec: MeterSpec, default: int) -> int:
    return int(spec.number("baud", default, 300, 4_000_000))


def _scpi(spec: MeterSpec, remote: CommandRunner | None) -> Meter:
    from crisp_edge.measure.meters import scpi

    volts = spec.options.get("volts")
    return scpi.ScpiMeter(
        spec.text, spec.target, baud=_baud(spec, 9600), **_common(spec, 5.0, 1.0),
        accuracy=spec.accuracy(scpi.DEFAULT_ACCURACY),
        volt_cmd=spec.options.get("volt_cmd", "MEAS:VOLT?"),
        curr_cmd=spec.options.get("curr_cmd", "MEAS:CURR?"),
        fixed_volts=None if volts is None else spec.number("volts", 0, 0, 1000))


def _um(spec: MeterSpec, remote: CommandRunner | None) -> Meter:
    from crisp_edge.measure.meters import um

    model = um.MODELS[spec.kind]
    return um.UmMeter(spec.text, spec.target, model, baud=_baud(spec, 9600),
                      **_common(spec, 5.0, 1.0), accuracy=spec.accuracy(model.accuracy))


def _ina(spec: MeterSpec, remote: CommandRunner | None) -> Meter:
    from crisp_edge.measure.meters import ina_bridge

    return ina_bridge.InaBridgeMeter(spec.text, spec.target, baud=_baud(spec, 115200),
                                     **_common(spec, 100.0, 1.0),
                                     accuracy=spec.accuracy(ina_bridge.DEFAULT_ACCURACY))


def _ina3221(spec: MeterSpec, remote: CommandRunner | None) -> Meter:
    from crisp_edge.measure.meters import ina3221

    return ina3221.Ina3221Meter(spec.text, spec.target or None,
                                root=spec.options.get("root", "/sys"), runner=remote,
                                **_common(spec, 10.0, 2.0),
                                accuracy=spec.accuracy(ina3221.DEFAULT_ACCURACY))


def _pmic(spec: MeterSpec, remote: CommandRunner | None) -> Meter:
    from crisp_edge.measure.meters import pmic

    return pmic.PmicMeter(spec.text, runner=remote, **_common(spec, 4.0, 3.0),
                          accuracy=spec.accuracy(pmic.DEFAULT_ACCURACY))
