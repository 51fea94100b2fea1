"""crisp-edge: specialise an image classifier to a user's classes and run it fast on edge CPUs.

The host side (``pack``; later ``prune``) needs torch; the runtime side (``load``) needs only
numpy and cffi, so a board can run ``.crisp`` models without torch.

>>> import crisp_edge, torch
>>> crisp_edge.pack(model, torch.randn(1, 3, 32, 32), "model.crisp")   # doctest: +SKIP
>>> crisp_edge.load("model.crisp").run(images)                         # doctest: +SKIP
"""

__version__ = "0.1.0"

from crisp_edge.errors import CrispError  # noqa: E402
# crisp_edge.pack imports torch only inside its functions; binding the function
# here (after the submodule import) keeps `crisp_edge.pack(...)` callable.
from crisp_edge.pack import pack  # noqa: E402
from crisp_edge.runtime import Model, load  # noqa: E402


def prune(model, data, classes, config=None, **kwargs):  # type: ignore[no-untyped-def]
    """Prune ``model`` for the user's ``classes`` (CRISP); see :func:`crisp_edge.pruning.prune`.

    Imports torch on first use only, so ``import crisp_edge`` stays light on a board."""
    from crisp_edge.pruning import prune as _prune

    return _prune(model, data, classes, config, **kwargs)


def pack_checkpoint(checkpoint_path, out_path, **kwargs):  # type: ignore[no-untyped-def]
    """Pack a ``crisp-edge prune``/``train`` checkpoint; see :func:`crisp_edge.pack.pack_checkpoint`."""
    from crisp_edge.pack import pack_checkpoint as _pack_checkpoint

    return _pack_checkpoint(checkpoint_path, out_path, **kwargs)


__all__ = ["__version__", "CrispError", "Model", "load", "pack", "pack_checkpoint", "prune"]
