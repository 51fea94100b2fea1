"""Meter calibration: the fit, the file format, automatic application when a meter opens, and
the `crisp-edge calibrate-meter` / `crisp-edge meter read` commands on a simulated meter."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from crisp_edge.measure.meters.calibration import (FORMAT, Calibration, calibration_key, find_calibration,
                                    fit_calibration, load_calibration, save_calibration)
from crisp_edge.cli import main
from crisp_edge.measure.energy import measure
from crisp_edge.errors import MeterSpecError
from crisp_edge.measure.meters import open_meter
from meter_sims import ScpiSim, constant

IDN = "ACME,PSU-3005,SN0042,1.07"


def test_two_points_fit_gain_and_offset_exactly() -> None:
    cal = fit_calibration("scpi", IDN, [(0.0, 0.02), (5.0, 4.87)], reference_accuracy=0.001)
    assert cal.gain == pytest.approx(5.0 / 4.85)
    assert cal.apply(0.02) == pytest.approx(0.0, abs=1e-12)
    assert cal.apply(4.87) == pytest.approx(5.0)
    assert cal.gain_uncertainty == pytest.approx(0.001)     # no residual with two points
    assert cal.key == "scpi-acme-psu-3005-sn0042-1-07"


def test_one_point_fits_gain_only_and_residuals_count() -> None:
    cal = fit_calibration("um25c", "UM25C", [(2.0, 1.9)], reference_accuracy=0.002)
    assert (cal.gain, cal.offset_w) == (pytest.approx(2.0 / 1.9), 0.0)
    # Three points off a line: least squares, and the residual widens the uncertainty.
    cal = fit_calibration("ina", "INA226 bench1", [(0.0, 0.0), (1.0, 1.02), (2.0, 1.98)],
                          reference_accuracy=0.001)
    residuals = [cal.apply(m) - r for r, m in [(0.0, 0.0), (1.0, 1.02), (2.0, 1.98)]]
    assert sum(residuals) == pytest.approx(0.0, abs=1e-12)
    rms = math.sqrt(sum(r * r for r in residuals) / 3) / 2.0
    assert cal.gain_uncertainty == pytest.approx(math.hypot(0.001, rms))


def test_bad_calibrations_are_refused() -> None:
    with pytest.raises(MeterSpecError, match="at least one reference point"):
        fit_calibration("scpi", IDN, [], reference_accuracy=0.001)
    with pytest.raises(MeterSpecError, match="must be a real load"):
        fit_calibration("scpi", IDN, [(0.0, 0.01)], reference_accuracy=0.001)
    with pytest.raises(MeterSpecError, match="all read the same power"):
        fit_calibration("scpi", IDN, [(1.0, 2.0), (3.0, 2.0)], reference_accuracy=0.001)
    with pytest.raises(MeterSpecError, match="should be a fraction"):
        fit_calibration("scpi", IDN, [(1.0, 1.0)], reference_accuracy=0.5)


def test_file_round_trip_and_lookup(tmp_path: Path) -> None:
    cal = fit_calibration("scpi", IDN, [(0.0, 0.02), (5.0, 4.87)], reference_accuracy=0.001,
                          reference="Keysight 34465A, 5 Ω load")
    path = save_calibration(cal, tmp_path)
    assert path == tmp_path / f"{calibration_key('scpi', IDN)}.json"
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT and data["points"][1] == {"reference_w": 5.0,
                                                               "measured_w": 4.87}
    loaded = load_calibration(path)
    assert loaded == cal and loaded.path == path
    assert find_calibration("scpi", IDN, directory=tmp_path) == cal
    assert find_calibration("scpi", "another instrument", directory=tmp_path) is None
    assert find_calibration("scpi", IDN, "none", tmp_path) is None
    with pytest.raises(MeterSpecError, match="blue.json does not exist"):
        find_calibration("scpi", IDN, "blue", tmp_path)
    (tmp_path / "blue.json").write_text(path.read_text())
    with pytest.raises(MeterSpecError, match="calibrates a scpi meter, not um25c"):
        find_calibration("um25c", "UM25C", "blue", tmp_path)


@pytest.mark.parametrize("content, message", [
    ("{", "not valid JSON"),
    ('{"format": "x"}', "not a crisp-edge meter calibration"),
    (json.dumps({"format": FORMAT, "key": "k"}), "missing or bad field"),
    (json.dumps({"format": FORMAT, "key": "k", "meter_kind": "scpi", "identity": "i",
                 "gain": 7.0, "offset_w": 0, "gain_uncertainty": 0.01, "points": []}),
     "gain 7.0 is outside"),
])
def test_damaged_files_are_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "x.json").write_text(content)
    with pytest.raises(MeterSpecError, match=message):
        load_calibration(tmp_path / "x.json")


def test_calibration_is_applied_when_the_meter_opens(tmp_path: Path) -> None:
    # This instrument reads 4 % low with a 50 mW offset.
    cal = Calibration(key=calibration_key("scpi", IDN), meter_kind="scpi", identity=IDN,
                      gain=1.04, offset_w=-0.05, gain_uncertainty=0.002, points=[])
    save_calibration(cal, tmp_path)
    with ScpiSim(constant(5.0, 0.5), idn=IDN) as sim:
        with open_meter(f"scpi:{sim.path}?rate=50", calibration_dir=tmp_path) as meter:
            assert meter.calibration == cal and meter.power_accuracy == 0.002
            result = measure(meter, lambda n: time.sleep(0.2), 10, idle_seconds=0.2,
                             settle_seconds=0.02)
            assert meter.samples()[0].watts == pytest.approx(2.5 * 1.04 - 0.05)
            assert meter.samples()[0].amps == 0.5                        # raw, as measured
        with open_meter(f"scpi:{sim.path}?cal=none", calibration_dir=tmp_path) as meter:
            assert meter.calibration is None and meter.power_accuracy == 0.005
    assert result.idle_power_w == pytest.approx(2.55)
    assert result.calibration == str(tmp_path / f"{cal.key}.json")
    assert result.accuracy == 0.002


def test_calibrate_meter_command_writes_a_file_that_is_then_used(tmp_path: Path) -> None:
    with ScpiSim(constant(5.0, 0.4), idn=IDN) as sim:               # reads 2.0 W
        result = CliRunner().invoke(main, [
            "calibrate-meter", f"scpi:{sim.path}?rate=50", "--reference", "2.1",
            "--seconds", "0.5", "--reference-accuracy", "0.2%", "--note", "test load",
            "--calibration-dir", str(tmp_path)], input="\n")
        assert result.exit_code == 0, result.output
        assert "Set up the 2.1 W load" in result.output
        assert "reference 2.1000 W   measured 2.0000 W" in result.output
        path = tmp_path / f"{calibration_key('scpi', IDN)}.json"
        assert f"wrote {path}: gain 1.05000" in result.output
        cal = load_calibration(path)
        assert cal.gain == pytest.approx(1.05) and cal.reference == "test load"
        assert cal.gain_uncertainty == pytest.approx(0.002)
        read = CliRunner().invoke(main, ["meter", "read", f"scpi:{sim.path}?rate=20",
                                         "--seconds", "0.3", "--calibration-dir",
                                         str(tmp_path)])
    assert read.exit_code == 0, read.output
    assert f"calibrated by {path}" in read.output
    assert "5.0000 V   0.40000 A    2.1000 W" in read.output
    assert "power mean 2.1000 W" in read.output


def test_meter_read_errors_are_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["meter", "read", "joulescope:/dev/x"])
    assert result.exit_code == 1
    assert result.output.startswith("crisp-edge: error: unknown meter 'joulescope:/dev/x'")
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["meter", "read", "um25c:/dev/rfcomm97"])
    assert result.exit_code == 1 and "rfcomm bind" in result.output
