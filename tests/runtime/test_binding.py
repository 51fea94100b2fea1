"""The cffi binding: library lookup, version check, handles, input conversion, info."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import crisp_edge
from crisp_edge import errors
from crisp_edge import runtime
from crisp_edge.packing.pack import pack


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 5),
                          nn.Softmax(dim=1))
    path = tmp_path_factory.mktemp("binding") / "m.crisp"
    pack(model, torch.randn(2, 2, 6, 6), path, labels=[(i * 10, f"c{i}") for i in range(5)],
         provenance={"note": "binding test"})
    return path


def test_library_version_mismatch_is_refused(monkeypatch, runtime_lib, model_path) -> None:
    monkeypatch.setattr(crisp_edge.version, "__version__", "9.9.9")
    monkeypatch.setattr(runtime, "_binding", None)
    with pytest.raises(errors.LibraryVersionError) as e:
        crisp_edge.load(model_path)
    msg = str(e.value)
    assert "version 0.1.0" in msg and "package is 9.9.9" in msg and "reinstall" in msg
    assert "make" in msg and "pip install ." in msg


def test_missing_library_is_explained(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CRISP_LIBRARY", str(tmp_path / "libcrisp.so"))
    with pytest.raises(errors.LibraryNotFoundError, match="CRISP_LIBRARY"):
        runtime.open_library()


def test_cdef_strips_everything_cffi_cannot_parse() -> None:
    header = (Path(__file__).resolve().parents[2] / "runtime" / "include" / "crisp.h")
    cdef = runtime.cdef_from_header(header.read_text())
    assert "CRISP_API" not in cdef and "#" not in cdef and "/*" not in cdef
    assert 'extern "C"' not in cdef and "crisp_session_run" in cdef
    import cffi

    cffi.FFI().cdef(cdef)


def test_info_and_labels(model_path: Path, runtime_lib) -> None:
    with crisp_edge.load(model_path) as m:
        info = m.info()
    assert info["format_version"] == "1.1"
    assert info["input_shape"] == (2, 6, 6) and info["output_shape"] == (5,)
    assert info["ops"] == 4 and info["tensors"] == 4 and info["values"] == 5
    assert info["labels"] == [(i * 10, f"c{i}") for i in range(5)]
    assert info["file_bytes"] == model_path.stat().st_size
    assert info["weight_bytes"] > 0 and info["macs"] == 3 * 16 * 18 + 5 * 48
    assert info["provenance"]["note"] == "binding test"
    assert info["provenance"]["crisp_edge_version"] == crisp_edge.__version__


def test_run_accepts_numpy_and_torch(model_path: Path, runtime_lib) -> None:
    x = np.random.default_rng(1).standard_normal((3, 2, 6, 6))
    with crisp_edge.load(model_path) as m:
        a = m.run(x)  # float64: converted
        b = m.run(torch.from_numpy(x).float().requires_grad_())
        c = m.run(np.asfortranarray(x.astype(np.float32)))  # non-contiguous: copied
        single = m.run(x[1:2].astype(np.float32))
    assert a.dtype == np.float32 and a.shape == (3, 5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(single[0], a[1])
    np.testing.assert_allclose(a.sum(1), 1, rtol=1e-5)


def test_load_buffer_and_lifetime(model_path: Path, runtime_lib) -> None:
    data = bytearray(model_path.read_bytes())
    m = runtime.load_buffer(data)
    data[:] = bytes(len(data))  # the runtime copied the bytes
    x = np.ones((1, 2, 6, 6), np.float32)
    with crisp_edge.load(model_path) as ref:
        np.testing.assert_array_equal(m.run(x), ref.run(x))
    m.close()
    m.close()  # idempotent
    assert "closed" in repr(m)
    with pytest.raises(errors.ArgumentError, match="closed"):
        m.info()
    for _ in range(50):  # handles are freed by the finalizer without close()
        crisp_edge.load(model_path).run(x)
    gc.collect()


def test_error_for_unknown_status() -> None:
    err = errors.error_for_status(42, "odd")
    assert type(err) is errors.CrispError and err.status == 42 and "odd" in str(err)
    assert isinstance(errors.error_for_status(7, "x"), errors.ShapeError)
    assert isinstance(errors.error_for_status(8, "x"), MemoryError)


def test_reference_kernel_flag_matches_header_and_agrees():
    """The binding's copy of CRISP_SESSION_REFERENCE_KERNELS is the header's, and a session on
    the reference kernels computes what the optimised one does (to rounding)."""
    import re

    from crisp_edge import runtime
    header = (Path(runtime.library_path()).parent / "crisp.h").read_text()
    value = re.search(r"#define CRISP_SESSION_REFERENCE_KERNELS (0x[0-9a-fA-F]+)u", header)
    assert value and int(value.group(1), 16) == runtime.SESSION_REFERENCE_KERNELS
    assert runtime.kernel_isa() in {"scalar", "avx2_fma", "avx512f", "neon"}
    path = Path(__file__).resolve().parents[2] / "runtime" / "tests" / "data" / "builder_cnn.crisp"
    x = np.random.default_rng(0).standard_normal((2, *runtime.load(path).input_shape))
    fast = runtime.load(path, threads=2).run(x)
    ref = runtime.load(path, threads=2, reference=True).run(x)
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("raw, why", [
    ("{bad", "JSONDecodeError"), ("[" * 100_000 + "]" * 100_000, "RecursionError"),
    ('{"n": ' + "1" * 5000 + "}", "ValueError"), ("[1, 2]", "a JSON list, expected an object")])
def test_corrupt_provenance_is_a_format_error_naming_the_section(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_path: Path, raw: str,
        why: str) -> None:
    """Finding 6: the C loader only checks PROV is UTF-8; its JSON is parsed in Python, where
    a bad one raised JSONDecodeError, RecursionError or ValueError from the parser."""
    from crisp_edge import format as fmt
    import crisp_edge.format.write as write

    mf = fmt.read_model(model_path)
    mf.provenance = {"placeholder": True}
    real = write.json.dumps
    monkeypatch.setattr(write.json, "dumps", lambda *a, **k: raw)
    data = write.encode_model(mf)
    monkeypatch.setattr(write.json, "dumps", real)
    path = tmp_path / "bad-prov.crisp"
    path.write_bytes(data)
    with pytest.raises(errors.FormatError, match=f"PROV: .*{why}"):
        fmt.read_model(path)
    with crisp_edge.load(path) as m:
        with pytest.raises(errors.FormatError, match=f"PROV: .*{why}"):
            m.info()


def test_op_kernels_show_each_hybrid_layers_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """``op_kernels`` names what runs each op; CRISP_HYBRID_FORM picks the form of hybrid
    layers (sparse runs or expanded dense), which compute the same to rounding."""
    import re

    from crisp_edge import runtime
    header = (Path(runtime.library_path()).parent / "crisp.h").read_text()
    value = re.search(r"#define CRISP_SESSION_PROFILE (0x[0-9a-fA-F]+)u", header)
    assert value and int(value.group(1), 16) == runtime.SESSION_PROFILE
    path = Path(__file__).resolve().parents[2] / "runtime" / "tests" / "data" / "sparse.crisp"
    x = np.random.default_rng(0).standard_normal((2, *runtime.load(path).input_shape))
    out = {}
    for form in ("sparse", "dense"):
        monkeypatch.setenv("CRISP_HYBRID_FORM", form)
        with runtime.load(path) as model:
            kernels = model.op_kernels()
            out[form] = model.run(x)
            assert len(kernels) == model.info()["ops"]
        if form == "sparse":
            assert "spmm" in kernels and not any("expanded" in k for k in kernels)
        else:
            assert "spmm" not in kernels and any(k.endswith("(expanded)") for k in kernels)
    np.testing.assert_allclose(out["dense"], out["sparse"], rtol=1e-5,
                               atol=1e-5 * np.abs(out["sparse"]).max())
    monkeypatch.setenv("CRISP_HYBRID_FORM", "both")
    with pytest.raises(errors.ArgumentError, match="CRISP_HYBRID_FORM is 'both'"):
        runtime.load(path)


def test_op_kernels_name_the_int8_microkernels_of_elementwise_ops() -> None:
    """int8 ADD, max pool and QUANTIZE run microkernel lists (src/dispatch.c), so the profile
    names them; the reference kernels say "reference" ("reference (filled)" for filled runs)."""
    from crisp_edge import runtime
    path = Path(__file__).resolve().parents[2] / "runtime" / "tests" / "data" / "quant.crisp"
    with runtime.load(path) as model:
        kernels = model.op_kernels()
    assert kernels[0] == "quantize" and kernels[4] == kernels[7] == "qs8_add"
    assert kernels[5] == "qs8_maxpool" and kernels[6] == "reference"  # avg pool: reference
    with runtime.load(path, reference=True) as model:  # its per-row int8 conv runs filled
        assert set(model.op_kernels()) <= {"reference", "reference (filled)"}


def test_int8_dense_linears_run_qs8_gemv_bitwise_the_reference() -> None:
    """quant.crisp's two dense int8 LINEAR layers run the qs8_gemv microkernels (batch 1, the
    session's rows split over threads), bitwise the reference kernels for any thread count."""
    from crisp_edge import runtime
    data = Path(__file__).resolve().parents[2] / "runtime" / "tests" / "data"
    x = np.load(data / "quant.input.npy")
    with runtime.load(data / "quant.crisp", reference=True) as model:
        want = model.run(x)
    for threads in (1, 2, 3):
        with runtime.load(data / "quant.crisp", threads=threads) as model:
            kernels = model.op_kernels()
            got = model.run(x)
        assert kernels.count("qs8_gemv") == 2
        np.testing.assert_array_equal(got, want)
