"""Thin cffi (ABI mode) binding of libcrisp: load a ``.crisp`` model and run it.

Needs only numpy and cffi (no torch), so it runs on a board. The library is found through the
``CRISP_LIBRARY`` environment variable (a path to ``libcrisp.so``, e.g. a sanitizer build) or
inside the installed package (``crisp_edge/_lib/libcrisp.so``, with ``crisp.h`` next to it).
Every failing C call raises the :mod:`crisp_edge.errors` class matching its status, carrying
the runtime's message.

>>> with load("model.crisp") as model:                     # doctest: +SKIP
...     scores = model.run(images)                         # (N, classes) float32
...     model.info()["labels"]
"""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import threading
import weakref
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from crisp_edge import version
from crisp_edge.format.read import parse_provenance
from crisp_edge.errors import (ArgumentError, CrispError, LibraryNotFoundError,
                               LibraryVersionError, ShapeError, error_for_status)

_lock = threading.Lock()
_binding: tuple[Any, Any] | None = None  # (ffi, lib) once loaded and version-checked


def library_path() -> Path:
    """Where libcrisp is taken from: ``$CRISP_LIBRARY`` or the package's ``_lib`` folder."""
    env = os.environ.get("CRISP_LIBRARY")
    if env:
        return Path(env)
    return Path(str(importlib.resources.files("crisp_edge") / "_lib" / "libcrisp.so"))


def _header_path(lib: Path) -> Path:
    # The header must be the one the library was built from: the install and
    # every build tree keep it beside the library. The source tree's copy is
    # the fallback for a library built elsewhere from this checkout. (Never the
    # installed package's header for a library taken from somewhere else: a
    # stale struct layout there corrupts memory instead of failing.)
    candidates = [lib.parent / "crisp.h", lib.parent / "include" / "crisp.h",
                  Path(__file__).resolve().parent.parent / "runtime" / "include" / "crisp.h"]
    for path in candidates:
        if path.is_file():
            return path
    raise LibraryNotFoundError("crisp.h not found (looked in "
                               + ", ".join(str(c) for c in candidates)
                               + "); reinstall crisp-edge (`make` or `pip install .`)")


def cdef_from_header(text: str) -> str:
    """The declarations of ``crisp.h`` as cffi accepts them: no comments, no preprocessor
    lines, no ``extern "C"`` block markers, no ``CRISP_API``."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return text.replace("CRISP_API", "")


def _expected_version() -> str:
    return str(version.__version__)  # read at call time: tests patch it


def open_library(path: str | os.PathLike[str] | None = None) -> tuple[Any, Any]:
    """dlopen libcrisp (``path`` or :func:`library_path`) and check its version against the
    package's; returns ``(ffi, lib)``. Raises LibraryNotFoundError / LibraryVersionError."""
    import cffi

    lib_path = Path(path) if path is not None else library_path()
    if not lib_path.is_file():
        raise LibraryNotFoundError(
            f"libcrisp not found at {lib_path}; build and install it with `make` or "
            "`pip install .`, or point CRISP_LIBRARY at a libcrisp.so")
    ffi = cffi.FFI()
    ffi.cdef(cdef_from_header(_header_path(lib_path).read_text()))
    try:
        lib = ffi.dlopen(str(lib_path))
    except OSError as e:
        raise LibraryNotFoundError(f"cannot load {lib_path}: {e}") from None
    version, expected = ffi.string(lib.crisp_version()).decode(), _expected_version()
    if version != expected:
        raise LibraryVersionError(
            f"libcrisp at {lib_path} is version {version} but the crisp_edge package is "
            f"{expected}; reinstall so they match (`make` or `pip install .`)")
    return ffi, lib


def _bind() -> tuple[Any, Any]:
    global _binding
    with _lock:
        if _binding is None:
            _binding = open_library()
        return _binding


def _check(status: int) -> None:
    if status != 0:
        ffi, lib = _bind()
        message = ffi.string(lib.crisp_last_error()).decode("utf-8", "replace")
        raise error_for_status(status, message)


class _Handles:
    """The C handles of a Model; freed once (session before model) by close or finalizer."""

    def __init__(self, lib: Any, model: Any) -> None:
        self.lib, self.model, self.session = lib, model, None

    def free(self) -> None:
        if self.session is not None:
            self.lib.crisp_session_free(self.session)
            self.session = None
        if self.model is not None:
            self.lib.crisp_model_free(self.model)
            self.model = None


class Model:
    """A loaded ``.crisp`` model. Create with :func:`load` or :func:`load_buffer`.

    ``run`` is serialised per Model (one activation arena); use one Model per thread for
    parallel inference. Use as a context manager or call ``close()`` to free it early."""

    def __init__(self, handle: Any, threads: int = 1, reference: bool = False) -> None:
        self.threads = threads
        self.reference = reference
        self._ffi, self._lib = _bind()
        self._handles = _Handles(self._lib, handle)
        self._finalizer = weakref.finalize(self, self._handles.free)
        self._run_lock = threading.Lock()
        self._info: dict[str, Any] | None = None

    def _model(self) -> Any:
        if self._handles.model is None:
            raise ArgumentError("the model is closed")
        return self._handles.model

    def close(self) -> None:
        """Free the C model and session (idempotent)."""
        self._finalizer()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self) -> dict[str, Any]:
        """Static facts: format version, shapes (per sample), counts, labels, bytes, MACs,
        provenance (parsed JSON, {} when absent)."""
        model = self._model()
        if self._info is None:
            ffi, lib = self._ffi, self._lib
            c = ffi.new("crisp_model_info *")
            _check(lib.crisp_model_get_info(model, c))
            labels = []
            class_id, name = ffi.new("int32_t *"), ffi.new("const char **")
            for i in range(c.label_count):
                _check(lib.crisp_model_get_label(model, i, class_id, name))
                labels.append((int(class_id[0]), ffi.string(name[0]).decode("utf-8")))
            text, length = ffi.new("const char **"), ffi.new("size_t *")
            _check(lib.crisp_model_get_provenance(model, text, length))
            prov_raw = ffi.unpack(text[0], length[0]) if length[0] else b""
            self._info = {
                "format_version": f"{c.format_major}.{c.format_minor}",
                "input_shape": tuple(c.input_dims[i] for i in range(c.input_rank)),
                "output_shape": tuple(c.output_dims[i] for i in range(c.output_rank)),
                "ops": c.op_count, "values": c.value_count, "tensors": c.tensor_count,
                "labels": labels,
                "file_bytes": c.file_bytes, "weight_bytes": c.weight_bytes,
                "arena_bytes": c.arena_bytes, "naive_bytes": c.naive_bytes, "macs": c.macs,
                "effective_macs": c.effective_macs,
                "provenance": parse_provenance(prov_raw),
            }
        return dict(self._info)

    def op_kernels(self) -> list[str]:
        """What runs each op on this CPU, as ``crisp-bench --profile`` names it: ``"gemm"``,
        ``"spmm"``, ``"gemv"``, ``"dwconv"``, ``"maxpool"``, their int8 twins ``"qs8_gemm"``,
        ``"qs8_spmm"``, ``"qs8_gemv"``, ``"qs8_spmv"`` (hybrid int8 linears), ``"spmv"`` and
        ``"nmv24"`` (hybrid float32 linears: packed runs, or the file's 2:4 encoding read in
        place), ``"qs8_dwconv"``,
        ``"qs8_add"``, ``"qs8_maxpool"``, ``"add"`` (float32 ADD), ``"add (fused)"`` (a float32 ADD
        computed inside the conv before it, runtime/README.md "Residual fusion"), ``"dwconv
        (+expand)"`` and a name ending in ``"fused into next)"`` such as ``"spmm (fused into
        next)"`` (a depthwise conv computing the 1 x 1 conv before it band by band, and that
        conv, runtime/README.md "Expand fusion"), ``"quantize"``, or
        ``"reference"``, with ``" (expanded)"`` for a hybrid layer the cost table runs dense
        from the file's encoding, ``" (dense copy)"`` for one run dense from a copy made at load
        (float32 convs the memory budget has room for; int8 linears by their byte count) and
        ``" (filled)"`` for filled runs, float32 or int8 (runtime/README.md, "Dense or sparse,
        per layer")."""
        model = self._model()
        ffi, lib = self._ffi, self._lib
        session = ffi.new("crisp_session **")
        flags = SESSION_PROFILE | (SESSION_REFERENCE_KERNELS if self.reference else 0)
        options = ffi.new("crisp_session_options *", {"threads": 1, "flags": flags})
        _check(lib.crisp_session_create_with_options(model, options, session))
        try:
            profile = ffi.new("crisp_op_profile *")
            kernels = []
            for i in range(self.info()["ops"]):
                _check(lib.crisp_session_get_op_profile(session[0], i, profile))
                kernels.append(ffi.string(profile.kernel).decode("ascii"))
            return kernels
        finally:
            lib.crisp_session_free(session[0])

    def op_forms(self, isa: str | None = None) -> list[str | None]:
        """Per op, the form the runtime's cost table gives a float32 hybrid conv (groups 1)
        or linear layer on kernel tier ``isa`` (``"avx512f"``, ``"avx2_fma"``, ``"neon"``,
        ``"scalar"``; None: this CPU's), before the memory budget moves any layer:
        ``"runs"``, ``"filled"``, ``"dense"`` (expanded from the file as it runs),
        ``"dense_stored"`` (a dense conv whose rows run at least as fast from a dense layout:
        the packer stores it dense) or ``"in_file"``; None for every other op
        (runtime/README.md, "Dense or sparse, per layer", "Stored dense"). A pure function of
        the file and the compiled cost table."""
        model = self._model()
        ffi, lib = self._ffi, self._lib
        names = {lib.CRISP_LAYER_FORM_RUNS: "runs", lib.CRISP_LAYER_FORM_FILLED: "filled",
                 lib.CRISP_LAYER_FORM_DENSE: "dense", lib.CRISP_LAYER_FORM_IN_FILE: "in_file",
                 lib.CRISP_LAYER_FORM_DENSE_STORED: "dense_stored"}
        tier = ffi.NULL if isa is None else isa.encode("ascii", "replace")
        form = ffi.new("uint32_t *")
        out: list[str | None] = []
        for i in range(self.info()["ops"]):
            _check(lib.crisp_model_get_op_form(model, i, tier, form))
            out.append(names.get(form[0]))
        return out

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-sample input shape, e.g. (3, 224, 224)."""
        return self.info()["input_shape"]

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Per-sample output shape, e.g. (10,)."""
        return self.info()["output_shape"]

    @property
    def labels(self) -> list[tuple[int, str]]:
        """(class_id, name) per output index; empty when the file has no label map."""
        return self.info()["labels"]

    def run(self, x: Any) -> np.ndarray:
        """Run a batch: ``x`` is a numpy array or torch tensor of shape (N, *input_shape);
        returns float32 (N, *output_shape). Copies ``x`` only if it is not contiguous float32."""
        x = self._batch(x)
        out_shape = self.output_shape
        out = np.empty((x.shape[0], *out_shape), dtype=np.float32)
        ffi, lib = self._ffi, self._lib
        with self._run_lock:
            _check(lib.crisp_session_run(self._session(), ffi.from_buffer("float[]", x),
                                         x.size, ffi.from_buffer("float[]", out), out.size))
        return out

    def _session(self) -> Any:
        """The C session, created on first use (call with ``_run_lock`` held)."""
        model = self._model()
        if self._handles.session is None:
            ffi, lib = self._ffi, self._lib
            session = ffi.new("crisp_session **")
            flags = SESSION_REFERENCE_KERNELS if self.reference else 0
            options = ffi.new("crisp_session_options *",
                              {"threads": self.threads, "flags": flags})
            _check(lib.crisp_session_create_with_options(model, options, session))
            self._handles.session = session[0]
        return self._handles.session

    def _batch(self, x: Any) -> np.ndarray:
        if hasattr(x, "detach") and hasattr(x, "numpy"):  # a torch tensor, without importing torch
            x = x.detach().cpu().numpy()
        x = np.ascontiguousarray(x, dtype=np.float32)
        in_shape = self.input_shape
        if x.ndim != len(in_shape) + 1 or tuple(x.shape[1:]) != in_shape or x.shape[0] < 1:
            want = ", ".join(["N", *map(str, in_shape)])
            raise ShapeError(f"input must have shape ({want}) with a batch dim N >= 1, "
                             f"got {tuple(x.shape)}")
        return x

    # --- personalisation (docs/personalize.md) ------------------------------------------

    def head(self) -> dict[str, int]:
        """The classifier head: ``op`` (index of its LINEAR op), ``feature_value`` (the value
        id of its input, the penultimate features), ``features``, ``classes``, ``has_bias``,
        ``dtype`` (1 float32, 2 int8). An UnsupportedError when the model has no linear head."""
        c = self._ffi.new("crisp_head_info *")
        _check(self._lib.crisp_model_get_head(self._model(), c))
        return {k: int(getattr(c, k)) for k in
                ("op", "feature_value", "features", "classes", "has_bias", "dtype")}

    def head_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The head's float32 weight (classes, features) and bias (zeros when it has none):
        hybrid heads expanded, int8 heads dequantised."""
        head = self.head()
        w = np.empty((head["classes"], head["features"]), dtype=np.float32)
        b = np.empty(head["classes"], dtype=np.float32)
        ffi = self._ffi
        _check(self._lib.crisp_model_get_head_weights(self._model(), ffi.from_buffer("float[]", w),
                                                      w.size, ffi.from_buffer("float[]", b),
                                                      b.size))
        return w, b

    def features(self, x: Any) -> np.ndarray:
        """Run a batch up to the head's input (the penultimate features) and return them as
        float32 ``(N, features)``; the ops after it do not run."""
        head = self.head()
        return self._run_to(x, head["feature_value"], head["features"])

    def stage_inputs(self, x: Any) -> np.ndarray:
        """Run a batch up to the input of the last stage (:meth:`stage`): what
        :func:`tune_biases` trains on, float32 ``(N, input_elements)``."""
        stage = self.stage()
        return self._run_to(x, stage["input_value"], stage["input_elements"])

    def _run_to(self, x: Any, value: int, elements: int) -> np.ndarray:
        x = self._batch(x)
        out = np.empty((x.shape[0], elements), dtype=np.float32)
        ffi, lib = self._ffi, self._lib
        with self._run_lock:
            _check(lib.crisp_session_run_to(self._session(), value,
                                            ffi.from_buffer("float[]", x), x.size,
                                            ffi.from_buffer("float[]", out), out.size))
        return out

    def stage(self) -> dict[str, Any]:
        """The last stage ``--tune bias`` trains (runtime/README.md, "Personalisation"): its
        ops, input value, resolution, and ``tuned``: (op, channels) of each conv whose bias
        is tuned, in the order of :func:`tune_biases`'s ``stage_biases``. An UnsupportedError
        names why a model has none."""
        ffi, lib, model = self._ffi, self._lib, self._model()
        c = ffi.new("crisp_stage_info *")
        _check(lib.crisp_model_get_stage(model, c))
        op, channels = ffi.new("uint32_t *"), ffi.new("uint32_t *")
        tuned = []
        for i in range(c.tuned_ops):
            _check(lib.crisp_model_get_stage_op(model, i, op, channels))
            tuned.append((int(op[0]), int(channels[0])))
        return {"first_op": int(c.first_op), "pool_op": int(c.pool_op),
                "head_op": int(c.head_op), "input_value": int(c.input_value),
                "input_elements": int(c.input_elements), "height": int(c.height),
                "width": int(c.width), "tuned": tuned}

    def preprocess(self) -> dict[str, Any] | None:
        """The image preprocessing stored in the file (``PREP``), or None when absent."""
        c = self._ffi.new("crisp_preprocess *")
        _check(self._lib.crisp_model_get_preprocess(self._model(), c))
        if not c.present:
            return None
        return {"channels": int(c.channels), "height": int(c.height), "width": int(c.width),
                "resize": RESIZE_NAMES.get(int(c.resize), str(c.resize)),
                "resize_size": int(c.resize_size),
                "channel_order": "BGR" if c.channel_order == 1 else "RGB",
                "scale": float(c.scale), "mean": [float(v) for v in c.mean],
                "std": [float(v) for v in c.std]}

    def load_image(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Decode a PNG/JPEG file in C and preprocess it as the file's ``PREP`` says:
        float32 ``input_shape``, ready for :meth:`run` (with a batch dim added)."""
        out = np.empty(self.input_shape, dtype=np.float32)
        _check(self._lib.crisp_image_load(self._model(), os.fsencode(path),
                                          self._ffi.from_buffer("float[]", out), out.size))
        return out

    def decode_image(self, data: bytes) -> np.ndarray:
        """:meth:`load_image` for encoded bytes in memory."""
        out = np.empty(self.input_shape, dtype=np.float32)
        _check(self._lib.crisp_image_decode(self._model(), self._ffi.from_buffer(data),
                                            len(data), self._ffi.from_buffer("float[]", out),
                                            out.size))
        return out

    def coverage(self, class_id: int) -> float:
        """Share (0 … 1) of original class ``class_id``'s block saliency (``SALY``) in the
        blocks this file keeps. An ArgumentError when the file has no statistics for it."""
        c = self._ffi.new("float *")
        _check(self._lib.crisp_model_class_coverage(self._model(), int(class_id), c))
        return float(c[0])

    def write_head(self, path: str | os.PathLike[str], weight: Any, bias: Any | None,
                   class_ids: Sequence[int], names: Sequence[str],
                   provenance: dict[str, Any] | None = None,
                   biases: Sequence[tuple[int, Any]] = ()) -> None:
        """Write this model to ``path`` with its head replaced by ``weight`` (classes ×
        features) and ``bias``, the label map by ``class_ids``/``names``, ``provenance``
        stored under ``"personalized"`` and the bias tensors of ``biases`` ((op, values)
        pairs, same shapes) replaced; atomically (an existing ``path`` is replaced whole or
        left alone)."""
        ffi = self._ffi
        w = np.ascontiguousarray(weight, dtype=np.float32)
        classes = len(class_ids)
        features = self.head()["features"]
        if w.shape != (classes, features) or len(names) != classes:
            raise ShapeError(f"a head for {classes} classes needs a ({classes}, {features}) "
                             f"weight and {classes} names, got {w.shape} and {len(names)}")
        b = None if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
        if b is not None and b.shape != (classes,):
            raise ShapeError(f"bias must have shape ({classes},), got {b.shape}")
        ids = np.ascontiguousarray(class_ids, dtype=np.int32)
        # Every cdata the struct points to is held in a local until the call returns: cffi
        # frees an ffi.new() object as soon as nothing in Python refers to it.
        encoded = [ffi.new("char[]", n.encode("utf-8")) for n in names]
        name_array = ffi.new("const char *[]", encoded)
        prov = ffi.new("char[]", json.dumps(provenance).encode()) if provenance else ffi.NULL
        w_buf, ids_buf = ffi.from_buffer("float[]", w), ffi.from_buffer("int32_t[]", ids)
        b_buf = ffi.NULL if b is None else ffi.from_buffer("float[]", b)
        head = ffi.new("crisp_new_head *", {
            "classes": classes, "weight": w_buf, "bias": b_buf, "class_ids": ids_buf,
            "names": name_array, "provenance_json": prov})
        values = [np.ascontiguousarray(v, dtype=np.float32) for _, v in biases]
        new_biases = ffi.new("crisp_new_bias[]", max(1, len(values)))
        buffers = [ffi.from_buffer("float[]", v) for v in values]
        for i, ((op, _), v, buf) in enumerate(zip(biases, values, buffers)):
            new_biases[i] = {"op": int(op), "count": v.size, "values": buf}
        _check(self._lib.crisp_model_write_tuned(self._model(), head, new_biases, len(values),
                                                 os.fsencode(path)))

    def __repr__(self) -> str:
        if self._handles.model is None:
            return "<crisp_edge.Model closed>"
        return f"<crisp_edge.Model input={self.input_shape} output={self.output_shape}>"


def _check_threads(threads: int) -> None:
    # Checked before the C model exists, so a bad value leaks nothing.
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 256:
        raise ArgumentError(f"threads must be an integer in 1 … 256, got {threads!r}")


# CRISP_SESSION_REFERENCE_KERNELS of crisp.h (cffi's cdef drops #define lines;
# tests/runtime/test_binding.py checks the value against the header).
SESSION_REFERENCE_KERNELS = 0x1
# CRISP_SESSION_PROFILE of crisp.h
SESSION_PROFILE = 0x2


# CRISP_RESIZE_* of crisp.h
RESIZE_NAMES = {0: "none", 1: "shorter_side", 2: "stretch"}
# CRISP_FIT_IMPRINT_ONLY of crisp.h
FIT_IMPRINT_ONLY = 0x1


def fit_head(features: Any, labels: Any, classes: int, *, epochs: int = 0, l2: float = 0.0,
             seed: int = 0, imprint_only: bool = False
             ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Fit a linear head in C (weight imprinting, then softmax regression with L2; the
    objective is in runtime/README.md, "Personalisation"): ``features`` float32 (N, D),
    ``labels`` ints in 0 … classes − 1. Returns (weight (classes, D), bias (classes,),
    {iterations, loss, train_accuracy}). ``epochs``/``l2`` 0 take the library's defaults."""
    ffi, lib = _bind()
    f = np.ascontiguousarray(features, dtype=np.float32)
    y = np.ascontiguousarray(labels, dtype=np.int32)
    if f.ndim != 2 or y.shape != (f.shape[0],):
        raise ShapeError(f"features must be (N, D) and labels (N,), got {f.shape} and "
                         f"{np.shape(labels)}")
    weight = np.empty((classes, f.shape[1]), dtype=np.float32)
    bias = np.empty(classes, dtype=np.float32)
    options = ffi.new("crisp_fit_options *", {
        "epochs": epochs, "l2": l2, "seed": seed,
        "flags": FIT_IMPRINT_ONLY if imprint_only else 0})
    report = ffi.new("crisp_fit_report *")
    _check(lib.crisp_fit_head(ffi.from_buffer("float[]", f), ffi.from_buffer("int32_t[]", y),
                              f.shape[0], f.shape[1], classes, options,
                              ffi.from_buffer("float[]", weight), ffi.from_buffer("float[]", bias),
                              report))
    return weight, bias, {"iterations": int(report.iterations), "loss": float(report.loss),
                          "train_accuracy": float(report.train_accuracy)}


# CRISP_TUNE_FIT_HEAD of crisp.h
TUNE_FIT_HEAD = 0x1


def tune_biases(model: Model, stage_inputs: Any, labels: Any, classes: int, *,
                epochs: int = 0, lr: float = 0.0, l2: float = 0.0, batch: int = 0,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray]],
                                        dict[str, float]]:
    """``--tune bias`` in C: the head fitted on the last stage's features (as
    :func:`fit_head`), then the stage's conv biases and the head tuned together by Adam
    (runtime/README.md, "Personalisation"). ``stage_inputs`` from
    :meth:`Model.stage_inputs`. Returns (head weight, head bias, [(op, tuned bias)], report);
    0 takes the library's defaults."""
    ffi, lib = model._ffi, model._lib
    x = np.ascontiguousarray(stage_inputs, dtype=np.float32)
    y = np.ascontiguousarray(labels, dtype=np.int32)
    stage, head = model.stage(), model.head()
    if x.ndim != 2 or x.shape[1] != stage["input_elements"] or y.shape != (x.shape[0],):
        raise ShapeError(f"stage inputs must be (N, {stage['input_elements']}) with N labels, "
                         f"got {x.shape} and {y.shape}")
    weight = np.zeros((classes, head["features"]), dtype=np.float32)
    bias = np.zeros(classes, dtype=np.float32)
    stage_biases = np.empty(sum(c for _, c in stage["tuned"]), dtype=np.float32)
    options = ffi.new("crisp_tune_options *", {"epochs": epochs, "lr": lr, "l2": l2,
                                               "batch": batch, "seed": seed,
                                               "flags": TUNE_FIT_HEAD})
    report = ffi.new("crisp_tune_report *")
    _check(lib.crisp_tune_biases(model._model(), ffi.from_buffer("float[]", x),
                                 ffi.from_buffer("int32_t[]", y), x.shape[0], classes, options,
                                 ffi.from_buffer("float[]", weight),
                                 ffi.from_buffer("float[]", bias),
                                 ffi.from_buffer("float[]", stage_biases), stage_biases.size,
                                 report))
    tuned, at = [], 0
    for op, channels in stage["tuned"]:
        tuned.append((op, stage_biases[at:at + channels].copy()))
        at += channels
    return weight, bias, tuned, {
        "epochs": int(report.epochs), "steps": int(report.steps),
        "loss_before": float(report.loss_before), "loss_after": float(report.loss_after),
        "accuracy_before": float(report.accuracy_before),
        "accuracy_after": float(report.accuracy_after), "kept_start": bool(report.kept_start)}


def kernel_isa() -> str:
    """The instruction set of the optimised kernels on this CPU: "avx512f", "avx2_fma",
    "neon" or "scalar" (the CRISP_MAX_ISA environment variable caps it)."""
    ffi, lib = _bind()
    return str(ffi.string(lib.crisp_kernel_isa()).decode())


def _load_options(ffi: Any, max_memory_mb: int | None) -> Any:
    """crisp_load_options for max_memory_mb (None: CRISP_MAX_MEMORY_MB, else 512 MiB)."""
    if max_memory_mb is None:
        return ffi.NULL
    if (isinstance(max_memory_mb, bool) or not isinstance(max_memory_mb, int)
            or not 1 <= max_memory_mb <= 0xFFFFFFFF):
        raise ArgumentError(f"max_memory_mb must be an integer in 1 … 4294967295 (MiB), got "
                            f"{max_memory_mb!r}")
    return ffi.new("crisp_load_options *", {"max_memory_mb": max_memory_mb})


def load(path: str | os.PathLike[str], *, threads: int = 1, reference: bool = False,
         max_memory_mb: int | None = None) -> Model:
    """Load and validate the ``.crisp`` file at ``path`` (mapped read-only, weights in place);
    ``run`` then uses ``threads`` threads (the caller's included). ``reference=True`` runs
    every op on the scalar reference kernels (the spec) instead of the optimised ones.

    ``max_memory_mb`` bounds what the model makes the runtime allocate (packed weights, label
    names, the activation arena and each thread's kernel scratch; runtime/README.md, "Memory
    limits"); ``None`` takes ``$CRISP_MAX_MEMORY_MB``, else 512. A model over it raises
    :class:`~crisp_edge.errors.MemoryLimitError` naming the figures, before allocating."""
    _check_threads(threads)
    ffi, lib = _bind()
    options = _load_options(ffi, max_memory_mb)
    out = ffi.new("crisp_model **")
    _check(lib.crisp_model_load_file_with_options(os.fsencode(path), options, out))
    return Model(out[0], threads, reference)


def load_buffer(data: bytes | bytearray | memoryview, *, threads: int = 1,
                reference: bool = False, max_memory_mb: int | None = None) -> Model:
    """Load a model from bytes in memory (the runtime copies them); options as :func:`load`."""
    _check_threads(threads)
    ffi, lib = _bind()
    options = _load_options(ffi, max_memory_mb)
    out = ffi.new("crisp_model **")
    _check(lib.crisp_model_load_buffer_with_options(
        ffi.from_buffer(data), len(memoryview(data).cast("B")), options, out))
    return Model(out[0], threads, reference)


__all__ = ["CrispError", "Model", "fit_head", "kernel_isa", "library_path", "load", "load_buffer",
           "open_library", "tune_biases"]
