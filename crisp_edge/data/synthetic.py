"""The built-in procedural ``synthetic`` data set.

No data set can be downloaded here (or on many boards), yet the demo, the tests and the
accuracy benchmarks need images whose classes really differ, so that accuracy means
something. Each synthetic class is a *prototype* drawn from the seed: a foreground and a
background colour, a grating texture (orientation, spatial frequency) and a shape (disk,
square, ring, cross, diamond, bar). A sample renders its class's prototype with random
position, scale, rotation jitter, phase, brightness/contrast, a distractor shape and pixel
noise, so classes overlap a little and a classifier has to learn colour, texture and shape
together.

Every sample is a pure function of (seed, split, class id, index in the class), so one image
can be rendered on its own (:func:`render_synthetic_sample`, used for large image sizes that
are not worth holding in memory) and equals the same image in a batch from
:func:`make_synthetic`. Class ``c`` is the same whatever the number of classes.

>>> x, y = make_synthetic(num_classes=10, samples_per_class=4, image_size=32, seed=0)
>>> x.shape, x.dtype, y.shape
((40, 3, 32, 32), dtype('float32'), (40,))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from crisp_edge import format as fmt

if TYPE_CHECKING:
    import torch

SHAPES = ("disk", "square", "ring", "cross", "diamond", "bar")
COLOURS = {
    "red": (0.85, 0.15, 0.15),
    "green": (0.15, 0.75, 0.2),
    "blue": (0.15, 0.3, 0.9),
    "yellow": (0.9, 0.85, 0.15),
    "magenta": (0.85, 0.2, 0.8),
    "cyan": (0.15, 0.8, 0.85),
    "orange": (0.95, 0.55, 0.1),
    "white": (0.92, 0.92, 0.92),
}
_COLOUR_VALUES = np.array(list(COLOURS.values()), dtype=np.float32)
# Per-channel statistics of the rendered images, used to standardise them so a
# model sees zero-mean, unit-variance inputs as with ImageNet normalisation.
MEAN = (0.47, 0.45, 0.44)
STD = (0.27, 0.26, 0.27)
_MEAN = np.array(MEAN, dtype=np.float32)[:, None, None]
_STD = np.array(STD, dtype=np.float32)[:, None, None]

def preprocess(image_size: int) -> fmt.Preprocess:
    """The PREP of a model trained on this source: renders are made at the model's input size,
    so an image (e.g. a render saved as PNG) must be ``image_size`` square (resize none)."""
    return fmt.Preprocess(image_size, image_size, MEAN, STD)


# Split codes keep the samples of different splits disjoint for the same seed.
SPLITS = {"train": 1, "test": 2, "calibration": 3}


@dataclass(frozen=True)
class ClassPrototype:
    """What makes one synthetic class recognisable."""

    name: str
    foreground: tuple[float, float, float]
    background: tuple[float, float, float]
    shape: str
    orientation: float  # radians, of the background grating
    frequency: float  # grating cycles across the image
    size: float  # shape radius as a fraction of the half-width


def class_prototypes(num_classes: int, seed: int = 0) -> list[ClassPrototype]:
    """The prototypes of ``num_classes`` classes; the same seed always gives the same ones,
    and class ``c`` does not depend on ``num_classes``."""
    return list(_prototypes(num_classes, seed))


@lru_cache(maxsize=16)
def _prototypes(num_classes: int, seed: int) -> tuple[ClassPrototype, ...]:
    if num_classes < 1:
        raise ValueError(f"synthetic data needs at least 1 class, got {num_classes}")
    rng = np.random.default_rng([seed, 0xC1A55])
    names = list(COLOURS)
    protos = []
    for c in range(num_classes):
        fg, bg = rng.choice(len(names), size=2, replace=False)
        cycled = c < len(SHAPES) * 2  # the first classes cover every shape twice
        shape = SHAPES[c % len(SHAPES)] if cycled else SHAPES[rng.integers(len(SHAPES))]
        protos.append(
            ClassPrototype(
                name=f"{names[fg]}-{shape}-{c}",
                foreground=COLOURS[names[fg]],
                background=tuple(  # type: ignore[arg-type]
                    0.35 * np.array(COLOURS[names[bg]]) + 0.25),
                shape=shape,
                orientation=float(rng.uniform(0, np.pi)),
                frequency=float(rng.uniform(1.5, 6.0)),
                size=float(rng.uniform(0.35, 0.6)),
            )
        )
    return tuple(protos)


def class_names(num_classes: int, seed: int = 0) -> list[str]:
    """Human-readable names of the synthetic classes, e.g. ``red-disk-0``."""
    return [p.name for p in _prototypes(num_classes, seed)]


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Soft 0..1 mask of ``shape`` in rotated, centred coordinates (u, v), radius r."""
    edge = 0.08  # soft edges: no aliasing artefacts that would be a trivial cue

    def inside(d: np.ndarray) -> np.ndarray:  # d < 0 inside, > 0 outside
        return np.clip(0.5 - d / edge, 0.0, 1.0)

    if shape == "disk":
        return inside(np.hypot(u, v) - r)
    if shape == "square":
        return inside(np.maximum(abs(u), abs(v)) - r * 0.85)
    if shape == "ring":
        return inside(abs(np.hypot(u, v) - r * 0.8) - r * 0.22)
    if shape == "cross":
        arm = np.minimum(np.maximum(abs(u) - r * 0.28, abs(v) - r),
                         np.maximum(abs(v) - r * 0.28, abs(u) - r))
        return inside(arm)
    if shape == "diamond":
        return inside(abs(u) + abs(v) - r * 1.1)
    if shape == "bar":
        return inside(np.maximum(abs(u) - r * 1.1, abs(v) - r * 0.3))
    raise ValueError(f"unknown synthetic shape {shape!r}")


@lru_cache(maxsize=4)
def _grid(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    axis = np.linspace(-1.0, 1.0, image_size, dtype=np.float32)
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    return yy, xx


def _check(split: str, image_size: int, seed: int) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8 pixels, got {image_size}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")


def _render(p: ClassPrototype, rng: np.random.Generator, image_size: int) -> np.ndarray:
    """One standardised (3, S, S) float32 image of prototype ``p``; all randomness from rng."""
    yy, xx = _grid(image_size)
    cx, cy, rot, scale, phase, dx, dy, present, contrast, bright = rng.random(10)
    jitter = rng.normal(0.0, 1.0, 4)
    cx, cy = 0.7 * cx - 0.35, 0.7 * cy - 0.35
    rot, scale, phase = rot - 0.5, 0.6 + 0.7 * scale, 2 * np.pi * phase
    theta = p.orientation + 0.35 * jitter[0]
    u0, v0 = xx - np.float32(cx), yy - np.float32(cy)
    c, s = np.float32(np.cos(rot)), np.float32(np.sin(rot))
    mask = _shape_mask(p.shape, u0 * c + v0 * s, -u0 * s + v0 * c, float(p.size * scale))
    proj = xx * np.float32(np.cos(theta)) + yy * np.float32(np.sin(theta))
    grating = 0.5 + 0.5 * np.sin(np.float32(np.pi * p.frequency) * proj + np.float32(phase))
    bg = np.asarray(p.background, np.float32)[:, None, None] * (0.6 + 0.8 * grating)
    # Colour jitter: the class colour is a tendency, not an exact value.
    fg = (np.asarray(p.foreground) + 0.12 * jitter[1:]).astype(np.float32)[:, None, None]
    # A distractor in most samples: a smaller shape of a random colour and kind beneath the
    # class's own shape, so that colour or shape alone is not a perfect cue.
    dshape = SHAPES[rng.integers(len(SHAPES))]
    dcol = _COLOUR_VALUES[rng.integers(len(COLOURS))][:, None, None]
    dx, dy = np.float32(1.2 * dx - 0.6), np.float32(1.2 * dy - 0.6)
    dmask = _shape_mask(dshape, xx - dx, yy - dy, 0.32)
    dmask = dmask * np.float32(present < 0.7)
    img = mask * fg + (1.0 - mask) * (dmask * dcol + (1.0 - dmask) * bg)
    img = (img - 0.5) * np.float32(0.7 + 0.6 * contrast) + np.float32(0.5 + 0.24 * bright - 0.12)
    img += np.float32(0.18) * rng.standard_normal(img.shape, dtype=np.float32)
    np.clip(img, 0.0, 1.0, out=img)
    return (img - _MEAN) / _STD


def render_synthetic_sample(class_id: int, index: int, image_size: int = 32, seed: int = 0,
                            split: str = "train") -> np.ndarray:
    """Sample ``index`` of class ``class_id``: float32 ``(3, image_size, image_size)``,
    standardised; equal to the same sample in :func:`make_synthetic`'s output."""
    _check(split, image_size, seed)
    if class_id < 0 or index < 0:
        raise ValueError(f"class id and index must be non-negative, got {class_id}, {index}")
    proto = _prototypes(class_id + 1, seed)[class_id]
    return _render(proto, np.random.default_rng([seed, SPLITS[split], class_id, index]), image_size)


def make_synthetic(
    num_classes: int = 10,
    samples_per_class: int = 100,
    image_size: int = 32,
    seed: int = 0,
    split: str = "train",
    classes: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render a class-balanced synthetic set.

    Returns ``(images, labels)``: float32 ``(N, 3, image_size, image_size)`` standardised per
    channel, int64 labels in ``range(num_classes)``, class by class. ``classes`` restricts the
    set to those class ids (labels keep their original ids). Deterministic in (seed, split).
    """
    _check(split, image_size, seed)
    protos = _prototypes(num_classes, seed)
    wanted = list(range(num_classes)) if classes is None else [int(c) for c in classes]
    for c in wanted:
        if not 0 <= c < num_classes:
            raise ValueError(f"class {c} is not in the synthetic set of {num_classes} classes")
    n = samples_per_class
    images = np.empty((len(wanted) * n, 3, image_size, image_size), np.float32)
    for i, c in enumerate(wanted):
        for k in range(n):
            rng = np.random.default_rng([seed, SPLITS[split], c, k])
            images[i * n + k] = _render(protos[c], rng, image_size)
    labels = np.repeat(np.array(wanted, dtype=np.int64), n)
    return images, labels


# Up to this many bytes of rendered images are held in memory (100 classes × 100 samples at
# 32×32 is 123 MB); larger sets (e.g. 224×224) render each sample when it is read.
EAGER_BYTES = 256 << 20
DEFAULT_SAMPLES_PER_CLASS = {"train": 100, "test": 30, "calibration": 20}


class SyntheticSource:
    """One split of the synthetic set, rendered up front when small, else sample by sample."""

    def __init__(self, num_classes: int, split: str, image_size: int, seed: int,
                 samples_per_class: int | None, spec: str) -> None:
        _check(split, image_size, seed)
        n = DEFAULT_SAMPLES_PER_CLASS[split] if samples_per_class is None else samples_per_class
        if n < 1:
            raise ValueError(f"samples_per_class must be at least 1, got {n}")
        self.class_names = class_names(num_classes, seed)
        self.targets = np.repeat(np.arange(num_classes, dtype=np.int64), n)
        self.spec, self.split = spec, split
        self._n, self._size, self._seed = n, image_size, seed
        self._images: np.ndarray | None = None
        if len(self.targets) * 3 * image_size * image_size * 4 <= EAGER_BYTES:
            self._images = make_synthetic(num_classes, n, image_size, seed, split)[0]

    @property
    def eager(self) -> bool:
        """Whether every image was rendered up front."""
        return self._images is not None

    def load(self, index: int) -> torch.Tensor:
        import torch

        if self._images is not None:
            return torch.from_numpy(self._images[index].copy())  # callers may write to it
        c, k = divmod(index, self._n)
        return torch.from_numpy(render_synthetic_sample(c, k, self._size, self._seed, self.split))
