"""Image folders: ``DIR/<class>/*.png|jpg|jpeg|bmp|webp``, one folder per class.

Two layouts are recognised:

- ``DIR/train/<class>/…`` with ``DIR/val/<class>/…`` or ``DIR/test/<class>/…``: split ``test``
  reads ``test/`` if it exists, else ``val/``; ``train`` and ``calibration`` read ``train/``.
- ``DIR/<class>/…`` (no ``train`` folder): each class's files are ordered by a hash of their
  name and the first fifth (at least one file, when a class has two or more) is ``test``; the
  rest is ``train`` (and ``calibration``). The split is deterministic and needs no file list.

Class ids are the indices of the sorted class folder names (the union over the split folders,
so ids agree between splits); names are the folder names. Images are decoded with Pillow when
a sample is read, converted to RGB, resized so the shorter side is ``image_size`` (bilinear),
centre-cropped to a square and normalised with the ImageNet mean and std: :func:`preprocess`,
the PREP record ``pack`` stores so a device does the same
(:func:`crisp_edge.reference.preprocess.preprocess_image`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from crisp_edge import format as fmt
from crisp_edge.errors import ArgumentError, CrispIOError
from crisp_edge.reference.preprocess import preprocess_image

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
TEST_FRACTION = 0.2


def preprocess(image_size: int) -> fmt.Preprocess:
    """How this source turns an image file into a ``(3, image_size, image_size)`` sample."""
    return fmt.Preprocess(image_size, image_size, MEAN, STD, fmt.RESIZE_SHORTER_SIDE, image_size)


def _class_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in EXTENSIONS and not p.name.startswith(".") and p.is_file())


def _hash_order(files: list[Path]) -> list[Path]:
    return sorted(files, key=lambda p: (hashlib.sha1(p.name.encode()).hexdigest(), p.name))


def _n_test(n: int) -> int:
    return 0 if n < 2 else max(1, round(n * TEST_FRACTION))


class ImageFolderSource:
    """One split of an image folder tree; images are decoded lazily, one per ``load``."""

    def __init__(self, directory: str | Path, split: str, image_size: int, spec: str) -> None:
        root = Path(directory).expanduser()
        if not root.is_dir():
            raise ArgumentError(f"data directory {str(root)!r} does not exist; give an image "
                                "folder (DIR/<class>/*.jpg), cifar100:DIR or synthetic[:N]")
        if (root / "train").is_dir():
            evaluation = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
            if split == "test" and evaluation is None:
                raise ArgumentError(f"{root} has a train/ folder but neither test/ nor val/: "
                                    "add one, or put the class folders directly in it")
            folders = [root / "train"] + ([evaluation] if evaluation else [])
            names = sorted({c for f in folders for c in _class_dirs(f)})
            total = sum(len(_images(f / c)) for f in folders for c in names)
            base = evaluation if split == "test" else root / "train"
            assert base is not None
            per_class = [_images(base / c) for c in names]
        else:
            names = _class_dirs(root)
            per_class, total = [], 0
            for c in names:
                ordered = _hash_order(_images(root / c))
                k, total = _n_test(len(ordered)), total + len(ordered)
                per_class.append(sorted(ordered[:k] if split == "test" else ordered[k:]))
        if not names:
            raise ArgumentError(f"{root} has no class folders; expected DIR/<class>/*.png "
                                "(or DIR/train/<class>/… with DIR/val/<class>/…)")
        if total == 0:
            raise ArgumentError(f"{root} has class folders but no images with the extensions "
                                f"{', '.join(EXTENSIONS)}")
        self.files = [f for files in per_class for f in files]
        self.targets = np.repeat(np.arange(len(names), dtype=np.int64),
                                 [len(files) for files in per_class])
        self.class_names = names
        self.image_size = image_size
        self.spec = spec
        self.split = split

    def load(self, index: int) -> torch.Tensor:
        path = self.files[index]
        try:
            x = preprocess_image(path, preprocess(self.image_size))
        except CrispIOError as e:
            raise CrispIOError(f"{e}; replace or delete the file") from e
        return torch.from_numpy(x)
