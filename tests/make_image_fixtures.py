"""Generate the runtime's image fixtures: small PNG/JPEG/BMP files in runtime/tests/data/images
and, per file, the input the host pipeline makes of it (NAME.expected.npy, float32 (3, H, W)).

    python tests/make_image_fixtures.py [--out runtime/tests/data/images]

The C test test_image.c decodes each file with crisp_image_load under the PREP listed here (and
hard-coded there: keep FIXTURES in step) and compares with NAME.expected.npy: exactly for PNG and
BMP, within 2 steps of 8 bits for JPEG (stb_image and libjpeg round differently). The files are
deterministic (fixed seed); tests/runtime/test_image.py checks the committed expectations still
match crisp_edge.reference.preprocess.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crisp_edge import format as fmt  # noqa: E402
from crisp_edge.reference.preprocess import preprocess_image  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "runtime" / "tests" / "data" / "images"
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# name -> PREP (test_image.c has the same table).
FIXTURES = {
    "photo.png": fmt.Preprocess(12, 12, *IMAGENET, fmt.RESIZE_SHORTER_SIDE, 14),
    "photo.jpg": fmt.Preprocess(12, 12, *IMAGENET, fmt.RESIZE_SHORTER_SIDE, 14),
    "gray16.png": fmt.Preprocess(9, 13, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25),
                                 fmt.RESIZE_STRETCH, 0, fmt.CHANNELS_BGR),
    "rgba.png": fmt.Preprocess(17, 19, *IMAGENET),
    "palette.bmp": fmt.Preprocess(20, 10, *IMAGENET, fmt.RESIZE_STRETCH),
}


def photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / (w - 1), y / (h - 1), (x + y) / (w + h - 2)], -1)
    return np.clip(base * 200 + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)


def images() -> dict[str, bytes]:
    out = {}
    rgb = Image.fromarray(photo(37, 23), "RGB")
    for name, kind, kw in (("photo.png", "PNG", {}), ("photo.jpg", "JPEG", {"quality": 90})):
        buf = io.BytesIO()
        rgb.save(buf, kind, **kw)
        out[name] = buf.getvalue()
    buf = io.BytesIO()
    grey = (np.arange(23 * 31, dtype=np.int32).reshape(23, 31) * 89) % 65536
    Image.fromarray(grey, "I").convert("I;16").save(buf, "PNG")
    out["gray16.png"] = buf.getvalue()
    rgba = np.concatenate([photo(19, 17, 1), photo(19, 17, 2)[:, :, :1]], -1)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    out["rgba.png"] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(photo(15, 21, 3), "RGB").convert("P").save(buf, "BMP")
    out["palette.bmp"] = buf.getvalue()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in images().items():
        (args.out / name).write_bytes(data)
        np.save(args.out / f"{name}.expected.npy", preprocess_image(data, FIXTURES[name]))
        print("wrote", args.out / name)


if __name__ == "__main__":
    main()
