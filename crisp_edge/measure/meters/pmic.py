"""Raspberry Pi 5 power from its PMIC's ADC, read on the device with ``vcgencmd pmic_read_adc``.

The firmware prints one line per channel, currents and voltages of each rail::

     VDD_CORE_A current(7)=0.81963000A
     VDD_CORE_V volt(15)=0.88170000V
        EXT5V_V volt(24)=5.14963000V

Power is the sum of V·I over the rails that have both (``EXT5V_V`` and ``BATT_V`` have no
current and are left out).

**What it misses.** The PMIC measures the rails it generates from 5 V. Loads fed straight from
the 5 V input — USB devices, the fan, HATs, PoE — and the PMIC's own conversion losses are not
in the sum, so the PMIC reads lower than a meter on the USB-C input, by a margin that depends on
what is plugged in. Every result from this meter carries that caveat; for whole-board energy
use an external meter (``um25c:``, ``ina:``, ``scpi:``) on the supply.

Each reading takes the firmware a few milliseconds per channel, so expect a few readings per
second at most; the energy method's rate check reports what was achieved.
"""

from __future__ import annotations

import re

from crisp_edge.deploy.programs import read_program
from crisp_edge.errors import MeterNotFoundError, MeterProtocolError
from crisp_edge.measure.meters.base import Accuracy
from crisp_edge.measure.meters.device import (NOW_NS, CommandRunner, DeviceMeter, parse_device_ns,
                                              run_script)

DEFAULT_ACCURACY = Accuracy(0.05, "assumed 5 %: the PMIC ADC's accuracy is not published")
MISSES_5V = ("pmic: the Raspberry Pi 5 PMIC rails miss loads on the 5 V input (USB devices, "
             "fan, HATs) and conversion losses; use an external meter for whole-board energy")

# "VDD_CORE_A current(7)=0.81963000A", also the older "VDD_CORE_A=0.8196A" spelling.
_LINE = re.compile(r"^\s*(?P<rail>\S+)_(?P<unit>[AV])(?:\s+\w+\(\d+\))?\s*="
                   r"\s*(?P<value>[-+0-9.eE]+)\s*[AV]?\s*$")

# Device programs (crisp_edge/deploy/programs/). The probe is sent as it is; the sampler is a
# Python %-format template: %(name)s is filled in below, %% is a literal %.
_PROBE = read_program("pmic_probe.sh")
_SAMPLE = read_program("pmic_sampler.sh")


def parse_pmic(lines: list[str]) -> dict[str, tuple[float, float]]:
    """Rail → (volts, amps) for the rails that report both."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in lines:
        m = _LINE.match(line)
        if m:
            (amps if m["unit"] == "A" else volts)[m["rail"]] = float(m["value"])
    return {rail: (volts[rail], amps[rail]) for rail in sorted(amps.keys() & volts.keys())}


def input_volts(lines: list[str]) -> float:
    """The 5 V input voltage (EXT5V_V), NaN when the firmware does not report it."""
    for line in lines:
        m = _LINE.match(line)
        if m and m["rail"] == "EXT5V" and m["unit"] == "V":
            return float(m["value"])
    return float("nan")


class PmicMeter(DeviceMeter):
    kind = "pmic"

    def __init__(self, spec: str, *, runner: CommandRunner | None = None,
                 rate_hz: float = 4.0, timeout_s: float = 3.0,
                 accuracy: Accuracy = DEFAULT_ACCURACY) -> None:
        super().__init__(spec, runner=runner, rate_hz=rate_hz, timeout_s=timeout_s,
                         accuracy=accuracy)
        self.notes.append(MISSES_5V)
        self.rails: list[str] = []
        self._block: list[str] | None = None
        self._block_ns: tuple[int | None, int | None] = (None, None)

    def _open(self) -> None:
        lines = run_script(self.runner, _PROBE, self.spec, max(self.timeout_s, 10.0))
        if lines and lines[0].startswith("H "):
            self.host = lines.pop(0)[2:].strip()
        errors = [line[1:] for line in lines if line.startswith("!")]
        if errors:
            raise MeterNotFoundError(f"{self.spec}: {errors[0]} on {self.host or 'the device'};"
                                     " the PMIC meter needs a Raspberry Pi 5")
        rails = parse_pmic(lines)
        if not rails:
            said = next((line.strip() for line in lines if line.strip()), "nothing")
            raise MeterNotFoundError(f"{self.spec}: `vcgencmd pmic_read_adc` on "
                                     f"{self.host or 'the device'} reported no rails (it said "
                                     f"{said!r}); this needs a Raspberry Pi 5 with current "
                                     "firmware")
        self.rails = list(rails)
        self.identity = f"{self.host} Raspberry Pi 5 PMIC".strip()

    def _sampling_script(self) -> str:
        return _SAMPLE % {"max": self.max_samples, "now": NOW_NS, "period": self.period_s}

    def _parse(self, line: str, received_ns: int) -> None:
        if line.startswith("B "):
            fields = line.split()
            self._block = []
            self._block_ns = (parse_device_ns(fields[1]) if len(fields) > 1 else None,
                              parse_device_ns(fields[2]) if len(fields) > 2 else None)
        elif line == "E" and self._block is not None:
            rails = parse_pmic(self._block)
            volts = input_volts(self._block)
            self._block = None
            if not rails:
                raise MeterProtocolError(f"{self.spec}: a pmic_read_adc reading had no rails")
            watts = sum(v * a for v, a in rails.values())
            t0, t1 = self._block_ns
            device_ns = (t0 + t1) // 2 if t0 is not None and t1 is not None else None
            # A current for a sum of rails at different voltages means nothing: NaN. The
            # voltage shown is the 5 V input's.
            self._emit(received_ns, volts, float("nan"), watts, device_ns=device_ns)
        elif self._block is not None:
            self._block.append(line)
        else:
            self.skipped += 1
