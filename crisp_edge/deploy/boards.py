"""Board profiles: what crisp-edge knows about a device it builds for, deploys to and measures.

A profile is a flat TOML file ``boards/NAME.toml`` (fields and facts: ``boards/README.md``).
Built-in profiles are the source tree's ``boards/``, shipped in the wheel as package data
(:mod:`crisp_edge.deploy.sources`); a user adds or overrides one
by putting ``NAME.toml`` in ``~/.config/crisp-edge/boards/`` or a directory listed in
``$CRISP_BOARDS_PATH``, or by passing a file path wherever a board name is accepted.
Every profile is validated on load, and an error names the file and the field.

>>> board = load_board("rpi4")                              # doctest: +SKIP
>>> board.cpu, board.target_flags, board.qemu_cpu           # doctest: +SKIP
('Cortex-A72', ('-mtune=cortex-a72',), 'cortex-a72')
"""

from __future__ import annotations

import os
import platform
import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from crisp_edge.deploy.sources import builtin_boards_dir
from crisp_edge.errors import BoardProfileError

ARCHES = ("aarch64", "x86_64")
ISA_FEATURES = {"aarch64": ("neon", "dotprod", "fp16", "i8mm", "sve"),
                "x86_64": ("avx2", "fma", "avx512")}
# ina3221-hwmon: the mainline hwmon driver (JetPack 5/6); ina3221-iio: NVIDIA's ina3221x IIO
# driver (JetPack 4: Jetson Nano, TX1/TX2). Both are read by the same meter (crisp_edge.measure.meters).
POWER_METHODS = ("external-meter", "ina3221-hwmon", "ina3221-iio", "vcgencmd-pmic", "none")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class BoardProfile:
    """One board. ``memory_mb`` lists the variants sold; ``qemu_cpu`` is the CPU model under
    which this machine's qemu runs the board's binaries (None: no emulation, e.g. x86-64)."""

    name: str
    description: str
    soc: str
    arch: str
    cpu: str
    cores: int
    isa_features: tuple[str, ...]
    toolchain_triple: str
    target_flags: tuple[str, ...]
    default_threads: int
    power_method: str
    clock_mhz: int | None = None
    fp32_peak_gflops: float | None = None
    memory_mb: tuple[int, ...] = ()
    memory_type: str | None = None
    qemu_cpu: str | None = None
    source: str = ""  # the file it was loaded from (not a TOML field)

    def to_dict(self) -> dict[str, Any]:
        """The TOML fields as a JSON-able dict (``source`` left out)."""
        d = asdict(self)
        d.pop("source")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def to_toml(self) -> str:
        """This profile as TOML text (what a bundle carries as ``board.toml``)."""
        lines = [f"{key} = {_toml_value(value)}" for key, value in self.to_dict().items()
                 if value is not None]
        return "\n".join(lines) + "\n"

    def thread_counts(self, online: int | None = None) -> list[int]:
        """Powers of two up to the core count, plus the core count: 1,2,4 or 1,2,4,6.
        ``online``: the cores the device really has online; more threads than those only
        time-slice, so the list stops there (never above the profile's core count)."""
        cores = min(self.cores, online) if online and online > 0 else self.cores
        counts = [1 << i for i in range(8) if 1 << i < cores] + [cores]
        return sorted(set(counts))


_MTUNE = re.compile(r"-mtune=[A-Za-z0-9][A-Za-z0-9._+-]*")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


# field -> (python types accepted, required)
_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "name": ((str,), True), "description": ((str,), True), "soc": ((str,), True),
    "arch": ((str,), True), "cpu": ((str,), True), "cores": ((int,), True),
    "isa_features": ((list,), True), "toolchain_triple": ((str,), True),
    "target_flags": ((list,), True), "default_threads": ((int,), True),
    "power_method": ((str,), True), "clock_mhz": ((int,), False),
    "fp32_peak_gflops": ((int, float), False), "memory_mb": ((list,), False),
    "memory_type": ((str,), False), "qemu_cpu": ((str,), False),
}


def parse_board(data: dict[str, Any], source: str, expected_name: str | None = None
                ) -> BoardProfile:
    """Validate the fields of a parsed profile; raises BoardProfileError naming the field."""

    def bad(field: str, why: str) -> BoardProfileError:
        return BoardProfileError(f"board profile {source}: field '{field}': {why}")

    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise bad(unknown[0], "unknown field (known: " + ", ".join(_FIELDS) + ")")
    for field, (types, required) in _FIELDS.items():
        if field not in data:
            if required:
                raise bad(field, "missing (see boards/README.md)")
            continue
        value = data[field]
        if not isinstance(value, types) or isinstance(value, bool):
            names = " or ".join({list: "list", str: "string", int: "integer",
                                 float: "number"}[t] for t in types)
            raise bad(field, f"must be of type {names}, got {value!r}")
    name = data["name"]
    if not _NAME.match(name):
        raise bad("name", f"{name!r} must be lower-case letters, digits, '.', '_' or '-'")
    if expected_name is not None and name != expected_name:
        raise bad("name", f"{name!r} must match the file name ({expected_name}.toml)")
    arch = data["arch"]
    if arch not in ARCHES:
        raise bad("arch", f"{arch!r} is not one of {', '.join(ARCHES)}")
    if data["cores"] < 1 or data["cores"] > 256:
        raise bad("cores", f"{data['cores']} is not 1..256")
    if not 1 <= data["default_threads"] <= data["cores"]:
        raise bad("default_threads", f"{data['default_threads']} is not 1..cores "
                                     f"({data['cores']})")
    for feature in data["isa_features"]:
        if feature not in ISA_FEATURES[arch]:
            raise bad("isa_features", f"{feature!r} is not an {arch} feature (known: "
                                      + ", ".join(ISA_FEATURES[arch]) + ")")
    if not data["toolchain_triple"].startswith(arch + "-"):
        raise bad("toolchain_triple", f"{data['toolchain_triple']!r} does not start with "
                                      f"the arch '{arch}-'")
    for flag in data["target_flags"]:
        # The library is one binary per architecture that picks NEON-dotprod/fp16 or
        # AVX2/AVX-512 kernels at run time (docs/pruning.md#row-shared-nm); a board may tune the baseline
        # code, never raise the ISA the whole library needs (-mcpu/-march would, and
        # would clash with the per-kernel -march flags).
        # The whole item is one flag: "-mtune=x -march=armv9-a -fplugin=evil.so" would
        # otherwise pass a prefix check and reach CMAKE_C_FLAGS as three flags.
        if not isinstance(flag, str) or not _MTUNE.fullmatch(flag) or "native" in flag:
            raise bad("target_flags", f"{flag!r}: only -mtune=CPU is allowed (not native, "
                                      "-mcpu or -march: kernels select their ISA at run time)")
    if data["power_method"] not in POWER_METHODS:
        raise bad("power_method", f"{data['power_method']!r} is not one of "
                                  + ", ".join(POWER_METHODS))
    for size in data.get("memory_mb", []):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise bad("memory_mb", f"{size!r} is not a positive whole number of MB")
    qemu_cpu = data.get("qemu_cpu")
    if qemu_cpu is not None and not re.match(r"^[a-z0-9][a-z0-9._-]*$", qemu_cpu):
        raise bad("qemu_cpu", f"{qemu_cpu!r} is not a qemu CPU model name (qemu-{arch} -cpu help)")
    if data.get("clock_mhz") is not None and data["clock_mhz"] < 1:
        raise bad("clock_mhz", f"{data['clock_mhz']} is not positive")
    return BoardProfile(
        name=name, description=data["description"], soc=data["soc"], arch=arch,
        cpu=data["cpu"], cores=data["cores"], isa_features=tuple(data["isa_features"]),
        toolchain_triple=data["toolchain_triple"], target_flags=tuple(data["target_flags"]),
        default_threads=data["default_threads"], power_method=data["power_method"],
        clock_mhz=data.get("clock_mhz"), fp32_peak_gflops=data.get("fp32_peak_gflops"),
        memory_mb=tuple(data.get("memory_mb", ())), memory_type=data.get("memory_type"),
        qemu_cpu=qemu_cpu, source=source)


def read_board_file(path: str | os.PathLike[str]) -> BoardProfile:
    """Load and validate one profile file; its ``name`` must equal the file's stem."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise BoardProfileError(f"board profile {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise BoardProfileError(f"board profile {path} is not valid TOML: {e}") from None
    return parse_board(data, str(path), expected_name=path.stem)


def search_dirs() -> list[Path]:
    """Where profiles are looked up, first match wins: ``$CRISP_BOARDS_PATH`` entries, the
    user's ``$XDG_CONFIG_HOME/crisp-edge/boards`` (``~/.config/...``), the built-in ones."""
    dirs = [Path(p) for p in os.environ.get("CRISP_BOARDS_PATH", "").split(os.pathsep) if p]
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    builtin = builtin_boards_dir()
    return dirs + [config / "crisp-edge" / "boards"] + ([builtin] if builtin else [])


def load_board(name_or_path: str) -> BoardProfile:
    """A profile by name (searched in :func:`search_dirs`) or by the path of a ``.toml`` file."""
    if name_or_path.endswith(".toml") or os.sep in name_or_path:
        return read_board_file(name_or_path)
    for directory in search_dirs():
        candidate = directory / f"{name_or_path}.toml"
        if candidate.is_file():
            return read_board_file(candidate)
    known = ", ".join(sorted(list_boards()[0])) or "none"
    raise BoardProfileError(f"unknown board {name_or_path!r} (known: {known}); add "
                            f"~/.config/crisp-edge/boards/{name_or_path}.toml or pass a "
                            "profile file path (fields: boards/README.md)")


def list_boards() -> tuple[dict[str, BoardProfile], dict[str, str]]:
    """All profiles found, by name (a user's file shadows a built-in one of the same name),
    and the files that failed validation with their error message."""
    boards: dict[str, BoardProfile] = {}
    errors: dict[str, str] = {}
    for directory in search_dirs():
        for path in sorted(directory.glob("*.toml")) if directory.is_dir() else []:
            if path.stem in boards:
                continue
            try:
                boards[path.stem] = read_board_file(path)
            except BoardProfileError as e:
                errors[str(path)] = str(e)
    return boards, errors


def host_arch() -> str:
    """This machine's architecture in profile terms (``aarch64`` or ``x86_64``)."""
    machine = platform.machine().lower()
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(machine, machine)
