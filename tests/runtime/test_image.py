"""Images on the device: the runtime's crisp_image_decode / crisp_image_load against the host
pipeline (crisp_edge.reference.preprocess, Pillow), and its errors."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from crisp_edge import format as fmt
from crisp_edge.reference.preprocess import fit, load_rgb, preprocess_image
from crisp_edge.reference.preprocess import normalize as fmt_normalize
from crisp_edge.runtime import open_library

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _model_bytes(h: int, w: int, prep: fmt.Preprocess | None) -> bytes:
    """A (3,H,W) → (3HW) RESHAPE graph, with ``prep`` in PREP."""
    graph = fmt.Graph([fmt.Value((3, h, w)), fmt.Value((3 * h * w,))], [],
                      [fmt.Op(fmt.OP_RESHAPE, (0,), 1)], 0, 1)
    return fmt.encode_model(fmt.ModelFile(graph, preprocess=prep))


class CModel:
    """A libcrisp model handle, for the image calls the Python binding does not wrap yet."""

    def __init__(self, data: bytes) -> None:
        self.ffi, self.lib = open_library()
        out = self.ffi.new("crisp_model **")
        status = self.lib.crisp_model_load_buffer(data, len(data), out)
        assert status == 0, self.error()
        self.handle = out[0]

    def error(self) -> str:
        return self.ffi.string(self.lib.crisp_last_error()).decode()

    def preprocess(self) -> Any:
        p = self.ffi.new("crisp_preprocess *")
        assert self.lib.crisp_model_get_preprocess(self.handle, p) == 0
        return p

    def decode(self, data: bytes, count: int) -> tuple[int, np.ndarray, str]:
        out = np.full(count, np.nan, np.float32)
        status = self.lib.crisp_image_decode(self.handle, data, len(data),
                                             self.ffi.from_buffer("float[]", out), count)
        return status, out, self.error() if status else ""

    def load(self, path: Path, count: int) -> tuple[int, np.ndarray, str]:
        out = np.full(count, np.nan, np.float32)
        status = self.lib.crisp_image_load(self.handle, str(path).encode(),
                                           self.ffi.from_buffer("float[]", out), count)
        return status, out, self.error() if status else ""

    def close(self) -> None:
        self.lib.crisp_model_free(self.handle)


def _encode(image: Image.Image, kind: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, kind, **kw)
    return buf.getvalue()


def _photo(w: int, h: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """Smooth gradients plus noise: resizing has something to do, JPEG something to keep."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / max(1, w - 1), y / max(1, h - 1), (x + y) / max(1, w + h - 2)], -1)
    rgb = np.clip(base * 200 + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
    rgba = np.concatenate([rgb, rng.integers(0, 256, (h, w, 1), dtype=np.uint8)], -1)
    if mode == "RGBA":
        return Image.fromarray(rgba, "RGBA")
    return Image.fromarray(rgb, "RGB").convert(mode)


def _compare(prep: fmt.Preprocess, data: bytes, max_steps: int) -> int:
    """Decode ``data`` in C and in Python; returns the largest difference in 8-bit steps."""
    m = CModel(_model_bytes(prep.height, prep.width, prep))
    try:
        status, got, err = m.decode(data, 3 * prep.height * prep.width)
    finally:
        m.close()
    assert status == 0, err
    want = preprocess_image(data, prep).reshape(-1)
    std = np.repeat(np.asarray(prep.std, np.float32), prep.height * prep.width)
    steps = np.abs(got - want) * std / np.float32(prep.scale)
    assert steps.max() <= max_steps + 1e-3, f"{steps.max()} 8-bit steps apart"
    if prep.resize != fmt.RESIZE_NONE:
        # Pillow's own one-call resize may order its two passes the other way (newer
        # versions choose by size): still within one step of the runtime.
        from PIL import Image

        direct = load_rgb(data)
        if prep.resize == fmt.RESIZE_STRETCH:
            direct = direct.resize((prep.width, prep.height), Image.Resampling.BILINEAR)
        else:
            w, h = direct.size
            s = prep.resize_size / min(w, h)
            nw, nh = max(prep.resize_size, round(w * s)), max(prep.resize_size, round(h * s))
            left, top = (nw - prep.width) // 2, (nh - prep.height) // 2
            direct = direct.resize((nw, nh), Image.Resampling.BILINEAR).crop(
                (left, top, left + prep.width, top + prep.height))
        pillow = fmt_normalize(np.asarray(direct, np.uint8), prep).reshape(-1)
        assert (np.abs(got - pillow) * std / np.float32(prep.scale)).max() <= max_steps + 1 + 1e-3
    return int(round(float(steps.max())))


SHAPES = [  # (image w, h, model H, W, resize): up, down, non-square, odd sizes
    (37, 23, 16, 16, fmt.RESIZE_SHORTER_SIDE),
    (7, 11, 24, 24, fmt.RESIZE_SHORTER_SIDE),
    (101, 67, 20, 30, fmt.RESIZE_SHORTER_SIDE),
    (13, 200, 9, 9, fmt.RESIZE_SHORTER_SIDE),
    (50, 20, 32, 32, fmt.RESIZE_STRETCH),
    (5, 3, 17, 29, fmt.RESIZE_STRETCH),
    (640, 480, 31, 17, fmt.RESIZE_STRETCH),
    (16, 12, 12, 16, fmt.RESIZE_NONE),
]


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "RGBA", "P"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}-{s[2]}x{s[3]}-r{s[4]}")
def test_png_matches_pillow_exactly(runtime_lib, mode: str, shape: tuple[int, ...]) -> None:
    w, h, H, W, resize = shape
    size = max(H, W) + 3 if resize == fmt.RESIZE_SHORTER_SIDE else 0
    prep = fmt.Preprocess(H, W, *IMAGENET, resize, size,
                          fmt.CHANNELS_BGR if mode == "L" else fmt.CHANNELS_RGB)
    assert _compare(prep, _encode(_photo(w, h, mode), "PNG"), 0) == 0


def test_16_bit_and_palette_png(runtime_lib) -> None:
    grey16 = (np.arange(23 * 31, dtype=np.uint16).reshape(23, 31) * 89)
    image = Image.fromarray(grey16.astype(np.int32), "I").convert("I;16")
    prep = fmt.Preprocess(16, 16, *IMAGENET, fmt.RESIZE_SHORTER_SIDE, 16)
    data = _encode(image, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    _compare(prep, data, 0)
    # 16-bit RGB: Pillow writes none, so the PNG is built by hand; both keep the high byte.
    _compare(prep, _png_rgb16(np.random.default_rng(1).integers(0, 65536, (19, 21, 3))), 0)


def _png_rgb16(a: np.ndarray) -> bytes:
    import struct
    import zlib

    h, w, _ = a.shape
    raw = b"".join(b"\0" + a[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("mode,subsampling", [("RGB", 0), ("RGB", 2), ("L", 0)])
def test_jpeg_close_to_pillow(runtime_lib, mode: str, subsampling: int) -> None:
    """stb_image and libjpeg decode JPEG with different IDCT, chroma upsampling and colour
    rounding, so the pixels differ by a few steps; resizing only averages them."""
    image = _photo(61, 45, mode, seed=3)
    kw = {"subsampling": subsampling} if mode == "RGB" else {}
    data = _encode(image, "JPEG", quality=90, **kw)
    for prep in (fmt.Preprocess(45, 61, *IMAGENET),
                 fmt.Preprocess(24, 24, *IMAGENET, fmt.RESIZE_SHORTER_SIDE, 24),
                 fmt.Preprocess(20, 33, *IMAGENET, fmt.RESIZE_STRETCH)):
        _compare(prep, data, JPEG_STEPS)


JPEG_STEPS = 2


def test_bmp(runtime_lib) -> None:
    prep = fmt.Preprocess(10, 10, *IMAGENET, fmt.RESIZE_SHORTER_SIDE, 12)
    assert _compare(prep, _encode(_photo(15, 21), "BMP"), 0) == 0


def test_get_preprocess_and_no_prep(runtime_lib, tmp_path: Path) -> None:
    prep = fmt.Preprocess(8, 6, (0.1, 0.2, 0.3), (0.5, 0.25, 2.0), fmt.RESIZE_SHORTER_SIDE, 9,
                          fmt.CHANNELS_BGR)
    m = CModel(_model_bytes(8, 6, prep))
    p = m.preprocess()
    assert (p.present, p.channels, p.height, p.width, p.resize, p.resize_size,
            p.channel_order) == (1, 3, 8, 6, 1, 9, 1)
    assert list(p.mean) == list(prep.mean) and list(p.std) == list(prep.std)
    assert p.scale == prep.scale
    status, _, err = m.decode(_encode(_photo(9, 9), "PNG"), 10)
    assert status == 7 and "output has 10 floats; the model takes 144 = (3,8,6)" in err
    m.close()
    bare = CModel(_model_bytes(8, 6, None))
    assert bare.preprocess().present == 0
    status, _, err = bare.decode(_encode(_photo(6, 8), "PNG"), 144)
    assert status == 6 and err.startswith("MODEL: the file stores no preprocessing (PREP)")
    assert "crisp-edge pack" in err and "--mean" in err
    bare.close()
    # Loaded from a file, the message names it.
    path = tmp_path / "bare.crisp"
    path.write_bytes(_model_bytes(8, 6, None))
    ffi, lib = open_library()
    out = ffi.new("crisp_model **")
    assert lib.crisp_model_load_file(str(path).encode(), out) == 0
    buf = np.zeros(144, np.float32)
    assert lib.crisp_image_load(out[0], b"x.png", ffi.from_buffer("float[]", buf), 144) == 6
    assert f"'{path}' stores no preprocessing" in ffi.string(lib.crisp_last_error()).decode()
    lib.crisp_model_free(out[0])


def test_bad_images_are_named_errors(runtime_lib, tmp_path: Path) -> None:
    prep = fmt.Preprocess(8, 8, *IMAGENET, fmt.RESIZE_STRETCH)
    m = CModel(_model_bytes(8, 8, prep))
    png = _encode(_photo(20, 20), "PNG")
    jpeg = _encode(_photo(20, 20), "JPEG")
    for n in (0, 5, 8, 30, len(png) // 2, len(png) - 13, len(png) - 1):
        status, _, err = m.decode(png[:n], 192)
        assert status == 3, (n, err)
        assert err.startswith("image: "), err
    for n in (3, 50, len(jpeg) // 2, len(jpeg) - 2):
        status, _, err = m.decode(jpeg[:n], 192)
        assert status == 3 and ("truncated" in err or "JPEG" in err), (n, err)
    flipped = bytearray(png)
    flipped[len(png) // 2] ^= 0x40
    status, _, err = m.decode(bytes(flipped), 192)
    assert status == 3 and "CRC mismatch" in err, err
    status, _, err = m.decode(b"GIF89a" + bytes(20), 192)
    assert status == 3 and "not a PNG, JPEG or BMP image" in err
    cut = tmp_path / "cut.png"
    cut.write_bytes(png[: len(png) // 2])
    status, _, err = m.load(cut, 192)
    assert status == 3 and f"image '{cut}'" in err and "truncated" in err, err
    status, _, err = m.load(tmp_path / "missing.png", 192)
    assert status == 2 and "missing.png" in err and "No such file" in err
    status, _, err = m.load(tmp_path, 192)
    assert status == 2 and "not a readable regular file" in err
    good = tmp_path / "good.png"
    good.write_bytes(png)
    status, got, err = m.load(good, 192)
    assert status == 0, err
    np.testing.assert_array_equal(got, preprocess_image(good, prep).reshape(-1))
    m.close()


def test_size_errors(runtime_lib) -> None:
    none = CModel(_model_bytes(8, 8, fmt.Preprocess(8, 8, *IMAGENET)))
    status, _, err = none.decode(_encode(_photo(9, 8), "PNG"), 192)
    assert status == 7 and "image is 9x8 pixels; the model takes exactly 8x8" in err
    none.close()
    big = CModel(_model_bytes(8, 8, fmt.Preprocess(8, 8, *IMAGENET, fmt.RESIZE_STRETCH)))
    huge = _png_header_only(9000, 10)
    status, _, err = big.decode(huge, 192)
    assert status == 3 and ("9000x10" in err or "too large" in err), err
    big.close()


def _png_header_only(w: int, h: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    raw = zlib.compress(b"\0" * (w * 3 + 1) * h)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def test_reference_fit_rejects_wrong_size_under_none() -> None:
    from crisp_edge.errors import ShapeError

    with pytest.raises(ShapeError, match="image is 9x8 pixels; the model takes exactly 8x8"):
        fit(load_rgb(np.zeros((8, 9, 3), np.uint8)), fmt.Preprocess(8, 8, *IMAGENET))


def test_committed_image_fixtures_match_the_reference() -> None:
    """runtime/tests/data/images (test_image.c's expectations) against the reference today, so
    the C test cannot drift from the host pipeline."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "make_image_fixtures.py"
    spec = importlib.util.spec_from_file_location("make_image_fixtures", script)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, prep in mod.FIXTURES.items():
        path = mod.DEFAULT_OUT / name
        np.testing.assert_array_equal(np.load(f"{path}.expected.npy"),
                                      preprocess_image(path, prep), err_msg=name)
