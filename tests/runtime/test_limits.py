"""Issue 14: the memory limit of a load (``max_memory_mb``, ``CRISP_MAX_MEMORY_MB``, 512 MiB by
default) through the binding: a small file whose activations would take 704 MiB is refused
with the figures, before anything is allocated, and loads when the limit is raised."""

from __future__ import annotations

import numpy as np
import pytest

import crisp_edge
from crisp_edge import errors
from crisp_edge import format as fmt
from crisp_edge import runtime


def _big_activation_model() -> bytes:
    """A 3x3 conv 3 -> 8 channels on a 4096 x 4096 image: a file of a few hundred bytes whose
    activation arena is 192 MiB (input) + 512 MiB (output)."""
    rng = np.random.default_rng(14)
    graph = fmt.Graph(
        values=[fmt.Value((3, 4096, 4096)), fmt.Value((8, 4096, 4096))],
        tensors=[fmt.Tensor(rng.standard_normal((8, 3, 3, 3)).astype(np.float32))],
        ops=[fmt.Op(fmt.OP_CONV2D, (0,), 1, 0, None, fmt.ACT_NONE,
                    (3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1))],
        input_value=0, output_value=1)
    return fmt.encode_model(fmt.ModelFile(graph))


@pytest.fixture
def big_model(tmp_path, monkeypatch):
    monkeypatch.delenv("CRISP_MAX_MEMORY_MB", raising=False)
    path = tmp_path / "big.crisp"
    path.write_bytes(_big_activation_model())
    return path


def test_default_limit_refuses_with_the_figures(big_model, runtime_lib) -> None:
    assert big_model.stat().st_size < 4096
    with pytest.raises(errors.MemoryLimitError) as e:
        crisp_edge.load(big_model)
    msg = str(e.value)
    assert e.value.status == 10 and isinstance(e.value, errors.OutOfMemoryError)
    assert "the model needs 704 MiB" in msg and "an activation arena of 704 MiB" in msg
    assert "over the 512 MiB limit" in msg
    assert "CRISP_MAX_MEMORY_MB" in msg and "max_memory_mb" in msg


def test_max_memory_mb_raises_and_lowers_the_limit(big_model, runtime_lib) -> None:
    with crisp_edge.load(big_model, max_memory_mb=1024) as m:
        assert m.info()["arena_bytes"] == 704 << 20
    data = big_model.read_bytes()
    with runtime.load_buffer(data, max_memory_mb=1024) as m:
        assert m.output_shape == (8, 4096, 4096)
    with pytest.raises(errors.MemoryLimitError, match="over the 600 MiB limit"):
        runtime.load_buffer(data, max_memory_mb=600)


def test_environment_variable_and_its_precedence(big_model, runtime_lib, monkeypatch) -> None:
    monkeypatch.setenv("CRISP_MAX_MEMORY_MB", "1024")
    with crisp_edge.load(big_model) as m:
        assert m.input_shape == (3, 4096, 4096)
    with pytest.raises(errors.MemoryLimitError, match="over the 700 MiB limit"):
        crisp_edge.load(big_model, max_memory_mb=700)  # the argument wins
    monkeypatch.setenv("CRISP_MAX_MEMORY_MB", "lots")
    with pytest.raises(errors.ArgumentError, match="CRISP_MAX_MEMORY_MB is 'lots'"):
        crisp_edge.load(big_model)


@pytest.mark.parametrize("value", [0, -1, 1 << 32, 1.5, "512", True])
def test_bad_max_memory_mb_is_an_argument_error(big_model, runtime_lib, value) -> None:
    with pytest.raises(errors.ArgumentError, match="max_memory_mb"):
        crisp_edge.load(big_model, max_memory_mb=value)


def test_small_models_run_under_a_small_limit(tmp_path, runtime_lib) -> None:
    rng = np.random.default_rng(1)
    graph = fmt.Graph(
        values=[fmt.Value((3, 8, 8)), fmt.Value((4, 8, 8))],
        tensors=[fmt.Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))],
        ops=[fmt.Op(fmt.OP_CONV2D, (0,), 1, 0, None, fmt.ACT_NONE,
                    (3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1))],
        input_value=0, output_value=1)
    path = tmp_path / "small.crisp"
    path.write_bytes(fmt.encode_model(fmt.ModelFile(graph)))
    with crisp_edge.load(path, max_memory_mb=1, threads=2) as m:
        assert m.run(np.ones((1, 3, 8, 8), np.float32)).shape == (1, 4, 8, 8)
