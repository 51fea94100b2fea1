"""Data sources: open a data set by name, choose classes, iterate samples.

A *spec* names the data:

- ``synthetic[:NUM_CLASSES]`` — the built-in procedural set (100 classes unless given), see
  :mod:`crisp_edge.data.synthetic`;
- ``cifar100:DIR`` — CIFAR-100's python version (``DIR`` holds ``train``/``test``/``meta``, or
  is the folder that contains ``cifar-100-python``);
- ``DIR`` — an image folder, ``DIR/<class>/*.jpg`` or ``DIR/{train,val|test}/<class>/*.jpg``
  (see :mod:`crisp_edge.data.imagefolder`).

Splits are ``train``, ``test`` and ``calibration`` (a small per-class sample of the training
data for real sources; its own renders for ``synthetic``). Labels are always the data set's
*original* class ids, also after :meth:`ClassDataset.subset`.

>>> data = open_source("synthetic:10", split="test", image_size=32)
>>> ids = resolve_classes(data, parse_classes("3,red-disk-0"))     # doctest: +SKIP
>>> check_classes_present(data, ids)                                  # doctest: +SKIP
>>> x, y = data.subset(ids)[0]                                        # doctest: +SKIP
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from crisp_edge import format as fmt
from crisp_edge.data import cifar, imagefolder, synthetic
from crisp_edge.data.source import Source
from crisp_edge.data.cifar import Cifar100Source
from crisp_edge.data.imagefolder import ImageFolderSource
from crisp_edge.data.synthetic import (  # noqa: F401  (re-exported)
    COLOURS,
    DEFAULT_SAMPLES_PER_CLASS,
    SHAPES,
    ClassPrototype,
    SyntheticSource,
    class_names,
    class_prototypes,
    make_synthetic,
    render_synthetic_sample,
)
from crisp_edge.errors import ArgumentError

SPLITS = ("train", "test", "calibration")
SYNTHETIC_CLASSES = 100
_SPECS = "synthetic[:NUM_CLASSES], cifar100:DIR or an image folder DIR"


class ClassDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Samples of one split: ``(float32 (3, S, S) normalised image, int64 original class id)``.

    ``targets`` holds every sample's label without decoding images, so choosing classes is
    cheap. With ``augment`` each image is flipped horizontally with probability 1/2, decided by
    (seed, epoch, sample), so the same seed gives the same flips whatever the number of loader
    workers; call :meth:`set_epoch` before each epoch to draw new flips.
    """

    def __init__(self, source: Source, *, augment: bool = False, seed: int = 0,
                 indices: np.ndarray | None = None) -> None:
        self.source = source
        all_ids = np.arange(len(source.targets), dtype=np.int64)
        self._indices = all_ids if indices is None else np.asarray(indices, dtype=np.int64)
        self.targets: np.ndarray = source.targets[self._indices]
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    @property
    def num_classes(self) -> int:
        """Number of classes of the data set (original ids are ``0..num_classes-1``)."""
        return len(self.source.class_names)

    @property
    def class_names(self) -> list[str]:
        """Name of each original class id."""
        return list(self.source.class_names)

    @property
    def spec(self) -> str:
        """The spec the data was opened with, e.g. ``cifar100:/data/c100``."""
        return self.source.spec

    @property
    def split(self) -> str:
        """``train``, ``test`` or ``calibration``."""
        return self.source.split

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = int(self._indices[i])
        x = self.source.load(index)
        if self.augment and self._flip(index):
            x = torch.flip(x, dims=(2,))
        return x, torch.tensor(int(self.targets[i]), dtype=torch.int64)

    def _flip(self, index: int) -> bool:
        state = np.random.SeedSequence([self.seed, self.epoch, index, 0xF11F]).generate_state(1)
        return bool(state[0] & 1)

    def set_epoch(self, epoch: int) -> None:
        """Draw the augmentation of ``epoch`` (flips are a function of seed, epoch, sample)."""
        if epoch < 0:
            raise ArgumentError(f"epoch must be non-negative, got {epoch}")
        self.epoch = epoch

    def subset(self, class_ids: Sequence[int], per_class: int | None = None) -> ClassDataset:
        """The samples of ``class_ids`` only (at most the first ``per_class`` of each), in
        their original order; labels keep their ids."""
        ids = [_checked_id(c, self.num_classes) for c in class_ids]
        keep = np.flatnonzero(np.isin(self.targets, np.asarray(ids, dtype=np.int64)))
        if per_class is not None:
            keep = keep[_cap_per_class(self.targets[keep], per_class)]
        sub = ClassDataset(self.source, augment=self.augment, seed=self.seed,
                           indices=self._indices[keep])
        sub.epoch = self.epoch
        return sub

    def __repr__(self) -> str:
        return (f"ClassDataset({self.spec!r}, split={self.split!r}, samples={len(self)}, "
                f"classes={self.num_classes}, augment={self.augment})")


def _checked_id(c: object, num_classes: int) -> int:
    if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < num_classes:
        raise ArgumentError(f"class id {c!r} is not in 0..{num_classes - 1}")
    return int(c)


def _cap_per_class(targets: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the first ``limit`` samples of each class, in their original order."""
    order = np.argsort(targets, kind="stable")
    sorted_t = targets[order]
    starts = np.searchsorted(sorted_t, sorted_t, side="left")
    rank = np.arange(len(order)) - starts
    return np.sort(order[rank < limit])


def source_kind(spec: str) -> str | None:
    """``"synthetic"``, ``"cifar100"`` or ``"imagefolder"``: the kind of data ``spec`` names
    (without opening it), or None for an unknown ``KIND:...``."""
    kind, sep, _ = spec.partition(":")
    if kind in ("synthetic", "cifar100"):
        return kind
    if Path(spec).expanduser().is_dir() or not sep or len(kind) == 1 or "/" in kind:
        return "imagefolder"  # 1-letter kind: C:\ paths
    return None


def source_preprocess(spec: str, image_size: int) -> fmt.Preprocess | None:
    """The PREP record (docs/format.md) of a model trained on ``spec`` at ``image_size``: how
    an image file becomes one of its samples; None when ``spec`` names no known kind."""
    kind = source_kind(spec)
    module = {"synthetic": synthetic, "cifar100": cifar, "imagefolder": imagefolder}.get(kind or "")
    return module.preprocess(image_size) if module is not None else None


def open_source(spec: str, *, split: str, image_size: int, seed: int = 0,
                samples_per_class: int | None = None,
                augment: bool | None = None) -> ClassDataset:
    """Open one split of the data named by ``spec`` (see the module docstring).

    ``samples_per_class`` is the number of renders per class for ``synthetic`` (default 100
    train, 30 test, 20 calibration) and a cap (the first N per class) for real data, whose
    ``calibration`` split defaults to 20 per class. ``augment`` (random horizontal flips)
    defaults to on for ``train`` only. ``seed`` draws the synthetic classes and the flips.
    """
    if split not in SPLITS:
        raise ArgumentError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise ArgumentError(f"image_size must be an integer of at least 8, got {image_size!r}")
    if samples_per_class is not None and samples_per_class < 1:
        raise ArgumentError(f"samples_per_class must be at least 1, got {samples_per_class}")
    source: Source
    kind, sep, rest = spec.partition(":")
    known = source_kind(spec)
    if known == "synthetic":
        num = SYNTHETIC_CLASSES
        if sep:
            if not rest.isdigit() or int(rest) < 1:
                raise ArgumentError(f"{spec!r}: synthetic:N needs a positive number of classes")
            num = int(rest)
        try:
            source = SyntheticSource(num, split, image_size, seed, samples_per_class, spec)
        except ValueError as e:
            raise ArgumentError(f"{spec!r}: {e}") from None
        samples_per_class = None  # already applied by the renderer
    elif known == "cifar100":
        if not rest:
            raise ArgumentError("cifar100 needs its directory: cifar100:DIR, with DIR the "
                                "extracted cifar-100-python folder")
        source = Cifar100Source(rest, split, image_size, spec)
    elif known == "imagefolder":
        source = ImageFolderSource(spec, split, image_size, spec)
    else:
        raise ArgumentError(f"unknown data source {spec!r}: use {_SPECS}")
    if samples_per_class is None and split == "calibration" and kind != "synthetic":
        samples_per_class = DEFAULT_SAMPLES_PER_CLASS["calibration"]
    indices = None
    if samples_per_class is not None:
        indices = _cap_per_class(source.targets, samples_per_class)
    return ClassDataset(source, augment=split == "train" if augment is None else augment,
                        seed=seed, indices=indices)


def parse_classes(text: str) -> list[int | str]:
    """Split a CLI class list: ``"3,7,apple"`` → ``[3, 7, "apple"]`` (digits become ids)."""
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        raise ArgumentError(f"class list {text!r} has an empty item; write e.g. 3,7,11 or "
                            "apple,bee")
    return [int(t) if t.isdigit() else t for t in items]


def _unknown(item: object, names: Sequence[str]) -> ArgumentError:
    shown = ", ".join(repr(n) for n in names[:3]) + (", …" if len(names) > 3 else "")
    hint = ""
    if isinstance(item, str):
        close = difflib.get_close_matches(item, list(names), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
    return ArgumentError(f"unknown class {item!r}: the data set has classes "
                         f"0..{len(names) - 1}; names like {shown}{hint}")


def resolve_classes(dataset_or_names: ClassDataset | Sequence[str],
                    classes: Sequence[int | str]) -> list[int]:
    """Original class ids of ``classes``, each an id (int or digit string) or a class name.

    >>> resolve_classes(["cat", "dog", "eel"], ["eel", 0, "1"])
    [2, 0, 1]
    """
    names = (dataset_or_names.class_names if isinstance(dataset_or_names, ClassDataset)
             else list(dataset_or_names))
    by_name = {n: i for i, n in enumerate(names)}
    if len(classes) == 0:
        raise ArgumentError("choose at least one class")
    ids: list[int] = []
    for item in classes:
        if isinstance(item, str) and item.strip().isdigit():
            cid = int(item)
            named = by_name.get(item.strip())
            if named is not None and named != cid:
                raise ArgumentError(f"class {item!r} is ambiguous: id {cid} or the class named "
                                    f"{item!r} (id {named}); pass the id as a number")
        elif isinstance(item, str):
            if item not in by_name:
                raise _unknown(item, names)
            cid = by_name[item]
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            cid = int(item)
        else:
            raise ArgumentError(f"a class is an id or a name, got {item!r}")
        if not 0 <= cid < len(names):
            raise _unknown(item, names)
        if cid in ids:
            raise ArgumentError(f"class {cid} ({names[cid]!r}) is chosen twice")
        ids.append(cid)
    return ids


def check_classes_present(dataset: ClassDataset, class_ids: Sequence[int]) -> None:
    """Raise naming every class of ``class_ids`` that has no sample in ``dataset``."""
    counts = np.bincount(dataset.targets, minlength=dataset.num_classes)
    names = dataset.class_names
    missing = [f"class {c} ({names[c]!r}) has no samples in {dataset.spec} "
               f"(split {dataset.split})"
               for c in (_checked_id(c, dataset.num_classes) for c in class_ids) if counts[c] == 0]
    if missing:
        raise ArgumentError("; ".join(missing) + ": choose other classes or add their images")
