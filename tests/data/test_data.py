"""Data sources on small data generated here: a fake CIFAR-100 python folder in the real pickle
format, image folder trees written with Pillow, and the procedural synthetic set."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from crisp_edge.data import sources as data
from crisp_edge.data.sources import (
    check_classes_present,
    make_synthetic,
    open_source,
    parse_classes,
    render_synthetic_sample,
    resolve_classes,
)
from crisp_edge.data import cifar, imagefolder, synthetic

CIFAR_NAMES = ["apple", "aquarium_fish", "baby", *(f"class_{i:02d}" for i in range(3, 99)), "worm"]
IMAGENET_MEAN = np.array(imagefolder.MEAN, np.float32)[:, None, None]
IMAGENET_STD = np.array(imagefolder.STD, np.float32)[:, None, None]


def _cifar_image(label: int, k: int) -> np.ndarray:
    """A (3, 32, 32) uint8 image that encodes its class and index: R = label, G = 100 + k,
    B = a ramp along the width (checks the CHW, row-major decoding)."""
    img = np.empty((3, 32, 32), np.uint8)
    img[0], img[1] = label, 100 + k
    img[2] = np.arange(32, dtype=np.uint8)[None, :] * 8
    return img


def _write_cifar(root: Path, per_class: int = 3, protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    """CIFAR-100's python layout; the ``test`` split has no sample of the last class."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for split, classes in (("train", range(100)), ("test", range(99))):
        labels = [c for k in range(per_class) for c in classes]  # interleaved, as the real files
        ks = [k for k in range(per_class) for _ in classes]
        images = np.stack([_cifar_image(c, k).reshape(-1) for c, k in zip(labels, ks, strict=True)])
        entry = {b"filenames": [b"x.png"] * len(labels), b"fine_labels": labels,
                 b"coarse_labels": [c // 5 for c in labels], b"data": images}
        (folder / split).write_bytes(pickle.dumps(entry, protocol=protocol))
    meta = {b"fine_label_names": [n.encode() for n in CIFAR_NAMES],
            b"coarse_label_names": [f"super_{i}".encode() for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return folder


@pytest.fixture
def cifar_dir(tmp_path: Path) -> Path:
    return _write_cifar(tmp_path)


def _save(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


COLOURS = {"cat": (250, 10, 10), "dog": (10, 250, 10), "eel": (10, 10, 250)}


@pytest.fixture
def flat_folder(tmp_path: Path) -> Path:
    root = tmp_path / "flat"
    for name, colour in COLOURS.items():
        for k in range(10):
            _save(root / name / f"img{k:02d}.{'png' if k % 2 else 'jpg'}", colour)
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


# ----------------------------------------------------------------------------- CIFAR-100


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar_shapes_labels_and_pixels(tmp_path: Path, protocol: int) -> None:
    folder = _write_cifar(tmp_path, protocol=protocol)
    ds = open_source(f"cifar100:{folder}", split="train", image_size=32)
    assert len(ds) == 300 and ds.num_classes == 100 and ds.class_names == CIFAR_NAMES
    assert ds.targets.dtype == np.int64 and sorted(set(ds.targets.tolist())) == list(range(100))
    assert ds.augment  # on by default for train; off here to compare pixels
    ds.augment = False
    x, y = ds[101]  # second image of class 1
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and int(y) == 1
    mean = np.array(cifar.MEAN, np.float32)[:, None, None]
    std = np.array(cifar.STD, np.float32)[:, None, None]
    expected = (_cifar_image(1, 1).astype(np.float32) / 255 - mean) / std
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-5)


def test_cifar_accepts_parent_folder_and_resizes(cifar_dir: Path) -> None:
    ds = open_source(f"cifar100:{cifar_dir.parent}", split="test", image_size=64)
    assert len(ds) == 3 * 99 and ds.split == "test" and not ds.augment
    x, y = ds[5]
    assert x.shape == (3, 64, 64) and int(y) == 5
    # Constant channels stay constant under bilinear resizing.
    assert float(x[0].std()) < 1e-5 and float(x[1].std()) < 1e-5


def test_cifar_calibration_caps_per_class(cifar_dir: Path) -> None:
    cal = open_source(f"cifar100:{cifar_dir}", split="calibration", image_size=32,
                      samples_per_class=2)
    assert len(cal) == 200 and np.all(np.bincount(cal.targets) == 2) and not cal.augment
    # The first two samples of each class, from the training pickle.
    assert int(round(float(cal[150][0][1, 0, 0] * cifar.STD[1] + cifar.MEAN[1]) * 255)) == 101
    assert len(open_source(f"cifar100:{cifar_dir}", split="calibration", image_size=32)) == 300


def test_cifar_class_without_samples(cifar_dir: Path) -> None:
    spec = f"cifar100:{cifar_dir}"
    test = open_source(spec, split="test", image_size=32)
    check_classes_present(test, [0, 98])
    with pytest.raises(ValueError) as err:
        check_classes_present(test, [3, 99])
    assert f"class 99 ('worm') has no samples in {spec} (split test)" in str(err.value)
    assert "class 3" not in str(err.value)


def test_cifar_bad_inputs(tmp_path: Path, cifar_dir: Path) -> None:
    with pytest.raises(ValueError, match="does-not-exist.*does not exist"):
        open_source(f"cifar100:{tmp_path / 'does-not-exist'}", split="train", image_size=32)
    with pytest.raises(ValueError, match="needs its directory"):
        open_source("cifar100:", split="train", image_size=32)
    train = cifar_dir / "train"
    train.write_bytes(train.read_bytes()[:500])  # truncated download
    with pytest.raises(ValueError, match=f"{train}.*not a CIFAR-100 python pickle"):
        open_source(f"cifar100:{cifar_dir}", split="train", image_size=32)
    # A pickle that would run code is refused, not executed.
    (cifar_dir / "meta").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(ValueError, match="refusing to load os.system"):
        open_source(f"cifar100:{cifar_dir}", split="test", image_size=32)
    (cifar_dir / "meta").unlink()
    with pytest.raises(ValueError, match="meta is missing"):
        open_source(f"cifar100:{cifar_dir}", split="test", image_size=32)


# ---------------------------------------------------------------------------- image folders


def test_flat_image_folder_splits_deterministically(flat_folder: Path) -> None:
    train = open_source(str(flat_folder), split="train", image_size=24)
    test = open_source(str(flat_folder), split="test", image_size=24)
    assert train.class_names == test.class_names == ["cat", "dog", "eel"]
    assert np.all(np.bincount(train.targets) == 8) and np.all(np.bincount(test.targets) == 2)
    train_files, test_files = set(train.source.files), set(test.source.files)
    assert not train_files & test_files
    assert len(train_files | test_files) == 30  # every image, and notes.txt ignored
    assert open_source(str(flat_folder), split="test", image_size=24).source.files \
        == test.source.files
    for i in range(len(test)):
        x, y = test[i]
        assert x.shape == (3, 24, 24) and x.dtype == torch.float32
        assert test.source.files[i].parent.name == test.class_names[int(y)]


def test_image_folder_pixels_are_rgb_and_imagenet_normalised(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    _save(root / "red" / "a.png", (255, 0, 0), size=(50, 20))  # non-square: resize + crop
    (root / "grey").mkdir()
    Image.new("L", (16, 16), 128).save(root / "grey" / "b.png")  # greyscale: converted to RGB
    ds = open_source(str(root), split="train", image_size=32, augment=False)
    assert ds.class_names == ["grey", "red"]
    x_grey, _ = ds[0]
    x_red, y_red = ds[1]
    assert x_red.shape == (3, 32, 32) and int(y_red) == 1
    red = (np.array([1.0, 0.0, 0.0], np.float32)[:, None, None] - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(x_red.numpy(), np.broadcast_to(red, (3, 32, 32)), atol=1e-5)
    grey = (np.full((3, 1, 1), 128 / 255, np.float32) - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(x_grey.numpy(), np.broadcast_to(grey, (3, 32, 32)), atol=1e-5)


def test_split_image_folder(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    for k in range(3):
        _save(root / "train" / "ant" / f"{k}.png", (200, 0, 0))
        _save(root / "train" / "bee" / f"{k}.jpeg", (0, 200, 0))
    _save(root / "val" / "ant" / "v.bmp", (200, 0, 0))
    _save(root / "val" / "cow" / "v.webp", (0, 0, 200))
    train = open_source(str(root), split="train", image_size=16)
    val = open_source(str(root), split="test", image_size=16)
    # Ids are shared between splits: the union of class folders, sorted.
    assert train.class_names == val.class_names == ["ant", "bee", "cow"]
    assert train.targets.tolist() == [0, 0, 0, 1, 1, 1] and val.targets.tolist() == [0, 2]
    assert int(val[1][1]) == 2 and val[1][0].shape == (3, 16, 16)
    with pytest.raises(ValueError, match=r"class 2 \('cow'\) has no samples .*split train"):
        check_classes_present(train, resolve_classes(train, ["ant", "cow"]))
    # A test/ folder wins over val/ for split "test".
    _save(root / "test" / "bee" / "t.png", (0, 200, 0))
    assert open_source(str(root), split="test", image_size=16).targets.tolist() == [1]


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nowhere.*does not exist"):
        open_source(str(tmp_path / "nowhere"), split="train", image_size=32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class folders"):
        open_source(str(tmp_path / "empty"), split="train", image_size=32)
    (tmp_path / "empty" / "cat").mkdir()
    (tmp_path / "empty" / "cat" / "readme.md").write_text("x")
    with pytest.raises(ValueError, match="no images"):
        open_source(str(tmp_path / "empty"), split="train", image_size=32)
    _save(tmp_path / "only_train" / "train" / "cat" / "a.png", (1, 2, 3))
    with pytest.raises(ValueError, match="neither test/ nor val/"):
        open_source(str(tmp_path / "only_train"), split="test", image_size=32)
    bad = tmp_path / "bad" / "cat" / "broken.png"
    _save(bad, (1, 2, 3))
    bad.write_bytes(b"\x89PNG not really")
    ds = open_source(str(tmp_path / "bad"), split="train", image_size=32)
    with pytest.raises(OSError, match=f"cannot read image {bad}"):
        ds[0]
    with pytest.raises(ValueError, match="unknown data source 'cifar10:"):
        open_source("cifar10:/data", split="train", image_size=32)


def test_image_folder_bounds_the_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14, finding 6: a small file claiming a huge image is refused from its header, and
    Pillow's decompression-bomb and memory errors are the same named CrispIOError, not a
    crash of the data loader."""
    from crisp_edge.errors import CrispIOError

    wide = tmp_path / "wide" / "cat" / "wide.png"
    wide.parent.mkdir(parents=True)
    Image.new("RGB", (8193, 1)).save(wide)
    assert wide.stat().st_size < 1000
    ds = open_source(str(tmp_path / "wide"), split="train", image_size=32)
    with pytest.raises(CrispIOError, match=r"wide\.png: it is 8193x1 pixels, more than 8192"):
        ds[0]
    bomb = tmp_path / "bomb" / "cat" / "bomb.png"
    _save(bomb, (1, 2, 3))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # every image is now a "bomb"
    ds = open_source(str(tmp_path / "bomb"), split="train", image_size=32)
    with pytest.raises(CrispIOError, match="bomb.png: DecompressionBombError"):
        ds[0]


# -------------------------------------------------------------------------------- synthetic


def test_synthetic_spec_and_defaults() -> None:
    assert open_source("synthetic:2", split="train", image_size=16).targets.tolist() \
        == [0] * 100 + [1] * 100
    assert len(open_source("synthetic:2", split="test", image_size=16)) == 60
    assert len(open_source("synthetic:2", split="calibration", image_size=16)) == 40
    ds = open_source("synthetic", split="test", image_size=8, samples_per_class=1)
    assert ds.num_classes == 100 and ds.class_names == data.class_names(100)
    for bad in ("synthetic:0", "synthetic:x", "synthetic:"):
        with pytest.raises(ValueError, match="positive number of classes"):
            open_source(bad, split="train", image_size=32)
    with pytest.raises(ValueError, match="split must be one of"):
        open_source("synthetic", split="val", image_size=32)
    with pytest.raises(ValueError, match="image_size"):
        open_source("synthetic", split="train", image_size=4)


def test_synthetic_is_deterministic_by_seed() -> None:
    a = open_source("synthetic:3", split="train", image_size=16, seed=5, samples_per_class=4)
    b = open_source("synthetic:3", split="train", image_size=16, seed=5, samples_per_class=4)
    c = open_source("synthetic:3", split="train", image_size=16, seed=6, samples_per_class=4)
    a.augment = b.augment = c.augment = False
    assert all(torch.equal(a[i][0], b[i][0]) for i in range(len(a)))
    assert not torch.equal(a[0][0], c[0][0])


def test_synthetic_train_and_test_are_disjoint() -> None:
    x_train, _ = make_synthetic(5, 40, 16, seed=0, split="train")
    x_test, _ = make_synthetic(5, 40, 16, seed=0, split="test")
    seen = {img.tobytes() for img in x_train}
    assert not any(img.tobytes() in seen for img in x_test)
    assert len(seen) == len(x_train)


def test_lazy_224_renders_equal_eager(monkeypatch) -> None:
    monkeypatch.setattr(synthetic, "EAGER_BYTES", 0)
    lazy = open_source("synthetic:4", split="test", image_size=224, seed=3, samples_per_class=3)
    assert not lazy.source.eager
    eager_x, eager_y = make_synthetic(4, 3, 224, seed=3, split="test", classes=[2])
    for k in range(3):
        x, y = lazy[2 * 3 + k]
        assert int(y) == 2 == eager_y[k]
        np.testing.assert_array_equal(x.numpy(), eager_x[k])
    np.testing.assert_array_equal(render_synthetic_sample(2, 1, 224, 3, "test"), eager_x[1])


def test_synthetic_classes_do_not_depend_on_class_count() -> None:
    x10, _ = make_synthetic(10, 2, 16, classes=[4])
    x50, _ = make_synthetic(50, 2, 16, classes=[4])
    np.testing.assert_array_equal(x10, x50)


def test_synthetic_is_standardised() -> None:
    x, _ = make_synthetic(20, 20, 32, seed=0)
    mean, std = x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))
    assert np.all(np.abs(mean) < 0.2), mean
    assert np.all(np.abs(std - 1) < 0.15), std


# ------------------------------------------------------------------- classes and subsets


def test_resolve_classes_by_id_and_name(cifar_dir: Path) -> None:
    ds = open_source(f"cifar100:{cifar_dir}", split="test", image_size=32)
    assert resolve_classes(ds, [3, "7", "aquarium_fish", np.int64(11)]) == [3, 7, 1, 11]
    assert resolve_classes(["x", "y"], ["y"]) == [1]
    with pytest.raises(ValueError) as err:
        resolve_classes(ds, ["zebra"])
    assert str(err.value).startswith("unknown class 'zebra': the data set has classes 0..99; "
                                     "names like 'apple', 'aquarium_fish', ")
    with pytest.raises(ValueError, match="did you mean 'apple'"):
        resolve_classes(ds, ["aple"])
    with pytest.raises(ValueError, match="unknown class 100"):
        resolve_classes(ds, [100])
    with pytest.raises(ValueError, match="unknown class '140'"):
        resolve_classes(ds, ["140"])
    with pytest.raises(ValueError, match=r"class 3 \('class_03'\) is chosen twice"):
        resolve_classes(ds, [3, "class_03"])
    with pytest.raises(ValueError, match="at least one class"):
        resolve_classes(ds, [])
    with pytest.raises(ValueError, match="id or a name"):
        resolve_classes(ds, [True])


def test_resolve_classes_numeric_folder_names_are_ambiguous() -> None:
    names = ["0", "1", "7"]  # folders named by number: "7" is id 2 but reads as id 7
    assert resolve_classes(names, ["1", 2]) == [1, 2]
    with pytest.raises(ValueError, match="ambiguous"):
        resolve_classes(names, ["7"])


def test_parse_classes() -> None:
    assert parse_classes("3,7,11") == [3, 7, 11]
    assert parse_classes(" apple , 7 ") == ["apple", 7]
    for bad in ("", "3,,7", "3,"):
        with pytest.raises(ValueError, match="empty item"):
            parse_classes(bad)


def test_subset_keeps_original_ids(cifar_dir: Path) -> None:
    ds = open_source(f"cifar100:{cifar_dir}", split="train", image_size=32, augment=False)
    sub = ds.subset([42, 5])
    assert len(sub) == 6 and sorted(set(sub.targets.tolist())) == [5, 42]
    assert sub.num_classes == 100 and sub.class_names == CIFAR_NAMES
    labels = [int(sub[i][1]) for i in range(len(sub))]
    assert labels == sub.targets.tolist()
    red = [round(float(sub[i][0][0, 0, 0]) * cifar.STD[0] * 255 + cifar.MEAN[0] * 255)
           for i in range(len(sub))]
    assert red == labels  # the images are those classes' images
    assert sub.subset([5]).targets.tolist() == [5, 5, 5]
    with pytest.raises(ValueError, match="class id 100"):
        ds.subset([100])


def test_flip_augmentation_is_seeded_per_epoch() -> None:
    ds = open_source("synthetic:2", split="train", image_size=16, samples_per_class=16, seed=1)
    plain = open_source("synthetic:2", split="train", image_size=16, samples_per_class=16,
                        seed=1, augment=False)
    assert ds.augment and not plain.augment

    def flips(d: data.ClassDataset) -> list[bool]:
        out = []
        for i in range(len(d)):
            x, ref = d[i][0], plain[i][0]
            assert torch.equal(x, ref) or torch.equal(x, torch.flip(ref, dims=(2,)))
            out.append(not torch.equal(x, ref))
        return out

    epoch0 = flips(ds)
    assert 4 < sum(epoch0) < 28
    assert flips(ds) == epoch0  # same seed and epoch: same flips
    ds.set_epoch(1)
    assert flips(ds) != epoch0


def test_data_loader_batches(cifar_dir: Path) -> None:
    ds = open_source(f"cifar100:{cifar_dir}", split="test", image_size=32).subset([0, 1])
    x, y = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert x.shape == (4, 3, 32, 32) and y.dtype == torch.int64 and y.tolist() == [0, 1, 0, 1]
