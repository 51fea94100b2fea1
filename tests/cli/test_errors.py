"""Damaged files and wrong inputs give a clear, typed error through every entry point:
crisp_edge.load/run, `crisp-edge run`/`inspect`, and the crisp-run C tool (normal and
ASan+UBSan builds, which must also stay clean)."""

from __future__ import annotations

import os
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import crisp_edge
from crisp_edge import errors
from crisp_edge import format as fmt
from crisp_edge.cli import main
from crisp_edge.packing.pack import pack


def _section(data: bytes, name: str) -> tuple[int, int]:
    for s in fmt.decode_model(data).sections:
        if s.name == name:
            return s.offset, s.size
    raise KeyError(name)


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x5A
    return bytes(out)


def _future_version(data: bytes) -> bytes:
    """Version 2.0 with a correct header CRC, so the version check is what fires."""
    out = bytearray(data)
    struct.pack_into("<HH", out, 8, 2, 0)
    struct.pack_into("<I", out, 60, zlib.crc32(bytes(out[:60])))
    return bytes(out)


def _inside(name: str):
    def mutate(data: bytes) -> bytes:
        offset, size = _section(data, name)
        return _flip(data, offset + size // 2)
    return mutate


# name → (mutation, exception, text in both the Python and the C message)
DAMAGE = {
    "truncated": (lambda d: d[:-100], errors.FormatError, "truncated"),
    "header_byte": (lambda d: _flip(d, 50), errors.ChecksumError, "header: CRC32 mismatch"),
    "table_byte": (lambda d: _flip(d, 64 + 9), errors.ChecksumError,
                   "section table: CRC32 mismatch"),
    "grph_byte": (_inside("GRPH"), errors.ChecksumError, "GRPH: CRC32 mismatch"),
    "wght_byte": (_inside("WGHT"), errors.ChecksumError, "WGHT: CRC32 mismatch"),
    "wrong_magic": (lambda d: b"PK\x03\x04" + d[4:], errors.FormatError, "bad magic"),
    "future_version": (_future_version, errors.VersionError, "format version 2.0 is newer"),
}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    path = tmp_path_factory.mktemp("good") / "good.crisp"
    pack(model, torch.randn(2, 3, 8, 8), path, labels=[(1, "a"), (2, "b"), (3, "c"), (4, "d")])
    np.save(path.parent / "input.npy", np.random.default_rng(0).standard_normal(
        (2, 3, 8, 8)).astype(np.float32))
    np.save(path.parent / "wrong.npy", np.zeros((2, 3, 9, 8), np.float32))
    return path


@pytest.fixture(params=sorted(DAMAGE))
def damaged(request, good: Path, tmp_path: Path):
    mutate, exc, text = DAMAGE[request.param]
    path = tmp_path / f"{request.param}.crisp"
    path.write_bytes(mutate(good.read_bytes()))
    return path, exc, text


def test_load_raises_typed_error(damaged, runtime_lib) -> None:
    path, exc, text = damaged
    with pytest.raises(exc, match=None) as e:
        crisp_edge.load(path)
    assert type(e.value) is exc and text in str(e.value)
    assert e.value.status == exc.status
    with pytest.raises(exc):
        crisp_edge.runtime.load_buffer(path.read_bytes())


def test_python_reader_agrees(damaged) -> None:
    path, exc, text = damaged
    with pytest.raises(exc) as e:
        fmt.read_model(path)
    assert type(e.value) is exc and text in str(e.value)


def test_wrong_input_shape(good: Path, runtime_lib) -> None:
    with crisp_edge.load(good) as model:
        for bad in (np.zeros((3, 8, 8), np.float32), np.zeros((2, 3, 9, 8), np.float32),
                    torch.zeros(0, 3, 8, 8)):
            with pytest.raises(errors.ShapeError, match=r"input must have shape \(N, 3, 8, 8\)"):
                model.run(bad)
        assert model.run(torch.zeros(1, 3, 8, 8, dtype=torch.float64)).shape == (1, 4)
    with pytest.raises(errors.ArgumentError, match="closed"):
        model.run(np.zeros((1, 3, 8, 8), np.float32))


def test_missing_file(tmp_path: Path, runtime_lib) -> None:
    with pytest.raises(errors.CrispIOError) as e:
        crisp_edge.load(tmp_path / "nope.crisp")
    assert "nope.crisp" in str(e.value) and isinstance(e.value, OSError)


def _cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output + result.stderr
    return result


@pytest.mark.parametrize("command", ["run", "inspect"])
def test_cli_reports_damage(damaged, good: Path, command: str, runtime_lib) -> None:
    path, _, text = damaged
    args = [command, str(path)] + ([str(good.parent / "input.npy")] if command == "run" else [])
    result = _cli(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("crisp-edge: error: ") and text in result.stderr
    assert result.stdout == ""


def test_cli_wrong_shape(good: Path, runtime_lib) -> None:
    result = _cli("run", str(good), str(good.parent / "wrong.npy"))
    assert result.exit_code == 1
    assert "crisp-edge: error: input must have shape (N, 3, 8, 8)" in result.stderr
    assert "(2, 3, 9, 8)" in result.stderr


def _crisp_run(tool: Path, *args: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    proc = subprocess.run([str(tool), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert "ERROR: AddressSanitizer" not in proc.stderr, proc.stderr
    assert "ERROR: LeakSanitizer" not in proc.stderr, proc.stderr
    assert "runtime error:" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(params=["crisp_run", "crisp_run_asan"])
def tool(request) -> Path:
    return request.getfixturevalue(request.param)


def test_crisp_run_reports_damage(tool: Path, damaged, good: Path) -> None:
    path, _, text = damaged
    proc = _crisp_run(tool, path, good.parent / "input.npy")
    assert proc.returncode == 1, proc.stderr
    assert text in proc.stderr and proc.stdout == ""


def test_crisp_run_wrong_shape_and_happy_path(tool: Path, good: Path, runtime_lib) -> None:
    proc = _crisp_run(tool, good, good.parent / "wrong.npy")
    assert proc.returncode == 1 and "does not fit the model" in proc.stderr
    proc = _crisp_run(tool, good, good.parent / "input.npy", Path("--top-k"), Path("2"))
    assert proc.returncode == 0, proc.stderr
    cli = _cli("run", str(good), str(good.parent / "input.npy"), "--top-k", "2")
    assert cli.exit_code == 0
    # Same ranking format, same classes; scores agree to the printed precision.
    assert proc.stdout == cli.stdout


def test_every_exception_class_is_a_crisp_error_in_the_errors_module() -> None:
    """No module but crisp_edge/errors.py defines an exception class (found by its bases: a
    built-in exception or a class of errors.py), and every class there is a CrispError."""
    import ast
    import builtins

    defined = {name: obj for name, obj in vars(errors).items()
               if isinstance(obj, type) and obj.__module__ == errors.__name__}
    assert {"StopPruning", "RemoteError", "DeployError", "MeterSpecError", "BenchError",
            "PeerUnavailableError"} <= set(defined)
    for name, cls in defined.items():
        assert issubclass(cls, errors.CrispError), name
    exception_names = set(defined) | {name for name, obj in vars(builtins).items()
                                      if isinstance(obj, type) and issubclass(obj, BaseException)}
    root = Path(errors.__file__).resolve().parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "errors.py" and path.parent == root:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                         for b in node.bases}
                if bases & exception_names:
                    found.append(f"{path.relative_to(root)}: class {node.name}")
    assert found == [], "exception classes outside crisp_edge/errors.py"
