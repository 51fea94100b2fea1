"""Shared helpers: the runtime library and C tools, pack-and-run, tolerances."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from crisp_edge.packing.pack import pack

REPO = Path(__file__).resolve().parent.parent
# Test files live in one folder per stage (tests/<stage>/, like crisp_edge/); the shared helpers
# (nets, prune_helpers, sshd_fixture, ...) stay here and are imported by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))
_ALLOW_MISSING = os.environ.get("CRISP_ALLOW_MISSING_TOOLS") == "1"
_HOW = ("build with `cmake -S . -B build/native && cmake --build build/native` (and "
        "`-B build/asan -DCMAKE_BUILD_TYPE=Debug -DCRISP_SANITIZE=ON` for the sanitizer build), "
        "then set {var}, or run `make test` which sets it; set CRISP_ALLOW_MISSING_TOOLS=1 to "
        "skip these tests instead")


def _missing(var: str, what: str) -> None:
    msg = f"{what} is not available: " + _HOW.format(var=var)
    if _ALLOW_MISSING:
        pytest.skip(msg)
    pytest.fail(msg, pytrace=False)


@pytest.fixture(scope="session")
def runtime_lib() -> Path:
    """The libcrisp the binding uses ($CRISP_LIBRARY or the installed one); fails if absent."""
    from crisp_edge.runtime import library_path

    path = library_path()
    if not path.is_file():
        _missing("CRISP_LIBRARY=/path/to/libcrisp.so (or `pip install -e .`)", f"libcrisp ({path})")
    return path


def _tool(var: str) -> Path:
    value = os.environ.get(var)
    if not value or not Path(value).is_file():
        _missing(f"{var}=/path/to/crisp-run", f"the crisp-run tool (${var}={value!r})")
    return Path(value)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def crisp_run() -> Path:
    """The crisp-run binary of the normal build ($CRISP_RUN)."""
    return _tool("CRISP_RUN")


@pytest.fixture(scope="session")
def crisp_run_asan() -> Path:
    """The crisp-run binary of the ASan+UBSan build ($CRISP_RUN_ASAN)."""
    return _tool("CRISP_RUN_ASAN")


def tolerance(expected: np.ndarray) -> float:
    """The acceptance tolerance: 1e-4 × max(1, max |expected|)."""
    return 1e-4 * max(1.0, float(np.abs(expected).max()))


def assert_close(got: np.ndarray, expected: np.ndarray, what: str = "") -> None:
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    err, tol = float(np.abs(got - expected).max()), tolerance(expected)
    assert err <= tol, f"{what}: max abs error {err:.3g} > tolerance {tol:.3g}"


def randomize_batch_norm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.25)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return model


def torch_reference(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(x).numpy()


@pytest.fixture
def pack_and_run(tmp_path: Path, runtime_lib: Path):
    """pack(model, x) into tmp_path, load with the runtime, run x; returns (output, report)."""
    import crisp_edge

    counter = iter(range(10**6))

    def run(model: torch.nn.Module, x: torch.Tensor, **kw):
        path = tmp_path / f"m{next(counter)}.crisp"
        report = pack(model, x, path, **kw)
        with crisp_edge.load(path) as m:
            return m.run(x), report

    return run
