"""Build the runtime for a board: static ``crisp-run``, ``crisp-bench`` and ``crisp-personalize``
and ``libcrisp.so`` (+ its header), cross-compiled when the board is another architecture.

Two toolchains (docs/deploy.md, "Toolchains"):

* ``gcc``: the system's GCC: ``<toolchain_triple>-gcc`` (Debian's ``gcc-aarch64-linux-gnu``)
  for another architecture, the host's ``cc`` for this one; static glibc tools.
* ``zig``: Zig's C compiler from the ``ziglang`` PyPI package (``pip install
  'crisp-edge[deploy]'``): no system toolchain and no root; static musl tools, and
  ``libcrisp.so`` against glibc 2.17 so any glibc board's Python can load it.

The default is ``gcc`` when its compiler is installed, else ``zig``.

>>> build = build_runtime(load_board("rpi4"), toolchain="zig")   # doctest: +SKIP
>>> build.toolchain, build.crisp_run.name                        # doctest: +SKIP
('zig', 'crisp-run')
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from crisp_edge.deploy.boards import BoardProfile, host_arch
from crisp_edge.deploy.sources import checkout_dir, runtime_source_dir
from crisp_edge.errors import DeployError

Log = Callable[[str], None]

TOOLCHAINS = ("gcc", "zig")
TOOL_TARGETS = ("crisp-run", "crisp-bench", "crisp-personalize")
BOARD_TARGETS = ("crisp", *TOOL_TARGETS)
# The oldest glibc of the boards' systems we support (and aarch64's first): the zig-built
# libcrisp.so loads on any glibc from this one on.
ZIG_GLIBC = "2.17"
ZIG_INSTALL_HINT = "pip install 'crisp-edge[deploy]' (or pip install ziglang)"


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class BoardBuild:
    """The runtime built for one board: static tools and the shared library (+ its header).
    ``info`` is what a bundle's manifest records under ``build``."""

    board: str
    build_dir: Path
    crisp_run: Path
    crisp_bench: Path
    libcrisp: Path
    header: Path
    crisp_personalize: Path
    toolchain: str = "gcc"
    info: dict[str, Any] = field(default_factory=dict)


def _cross(board: BoardProfile) -> bool:
    # Only a Linux host builds a board's Linux binaries with its own compiler.
    return board.arch != host_arch() or not sys.platform.startswith("linux")


def gcc_compiler(board: BoardProfile) -> str:
    """The compiler the ``gcc`` toolchain uses for ``board``."""
    return f"{board.toolchain_triple}-gcc" if _cross(board) else "cc"


def zig_available() -> bool:
    return importlib.util.find_spec("ziglang") is not None


def pick_toolchain(board: BoardProfile, requested: str | None = None) -> str:
    """``requested`` checked (gcc or zig), or the default: gcc when its compiler is installed,
    else zig. Raises DeployError saying what to install."""
    if requested is not None and requested not in TOOLCHAINS:
        raise DeployError(f"unknown toolchain {requested!r}: use one of {', '.join(TOOLCHAINS)}")
    gcc = gcc_compiler(board)
    if requested is None:
        requested = "gcc" if shutil.which(gcc) or not zig_available() else "zig"
    if requested == "gcc" and shutil.which(gcc) is None:
        apt = ("apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
               if board.arch == "aarch64" else "apt-get install gcc")
        raise DeployError(f"{gcc} is not installed (needed to build for {board.name} with gcc); "
                          f"on Debian/Ubuntu: {apt}; or build with Zig instead: "
                          f"{ZIG_INSTALL_HINT}, then --toolchain zig")
    if requested == "zig" and not zig_available():
        raise DeployError(f"the zig toolchain needs the ziglang package in this Python "
                          f"({sys.executable}): {ZIG_INSTALL_HINT}")
    return requested


def default_build_root() -> Path:
    """Where board builds are kept: the checkout's ``build/boards``, or for an installed
    package ``$XDG_CACHE_HOME/crisp-edge/boards`` (``~/.cache/...``)."""
    root = checkout_dir()
    if root is not None:
        return root / "build" / "boards"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "crisp-edge" / "boards"


def _common_args(source: Path, build_dir: Path) -> list[str]:
    return ["cmake", "-S", str(source), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
            "-DCRISP_BUILD_TESTS=OFF", "-DCRISP_BUILD_TOOLS=ON", "-DCRISP_STATIC_TOOLS=ON"]


def _gcc_args(board: BoardProfile, source: Path, build_dir: Path) -> list[str]:
    args = _common_args(source, build_dir) + ["-DCMAKE_C_FLAGS=" + " ".join(board.target_flags)]
    if _cross(board):
        toolchain = source / "cmake" / "toolchains" / f"{board.toolchain_triple}.cmake"
        if not toolchain.is_file():
            raise DeployError(f"cannot cross-compile for {board.arch} ({board.name}) with gcc on "
                              f"this {host_arch()} machine: there is no {toolchain}; "
                              "try --toolchain zig")
        args += [f"-DCMAKE_TOOLCHAIN_FILE={toolchain}",
                 f"-DCRISP_CROSS_TRIPLE={board.toolchain_triple}"]
    return args


def _zig_args(source: Path, build_dir: Path, target: str) -> list[str]:
    # No board -mtune: zig reads it as -mcpu and would raise the ISA (cmake/toolchains/zig.cmake).
    return _common_args(source, build_dir) + [
        f"-DCMAKE_TOOLCHAIN_FILE={source / 'cmake' / 'toolchains' / 'zig.cmake'}",
        f"-DCRISP_ZIG_TARGET={target}", f"-DCRISP_ZIG_PYTHON={sys.executable}"]


def _run_build_step(argv: list[str], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        raise DeployError(f"{what} took longer than 30 minutes: {' '.join(argv)}") from None
    except FileNotFoundError:
        raise DeployError(f"{argv[0]} is not installed (needed for {what})") from None
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise DeployError(f"{what} failed ({' '.join(argv)}):\n{tail}")


def _configure_and_build(args: list[str], build_dir: Path, targets: tuple[str, ...], jobs: int,
                         what: str, log: Log) -> None:
    """Configure ``build_dir`` when its arguments changed since the last time, then build
    ``targets`` incrementally."""
    # The targets are part of the stamp: a tree configured before a target existed has no
    # rule for it (make re-runs cmake on a CMakeLists change only for targets it knows). So is
    # the toolchain file's text: cmake reads it at the first configure only.
    toolchain = [Path(a.partition("=")[2]).read_text() for a in args
                 if a.startswith("-DCMAKE_TOOLCHAIN_FILE=")]
    stamp_text = "\n".join([*args, "targets: " + " ".join(targets), *toolchain])
    stamp = build_dir / "crisp-configure-args.txt"
    if not (build_dir / "CMakeCache.txt").is_file() or not stamp.is_file() \
            or stamp.read_text() != stamp_text:
        log(f"configuring {what} in {build_dir}")
        # A fresh cache: cmake keeps a compiler and its *_INIT flags from the first configure.
        (build_dir / "CMakeCache.txt").unlink(missing_ok=True)
        build_dir.mkdir(parents=True, exist_ok=True)
        _run_build_step(args, f"configuring {what}")
        stamp.write_text(stamp_text)
    log(f"building {what}")
    _run_build_step(["cmake", "--build", str(build_dir), "-j", str(jobs), "--target", *targets],
                    f"building {what}")


def build_runtime(board: BoardProfile, *, toolchain: str | None = None,
                  source: Path | None = None, build_dir: Path | None = None, jobs: int = 2,
                  log: Log = _quiet) -> BoardBuild:
    """Build libcrisp, static crisp-run, crisp-bench and crisp-personalize for ``board`` with
    ``toolchain`` (see :func:`pick_toolchain`) from ``source`` (default: the runtime sources
    this package carries, :mod:`crisp_edge.deploy.sources`) in ``build_dir`` (default:
    ``<build root>/<board>`` for gcc, ``<board>@zig`` for zig, :func:`default_build_root`).

    The build tree is kept: configure runs again only when its arguments change, and the
    build is incremental, so unchanged sources cost one up-to-date check."""
    toolchain = pick_toolchain(board, toolchain)
    source = source or runtime_source_dir()
    info: dict[str, Any] = {"toolchain": toolchain, "target_flags": list(board.target_flags),
                            "static_tools": True}
    if toolchain == "gcc":
        build_dir = build_dir or default_build_root() / board.name
        _configure_and_build(_gcc_args(board, source, build_dir), build_dir, BOARD_TARGETS, jobs,
                             f"the runtime for {board.name} ({board.arch}, gcc, "
                             f"{' '.join(board.target_flags)})", log)
        info["toolchain_triple"] = board.toolchain_triple
        tools = library = build_dir / "runtime"
    else:
        build_dir = build_dir or default_build_root() / f"{board.name}@zig"
        tools_target, library_target = f"{board.arch}-linux-musl", \
            f"{board.arch}-linux-gnu.{ZIG_GLIBC}"
        # Two trees: one compiler per CMake tree, and the static tools want musl (glibc cannot
        # be linked statically) while the library must load into the board's glibc Python.
        for sub, target, targets in (("tools", tools_target, TOOL_TARGETS),
                                     ("library", library_target, ("crisp",))):
            _configure_and_build(_zig_args(source, build_dir / sub, target), build_dir / sub,
                                 targets, jobs, f"the runtime's {sub} for {board.name} (zig, "
                                 f"{target})", log)
        info.update(zig_version=importlib.metadata.version("ziglang"),
                    tools_target=tools_target, library_target=library_target,
                    target_flags=[])
        tools, library = build_dir / "tools" / "runtime", build_dir / "library" / "runtime"
    return BoardBuild(board.name, build_dir, tools / "crisp-run", tools / "crisp-bench",
                      (library / "libcrisp.so").resolve(), library / "crisp.h",
                      tools / "crisp-personalize", toolchain, info)
