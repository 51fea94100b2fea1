"""crisp-edge: specialise an image classifier to a user's classes and run it fast on edge CPUs.

The host side (``prune``, ``pack``) needs torch; the runtime side (``load``, ``Model``) needs
only numpy and cffi, so a board can run ``.crisp`` models without torch: ``import crisp_edge``
imports no torch.

The stages are subpackages, in the order data flows; each imports only from itself and the
stages before it (an import-linter contract in pyproject.toml): ``format`` → ``reference`` →
``runtime`` → ``data``, ``models`` → ``pruning`` → ``packing`` → ``deploy`` → ``measure``,
``personalization`` → ``cli``. This root module is only a facade over them.

>>> import crisp_edge, torch
>>> crisp_edge.pack(model, torch.randn(1, 3, 32, 32), "model.crisp")   # doctest: +SKIP
>>> crisp_edge.load("model.crisp").run(images)                         # doctest: +SKIP
"""

from crisp_edge.version import __version__  # noqa: E402
from crisp_edge.errors import CrispError  # noqa: E402
from crisp_edge.runtime import Model, load  # noqa: E402


def prune(model, data, classes, config=None, **kwargs):  # type: ignore[no-untyped-def]
    """Prune ``model`` for the user's ``classes`` (CRISP); see
    :func:`crisp_edge.pruning.engine.prune`. Imports torch on first use only."""
    from crisp_edge.pruning.engine import prune as _prune

    return _prune(model, data, classes, config, **kwargs)


def pack(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Pack an ``nn.Module`` into a ``.crisp`` file: ``pack(model, example_input, path, ...)``;
    see :func:`crisp_edge.packing.pack.pack` (same arguments)."""
    from crisp_edge.packing.pack import pack as _pack

    return _pack(*args, **kwargs)


def pack_checkpoint(checkpoint_path, out_path, **kwargs):  # type: ignore[no-untyped-def]
    """Pack a ``crisp-edge prune``/``train`` checkpoint; see
    :func:`crisp_edge.packing.pack.pack_checkpoint`."""
    from crisp_edge.packing.pack import pack_checkpoint as _pack_checkpoint

    return _pack_checkpoint(checkpoint_path, out_path, **kwargs)


def personalize(model, out, **kwargs):  # type: ignore[no-untyped-def]
    """Re-personalise the ``.crisp`` file ``model`` into ``out``: learn new classes from images
    (``data=``) or re-select classes of a full-head file (``classes=``), sparsity kept; see
    :func:`crisp_edge.personalization.local.personalize`. Needs no torch for image folders."""
    from crisp_edge.personalization.local import personalize as _personalize

    return _personalize(model, out, **kwargs)


__all__ = ["__version__", "CrispError", "Model", "load", "pack", "pack_checkpoint",
           "personalize", "prune"]
