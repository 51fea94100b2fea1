"""Personalise a ``.crisp`` file here, through libcrisp (docs/personalize.md).

Two modes:

- **learn**: images of the new classes → the penultimate features (the runtime runs up to
  the head's input) → a new linear head fitted in C (weight imprinting, then softmax regression
  with L2) → a new file with that head and label map; every other weight is copied, so removed
  blocks stay removed.
- **re-select**: a file whose head keeps every base class (``--keep-head``) → the head rows and
  labels of the requested classes, with each class's coverage from ``SALY``.

The C tool ``crisp-personalize`` does the same on a board; this module and the tool share the
library calls, and the rules below (class ids, at least 2 images a class) are the tool's.
Images come from a folder (``DIR/<class>/*.png|jpg|jpeg|bmp``, decoded by the runtime with the
file's stored preprocessing), from a data source (host only: it needs torch) or from arrays.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crisp_edge.errors import ArgumentError, CrispError, CrispIOError
from crisp_edge.runtime import Model, fit_head, load, tune_biases

TUNES = ("head", "bias")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
MIN_IMAGES = 2           # a class needs two images: one is a point, not a class
MIN_COVERAGE = 0.5       # re-select warns below this share of a class's block saliency
FEATURE_BATCH = 32       # images per runtime call while extracting features


@dataclass
class ClassImages:
    """The inputs of one class to learn: its name and float32 (N, *input_shape) images."""

    name: str
    images: np.ndarray
    files: list[str] = field(default_factory=list)


@dataclass
class PersonalizeResult:
    """What a personalisation did: the new file, its classes (id, name), and per mode the
    images used and the fit (learn) or the coverage per class (re-select)."""

    out: str
    mode: str
    classes: list[tuple[int, str]]
    images: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    fit: dict[str, float] = field(default_factory=dict)
    coverage: dict[str, float | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- gathering images ------------------------------------------------------------------------

def image_files(folder: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """The image files of ``folder`` by class, as the C tool reads them: sub-folders in sorted
    order, hidden entries skipped, .png/.jpg/.jpeg/.bmp files sorted (an empty dict when there
    is no class folder). A ``folder`` that is not a directory is an error."""
    root = Path(folder)
    if not root.is_dir():
        raise CrispIOError(f"{root}: not a directory; pass a folder with one sub-folder of "
                           "images per class")
    return {d.name: sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith(".")
                           and f.suffix.lower() in IMAGE_EXTENSIONS)
            for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))}


def no_class_folders(root: Path) -> ArgumentError:
    return ArgumentError(f"{root}: no class folders; put each class's images in "
                         f"{root}/<class name>/")


def folder_images(model: Model, folder: str | os.PathLike[str], *,
                  skip_bad: bool = False) -> tuple[list[ClassImages], list[str]]:
    """The classes of an image folder (one sub-folder per class, named by the class), decoded
    and preprocessed by the runtime. Returns the classes and the files skipped (``skip_bad``);
    without ``skip_bad`` an unreadable image is an error naming it."""
    listed = image_files(folder)
    if model.preprocess() is None:
        raise ArgumentError(f"{model_path(model)}: the file stores no image preprocessing "
                            "(PREP); repack it with `crisp-edge pack ... --mean ... --std ...` "
                            "(docs/personalize.md)")
    if not listed:
        raise no_class_folders(Path(folder))
    classes, skipped = [], []
    for name, files in listed.items():
        images, used = [], []
        for f in files:
            try:
                images.append(model.load_image(f))
                used.append(str(f))
            except CrispError as e:
                if not skip_bad:
                    raise CrispIOError(f"{f}: {e}; fix or remove the file, or pass "
                                       "--skip-bad to continue without it") from e
                skipped.append(f"{f}: {e}")
        shape = (0, *model.input_shape)
        classes.append(ClassImages(name, np.stack(images) if images else np.empty(shape,
                                                                                   np.float32),
                                   used))
    return classes, skipped


def source_images(spec: str, classes: Sequence[int | str], *, samples_per_class: int,
                  image_size: int, seed: int = 0, split: str = "train") -> list[ClassImages]:
    """The first ``samples_per_class`` images of each of ``classes`` (ids or names of the
    source) from a data source (host only: it needs torch)."""
    from crisp_edge.data.sources import open_source, resolve_classes

    data = open_source(spec, split=split, image_size=image_size, seed=seed,
                       samples_per_class=samples_per_class)
    out = []
    for c in resolve_classes(data, classes):
        sub = data.subset([c], per_class=samples_per_class)
        x = np.stack([sub[i][0].numpy() for i in range(len(sub))]) if len(sub) else \
            np.empty((0, 3, image_size, image_size), np.float32)
        out.append(ClassImages(data.class_names[c], x.astype(np.float32)))
    return out


def model_path(model: Model) -> str:
    return str(getattr(model, "path", "") or "the model")


# --- learn -----------------------------------------------------------------------------------

def assign_class_ids(names: Sequence[str], labels: Sequence[tuple[int, str]]) -> list[int]:
    """Class ids of the new classes: a name the file's label map knows keeps its id; the others
    continue after the largest id there (the C tool's rule)."""
    known = {name: cid for cid, name in labels}
    next_id = max((cid for cid, _ in labels), default=-1) + 1
    ids = []
    for name in names:
        if name in known:
            ids.append(known[name])
        else:
            ids.append(next_id)
            next_id += 1
    return ids


def learn(model: Model, classes: Sequence[ClassImages], out: str | os.PathLike[str], *,
          epochs: int = 0, l2: float = 0.0, seed: int = 0, imprint_only: bool = False,
          skipped: Sequence[str] = (), tune: str = "head", lr: float = 0.0
          ) -> PersonalizeResult:
    """Fit a new head for ``classes`` on ``model``'s features and write it to ``out``; with
    ``tune="bias"`` also tune the last stage's biases (``epochs`` and ``lr`` are then the
    tuning's, the head starts from the same fit)."""
    if tune not in TUNES:
        raise ArgumentError(f"tune must be one of {', '.join(TUNES)}, got {tune!r}")
    if tune == "bias" and imprint_only:
        raise ArgumentError("--imprint-only goes with --tune head")
    if not classes:
        raise ArgumentError("no classes to learn")
    names = [c.name for c in classes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ArgumentError(f"class {dupes[0]!r} is given twice")
    for c in classes:
        if len(c.images) < MIN_IMAGES:
            raise ArgumentError(f"class {c.name!r} has {len(c.images)} usable image(s); each "
                                f"class needs at least {MIN_IMAGES}")
    t0 = time.perf_counter()
    # The frozen part runs once: to the head's input, or to the stage's input when tuning it.
    extract = model.features if tune == "head" else model.stage_inputs
    feats, labels = [], []
    for k, c in enumerate(classes):
        for i in range(0, len(c.images), FEATURE_BATCH):
            feats.append(extract(c.images[i:i + FEATURE_BATCH]))
        labels.append(np.full(len(c.images), k, np.int32))
    x, y = np.concatenate(feats), np.concatenate(labels)
    t1 = time.perf_counter()
    biases: list[tuple[int, np.ndarray]] = []
    if tune == "head":
        weight, bias, fit = fit_head(x, y, len(classes), epochs=epochs, l2=l2, seed=seed,
                                     imprint_only=imprint_only)
    else:
        weight, bias, biases, fit = tune_biases(model, x, y, len(classes), epochs=epochs,
                                                lr=lr, l2=l2, seed=seed)
        fit = {**fit, "train_accuracy": fit["accuracy_after"],
               "tuned_ops": [op for op, _ in biases]}
    t2 = time.perf_counter()
    ids = assign_class_ids(names, model.labels)
    provenance = {"mode": "learn", "created": _now(), "classes": ids, "class_names": names,
                  "images": {c.name: len(c.images) for c in classes},
                  "tune": tune,
                  "fit": {"epochs": epochs, "l2": l2, "seed": seed, "lr": lr,
                          "imprint_only": imprint_only, **fit}}
    model.write_head(out, weight, bias, ids, names, provenance, biases=biases)
    t3 = time.perf_counter()
    return PersonalizeResult(str(out), "learn", list(zip(ids, names)),
                             images={c.name: len(c.images) for c in classes},
                             skipped=list(skipped), fit=fit,
                             seconds={"features": t1 - t0, "fit": t2 - t1, "write": t3 - t2})


# --- re-select -------------------------------------------------------------------------------

def _resolve(token: str, labels: Sequence[tuple[int, str]], path: str) -> int:
    """Output index of a class named by name or id in the label map."""
    for i, (cid, name) in enumerate(labels):
        if token == name:
            return i
    if token.lstrip("-").isdigit():
        for i, (cid, _) in enumerate(labels):
            if cid == int(token):
                return i
    shown = ", ".join(name for _, name in labels[:8]) + (" …" if len(labels) > 8 else "")
    raise ArgumentError(f"{path}: class {token!r} is not in the file's head ({len(labels)} "
                        f"classes: {shown}); a file packed from a `prune --keep-head` "
                        "checkpoint keeps every base class")


def reselect(model: Model, path: str | os.PathLike[str], classes: Sequence[str],
             out: str | os.PathLike[str], *, min_coverage: float = MIN_COVERAGE
             ) -> PersonalizeResult:
    """Keep only ``classes`` (names or ids of the file's label map) of a full-head file."""
    t0 = time.perf_counter()
    labels = model.labels
    if not labels:
        raise ArgumentError(f"{path}: the file has no label map to select classes from")
    prov = model.info()["provenance"]
    head_prov = prov.get("head") if isinstance(prov.get("head"), dict) else {}
    why = ("its provenance says the head was reduced to the user's classes"
           if head_prov.get("reduced") is True else
           "it is already personalised (its head holds only the user's classes)"
           if "personalized" in prov else None)
    if why:  # the C tool's rule (crisp_personalize_cli.c, not_full_head)
        raise ArgumentError(f"{path}: --classes re-selects from the full classifier head, but "
                            f"{why}; repack the base model with --keep-head")
    rows = [_resolve(str(t).strip(), labels, str(path)) for t in classes]
    if len(set(rows)) != len(rows):
        raise ArgumentError("a class is requested twice")
    if model.head()["dtype"] != 1:
        raise ArgumentError(f"{path}: re-selecting an int8 head is not supported; re-select "
                            "the float32 model")
    w, b = model.head_weights()
    ids = [labels[r][0] for r in rows]
    names = [labels[r][1] for r in rows]
    coverage: dict[str, float | None] = {}
    warnings = []
    for cid, name in zip(ids, names):
        try:
            coverage[name] = model.coverage(cid)
        except ArgumentError as e:
            coverage[name] = None
            warnings.append(f"class {name!r}: coverage unknown ({e})")
            continue
        if coverage[name] < min_coverage:
            warnings.append(f"class {name!r}: only {100 * coverage[name]:.0f} % of its block "
                            f"saliency survived pruning (below {100 * min_coverage:.0f} %); "
                            "accuracy on it may be low: prune again for it, or learn it "
                            "from images")
    provenance = {"mode": "reselect", "created": _now(), "classes": ids, "class_names": names,
                  "coverage": coverage}
    t1 = time.perf_counter()
    model.write_head(out, w[rows], b[rows], ids, names, provenance)
    return PersonalizeResult(str(out), "reselect", list(zip(ids, names)), coverage=coverage,
                             warnings=warnings,
                             seconds={"select": t1 - t0, "write": time.perf_counter() - t1})


# --- the entry point -------------------------------------------------------------------------

def personalize(model: str | os.PathLike[str], out: str | os.PathLike[str], *,
                data: Any = None, classes: Sequence[str] | str | None = None,
                samples_per_class: int = 20, epochs: int = 0, l2: float = 0.0, seed: int = 0,
                threads: int = 1, skip_bad: bool = False, imprint_only: bool = False,
                min_coverage: float = MIN_COVERAGE, tune: str = "head", lr: float = 0.0
                ) -> PersonalizeResult:
    """Personalise the ``.crisp`` file ``model`` into ``out`` (written atomically).

    - ``data`` a folder (``DIR/<class>/*.png``): learn its classes;
    - ``data`` a data source spec (``synthetic:100``) with ``classes`` (ids of that source):
      learn those classes from its first ``samples_per_class`` training images;
    - ``data`` a list of :class:`ClassImages`: learn those;
    - no ``data``, ``classes`` names or ids of the file's full head: re-select them.

    ``tune="bias"`` also tunes the biases of the model's last stage (TinyTL-style; ``epochs``
    and ``lr`` are then Adam's), not only the head.
    """
    if isinstance(classes, str):
        classes = [c for c in classes.split(",") if c.strip()]
    if Path(out).resolve() == Path(model).resolve():
        raise ArgumentError(f"--out {out} is the model itself; write the personalised model "
                            "to another file (the old one stays for rollback)")
    with load(model, threads=threads) as m:
        m.path = str(model)  # type: ignore[attr-defined]
        if data is None:
            if not classes:
                raise ArgumentError("nothing to do: give images (--data) to learn classes, or "
                                    "--classes to re-select classes of a full-head file")
            return reselect(m, model, classes, out, min_coverage=min_coverage)
        skipped: list[str] = []
        if isinstance(data, (str, os.PathLike)) and Path(data).is_dir():
            if classes:
                raise ArgumentError("--classes does not go with an image folder: its "
                                    "sub-folders are the classes")
            groups, skipped = folder_images(m, data, skip_bad=skip_bad)
        elif isinstance(data, str):
            if not classes:
                raise ArgumentError(f"learning from the data source {data!r} needs --classes "
                                    "(the source's class ids or names to learn)")
            groups = source_images(data, [int(c) if str(c).strip().isdigit() else str(c)
                                          for c in classes],
                                   samples_per_class=samples_per_class,
                                   image_size=int(m.input_shape[-1]), seed=seed)
        else:
            groups = list(data)
        return learn(m, groups, out, epochs=epochs, l2=l2, seed=seed,
                     imprint_only=imprint_only, skipped=skipped, tune=tune, lr=lr)

