"""Build a user's torch model from a ``path/to/file.py:ClassName`` spec (used by the CLI).

>>> model = build_model("nets/mine.py:SmallNet", 10, "mine.pt")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
from typing import TYPE_CHECKING, Any

from crisp_edge.errors import ArgumentError

if TYPE_CHECKING:
    import torch


def load_model_class(spec: str) -> type:
    """Import ``FILE.py`` by path and return its class ``CLASS`` from the spec ``FILE.py:CLASS``.

    This runs the file's code, so ``spec`` must come from the user (a --model flag), never from
    a checkpoint or another data file (see ``checkpoint.model_for_checkpoint``)."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise ArgumentError(f"model spec {spec!r} must look like path/to/file.py:ClassName")
    if not os.path.isfile(path):
        raise ArgumentError(f"model file {path!r} does not exist")
    # A name unique per file, so two specs with the same basename do not collide.
    digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:12]
    mod_name = f"_crisp_user_model_{digest}"
    module_spec = importlib.util.spec_from_file_location(mod_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ArgumentError(f"cannot import {path!r} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[mod_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[mod_name]
        raise ArgumentError(f"importing {path!r} failed: {type(e).__name__}: {e}") from e
    cls = getattr(module, name, None)
    if not inspect.isclass(cls):
        found = sorted(k for k, v in vars(module).items()
                       if inspect.isclass(v) and v.__module__ == mod_name)
        raise ArgumentError(f"{path!r} has no class {name!r}"
                            + (f"; classes defined there: {', '.join(found)}" if found else ""))
    return cls


def build_model(spec: str, num_classes: int | None = None,
                weights: str | os.PathLike[str] | None = None) -> "torch.nn.Module":
    """Construct the class named by ``spec`` (passing ``num_classes=`` when given) and load
    ``weights``: a state dict, or a checkpoint dict holding one under ``"state_dict"``."""
    import torch

    cls = load_model_class(spec)
    kwargs: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}
    try:
        model = cls(**kwargs)
    except TypeError as e:
        call = f"{cls.__name__}(num_classes={num_classes})" if kwargs else f"{cls.__name__}()"
        raise ArgumentError(f"cannot construct {call}: {e}") from e
    if not isinstance(model, torch.nn.Module):
        raise ArgumentError(f"{cls.__name__} is not a torch.nn.Module")
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ArgumentError(f"weights file {os.fspath(weights)!r} does not exist") from None
        except Exception as e:
            raise ArgumentError(f"cannot read weights {os.fspath(weights)!r}: {e}") from e
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise ArgumentError(f"weights {os.fspath(weights)!r} hold a {type(state).__name__}, "
                                "not a state dict")
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise ArgumentError(f"weights {os.fspath(weights)!r} do not fit {cls.__name__}: "
                                f"{e}") from e
    return model
