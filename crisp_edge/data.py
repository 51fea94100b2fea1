"""Data sources. For now: the built-in procedural ``synthetic`` data set.

No data set can be downloaded here (or on many boards), yet the demo, the tests and the
accuracy benchmarks need images whose classes really differ, so that accuracy means
something. Each synthetic class is a *prototype* drawn from the seed: a foreground and a
background colour, a grating texture (orientation, spatial frequency) and a shape (disk,
square, ring, cross, diamond, bar). A sample renders its class's prototype with random
position, scale, rotation jitter, phase, brightness/contrast and pixel noise, so classes
overlap a little and a classifier has to learn colour, texture and shape together.

>>> x, y = make_synthetic(num_classes=10, samples_per_class=4, image_size=32, seed=0)
>>> x.shape, x.dtype, y.shape
((40, 3, 32, 32), dtype('float32'), (40,))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
# Per-channel statistics of the rendered images, used to standardise them so a
# model sees zero-mean, unit-variance inputs as with ImageNet normalisation.
_MEAN = np.array([0.47, 0.45, 0.44], dtype=np.float32)
_STD = np.array([0.27, 0.26, 0.27], dtype=np.float32)

# Split offsets keep train and test samples disjoint for the same seed.
_SPLIT_SEED = {"train": 1, "test": 2, "calibration": 3}


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
    """The prototypes of ``num_classes`` classes; the same seed always gives the same ones."""
    if num_classes < 1:
        raise ValueError(f"synthetic data needs at least 1 class, got {num_classes}")
    rng = np.random.default_rng([seed, 0xC1A55])
    names = list(COLOURS)
    protos = []
    for c in range(num_classes):
        fg, bg = rng.choice(len(names), size=2, replace=False)
        shape = SHAPES[c % len(SHAPES)] if c < len(SHAPES) * 2 else SHAPES[rng.integers(len(SHAPES))]
        protos.append(
            ClassPrototype(
                name=f"{names[fg]}-{shape}-{c}",
                foreground=COLOURS[names[fg]],
                background=tuple(0.35 * np.array(COLOURS[names[bg]]) + 0.25),  # type: ignore[arg-type]
                shape=shape,
                orientation=float(rng.uniform(0, np.pi)),
                frequency=float(rng.uniform(1.5, 6.0)),
                size=float(rng.uniform(0.35, 0.6)),
            )
        )
    return protos


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
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
        arm = np.minimum(np.maximum(abs(u) - r * 0.28, abs(v) - r), np.maximum(abs(v) - r * 0.28, abs(u) - r))
        return inside(arm)
    if shape == "diamond":
        return inside(abs(u) + abs(v) - r * 1.1)
    if shape == "bar":
        return inside(np.maximum(abs(u) - r * 1.1, abs(v) - r * 0.3))
    raise ValueError(f"unknown synthetic shape {shape!r}")


def make_synthetic(
    num_classes: int = 10,
    samples_per_class: int = 100,
    image_size: int = 32,
    seed: int = 0,
    split: str = "train",
    classes: list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render a class-balanced synthetic set.

    Returns ``(images, labels)``: float32 ``(N, 3, image_size, image_size)`` standardised per
    channel, int64 labels in ``range(num_classes)``. ``classes`` restricts the set to those
    class ids (labels keep their original ids). Deterministic in (seed, split).
    """
    if split not in _SPLIT_SEED:
        raise ValueError(f"split must be one of {sorted(_SPLIT_SEED)}, got {split!r}")
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8 pixels, got {image_size}")
    protos = class_prototypes(num_classes, seed)
    wanted = list(range(num_classes)) if classes is None else list(classes)
    for c in wanted:
        if not 0 <= c < num_classes:
            raise ValueError(f"class {c} is not in the synthetic set of {num_classes} classes")
    rng = np.random.default_rng([seed, _SPLIT_SEED[split]])
    axis = np.linspace(-1.0, 1.0, image_size, dtype=np.float32)
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    images = np.empty((len(wanted) * samples_per_class, 3, image_size, image_size), np.float32)
    labels = np.repeat(np.array(wanted, dtype=np.int64), samples_per_class)
    n = samples_per_class
    for i, c in enumerate(wanted):
        p = protos[c]
        # Per-sample jitter, vectorised over the n samples of this class.
        cx, cy = rng.uniform(-0.35, 0.35, (2, n, 1, 1)).astype(np.float32)
        rot = rng.uniform(-0.5, 0.5, (n, 1, 1)).astype(np.float32)
        scale = rng.uniform(0.6, 1.3, (n, 1, 1)).astype(np.float32)
        phase = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
        theta = p.orientation + rng.normal(0, 0.35, (n, 1, 1)).astype(np.float32)
        u0, v0 = xx - cx, yy - cy
        u = u0 * np.cos(rot) + v0 * np.sin(rot)
        v = -u0 * np.sin(rot) + v0 * np.cos(rot)
        mask = _shape_mask(p.shape, u, v, p.size * scale)[:, None]
        proj = xx * np.cos(theta) + yy * np.sin(theta)
        grating = 0.5 + 0.5 * np.sin(np.pi * p.frequency * proj + phase)[:, None]
        bg = np.asarray(p.background, np.float32)[None, :, None, None] * (0.6 + 0.8 * grating)
        # Colour jitter: the class colour is a tendency, not an exact value.
        fg = np.asarray(p.foreground, np.float32)[None, :, None, None] + rng.normal(0, 0.12, (n, 3, 1, 1)).astype(np.float32)
        img = mask * fg + (1.0 - mask) * bg
        # A distractor in most samples: a smaller shape of a random colour
        # and kind, beneath the class's own shape, so colour or shape alone is
        # not a perfect cue.
        dshape = SHAPES[rng.integers(len(SHAPES))]
        dcol = np.asarray(list(COLOURS.values())[rng.integers(len(COLOURS))], np.float32)
        dx, dy = rng.uniform(-0.6, 0.6, (2, n, 1, 1)).astype(np.float32)
        present = (rng.uniform(size=(n, 1, 1, 1)) < 0.7).astype(np.float32)
        dmask = _shape_mask(dshape, xx - dx, yy - dy, np.float32(0.32))[:, None] * present
        img = mask * fg + (1.0 - mask) * (dmask * dcol[None, :, None, None] + (1.0 - dmask) * bg)
        contrast = rng.uniform(0.7, 1.3, (n, 1, 1, 1)).astype(np.float32)
        bright = rng.uniform(-0.12, 0.12, (n, 1, 1, 1)).astype(np.float32)
        img = (img - 0.5) * contrast + 0.5 + bright
        img += rng.normal(0, 0.18, img.shape).astype(np.float32)
        images[i * n : (i + 1) * n] = np.clip(img, 0.0, 1.0)
    images -= _MEAN[None, :, None, None]
    images /= _STD[None, :, None, None]
    return images, labels


def class_names(num_classes: int, seed: int = 0) -> list[str]:
    """Human-readable names of the synthetic classes, e.g. ``red-disk-0``."""
    return [p.name for p in class_prototypes(num_classes, seed)]
