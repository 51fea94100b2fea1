"""Meter drivers against simulated instruments speaking their real protocols (pseudo-terminals
for the serial meters, fake sysfs trees and recorded-format vcgencmd output for the on-device
sensors): readings and scaling, error replies, garbage, disconnects, slow meters, clear
errors for bad specs and missing devices."""

from __future__ import annotations

import os
import shlex
import stat
import struct
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from crisp_edge.errors import (CrispError, MeterDisconnectedError, MeterError, MeterNotFoundError,
                               MeterProtocolError, MeterSpecError, MeterTimeoutError)
from crisp_edge.measure.energy import measure
from crisp_edge.measure.meters import board_meter_spec, open_meter, parse_spec, ssh_runner
from crisp_edge.measure.meters.ina_bridge import parse_line
from crisp_edge.measure.meters.pmic import MISSES_5V, parse_pmic
from crisp_edge.measure.meters.um import MODELS, decode_record
from meter_sims import InaBridgeSim, ScpiSim, UmSim, constant, nmea_xor, um_record

HERE = Path(__file__).resolve().parent


def read_for(meter, seconds: float, count: int = 3):
    """Sample for ``seconds`` (at least until ``count`` samples), stop, return the samples."""
    meter.start()
    deadline = time.monotonic() + seconds
    assert meter.wait_for_samples(count, timeout_s=seconds + 3), meter.check()
    time.sleep(max(0.0, deadline - time.monotonic()))
    meter.stop()
    return meter.samples()


class Workload:
    """A board whose power rises while ``run`` executes: the simulators read ``power``."""

    def __init__(self, idle: tuple[float, float], busy: tuple[float, float]) -> None:
        self.idle, self.busy_power = idle, busy
        self.busy = threading.Event()

    def power(self, t: float) -> tuple[float, float]:
        return self.busy_power if self.busy.is_set() else self.idle

    def run(self, seconds: float):
        def run(n: int) -> None:
            self.busy.set()
            time.sleep(seconds)
            self.busy.clear()
        return run


# -- specs ------------------------------------------------------------------------------------

def test_spec_parsing_and_its_errors() -> None:
    spec = parse_spec("scpi:/dev/ttyUSB0?rate=10&baud=115200")
    assert (spec.kind, spec.target, spec.options) == ("scpi", "/dev/ttyUSB0",
                                                      {"rate": "10", "baud": "115200"})
    assert parse_spec("ina3221:VDD_SOC").target == "VDD_SOC"
    assert parse_spec("pmic").kind == "pmic"
    with pytest.raises(MeterSpecError, match="unknown meter 'joulescope:x'; use one of scpi:"):
        parse_spec("joulescope:x")
    with pytest.raises(MeterSpecError, match="unknown option speed for um25c; options are"):
        parse_spec("um25c:/dev/rfcomm0?speed=3")
    with pytest.raises(MeterSpecError, match="scpi needs a serial port"):
        parse_spec("scpi")
    with pytest.raises(MeterSpecError, match="rate=0 is outside"):
        open_meter("scpi:/dev/null?rate=0")
    with pytest.raises(MeterSpecError, match="accuracy='x'"):
        open_meter("ina:/dev/null?accuracy=x")


def test_missing_serial_devices_say_what_to_do() -> None:
    with pytest.raises(MeterNotFoundError, match="/dev/ttyUSB97 does not exist; is the "
                                                 "instrument plugged in"):
        open_meter("scpi:/dev/ttyUSB97")
    with pytest.raises(MeterNotFoundError, match="rfcomm bind"):
        open_meter("um25c:/dev/rfcomm97")


# -- SCPI -------------------------------------------------------------------------------------

def test_scpi_reads_voltage_current_and_identity(tmp_path: Path) -> None:
    with ScpiSim(constant(5.08, 0.7321)) as sim:
        with open_meter(f"scpi:{sim.path}?rate=40", calibration_dir=tmp_path) as meter:
            assert meter.identity == "ACME,PSU-3005,SN0042,1.07"
            samples = read_for(meter, 0.3, 5)
    assert len(samples) >= 5
    assert all(s.volts == 5.08 and s.amps == pytest.approx(0.7321) for s in samples)
    assert samples[0].watts == pytest.approx(5.08 * 0.7321)
    assert all(b.t_ns > a.t_ns for a, b in zip(samples, samples[1:]))


@pytest.mark.parametrize("option", ["curr_cmd=MEAS:CURR?;:OUTP%20OFF", "volt_cmd=VOLT%2030",
                                    "curr_cmd=MEAS:CURR?%0A:OUTP%20OFF", "volt_cmd=OUTP:STAT"])
def test_scpi_commands_must_be_single_queries(tmp_path: Path, option: str) -> None:
    """Finding 6: a command is sent verbatim to a power supply; one that sets anything is
    refused before the port is opened."""
    from urllib.parse import unquote

    with pytest.raises(MeterSpecError, match="is not a single SCPI query"):
        open_meter(unquote(f"scpi:/dev/ttyUSB97?{option}"), calibration_dir=tmp_path)


def test_scpi_undefined_header_is_a_clear_error(tmp_path: Path) -> None:
    with ScpiSim(constant(5.0, 0.5), unsupported=("MEAS:CURR?",)) as sim:
        with open_meter(f"scpi:{sim.path}?timeout=0.2", calibration_dir=tmp_path) as meter:
            meter.start()
            meter.wait_for_samples(1, timeout_s=2)
            with pytest.raises(MeterProtocolError) as info:
                meter.stop()
    message = str(info.value)
    assert "no reply to MEAS:CURR?" in message and '-113,"Undefined header"' in message
    assert "curr_cmd" in message and sim.path in message


def test_scpi_non_numeric_reply_with_an_error(tmp_path: Path) -> None:
    bad = {"MEAS:CURR?": ("OVLD", '-222,"Data out of range"')}
    with ScpiSim(constant(5.0, 0.5), bad_replies=bad) as sim:
        with open_meter(f"scpi:{sim.path}", calibration_dir=tmp_path) as meter:
            meter.start()
            meter.wait_for_samples(1, timeout_s=2)
            with pytest.raises(MeterProtocolError, match="MEAS:CURR\\? answered 'OVLD'; the "
                                                         'instrument reports -222'):
                meter.stop()


def test_scpi_garbage_on_the_line_is_skipped(tmp_path: Path) -> None:
    with ScpiSim(constant(12.0, 0.25), garbage_every=4) as sim:
        with open_meter(f"scpi:{sim.path}?rate=50", calibration_dir=tmp_path) as meter:
            samples = read_for(meter, 0.4, 8)
            assert meter.skipped > 0
    assert all(s.watts == pytest.approx(3.0) for s in samples)


def test_scpi_silent_instrument_times_out_on_idn(tmp_path: Path) -> None:
    with ScpiSim(constant(5, 1), silent=True) as sim:
        with pytest.raises(MeterTimeoutError, match=r"no answer to \*IDN\? within 0.2 s; check "
                                                    r"the baud rate"):
            open_meter(f"scpi:{sim.path}?timeout=0.2", calibration_dir=tmp_path)


def test_scpi_fixed_voltage_for_a_current_only_dmm(tmp_path: Path) -> None:
    with ScpiSim(constant(99.0, 0.5), unsupported=("MEAS:VOLT?",)) as sim:
        with open_meter(f"scpi:{sim.path}?volts=5.1&rate=30", calibration_dir=tmp_path) as m:
            samples = read_for(m, 0.2, 3)
    assert samples[0].volts == 5.1 and samples[0].watts == pytest.approx(2.55)


def test_scpi_energy_end_to_end(tmp_path: Path) -> None:
    board = Workload(idle=(5.0, 0.4), busy=(5.0, 1.0))          # 2 W idle, 5 W busy
    with ScpiSim(board.power) as sim:
        with open_meter(f"scpi:{sim.path}?rate=100", calibration_dir=tmp_path) as meter:
            result = measure(meter, board.run(0.5), 50, idle_seconds=0.4, settle_seconds=0.05)
    # 3 W above idle for ~0.5 s over 50 inferences ≈ 30 mJ each.
    assert result.idle_power_w == pytest.approx(2.0, abs=0.01)
    assert abs(result.mj_per_inference - 30.0) <= 2 * result.uncertainty_mj + 1.5
    assert result.to_json()["meter"] == f"scpi:{sim.path}?rate=100"


def test_scpi_disconnect_mid_window_is_typed_and_timed(tmp_path: Path) -> None:
    board = Workload(idle=(5.0, 0.4), busy=(5.0, 1.0))
    with ScpiSim(board.power, disconnect_after=0.6) as sim:
        with open_meter(f"scpi:{sim.path}?rate=50", calibration_dir=tmp_path) as meter:
            sim.t0 = time.monotonic()
            with pytest.raises(MeterDisconnectedError) as info:
                measure(meter, board.run(0.6), 10, idle_seconds=0.3, settle_seconds=0.05)
    assert info.value.phase == "window"
    assert 0.0 < info.value.seconds_into_window < 0.6
    assert f"scpi:{sim.path}?rate=50: lost the connection" in str(info.value)
    assert "s into the measurement window" in str(info.value)


def test_slow_scpi_meter_is_reported_not_hidden(tmp_path: Path) -> None:
    board = Workload(idle=(5.0, 0.4), busy=(5.0, 1.0))
    with ScpiSim(board.power, delay=0.03) as sim:             # two queries: ≤ 16 readings/s
        with open_meter(f"scpi:{sim.path}?rate=50", calibration_dir=tmp_path) as meter:
            result = measure(meter, board.run(0.4), 10, idle_seconds=0.4, settle_seconds=0.05)
    assert result.sample_rate_hz < 20
    assert any(w.startswith("slow meter") and "50 were requested" in w for w in result.warnings)
    assert any(w.startswith("window too short") for w in result.warnings)


# -- RDTech UM --------------------------------------------------------------------------------

def test_um_record_layout_from_hand_written_bytes() -> None:
    # UM25C: 5.123 V (mV), 0.4567 A (0.1 mA), 2340 mW, big-endian at offsets 0/2/4/6.
    record = bytearray(130)
    record[0:10] = bytes.fromhex("09C9" "1403" "11D7" "00000924")
    record[128:130] = b"\xff\xf1"
    reading = decode_record(bytes(record), MODELS["um25c"])
    assert reading is not None and reading.marker_ok
    assert (reading.volts, reading.amps, reading.watts) == pytest.approx((5.123, 0.4567, 2.34))
    # The same bytes as a UM34C record would be a different meter: rejected.
    assert decode_record(bytes(record), MODELS["um34c"]) is None
    # UM34C: 10 mV and 1 mA units.
    record[0:10] = bytes.fromhex("0D4C" "0200" "01C9" "00000924")
    reading = decode_record(bytes(record), MODELS["um34c"])
    assert reading is not None
    assert (reading.volts, reading.amps) == pytest.approx((5.12, 0.457))
    # Power that disagrees with V·I is not a record (garbage starting with the id).
    struct.pack_into(">I", record, 6, 9000)
    assert decode_record(bytes(record), MODELS["um34c"]) is None
    # The UM34C's XOR checksum over fixed positions: one changed byte there breaks it.
    good = bytearray(um_record("UM34C", 5.0, 1.0))
    assert decode_record(bytes(good), MODELS["um34c"]).marker_ok
    good[15] ^= 0x01
    assert not decode_record(bytes(good), MODELS["um34c"]).marker_ok


@pytest.mark.parametrize("kind, model, volts, amps", [
    ("um25c", "UM25C", 5.123, 0.4567),        # 1 mV, 0.1 mA
    ("um34c", "UM34C", 5.12, 0.457),           # 10 mV, 1 mA
])
def test_um_meters_read_with_their_scaling(tmp_path: Path, kind: str, model: str,
                                           volts: float, amps: float) -> None:
    with UmSim(model, constant(5.1234, 0.45671)) as sim:
        with open_meter(f"{kind}:{sim.path}?rate=40", calibration_dir=tmp_path) as meter:
            assert meter.identity == model
            samples = read_for(meter, 0.2, 4)
            assert meter.marker_mismatches == 0
    assert (samples[0].volts, samples[0].amps) == pytest.approx((volts, amps))
    assert samples[0].watts == pytest.approx(volts * amps, abs=0.001)


def test_um_resynchronises_after_garbage(tmp_path: Path) -> None:
    with UmSim("UM25C", constant(5.0, 1.2), garbage_every=2) as sim:
        with open_meter(f"um25c:{sim.path}?rate=50", calibration_dir=tmp_path) as meter:
            samples = read_for(meter, 0.4, 8)
            assert meter.skipped > 0
    assert len(samples) >= 8
    assert all(s.watts == pytest.approx(6.0) for s in samples)


def test_um_wrong_model_says_which_spec_to_use(tmp_path: Path) -> None:
    with UmSim("UM34C", constant(5.0, 1.0)) as sim:
        with pytest.raises(MeterProtocolError, match=f"this is a UM34C, not a UM25C; use "
                                                     f"um34c:{sim.path}"):
            open_meter(f"um25c:{sim.path}?timeout=0.2", calibration_dir=tmp_path)


def test_um_silent_meter_times_out(tmp_path: Path) -> None:
    with UmSim("UM25C", constant(5.0, 1.0), silent=True) as sim:
        with pytest.raises(MeterTimeoutError, match="no valid 130-byte UM25C record within "
                                                    "0.2 s of request 0xF0.*paired and bound"):
            open_meter(f"um25c:{sim.path}?timeout=0.2", calibration_dir=tmp_path)


def test_um_disconnect_mid_window(tmp_path: Path) -> None:
    board = Workload(idle=(5.0, 0.3), busy=(5.0, 0.9))
    with UmSim("UM25C", board.power, disconnect_after=0.5) as sim:
        with open_meter(f"um25c:{sim.path}?rate=30", calibration_dir=tmp_path) as meter:
            sim.t0 = time.monotonic()
            with pytest.raises(MeterDisconnectedError, match="lost the connection.*s into the "
                                                             "measurement window"):
                measure(meter, board.run(0.6), 10, idle_seconds=0.25, settle_seconds=0.05)


def test_um_slow_meter_warns(tmp_path: Path) -> None:
    board = Workload(idle=(5.0, 0.3), busy=(5.0, 0.9))
    with UmSim("UM25C", board.power, delay=0.08) as sim:
        with open_meter(f"um25c:{sim.path}?rate=30", calibration_dir=tmp_path) as meter:
            result = measure(meter, board.run(0.5), 10, idle_seconds=0.4, settle_seconds=0.05)
    assert any(w.startswith("slow meter") for w in result.warnings)


# -- INA219/INA226 bridge ---------------------------------------------------------------------

def test_ina_line_parsing() -> None:
    body = "123456,5012,-1500"
    line = f"${body}*{nmea_xor(body):02X}".encode()
    assert parse_line(line) == (123456, 5.012, -0.0015)
    assert parse_line(b"\x00\xfe#noise" + line) == (123456, 5.012, -0.0015)
    assert parse_line(line.replace(b"5012", b"5013")) is None            # checksum
    assert parse_line(b"$1,2*") is None and parse_line(b"hello") is None


def test_ina_bridge_streams_on_its_own_clock(tmp_path: Path) -> None:
    # The Arduino's crystal runs 0.3 % fast; readings every 10 ms of real time.
    with InaBridgeSim(constant(5.05, 0.85), period=0.01, clock_ratio=1.003) as sim:
        with open_meter(f"ina:{sim.path}", calibration_dir=tmp_path) as meter:
            assert meter.identity == "INA226 sim"
            samples = read_for(meter, 1.4, 60)
    assert samples[0].watts == pytest.approx(5.05 * 0.85)
    # Mapped to the host clock, each reading lands where the simulator actually took it: the
    # 0.3 % drift (4 ms over the run) and the USB/pty latency are both gone.
    emitted = np.array(sim.emitted_ns)
    errors = [np.min(np.abs(emitted - s.t_ns)) / 1e6 for s in samples]
    assert max(errors) < 1.0, f"worst timestamp error {max(errors):.2f} ms"


def test_ina_bridge_skips_corrupt_lines(tmp_path: Path) -> None:
    with InaBridgeSim(constant(5.0, 1.0), period=0.005, garbage_every=3) as sim:
        with open_meter(f"ina:{sim.path}", calibration_dir=tmp_path) as meter:
            samples = read_for(meter, 0.4, 20)
            assert meter.skipped >= 10
    assert all(s.watts == pytest.approx(5.0) for s in samples)


def test_ina_bridge_error_line_is_reported(tmp_path: Path) -> None:
    error = "! no INA219/INA226 answers at I2C_ADDRESS; check wiring"
    with InaBridgeSim(constant(5.0, 1.0), error=error) as sim:
        with pytest.raises(MeterProtocolError, match="the bridge reports: no INA219/INA226 "
                                                     "answers"):
            open_meter(f"ina:{sim.path}", calibration_dir=tmp_path)


def test_ina_bridge_disconnect_and_energy(tmp_path: Path) -> None:
    board = Workload(idle=(5.0, 0.5), busy=(5.0, 1.1))
    with InaBridgeSim(board.power, period=0.005) as sim:
        with open_meter(f"ina:{sim.path}", calibration_dir=tmp_path) as meter:
            result = measure(meter, board.run(0.4), 40, idle_seconds=0.3, settle_seconds=0.05)
    assert result.idle_power_w == pytest.approx(2.5, abs=0.01)
    # 3 W above idle for ~0.4 s over 40 inferences ≈ 30 mJ each (+ sleep overshoot).
    assert abs(result.mj_per_inference - 30.0) <= 2 * result.uncertainty_mj + 1.5
    with InaBridgeSim(board.power, period=0.005, disconnect_after=0.5) as sim:
        with open_meter(f"ina:{sim.path}", calibration_dir=tmp_path) as meter:
            sim.t0 = time.monotonic()
            with pytest.raises(MeterDisconnectedError, match="into the measurement window"):
                measure(meter, board.run(0.5), 10, idle_seconds=0.25, settle_seconds=0.05)


# -- Jetson INA3221 (hwmon sysfs) -------------------------------------------------------------

def fake_jetson(root: Path, rails: dict[str, tuple[int, int]], *, other: bool = True) -> Path:
    """/sys/class/hwmon with an ina3221 (label → (mV, mA) per channel) and another device."""
    hw = root / "class" / "hwmon" / "hwmon2"
    hw.mkdir(parents=True)
    (hw / "name").write_text("ina3221\n")
    for channel, (label, (mv, ma)) in enumerate(rails.items(), start=1):
        (hw / f"in{channel}_label").write_text(label + "\n")
        (hw / f"in{channel}_input").write_text(f"{mv}\n")
        (hw / f"curr{channel}_input").write_text(f"{ma}\n")
        (hw / f"in{channel + 3}_input").write_text("12\n")   # shunt voltages: not rails
    if other:
        thermal = root / "class" / "hwmon" / "hwmon0"
        thermal.mkdir()
        (thermal / "name").write_text("cpu_thermal\n")
        (thermal / "in1_label").write_text("VDD_IN\n")        # same label, wrong device
    return hw


ORIN = {"VDD_IN": (5080, 1500), "VDD_CPU_GPU_CV": (5072, 420), "VDD_SOC": (5076, 610)}


def test_ina3221_reads_the_whole_module_rail_by_default(tmp_path: Path) -> None:
    fake_jetson(tmp_path, ORIN)
    with open_meter(f"ina3221?root={tmp_path}&rate=40", calibration_dir=tmp_path) as meter:
        assert meter.rail == "VDD_IN" and meter.identity.endswith("VDD_IN")
        assert set(meter.rails) == set(ORIN)
        samples = read_for(meter, 0.3, 4)
    assert (samples[0].volts, samples[0].amps) == pytest.approx((5.08, 1.5))
    assert samples[0].watts == pytest.approx(7.62)


def test_ina3221_rail_selection_and_errors(tmp_path: Path) -> None:
    fake_jetson(tmp_path / "a", ORIN)
    with open_meter(f"ina3221:VDD_SOC?root={tmp_path / 'a'}&rate=40",
                    calibration_dir=tmp_path) as meter:
        samples = read_for(meter, 0.1, 2)
    assert samples[0].watts == pytest.approx(5.076 * 0.61)
    with pytest.raises(MeterNotFoundError, match="rail 'VDD_GPU' does not exist; the INA3221 "
                                                 "rails are VDD_CPU_GPU_CV, VDD_IN, VDD_SOC"):
        open_meter(f"ina3221:VDD_GPU?root={tmp_path / 'a'}")
    (tmp_path / "b" / "class" / "hwmon").mkdir(parents=True)
    with pytest.raises(MeterNotFoundError, match="no hwmon device named ina3221"):
        open_meter(f"ina3221?root={tmp_path / 'b'}")
    (tmp_path / "b" / "bus" / "i2c" / "drivers" / "ina3221x").mkdir(parents=True)
    with pytest.raises(MeterNotFoundError, match="ina3221x IIO driver is loaded but lists no "
                                                 "rail_name_N"):
        open_meter(f"ina3221?root={tmp_path / 'b'}")


def test_ina3221_follows_changing_sysfs_values(tmp_path: Path) -> None:
    hw = fake_jetson(tmp_path, ORIN)
    with open_meter(f"ina3221?root={tmp_path}&rate=50", calibration_dir=tmp_path) as meter:
        meter.start()
        assert meter.wait_for_samples(3, timeout_s=3)
        changed = time.monotonic_ns()
        (hw / "curr1_input.tmp").write_text("3000\n")
        os.replace(hw / "curr1_input.tmp", hw / "curr1_input")
        assert meter.wait_for_samples(3, after_ns=changed + 50_000_000, timeout_s=3)
        meter.stop()
        samples = meter.samples()
    assert samples[0].watts == pytest.approx(7.62)
    assert samples[-1].watts == pytest.approx(5.08 * 3.0)


def fake_jetson_nano(root: Path, rails: dict[str, tuple[int, int]]) -> Path:
    """JetPack 4's ina3221x IIO device (label → (mV, mA) per channel 0…2), as on a Nano."""
    dev = root / "bus" / "i2c" / "drivers" / "ina3221x" / "6-0040" / "iio:device0"
    dev.mkdir(parents=True)
    for channel, (label, (mv, ma)) in enumerate(rails.items()):
        (dev / f"rail_name_{channel}").write_text(label + "\n")
        (dev / f"in_voltage{channel}_input").write_text(f"{mv}\n")
        (dev / f"in_current{channel}_input").write_text(f"{ma}\n")
        (dev / f"in_power{channel}_input").write_text(f"{mv * ma // 1000}\n")
    (root / "class" / "hwmon" / "hwmon0").mkdir(parents=True)  # a thermal sensor, no ina3221
    (root / "class" / "hwmon" / "hwmon0" / "name").write_text("thermal\n")
    return dev


NANO = {"POM_5V_IN": (5048, 1220), "POM_5V_GPU": (5040, 80), "POM_5V_CPU": (5036, 410)}


def test_ina3221_reads_the_iio_driver_of_jetpack_4(tmp_path: Path) -> None:
    dev = fake_jetson_nano(tmp_path, NANO)
    with open_meter(f"ina3221?root={tmp_path}&rate=40", calibration_dir=tmp_path) as meter:
        assert meter.interface == "ina3221x" and meter.rail == "POM_5V_IN"
        assert set(meter.rails) == set(NANO)
        samples = read_for(meter, 0.2, 3)
        (dev / "in_current2_input").write_text("900\n")
    assert (samples[0].volts, samples[0].amps) == pytest.approx((5.048, 1.22))
    assert samples[0].watts == pytest.approx(5.048 * 1.22)
    with open_meter(f"ina3221:POM_5V_CPU?root={tmp_path}&rate=40",
                    calibration_dir=tmp_path) as meter:
        samples = read_for(meter, 0.1, 2)
    assert samples[-1].watts == pytest.approx(5.036 * 0.9)   # channel 2, the file just changed
    with pytest.raises(MeterNotFoundError, match="the INA3221 rails are POM_5V_CPU, POM_5V_GPU, "
                                                 "POM_5V_IN"):
        open_meter(f"ina3221:VDD_IN?root={tmp_path}")


def test_ina3221_prefers_hwmon_when_both_interfaces_exist(tmp_path: Path) -> None:
    fake_jetson_nano(tmp_path, NANO)
    (tmp_path / "class" / "hwmon" / "hwmon0" / "name").unlink()
    fake_jetson(tmp_path, ORIN, other=False)
    with open_meter(f"ina3221?root={tmp_path}&rate=40", calibration_dir=tmp_path) as meter:
        assert meter.interface == "hwmon" and meter.rail == "VDD_IN"
        assert read_for(meter, 0.1, 2)[0].watts == pytest.approx(7.62)


class SshLikeRunner:
    """What the SSH layer will hand over: runs each script in its own session (here a nested
    ``sh -c``, as ``ssh host sh -c SCRIPT`` would) and can drop a session."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.scripts: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env = env

    def __call__(self, script: str) -> subprocess.Popen[bytes]:
        self.scripts.append(script)
        process = subprocess.Popen(["/bin/sh", "-c", "exec /bin/sh -c " + shlex.quote(script)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, env=self.env)
        self.processes.append(process)
        return process


def test_ina3221_through_a_remote_runner_and_a_dropped_session(tmp_path: Path) -> None:
    fake_jetson(tmp_path, ORIN)
    runner = SshLikeRunner()
    with open_meter(f"ina3221?root={tmp_path}&rate=40", remote=runner,
                    calibration_dir=tmp_path) as meter:
        samples = read_for(meter, 0.2, 3)
        assert len(runner.scripts) == 2              # discovery, then one sampling session
        assert "while [" in runner.scripts[1] and str(meter.max_samples) in runner.scripts[1]
        assert samples[0].watts == pytest.approx(7.62)
        meter.start()
        assert meter.wait_for_samples(2, timeout_s=3)
        runner.processes[-1].kill()                  # the SSH session drops
        time.sleep(0.3)
        with pytest.raises(MeterDisconnectedError, match="sampling loop on the device ended"):
            meter.stop()
    assert all(p.poll() is not None for p in runner.processes)


def test_ssh_runner_streams_over_one_session_per_script(tmp_path: Path) -> None:
    fake_jetson(tmp_path, ORIN)
    commands: list[str] = []

    def ssh_command(remote_command: str) -> list[str]:
        commands.append(remote_command)            # what `ssh host REMOTE_COMMAND` would run
        return ["/bin/sh", "-c", remote_command]

    with open_meter(f"ina3221?root={tmp_path}&rate=40", remote=ssh_runner(ssh_command),
                    calibration_dir=tmp_path) as meter:
        samples = read_for(meter, 0.2, 3)
    assert len(commands) == 2 and all(c.startswith("sh -c ") for c in commands)
    assert samples[-1].watts == pytest.approx(7.62)


def test_board_power_methods_map_to_specs() -> None:
    assert board_meter_spec("ina3221-hwmon") == "ina3221"
    assert board_meter_spec("ina3221-iio") == "ina3221"
    assert board_meter_spec("vcgencmd-pmic") == "pmic"
    assert board_meter_spec("external-meter") is None and board_meter_spec("none") is None


# -- Raspberry Pi 5 PMIC (vcgencmd) -----------------------------------------------------------

PMIC_OUTPUT = (HERE / "data" / "pmic_read_adc.txt").read_text()


def fake_vcgencmd(tmp_path: Path, output: str, status: int = 0) -> dict[str, str]:
    """A PATH whose vcgencmd prints ``output`` for pmic_read_adc."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "output.txt").write_text(output)
    tool = bin_dir / "vcgencmd"
    tool.write_text(f'#!/bin/sh\n[ "$1" = pmic_read_adc ] || exit 2\n'
                    f'cat "{bin_dir}/output.txt"\nexit {status}\n')
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_pmic_output_parsing() -> None:
    rails = parse_pmic(PMIC_OUTPUT.splitlines())
    assert "EXT5V" not in rails and "BATT" not in rails      # voltage only: not rails
    assert len(rails) == 12
    assert rails["VDD_CORE"] == pytest.approx((0.8817, 0.81963))
    assert parse_pmic(["VDD_CORE_A=1.2340A", "VDD_CORE_V=0.8750V"]) == {
        "VDD_CORE": pytest.approx((0.875, 1.234))}


def test_pmic_meter_sums_the_rails_and_states_what_it_misses(tmp_path: Path) -> None:
    runner = SshLikeRunner(env=fake_vcgencmd(tmp_path, PMIC_OUTPUT))
    expected = sum(v * a for v, a in parse_pmic(PMIC_OUTPUT.splitlines()).values())
    with open_meter("pmic?rate=20", remote=runner, calibration_dir=tmp_path) as meter:
        assert MISSES_5V in meter.notes and "USB devices" in MISSES_5V
        assert meter.identity.endswith("Raspberry Pi 5 PMIC")
        samples = read_for(meter, 0.3, 3)
    assert samples[0].watts == pytest.approx(expected)
    assert samples[0].volts == pytest.approx(5.14963)       # the 5 V input, for reference


def test_pmic_on_other_boards_is_a_clear_error(tmp_path: Path) -> None:
    pi4 = 'error=1 error_msg="Command not registered"\n'
    env = fake_vcgencmd(tmp_path, pi4)
    with pytest.raises(MeterNotFoundError, match="reported no rails .*Command not registered.*"
                                                 "Raspberry Pi 5"):
        open_meter("pmic", remote=SshLikeRunner(env=env))
    no_tool = {**os.environ, "PATH": str(tmp_path / "empty")}
    with pytest.raises(MeterNotFoundError, match="vcgencmd is not installed"):
        open_meter("pmic", remote=SshLikeRunner(env=no_tool))


def test_pmic_caveat_reaches_the_energy_result(tmp_path: Path) -> None:
    runner = SshLikeRunner(env=fake_vcgencmd(tmp_path, PMIC_OUTPUT))
    with open_meter("pmic?rate=20", remote=runner, calibration_dir=tmp_path) as meter:
        result = measure(meter, lambda n: time.sleep(0.3), 10, idle_seconds=0.3,
                         settle_seconds=0.05)
    assert MISSES_5V in result.to_json()["warnings"]
    assert result.accuracy == 0.05


def test_meter_errors_are_crisp_errors() -> None:
    assert issubclass(MeterError, CrispError)
    assert issubclass(MeterSpecError, ValueError)
