"""CIFAR-100, python version: the ``train``, ``test`` and ``meta`` pickles of
``cifar-100-python.tar.gz``, read without torchvision.

``train``/``test`` hold ``b'data'`` (N × 3072 uint8: 1024 red, then green, then blue values of
a 32×32 image) and ``b'fine_labels'``; ``meta`` holds ``b'fine_label_names'``. The pickles are
read with an unpickler that only accepts numpy arrays, so a foreign pickle cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crisp_edge import format as fmt
from crisp_edge.data.source import normalise
from crisp_edge.errors import ArgumentError, CrispIOError

MEAN = (0.5071, 0.4865, 0.4409)
STD = (0.2673, 0.2564, 0.2762)
_FIX = "point cifar100:DIR at the extracted cifar-100-python folder (re-extract it if needed)"

# What numpy (1.x or 2.x) and Python 2's cPickle put in CIFAR pickles; nothing else loads.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


def preprocess(image_size: int) -> fmt.Preprocess:
    """How an image file becomes a sample like this source's: CIFAR's 32×32 images are used as
    they are (a device image must be 32×32 too); at another ``image_size`` they are resized
    bilinearly, which a device does with ``stretch``."""
    resize = fmt.RESIZE_NONE if image_size == 32 else fmt.RESIZE_STRETCH
    return fmt.Preprocess(image_size, image_size, MEAN, STD, resize)


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core"):]  # numpy 2 moved it
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[bytes, Any]:
    if not path.is_file():
        raise ArgumentError(f"{path} is missing: {_FIX}")
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except OSError as e:
        raise CrispIOError(f"cannot read {path}: {e.strerror or e}") from e
    except Exception as e:  # a truncated or foreign file raises anything from pickle
        raise ArgumentError(f"{path} is not a CIFAR-100 python pickle ({type(e).__name__}: "
                            f"{e}): {_FIX}") from e
    if not isinstance(obj, dict):
        raise ArgumentError(f"{path} holds a {type(obj).__name__}, not a CIFAR-100 dict: {_FIX}")
    return obj


def find_root(directory: str | Path) -> Path:
    """The folder holding ``train``/``test``/``meta``: ``directory`` itself or its
    ``cifar-100-python`` subfolder."""
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise ArgumentError(f"CIFAR-100 directory {str(root)!r} does not exist: {_FIX}")
    if not (root / "meta").is_file() and (root / "cifar-100-python" / "meta").is_file():
        root = root / "cifar-100-python"
    return root


class Cifar100Source:
    """One split of CIFAR-100 held as uint8 in memory (150 MB for ``train``); ``load``
    converts one image, resizing with bilinear interpolation when ``image_size`` is not 32."""

    def __init__(self, directory: str | Path, split: str, image_size: int, spec: str) -> None:
        root = find_root(directory)
        meta = _unpickle(root / "meta")
        names = meta.get(b"fine_label_names")
        if not isinstance(names, list) or not names:
            raise ArgumentError(f"{root / 'meta'} has no b'fine_label_names': {_FIX}")
        self.class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        path = root / ("test" if split == "test" else "train")
        data = _unpickle(path)
        images, labels = data.get(b"data"), data.get(b"fine_labels")
        if images is None or labels is None:
            raise ArgumentError(f"{path} lacks b'data' or b'fine_labels': {_FIX}")
        images = np.asarray(images)
        targets = np.asarray(labels, dtype=np.int64)
        if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3072 \
                or len(images) != len(targets):
            raise ArgumentError(f"{path}: b'data' is {images.dtype} {images.shape} for "
                                f"{len(targets)} labels, expected uint8 (N, 3072): {_FIX}")
        if len(targets) and not 0 <= targets.min() <= targets.max() < len(self.class_names):
            raise ArgumentError(f"{path}: labels outside 0..{len(self.class_names) - 1}: {_FIX}")
        self._images = images.reshape(-1, 3, 32, 32)
        self.targets = targets
        self.image_size = image_size
        self.spec = spec
        self.split = split

    def load(self, index: int) -> torch.Tensor:
        x = torch.from_numpy(self._images[index].astype(np.float32) / 255.0)
        if self.image_size != 32:
            x = torch.nn.functional.interpolate(
                x[None], size=(self.image_size, self.image_size), mode="bilinear",
                align_corners=False, antialias=self.image_size < 32)[0]
        return normalise(x, MEAN, STD)
