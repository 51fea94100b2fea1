"""Power meters for energy per inference: one interface, drivers for the instruments people put
on a Raspberry Pi or a Jetson.

    from crisp_edge.measure.meters import open_meter
    with open_meter("um25c:/dev/rfcomm0") as meter:
        meter.start(); ...; meter.stop()
        joules = meter.energy(t0_ns, t1_ns)

``open_meter(spec, calibration_dir=..., remote=...)`` parses the spec (see
:mod:`crisp_edge.measure.meters.spec`), connects, identifies the instrument and applies its calibration
file (:mod:`crisp_edge.measure.meters.calibration`). The method that turns samples into joules per inference
with an uncertainty is :func:`crisp_edge.measure.energy.measure`.

Drivers: ``scpi`` (bench supplies and DMMs, pyserial), ``um`` (RDTech UM24C/UM25C/UM34C over
Bluetooth rfcomm), ``ina_bridge`` (INA219/INA226 on an Arduino), ``ina3221`` (Jetson: hwmon,
or JetPack 4's ina3221x IIO driver) and ``pmic`` (Raspberry Pi 5 ``vcgencmd pmic_read_adc``).
The last two run on the board; ``remote`` is the command runner that reaches it (contract in
:mod:`crisp_edge.measure.meters.device`).
"""

# The meters' errors live in crisp_edge.errors; this package re-exports them (docs/energy.md).
from crisp_edge.errors import (MeterDisconnectedError, MeterError, MeterNotFoundError,
                               MeterProtocolError, MeterSpecError, MeterTimeoutError)
from crisp_edge.measure.meters.base import Accuracy, Meter, Sample
from crisp_edge.measure.meters.device import CommandRunner, DeviceProcess, local_runner, ssh_runner
from crisp_edge.measure.meters.spec import MeterSpec, board_meter_spec, open_meter, parse_spec

__all__ = ["Accuracy", "CommandRunner", "DeviceProcess", "Meter", "MeterDisconnectedError",
           "MeterError", "MeterNotFoundError", "MeterProtocolError", "MeterSpec",
           "MeterSpecError", "MeterTimeoutError", "Sample", "board_meter_spec", "local_runner",
           "open_meter", "parse_spec", "ssh_runner"]
