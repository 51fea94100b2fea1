"""Image preprocessing in Python: the spec of a ``.crisp`` file's PREP section (docs/format.md)
and of the runtime's ``crisp_image_decode``, and what the host's image folders train on.

>>> prep = fmt.Preprocess(224, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
...                       fmt.RESIZE_SHORTER_SIDE, 224)          # doctest: +SKIP
>>> x = preprocess_image("cat.jpg", prep)   # (3, 224, 224) float32   # doctest: +SKIP

Decoding and resizing are Pillow's (``convert("RGB")``: grayscale replicated, alpha dropped;
``resize(..., BILINEAR)``, horizontal pass first: :func:`resize_bilinear`); the normalisation
is float32 arithmetic in the runtime's order, so the C runtime matches this function bit for
bit on PNG and BMP (JPEG decoders differ slightly).
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from crisp_edge import format as fmt
from crisp_edge.errors import ArgumentError, CrispIOError, ShapeError

if TYPE_CHECKING:
    from PIL import Image as PILImage

ImageInput = Union[str, "os.PathLike[str]", bytes, np.ndarray, "PILImage.Image"]


def _name(image: Any) -> str:
    return f"image {os.fspath(image)}" if isinstance(image, (str, os.PathLike)) else "image"


# The runtime's CRISP_IMAGE_MAX_SIDE (crisp.h): the largest width or height either decodes.
MAX_SIDE = 8192


def load_rgb(image: ImageInput) -> "PILImage.Image":
    """``image`` (a path, encoded bytes, a PIL image or a uint8 array (H, W[, 1|3|4])) as an RGB
    PIL image. An unreadable or truncated file raises :class:`~crisp_edge.errors.CrispIOError`
    naming it."""
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - Pillow is a host dependency
        raise ImportError("decoding images needs Pillow: pip install pillow") from e
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):
        a = np.asarray(image)
        if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in
                                                            (1, 3, 4)):
            raise ArgumentError(f"an image array must be uint8 (H, W) or (H, W, 1|3|4), got "
                                f"{a.dtype} {a.shape}")
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        return Image.fromarray(np.ascontiguousarray(a)).convert("RGB")
    try:
        source = io.BytesIO(image) if isinstance(image, (bytes, bytearray)) else image
        with Image.open(source) as file:
            # Image.open reads only the header: refuse a huge image before decoding it (a
            # few-KB PNG can claim 65535 x 65535 pixels), as the runtime does.
            if max(file.size) > MAX_SIDE:
                raise CrispIOError(f"cannot read {_name(image)}: it is {file.size[0]}x"
                                   f"{file.size[1]} pixels, more than {MAX_SIDE} on a side")
            if file.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16-bit grayscale: Pillow's convert("RGB") clips the values to 255; keep the
                # high byte as for 16-bit colour (and as the runtime does).
                return Image.fromarray((np.asarray(file, np.uint32) >> 8).astype(np.uint8),
                                       "L").convert("RGB")
            return file.convert("RGB")
    except CrispIOError:
        raise
    except (OSError, Image.DecompressionBombError, MemoryError) as e:
        # OSError includes PIL.UnidentifiedImageError and truncated files
        raise CrispIOError(f"cannot read {_name(image)}: {type(e).__name__}: {e}") from e


def resize_bilinear(rgb: "PILImage.Image", size: tuple[int, int]) -> "PILImage.Image":
    """Pillow's BILINEAR resize to ``size`` (width, height), horizontal pass first.

    Pillow resamples in two passes, each rounding to 8 bits, and newer versions choose the
    order of the passes by the sizes involved, which moves a few pixels by one step. Two
    one-axis resizes fix the order (each is a single pass, the same in every version), so this
    is the runtime's arithmetic bit for bit, whatever Pillow is installed."""
    from PIL import Image

    w, h = rgb.size
    if size[0] != w:
        rgb = rgb.resize((size[0], h), Image.Resampling.BILINEAR)
    if size[1] != h:
        rgb = rgb.resize(size, Image.Resampling.BILINEAR)
    return rgb


def fit(rgb: "PILImage.Image", prep: fmt.Preprocess, name: str = "image") -> np.ndarray:
    """The uint8 (height, width, 3) RGB pixels ``prep.resize`` makes of ``rgb``."""
    w, h = rgb.size
    if prep.resize == fmt.RESIZE_NONE:
        if (w, h) != (prep.width, prep.height):
            raise ShapeError(f"{name}: image is {w}x{h} pixels; the model takes exactly "
                             f"{prep.width}x{prep.height} (its PREP says resize none)")
    elif prep.resize == fmt.RESIZE_STRETCH:
        rgb = resize_bilinear(rgb, (prep.width, prep.height))
    elif prep.resize == fmt.RESIZE_SHORTER_SIDE:
        s = prep.resize_size
        scale = s / min(w, h)
        nw, nh = max(s, round(w * scale)), max(s, round(h * scale))
        left, top = (nw - prep.width) // 2, (nh - prep.height) // 2
        rgb = resize_bilinear(rgb, (nw, nh))
        rgb = rgb.crop((left, top, left + prep.width, top + prep.height))
    else:
        raise ArgumentError(f"PREP: resize is {prep.resize}, expected 0, 1 or 2")
    return np.asarray(rgb, dtype=np.uint8)


def normalize(pixels: np.ndarray, prep: fmt.Preprocess) -> np.ndarray:
    """uint8 (H, W, 3) RGB pixels → float32 (3, H, W): ``(p · scale − mean[c]) / std[c]`` in
    float32, channels in ``prep.channel_order``."""
    if prep.channel_order == fmt.CHANNELS_BGR:
        pixels = pixels[:, :, ::-1]
    x = pixels.transpose(2, 0, 1).astype(np.float32) * np.float32(prep.scale)
    mean = np.asarray(prep.mean, np.float32)[:, None, None]
    std = np.asarray(prep.std, np.float32)[:, None, None]
    return np.ascontiguousarray((x - mean) / std, dtype=np.float32)


def preprocess_image(image: ImageInput, prep: fmt.Preprocess) -> np.ndarray:
    """``image`` (a path, encoded bytes, a PIL image or a uint8 array) as the float32
    ``(3, height, width)`` input ``prep`` describes: decoded to RGB, resized, cropped and
    normalised exactly as the runtime's ``crisp_image_load`` does."""
    return normalize(fit(load_rgb(image), prep, _name(image)), prep)
