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


__all__ = ["__version__", "CrispError", "Model", "load", "pack"]
