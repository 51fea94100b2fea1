"""The committed runtime fixtures (runtime/tests/data) still match what make_fixtures.py and
the writer produce: same graph, same weights, same inputs and expected outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import make_fixtures
from conftest import assert_close
from crisp_edge import format as fmt
from ir_reference import run_graph

COMMITTED = make_fixtures.DEFAULT_OUT


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fixtures")
    make_fixtures.main(["--out", str(out)])
    return out


def test_fixture_set_is_complete(regenerated: Path) -> None:
    names = sorted(p.name for p in regenerated.iterdir())
    committed = sorted(p.name for p in COMMITTED.iterdir() if p.name.split(".")[0]
                       in make_fixtures.FIXTURES)
    assert committed == names, "run `python tests/make_fixtures.py` and commit the result"


def test_fixtures_cover_every_op_kind_and_stay_small() -> None:
    kinds: set[int] = set()
    for name in make_fixtures.FIXTURES:
        path = COMMITTED / f"{name}.crisp"
        assert path.stat().st_size < 50_000
        kinds |= {op.kind for op in fmt.read_model(path).graph.ops}
    assert kinds == set(fmt.OP_NAMES), f"missing: {set(fmt.OP_NAMES) - kinds}"


@pytest.mark.parametrize("name", list(make_fixtures.FIXTURES))
def test_committed_fixture_matches_regenerated(regenerated: Path, name: str) -> None:
    old, new = (fmt.read_model(d / f"{name}.crisp") for d in (COMMITTED, regenerated))
    assert [v.shape for v in old.graph.values] == [v.shape for v in new.graph.values]
    assert old.graph.ops == new.graph.ops
    assert (old.graph.input_value, old.graph.output_value) == \
        (new.graph.input_value, new.graph.output_value)
    assert len(old.graph.tensors) == len(new.graph.tensors)
    for a, b in zip(old.graph.tensors, new.graph.tensors):
        assert a.dims == b.dims and a.offset == b.offset
        np.testing.assert_allclose(a.data, b.data, rtol=1e-6, atol=1e-7)
    assert old.labels == new.labels
    for suffix in ("input", "expected"):
        a, b = (np.load(d / f"{name}.{suffix}.npy") for d in (COMMITTED, regenerated))
        assert a.dtype == np.float32 and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    x, expected = (np.load(COMMITTED / f"{name}.{s}.npy") for s in ("input", "expected"))
    assert_close(run_graph(old.graph, x), expected, name)
