"""Jetson power rails through the INA3221 hwmon driver, read on the device.

The Linux ``ina3221`` hwmon driver exposes, per channel N (1…3), ``inN_label`` (the rail name
from the device tree: ``VDD_IN``, ``VDD_CPU_GPU_CV``, ``VDD_SOC`` on an Orin Nano), ``inN_input``
(bus voltage, mV) and ``currN_input`` (current, mA); power is V·I. ``VDD_IN`` is the module's
whole input and the default rail; the others are parts of it, so rails are never summed.
``ina3221:RAIL`` picks another one. Older L4T (JetPack 4, e.g. Jetson Nano) uses the IIO driver
``ina3221x`` instead, which this driver does not read; the error says so.

Discovery and sampling are POSIX ``sh`` scripts run through the command runner (see
``crisp_edge.meters.device``), under a sysfs root (``/sys`` on a board, a fake tree in tests).
"""

from __future__ import annotations

from crisp_edge.meters.base import Accuracy
from crisp_edge.meters.device import (NOW_NS, CommandRunner, DeviceMeter, parse_device_ns,
                                      quote, run_script)
from crisp_edge.meters.errors import MeterNotFoundError

DEFAULT_ACCURACY = Accuracy(0.01, "assumed 1 %: INA3221 gain error ≤ 0.25 % + shunt tolerance")
DEFAULT_RAILS = ("VDD_IN", "POM_5V_IN")  # whole-module input on Orin / Xavier-era boards

_DISCOVER = r"""
root=%(root)s
printf 'H %%s\n' "$(uname -n)"
for d in "$root"/class/hwmon/hwmon*; do
  [ -r "$d/name" ] || continue
  read -r name < "$d/name" || continue
  [ "$name" = ina3221 ] || continue
  for l in "$d"/in*_label; do
    [ -r "$l" ] || continue
    read -r label < "$l" || continue
    n=${l##*/in}; n=${n%%_label}
    printf 'R %%s %%s %%s\n' "$n" "$d" "$label"
  done
done
[ -d "$root/bus/i2c/drivers/ina3221x" ] && echo 'X ina3221x'
exit 0
"""

_SAMPLE = r"""
d=%(dir)s; n=%(channel)s; i=0
while [ "$i" -lt %(max)d ]; do
  t0=%(now)s
  read -r v < "$d/in${n}_input" || { echo "!cannot read $d/in${n}_input"; exit 1; }
  read -r c < "$d/curr${n}_input" || { echo "!cannot read $d/curr${n}_input"; exit 1; }
  t1=%(now)s
  echo "S $t0 $t1 $v $c" || exit 0
  i=$((i + 1))
  sleep %(period)s
done
"""


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
        self.rails: dict[str, tuple[str, str]] = {}  # label → (hwmon dir, channel)

    def _open(self) -> None:
        lines = run_script(self.runner, _DISCOVER % {"root": quote(self.root)}, self.spec,
                           max(self.timeout_s, 10.0))
        iio = False
        for line in lines:
            tag, _, rest = line.partition(" ")
            if tag == "H":
                self.host = rest.strip()
            elif tag == "R":
                channel, directory, label = rest.split(" ", 2)
                self.rails.setdefault(label.strip(), (directory, channel))
            elif tag == "X":
                iio = True
        if not self.rails:
            why = ("this board uses the older ina3221x IIO driver (JetPack 4), which crisp-edge "
                   "does not read yet; use an external meter" if iio else
                   "is this a Jetson? no hwmon device named ina3221 (with rail labels) under "
                   f"{self.root}/class/hwmon")
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
        directory, channel = self.rails[self.rail]
        return _SAMPLE % {"dir": quote(directory), "channel": quote(channel),
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
