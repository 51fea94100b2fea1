"""Per-meter power calibration: ``P_true = gain · P_measured + offset_w``, fitted against a
known load and stored as one JSON file per meter, applied automatically when the meter opens.

A meter is identified by its kind and the identity it reports when opened (an SCPI
instrument's ``*IDN?`` string with its serial number, the UM model, the INA bridge's id, the
on-device sensor and host name); ``calibration_key`` turns that into the file name. A spec can
name a file instead (``um25c:/dev/rfcomm0?cal=blue-um25c``) or switch calibration off
(``?cal=none``). The file format is documented in calibration/README.md.

>>> cal = fit_calibration("um25c", "UM25C", [(0.0, 0.004), (5.0, 4.93)], reference_accuracy=0.002)
>>> round(cal.apply(4.93), 3)
5.0
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from crisp_edge.fileio import write_atomic
from crisp_edge.errors import MeterSpecError

FORMAT = "crisp-edge-meter-calibration/1"


@dataclass(frozen=True)
class CalibrationPoint:
    """One step of a calibration: what the reference said and what the meter read (W)."""

    reference_w: float
    measured_w: float


@dataclass
class Calibration:
    """A fitted power calibration of one meter.

    ``gain_uncertainty`` is the relative standard uncertainty of power after calibration (the
    reference's accuracy combined with the fit residuals); :mod:`crisp_edge.measure.energy` uses it in
    place of the meter's datasheet accuracy."""

    key: str
    meter_kind: str
    identity: str
    gain: float
    offset_w: float
    gain_uncertainty: float
    points: list[CalibrationPoint]
    reference: str = ""
    created: str = ""
    path: Path | None = field(default=None, compare=False)

    def apply(self, watts: float) -> float:
        return self.gain * watts + self.offset_w

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        return {"format": FORMAT, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path | None = None) -> Calibration:
        where = str(path) if path else "calibration data"
        if data.get("format") != FORMAT:
            raise MeterSpecError(f"{where}: not a crisp-edge meter calibration (format "
                                 f"{data.get('format')!r}, expected {FORMAT!r})")
        try:
            cal = cls(key=str(data["key"]), meter_kind=str(data["meter_kind"]),
                      identity=str(data["identity"]), gain=float(data["gain"]),
                      offset_w=float(data["offset_w"]),
                      gain_uncertainty=float(data["gain_uncertainty"]),
                      points=[CalibrationPoint(float(p["reference_w"]), float(p["measured_w"]))
                              for p in data["points"]],
                      reference=str(data.get("reference", "")),
                      created=str(data.get("created", "")), path=path)
        except (KeyError, TypeError, ValueError) as e:
            raise MeterSpecError(f"{where}: missing or bad field ({e}); see "
                                 "calibration/README.md for the format") from None
        if not (math.isfinite(cal.gain) and 0.5 <= cal.gain <= 2.0):
            raise MeterSpecError(f"{where}: gain {cal.gain} is outside 0.5 … 2; recalibrate "
                                 "with `crisp-edge calibrate-meter`")
        return cal


def calibration_key(meter_kind: str, identity: str) -> str:
    """A file-name-safe key: ``scpi-rigol-technologies-dp832-dp8c1234``."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{meter_kind} {identity}".lower()).strip("-")
    return slug[:120] or meter_kind


def default_calibration_dir() -> Path:
    """``$CRISP_CALIBRATION_DIR``, else ``calibration/`` in the working directory."""
    return Path(os.environ.get("CRISP_CALIBRATION_DIR", "calibration"))


def load_calibration(path: Path) -> Calibration:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise MeterSpecError(f"cannot read calibration {path}: {e.strerror}") from None
    except ValueError as e:
        raise MeterSpecError(f"{path}: not valid JSON ({e})") from None
    return Calibration.from_json(data, path)


def find_calibration(meter_kind: str, identity: str, name: str | None = None,
                     directory: Path | None = None) -> Calibration | None:
    """The calibration for this meter, or None when there is none.

    ``name`` is the spec's ``cal=`` option: ``none`` disables calibration, any other value
    names the file (``NAME.json`` in ``directory``) and must exist. Without it the file is
    looked up by :func:`calibration_key`, and a file made for another meter kind is an error
    rather than silently applied."""
    if name == "none":
        return None
    directory = directory or default_calibration_dir()
    path = directory / f"{name or calibration_key(meter_kind, identity)}.json"
    if not path.is_file():
        if name:
            raise MeterSpecError(f"calibration {path} does not exist; run `crisp-edge "
                                 f"calibrate-meter ... --name {name}` or drop cal={name}")
        return None
    cal = load_calibration(path)
    if cal.meter_kind != meter_kind:
        raise MeterSpecError(f"{path} calibrates a {cal.meter_kind} meter, not {meter_kind}")
    return cal


def fit_calibration(meter_kind: str, identity: str, points: Sequence[tuple[float, float]], *,
                    reference_accuracy: float, reference: str = "",
                    key: str | None = None) -> Calibration:
    """Least-squares ``reference = gain · measured + offset`` over (reference_w, measured_w)
    points. One point fits the gain only (offset 0); two or more fit both.

    The gain uncertainty combines ``reference_accuracy`` (relative, e.g. 0.001 for a 0.1 %
    reference) with the relative RMS residual of the fit, which is zero for two points and
    grows when the meter is non-linear or the load was unstable."""
    pts = [CalibrationPoint(float(r), float(m)) for r, m in points]
    if not pts:
        raise MeterSpecError("a calibration needs at least one reference point")
    if not 0 <= reference_accuracy < 0.2:
        raise MeterSpecError(f"reference accuracy {reference_accuracy} should be a fraction "
                             "such as 0.001 (0.1 %)")
    if len(pts) == 1:
        if abs(pts[0].measured_w) < 1e-6 or pts[0].reference_w <= 0:
            raise MeterSpecError("one calibration point must be a real load (> 0 W); give two "
                                 "points (no load and a known load) to fit an offset too")
        gain, offset = pts[0].reference_w / pts[0].measured_w, 0.0
    else:
        n = len(pts)
        mx = sum(p.measured_w for p in pts) / n
        my = sum(p.reference_w for p in pts) / n
        sxx = sum((p.measured_w - mx) ** 2 for p in pts)
        if sxx < 1e-12:
            raise MeterSpecError("the calibration points all read the same power; use loads "
                                 "that differ (e.g. 0 W and a few watts)")
        gain = sum((p.measured_w - mx) * (p.reference_w - my) for p in pts) / sxx
        offset = my - gain * mx
    scale = max(abs(p.reference_w) for p in pts) or 1.0
    residual = math.sqrt(sum((gain * p.measured_w + offset - p.reference_w) ** 2 for p in pts)
                         / len(pts)) / scale
    return Calibration(key=key or calibration_key(meter_kind, identity), meter_kind=meter_kind,
                       identity=identity, gain=gain, offset_w=offset,
                       gain_uncertainty=math.hypot(reference_accuracy, residual), points=pts,
                       reference=reference,
                       created=datetime.datetime.now(datetime.timezone.utc).isoformat(
                           timespec="seconds"))


def save_calibration(cal: Calibration, directory: Path | None = None) -> Path:
    """Write ``DIRECTORY/KEY.json`` (atomically) and return its path."""
    directory = directory or default_calibration_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{cal.key}.json"
    write_atomic(path, (json.dumps(cal.to_json(), indent=2) + "\n").encode("utf-8"))
    cal.path = path
    return path
