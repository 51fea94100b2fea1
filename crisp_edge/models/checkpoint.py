"""Checkpoints of crisp-edge: ``BASE.pt`` / ``PRUNED.pt`` and the resume state of a pruning run.

A checkpoint is one dict of tensors, dicts, lists, strings, numbers, booleans and None, so plain
``torch.load(path, weights_only=True)`` reads it without crisp-edge. Every field is documented in
docs/checkpoint.md (the packer reads it). A zoo ``arch`` is taken from the checkpoint; a user
model's ``FILE.py:CLASS`` must come from the user, since importing it runs its code.

>>> ckpt = load_checkpoint("pruned.pt")                                  # doctest: +SKIP
>>> model = build_model_from_checkpoint(ckpt)                             # doctest: +SKIP
>>> model = build_model_from_checkpoint(ckpt, model_source="nets.py:Net") # doctest: +SKIP
>>> ckpt.classes, ckpt.pattern                                            # doctest: +SKIP
([3, 7, 11], {'n': 2, 'm': 4, 'block_rows': 16, 'block_cols': 16, 'shared_rows': 1})
"""

from __future__ import annotations

import os
import random
import shlex
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crisp_edge.fileio import atomic_writer, leftovers
from crisp_edge.errors import ArgumentError, FormatError, ModelCodeRequiredError

FORMAT = "crisp-edge.checkpoint"
VERSION = 1
RESUME_FORMAT = "crisp-edge.resume"
KINDS = ("base", "pruned")


@dataclass
class Checkpoint:
    """The fields of a checkpoint file (see docs/checkpoint.md for each one)."""

    kind: str
    state_dict: dict[str, torch.Tensor]
    num_classes: int
    input_shape: list[int]
    arch: str | None = None
    model_source: str | None = None
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    pattern: dict[str, int] | None = None
    layers: list[dict[str, Any]] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    user_classes: list[int] = field(default_factory=list)
    head: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    saliency: dict[str, torch.Tensor] = field(default_factory=dict)
    data: str | None = None
    crisp_edge_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The on-disk dict: ``format`` and ``version`` first, then every field."""
        return {"format": FORMAT, "version": VERSION, **asdict(self)}


def _atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` through :func:`crisp_edge.fileio.atomic_writer`: a crash never leaves
    half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as f:
        torch.save(obj, f)


def save_checkpoint(ckpt: Checkpoint, path: str | os.PathLike[str]) -> Path:
    """Write ``ckpt`` to ``path`` (atomically) and return the path."""
    from crisp_edge.version import __version__

    if ckpt.kind not in KINDS:
        raise ArgumentError(f"checkpoint kind must be one of {KINDS}, got {ckpt.kind!r}")
    if not ckpt.crisp_edge_version:
        ckpt.crisp_edge_version = __version__
    ckpt.state_dict = {k: v.detach().cpu() for k, v in ckpt.state_dict.items()}
    ckpt.masks = {k: v.detach().cpu().bool() for k, v in ckpt.masks.items()}
    _atomic_save(ckpt.to_dict(), path)
    return Path(path)


def _read(path: str | os.PathLike[str]) -> Any:
    path = os.fspath(path)
    if path.endswith(".crisp"):
        raise ArgumentError(f"{path} is a packed .crisp model, not a torch checkpoint: run or "
                            "evaluate it with `crisp-edge run` / `crisp-edge eval`; this step "
                            "needs the .pt checkpoint that `crisp-edge prune` or `train` wrote")
    if not os.path.isfile(path):
        raise ArgumentError(f"checkpoint {path!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise FormatError(f"cannot read checkpoint {path!r}: {type(e).__name__}: {e}") from e


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and check a checkpoint written by :func:`save_checkpoint`."""
    raw = _read(path)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise FormatError(f"{os.fspath(path)!r} is not a crisp-edge checkpoint (no "
                          f"format={FORMAT!r}); a plain state dict needs --arch/--model and "
                          "--weights instead")
    if raw.get("version") != VERSION:
        raise FormatError(f"{os.fspath(path)!r} has checkpoint version {raw.get('version')!r}; "
                          f"this crisp-edge reads version {VERSION}")
    names = {f.name for f in fields(Checkpoint)}
    missing = [n for n in ("kind", "state_dict", "num_classes", "input_shape") if n not in raw]
    if missing:
        raise FormatError(f"{os.fspath(path)!r} lacks the field(s) {', '.join(missing)}")
    ckpt = Checkpoint(**{k: v for k, v in raw.items() if k in names})
    if ckpt.kind not in KINDS:
        raise FormatError(f"{os.fspath(path)!r}: unknown checkpoint kind {ckpt.kind!r}")
    if ckpt.arch is None and ckpt.model_source is None:
        raise FormatError(f"{os.fspath(path)!r} names neither an arch nor a model source")
    return ckpt


def build_model(arch: str | None, model_source: str | None, num_classes: int) -> nn.Module:
    """A fresh model with ``num_classes`` outputs: a zoo ``arch``, a timm ``timm:NAME`` (random
    weights), the user class ``FILE.py:CLASS``, or an ONNX file ``MODEL.onnx`` (its own weights;
    its classifier replaced when it has another size)."""
    if (arch is None) == (model_source is None):
        raise ArgumentError("give exactly one of --arch NAME or --model FILE.py:CLASS|MODEL.onnx")
    if arch is not None:
        from crisp_edge.models import zoo as models
        from crisp_edge.models.timm_models import build_timm_arch, is_timm_arch

        if is_timm_arch(arch):
            return build_timm_arch(arch, num_classes)
        if arch not in models.arch_names():
            raise ArgumentError(f"unknown architecture {arch!r}; choose one of "
                                f"{', '.join(models.arch_names())}, or timm:NAME for a timm "
                                "model")
        return models.build_arch(arch, num_classes)
    from crisp_edge.models.onnx_models import build_onnx_model, is_onnx_source

    if is_onnx_source(model_source):
        return build_onnx_model(model_source, num_classes)  # type: ignore[arg-type]
    from crisp_edge.models.spec import build_model as build_user_model

    return build_user_model(model_source, num_classes)  # type: ignore[arg-type]


def input_size(arch: str | None, model_source: str | None) -> int | None:
    """The input side a model is built for: a zoo arch's, timm's default configuration's, an
    ONNX file's (its input's width); None for a user class (it does not say)."""
    if arch is not None:
        from crisp_edge.models import zoo
        from crisp_edge.models.timm_models import is_timm_arch, timm_input_size

        if is_timm_arch(arch):
            return timm_input_size(arch)
        return zoo.input_size(arch) if arch in zoo.arch_names() else None
    from crisp_edge.models.onnx_models import is_onnx_source, onnx_input_shape

    if is_onnx_source(model_source):
        shape = onnx_input_shape(model_source)  # type: ignore[arg-type]
        return int(shape[-1]) if shape else None
    return None


def _as_argument(text: str) -> str:
    """``text`` as it can be pasted on a command line; repr() when it holds control characters
    (it comes from a file, and must not drive the terminal)."""
    return shlex.quote(text) if text.isprintable() else repr(text)


def model_for_checkpoint(ckpt: Checkpoint, path: str | os.PathLike[str] | None = None, *,
                         arch: str | None = None, model_source: str | None = None
                         ) -> tuple[str | None, str | None]:
    """What to build for ``ckpt`` (read from ``path``), as ``(arch, model_source)``: the user's
    ``arch`` / ``model_source`` when given, else the checkpoint's zoo ``arch`` (a name, not code).

    The checkpoint's own ``model_source`` is only a suggestion: importing it would let a data
    file, which anyone can hand over, choose code to run. The user must name it with --model."""
    if arch is not None or model_source is not None:
        return arch, model_source
    if ckpt.arch is not None:
        return ckpt.arch, None
    from crisp_edge.models.onnx_models import is_onnx_source

    if is_onnx_source(ckpt.model_source):
        return None, ckpt.model_source  # an ONNX file is data: converting it runs no code
    where = os.fspath(path) if path is not None else "the checkpoint"
    suggested = _as_argument(str(ckpt.model_source))
    raise ModelCodeRequiredError(
        f"{where} was made with the model file {suggested}; pass --model {suggested} if you "
        "trust that file (crisp-edge imports a model's code only when you name it: a data file "
        "must not choose code to run)")


def build_model_from_checkpoint(ckpt: Checkpoint, *, arch: str | None = None,
                                model_source: str | None = None,
                                path: str | os.PathLike[str] | None = None) -> nn.Module:
    """The model of ``ckpt`` with its weights loaded, in eval mode (head as stored): the zoo
    arch it names, or the user's ``model_source`` (see :func:`model_for_checkpoint`; ``path``
    names the checkpoint in errors)."""
    arch, model_source = model_for_checkpoint(ckpt, path, arch=arch, model_source=model_source)
    model = build_model(arch, model_source, ckpt.num_classes)
    try:
        model.load_state_dict(ckpt.state_dict)
    except RuntimeError as e:
        raise FormatError(f"the checkpoint's weights do not fit {arch or model_source}: "
                          f"{e}") from e
    return model.eval()


def load_weights(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], Checkpoint | None]:
    """Weights from a crisp-edge checkpoint, a dict with ``state_dict`` or a bare state dict.
    Returns the state dict and the checkpoint when it was one."""
    raw = _read(path)
    if isinstance(raw, dict) and raw.get("format") == FORMAT:
        ckpt = load_checkpoint(path)
        return ckpt.state_dict, ckpt
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise FormatError(f"{os.fspath(path)!r} holds no state dict")
    return raw, None


# --- resume state of a pruning run -------------------------------------------------------

def rng_state() -> dict[str, Any]:
    """The states of python's, numpy's and torch's global generators, as tensors and ints."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": py_gauss},
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state((nps["name"], nps["keys"].numpy().astype(np.uint32), nps["pos"],
                         nps["has_gauss"], nps["gauss"]))


# The files crisp-edge writes in a resume directory, and the only ones it ever deletes there.
# The directory is the user's to name (``--checkpoint-dir .`` is legal), so ownership is explicit:
# the marker is written only when crisp-edge itself created the directory.
RESUME_STATE = "state.pt"
RESUME_MARKER = ".crisp-edge-resume"
_MARKER_TEXT = ("crisp-edge created this directory for the resume state of a pruning run "
                f"({RESUME_STATE}); it deletes the directory once the run is finished and "
                "nothing else is in it.\n")


def _claim_resume_dir(directory: Path) -> None:
    """Create ``directory`` with crisp-edge's marker, or leave an existing one unmarked: only a
    directory crisp-edge made is ever removed by :func:`remove_resume_state`."""
    try:
        directory.mkdir(parents=True)
    except FileExistsError:
        if not directory.is_dir():
            raise ArgumentError(f"checkpoint directory {str(directory)!r} is a file") from None
        return
    (directory / RESUME_MARKER).write_text(_MARKER_TEXT)


def save_resume_state(directory: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write the state after a finished step to ``directory/state.pt`` (atomically); a
    directory that does not exist yet is created and marked as crisp-edge's."""
    directory = Path(directory)
    _claim_resume_dir(directory)
    path = directory / RESUME_STATE
    _atomic_save({"format": RESUME_FORMAT, "version": VERSION, **state}, path)
    return path


def check_resume_dir(directory: str | os.PathLike[str]) -> None:
    """Refuse a directory whose ``state.pt`` is someone else's file: the run would overwrite it
    and then delete it. Cheap for crisp-edge's own directories (the marker says whose it is)."""
    directory = Path(directory)
    if (directory / RESUME_MARKER).is_file() or not (directory / RESUME_STATE).is_file():
        return
    try:
        load_resume_state(directory)
    except FormatError:
        raise ArgumentError(f"{str(directory / RESUME_STATE)!r} is not a crisp-edge resume "
                            "state; choose another --checkpoint-dir, so that file is not "
                            "overwritten and then deleted") from None


def remove_resume_state(directory: str | os.PathLike[str]) -> None:
    """Delete what crisp-edge wrote in ``directory`` once a run is finished: its state file, a
    temporary file a crash left, its marker; then the directory itself, but only if crisp-edge
    created it (the marker) and nothing else is left in it. Never anything else: the directory
    may be the user's working directory."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    created = (directory / RESUME_MARKER).is_file()
    # NAME.tmp: what versions before crisp_edge.fileio left after a crash.
    for path in [directory / RESUME_STATE, directory / RESUME_MARKER,
                 directory / (RESUME_STATE + ".tmp"), *leftovers(directory / RESUME_STATE)]:
        path.unlink(missing_ok=True)
    if created and not any(directory.iterdir()):
        directory.rmdir()


def load_resume_state(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The state saved in ``directory`` or None when there is none yet."""
    path = Path(directory) / RESUME_STATE
    if not path.is_file():
        return None
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise FormatError(f"cannot read the resume state {str(path)!r}: {e}; delete that "
                          "file to start over") from e
    if not isinstance(raw, dict) or raw.get("format") != RESUME_FORMAT:
        raise FormatError(f"{str(path)!r} is not a crisp-edge resume state")
    if raw.get("version") != VERSION:
        raise FormatError(f"{str(path)!r} has resume-state version {raw.get('version')!r}")
    return raw
