"""Jetson power rails through the INA3221, read on the device.

Two kernel interfaces expose the same sensor; discovery tries them in this order:

- the mainline ``ina3221`` **hwmon** driver (JetPack 5/6: Orin, Xavier): per channel N (1…3)
  ``inN_label`` (the rail name from the device tree: ``VDD_IN``, ``VDD_CPU_GPU_CV``,
  ``VDD_SOC`` on an Orin Nano), ``inN_input`` (bus voltage, mV), ``currN_input`` (mA);
- NVIDIA's ``ina3221x`` **IIO** driver (L4T 32 / JetPack 4: Jetson Nano, TX1/TX2), under
  ``bus/i2c/drivers/ina3221x/*/iio:device*/``: per channel N (0…2) ``rail_name_N``
  (``POM_5V_IN``, ``POM_5V_GPU``, ``POM_5V_CPU`` on a Nano), ``in_voltageN_input`` (mV),
  ``in_currentN_input`` (mA), ``in_powerN_input`` (mW, not read: V·I is the same product).

Power is V·I. ``VDD_IN`` / ``POM_5V_IN`` is the module's whole input and the default rail; the
others are parts of it, so rails are never summed. ``ina3221:RAIL`` picks another one.

Discovery and sampling are POSIX ``sh`` scripts run through the command runner (see
``crisp_edge.measure.meters.device``), under a sysfs root (``/sys`` on a board, a fake tree in tests).
"""

from __future__ import annotations

from crisp_edge.deploy.programs import read_program
from crisp_edge.errors import MeterNotFoundError
from crisp_edge.measure.meters.base import Accuracy
from crisp_edge.measure.meters.device import (NOW_NS, CommandRunner, DeviceMeter, parse_device_ns,
                                              quote, run_script)

DEFAULT_ACCURACY = Accuracy(0.01, "assumed 1 %: INA3221 gain error ≤ 0.25 % + shunt tolerance")
DEFAULT_RAILS = ("VDD_IN", "POM_5V_IN")  # whole-module input: Orin/Xavier; Nano/TX1/TX2

# Device programs (crisp_edge/deploy/programs/), Python %-format templates: %(name)s is filled
# in below, %% is a literal %.
_DISCOVER = read_program("ina3221_discover.sh")
_SAMPLE = read_program("ina3221_sampler.sh")


class Ina3221Meter(DeviceMeter):
    kind = "ina3221"

    def __init__(self, spec: str, rail: str | None = None, *, root: str = "/sys",
                 runner: CommandRunner | None = None, rate_hz: float = 10.0,
                 timeout_s: float = 2.0, accuracy: Accuracy = DEFAULT_ACCURACY) -> None:
        super().__init__(spec, runner=runner, rate_hz=rate_hz, timeout_s=timeout_s,
                         accuracy=accuracy)
        self.requested_rail = rail
        self.root = root
        self.rail = ""
        # label → (bus voltage file in mV, current file in mA), from one interface
        self.rails: dict[str, tuple[str, str]] = {}
        self.interface = ""  # "hwmon" or "ina3221x" (IIO), whichever discovery found

    def _open(self) -> None:
        lines = run_script(self.runner, _DISCOVER % {"root": quote(self.root)}, self.spec,
                           max(self.timeout_s, 10.0))
        found: dict[str, dict[str, tuple[str, str]]] = {"hwmon": {}, "ina3221x": {}}
        iio = False
        for line in lines:
            tag, _, rest = line.partition(" ")
            if tag == "H":
                self.host = rest.strip()
            elif tag in ("R", "I"):
                # Tab-separated: the root (a test's tree) may contain spaces.
                volts, amps, label = rest.split("\t", 2)
                found["hwmon" if tag == "R" else "ina3221x"].setdefault(label.strip(),
                                                                       (volts, amps))
            elif tag == "X":
                iio = True
        # hwmon first: a kernel with both would have the mainline driver's names right.
        self.interface = "hwmon" if found["hwmon"] else "ina3221x"
        self.rails = found[self.interface]
        if not self.rails:
            why = ("the ina3221x IIO driver is loaded but lists no rail_name_N under "
                   f"{self.root}/bus/i2c/drivers/ina3221x/*/iio:device*" if iio else
                   "is this a Jetson? no hwmon device named ina3221 (with rail labels) under "
                   f"{self.root}/class/hwmon and no ina3221x IIO device under "
                   f"{self.root}/bus/i2c/drivers/ina3221x")
            raise MeterNotFoundError(f"{self.spec}: no INA3221 rails found on "
                                     f"{self.host or 'the device'}; {why}")
        wanted = [self.requested_rail] if self.requested_rail else list(DEFAULT_RAILS)
        for rail in wanted:
            if rail in self.rails:
                self.rail = rail
                break
        else:
            asked = (f"rail {self.requested_rail!r} does not exist" if self.requested_rail
                     else f"none of the default rails {', '.join(DEFAULT_RAILS)} exists")
            raise MeterNotFoundError(f"{self.spec}: {asked}; the INA3221 rails are "
                                     f"{', '.join(sorted(self.rails))} — use ina3221:RAIL")
        self.identity = f"{self.host} {self.rail}".strip()

    def _sampling_script(self) -> str:
        volts, amps = self.rails[self.rail]
        return _SAMPLE % {"volts": quote(volts), "amps": quote(amps),
                          "max": self.max_samples, "now": NOW_NS, "period": self.period_s}

    def _parse(self, line: str, received_ns: int) -> None:
        fields = line.split()
        if len(fields) != 5 or fields[0] != "S":
            self.skipped += 1
            return
        try:
            volts, amps = int(fields[3]) / 1000.0, int(fields[4]) / 1000.0
        except ValueError:
            self.skipped += 1
            return
        t0, t1 = parse_device_ns(fields[1]), parse_device_ns(fields[2])
        device_ns = (t0 + t1) // 2 if t0 is not None and t1 is not None else None
        self._emit(received_ns, volts, amps, volts * amps, device_ns=device_ns)
