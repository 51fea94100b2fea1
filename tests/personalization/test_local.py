"""crisp_edge.personalization on this machine: features, the C head fit against torch, the file it
writes, re-selection against a host-packed model, and every bad input of the issue."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import crisp_edge
from crisp_edge.cli import main as cli
from crisp_edge.errors import ArgumentError, CrispIOError
from crisp_edge.format.read import read_model
from crisp_edge.packing.pack import pack, pack_checkpoint
from crisp_edge.personalization.local import ClassImages, assign_class_ids
from crisp_edge.runtime import fit_head, load

from prune_helpers import DATA, IMAGE_SIZE, tiny_config, tiny_model, write_net


def _packed_tiny(path: Path, num_classes: int = 4) -> nn.Module:
    model = tiny_model(num_classes).eval()
    labels = [(c, f"c{c}") for c in range(num_classes)]
    pack(model, torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE), path, labels=labels)
    return model


def _penultimate(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    feats = {}
    handle = model.fc.register_forward_hook(lambda m, i, o: feats.setdefault("x", i[0]))
    with torch.no_grad():
        model(x)
    handle.remove()
    return feats["x"].numpy()


def _blobs(classes: int, per_class: int, seed: int = 0) -> list[ClassImages]:
    """Inputs whose classes differ in colour: separable on the tiny net's features."""
    rng = np.random.default_rng(seed)
    groups = []
    for c in range(classes):
        base = rng.normal(0, 1, (3, 1, 1)).astype(np.float32) * 2
        x = base + 0.3 * rng.standard_normal((per_class, 3, IMAGE_SIZE, IMAGE_SIZE),
                                             dtype=np.float32)
        groups.append(ClassImages(f"new{c}", x.astype(np.float32)))
    return groups


def test_features_equal_the_torch_penultimate_layer(tmp_path: Path) -> None:
    model = _packed_tiny(tmp_path / "m.crisp")
    x = torch.randn(5, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(1))
    with load(tmp_path / "m.crisp") as m:
        head = m.head()
        assert head["features"] == 32 and head["classes"] == 4 and head["has_bias"] == 1
        got = m.features(x)
    np.testing.assert_allclose(got, _penultimate(model, x), rtol=1e-4, atol=1e-5)


def _torch_fit(x: np.ndarray, y: np.ndarray, classes: int, l2: float) -> float:
    """The objective's minimum found by torch L-BFGS (mean CE + l2/2 ‖W‖²)."""
    xt, yt = torch.from_numpy(x.astype(np.float64)), torch.from_numpy(y.astype(np.int64))
    w = torch.zeros(classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=1000, tolerance_grad=1e-10, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(xt @ w.T + b, yt) + 0.5 * l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return float(closure())


def test_the_c_fit_reaches_the_torch_optimum() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (3, 16))
    y = np.repeat(np.arange(3), 12).astype(np.int32)
    x = (centres[y] + 0.8 * rng.standard_normal((36, 16))).astype(np.float32)
    l2 = 1e-2
    w, b, report = fit_head(x, y, 3, l2=l2, epochs=200)
    logits = x.astype(np.float64) @ w.T.astype(np.float64) + b
    ce = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(
        y.astype(np.int64))))
    ours = ce + 0.5 * l2 * float((w.astype(np.float64) ** 2).sum())
    best = _torch_fit(x, y, 3, l2)
    assert ours <= best + 1e-3 * max(1.0, abs(best)), (ours, best)
    assert abs(report["loss"] - ours) <= 1e-3 * max(1.0, abs(ours))
    again = fit_head(x, y, 3, l2=l2, epochs=200)
    assert np.array_equal(w, again[0]) and np.array_equal(b, again[1])  # deterministic


def test_imprinting_is_the_normalised_class_means() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0], np.int32)
    w, _, _ = fit_head(x, y, 2, imprint_only=True)
    for c in range(2):
        f = x[y == c] / np.linalg.norm(x[y == c], axis=1, keepdims=True)
        mean = f.mean(0)
        direction = mean / np.linalg.norm(mean)
        row = w[c] / np.linalg.norm(w[c])
        np.testing.assert_allclose(row, direction, rtol=1e-5, atol=1e-6)


def test_learn_writes_a_model_whose_logits_are_the_new_head(tmp_path: Path) -> None:
    _packed_tiny(tmp_path / "m.crisp")
    groups = _blobs(3, 6)
    result = crisp_edge.personalize(tmp_path / "m.crisp", tmp_path / "p.crisp", data=groups,
                                    seed=3)
    assert result.mode == "learn" and result.fit["train_accuracy"] == 1.0
    assert [name for _, name in result.classes] == ["new0", "new1", "new2"]
    assert [cid for cid, _ in result.classes] == [4, 5, 6]  # after the file's ids 0..3
    mf = read_model(tmp_path / "p.crisp")
    with load(tmp_path / "p.crisp") as p, load(tmp_path / "m.crisp") as m:
        assert p.output_shape == (3,)
        assert p.labels == list(result.classes)
        head = p.head()
        op = mf.graph.ops[head["op"]]
        w = mf.graph.tensors[op.weight].dense()
        b = mf.graph.tensors[op.bias].dense()
        x = np.concatenate([g.images for g in groups])
        feats = m.features(x)
        np.testing.assert_allclose(p.run(x), feats @ w.T + b, rtol=1e-5, atol=1e-5)
        prov = p.info()["provenance"]
    assert prov["personalized"]["mode"] == "learn"
    assert prov["personalized"]["images"] == {"new0": 6, "new1": 6, "new2": 6}
    # Everything but the head is the old file's: same weights bytes for every other tensor.
    old = read_model(tmp_path / "m.crisp")
    old_head = old.graph.ops[head["op"]]
    kept_old = [t.payload() for i, t in enumerate(old.graph.tensors)
                if i not in (old_head.weight, old_head.bias)]
    kept_new = [t.payload() for i, t in enumerate(mf.graph.tensors)
                if i not in (op.weight, op.bias)]
    assert kept_old == kept_new


def test_class_ids_keep_known_names_and_continue_after_the_largest() -> None:
    labels = [(3, "cat"), (9, "dog")]
    assert assign_class_ids(["dog", "eel", "cat", "fox"], labels) == [9, 10, 3, 11]


def test_results_do_not_depend_on_the_thread_count(tmp_path: Path) -> None:
    _packed_tiny(tmp_path / "m.crisp")
    groups = _blobs(2, 5)
    heads = []
    for t in (1, 3):
        out = tmp_path / f"p{t}.crisp"
        crisp_edge.personalize(tmp_path / "m.crisp", out, data=groups, threads=t)
        mf = read_model(out)
        heads.append([t.payload() for t in mf.graph.tensors])
    assert heads[0] == heads[1]


def test_reselect_equals_a_host_packed_model_of_the_same_weights(tmp_path: Path) -> None:
    from crisp_edge.models.checkpoint import build_model_from_checkpoint, load_checkpoint
    from crisp_edge.pruning.engine import prune, result_checkpoint
    from crisp_edge.models.checkpoint import save_checkpoint

    spec = write_net(tmp_path)
    result = prune(tiny_model(), DATA, [1, 4, 6], tiny_config(keep_head=True), progress=False)
    ckpt_path = tmp_path / "full.pt"
    save_checkpoint(result_checkpoint(result, model_source=spec, data=DATA), ckpt_path)
    full = tmp_path / "full.crisp"
    pack_checkpoint(ckpt_path, full, model_source=spec)
    out = tmp_path / "sel.crisp"
    picked = [6, 2, 9]
    res = crisp_edge.personalize(full, out, classes=",".join(map(str, picked)))
    assert res.mode == "reselect"
    assert set(res.coverage) == {name for _, name in res.classes}
    assert all(0.0 <= v <= 1.0 for v in res.coverage.values())

    ckpt = load_checkpoint(ckpt_path)
    model = build_model_from_checkpoint(ckpt, arch=None, model_source=spec, path=ckpt_path)
    sliced = nn.Linear(model.fc.in_features, len(picked))
    with torch.no_grad():
        sliced.weight.copy_(model.fc.weight[picked])
        sliced.bias.copy_(model.fc.bias[picked])
    model.fc = sliced
    host = tmp_path / "host.crisp"
    masks = {**ckpt.masks, "fc.weight": ckpt.masks["fc.weight"][picked]}
    pack(model.eval(), torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE), host, masks=masks,
         pattern=ckpt.pattern, layers=ckpt.layers, pattern_mode="checkpoint")
    x = np.random.default_rng(0).standard_normal((6, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(
        np.float32)
    with load(out) as a, load(host) as b:
        la, lb = a.run(x), b.run(x)
        assert [cid for cid, _ in a.labels] == picked
        prov = a.info()["provenance"]["personalized"]
    assert np.abs(la - lb).max() <= 1e-5 * np.abs(lb).max()
    assert prov["mode"] == "reselect" and set(prov["coverage"]) == set(res.coverage)
    # Only from the full head: neither the re-selected file nor a reduced head will do.
    with pytest.raises(ArgumentError, match="already personalised"):
        crisp_edge.personalize(out, tmp_path / "again.crisp", classes="6")
    reduced = prune(tiny_model(), DATA, [1, 4, 6], tiny_config(steps=1), progress=False)
    save_checkpoint(result_checkpoint(reduced, model_source=spec, data=DATA), tmp_path / "r.pt")
    pack_checkpoint(tmp_path / "r.pt", tmp_path / "r.crisp", model_source=spec)
    with pytest.raises(ArgumentError, match="head was reduced to the user's classes; repack "
                                            "the base model with --keep-head"):
        crisp_edge.personalize(tmp_path / "r.crisp", tmp_path / "again.crisp", classes="4")
    assert not (tmp_path / "again.crisp").exists()


def test_bad_inputs_are_named_and_write_nothing(tmp_path: Path) -> None:
    _packed_tiny(tmp_path / "m.crisp")
    out = tmp_path / "p.crisp"
    one = _blobs(2, 5)
    one[1].images = one[1].images[:1]
    with pytest.raises(ArgumentError, match="'new1' has 1 usable image"):
        crisp_edge.personalize(tmp_path / "m.crisp", out, data=one)
    with pytest.raises(ArgumentError, match="class 'zebra' is not in the file's head"):
        crisp_edge.personalize(tmp_path / "m.crisp", out, classes="zebra")
    with pytest.raises(ArgumentError, match="is the model itself"):
        crisp_edge.personalize(tmp_path / "m.crisp", tmp_path / "m.crisp", classes="c1")
    with pytest.raises(ArgumentError, match="nothing to do"):
        crisp_edge.personalize(tmp_path / "m.crisp", out)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises((ArgumentError, CrispIOError)):
        crisp_edge.personalize(tmp_path / "m.crisp", out, data=str(empty))
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "m.crisp"]


def test_cli_learns_from_a_data_source_and_reports_json(tmp_path: Path) -> None:
    _packed_tiny(tmp_path / "m.crisp", num_classes=10)
    out = tmp_path / "p.crisp"
    res = CliRunner().invoke(cli, ["personalize", str(tmp_path / "m.crisp"), "--data", DATA,
                                   "--classes", "7,8", "--samples-per-class", "4", "--out",
                                   str(out), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["mode"] == "learn" and len(report["classes"]) == 2
    assert report["images"] == {name: 4 for _, name in report["classes"]}
    # names from the data source that the file knows keep their ids
    with load(tmp_path / "m.crisp") as m:
        assert m.labels[0][1] == "c0"
    res = CliRunner().invoke(cli, ["personalize", str(tmp_path / "m.crisp"), "--classes",
                                   "nope", "--out", str(out)])
    assert res.exit_code == 1 and "class 'nope' is not in the file's head" in res.output


def _png_folder(root: Path, classes: dict[str, list[tuple[int, int, int]]]) -> None:
    """``root/<class>/<i>.png`` of flat colours (20×14: the model's PREP stretches them)."""
    from PIL import Image

    for name, colours in classes.items():
        (root / name).mkdir(parents=True)
        for i, rgb in enumerate(colours):
            Image.new("RGB", (20, 14), rgb).save(root / name / f"{i}.png")


def test_learn_from_an_image_folder_decoded_by_the_runtime(tmp_path: Path) -> None:
    from crisp_edge.format import RESIZE_STRETCH, Preprocess
    from crisp_edge.reference.preprocess import preprocess_image

    model = tiny_model(4).eval()
    prep = Preprocess(IMAGE_SIZE, IMAGE_SIZE, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25),
                      resize=RESIZE_STRETCH)
    pack(model, torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE), tmp_path / "m.crisp",
         labels=[(c, f"c{c}") for c in range(4)], preprocess=prep)
    images = tmp_path / "photos"
    _png_folder(images, {"red": [(250, 10, 10), (230, 30, 20), (240, 0, 40)],
                         "blue": [(10, 20, 240), (0, 40, 220), (30, 10, 250)]})
    with load(tmp_path / "m.crisp") as m:
        got = m.load_image(images / "red" / "0.png")
    want = preprocess_image(images / "red" / "0.png", prep)
    np.testing.assert_allclose(got, want, atol=1e-6)  # the C decode is the host pipeline's
    res = crisp_edge.personalize(tmp_path / "m.crisp", tmp_path / "p.crisp", data=str(images))
    assert [name for _, name in res.classes] == ["blue", "red"]  # sorted folder names
    assert res.images == {"blue": 3, "red": 3} and res.fit["train_accuracy"] == 1.0
    with load(tmp_path / "p.crisp") as p:
        assert p.preprocess() == load(tmp_path / "m.crisp").preprocess()  # PREP travels along
        x = np.stack([p.load_image(images / "red" / "1.png"), p.load_image(images / "blue" /
                                                                          "2.png")])
        assert list(p.run(x).argmax(1)) == [1, 0]
    # A corrupt image is named; --skip-bad goes on without it.
    (images / "red" / "9.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    with pytest.raises(CrispIOError, match=r"red/9\.png.*--skip-bad"):
        crisp_edge.personalize(tmp_path / "m.crisp", tmp_path / "q.crisp", data=str(images))
    assert not (tmp_path / "q.crisp").exists()
    res = crisp_edge.personalize(tmp_path / "m.crisp", tmp_path / "q.crisp", data=str(images),
                                 skip_bad=True)
    assert len(res.skipped) == 1 and "9.png" in res.skipped[0]
    # A model packed without PREP cannot take images, and says how to repack.
    _packed_tiny(tmp_path / "noprep.crisp")
    with pytest.raises(ArgumentError, match="stores no image preprocessing.*--mean"):
        crisp_edge.personalize(tmp_path / "noprep.crisp", tmp_path / "r.crisp", data=str(images))


def test_the_c_tool_and_the_python_api_write_the_same_head(tmp_path: Path) -> None:
    """Both are the same library calls: same images, same head bits."""
    import os
    import subprocess

    from crisp_edge.format import RESIZE_STRETCH, Preprocess

    tool = Path(os.environ.get("CRISP_RUN", "build/native/runtime/crisp-run")).with_name(
        "crisp-personalize")
    if not tool.is_file():
        pytest.skip(f"{tool} is not built (make build-native)")
    model = tiny_model(4).eval()
    prep = Preprocess(IMAGE_SIZE, IMAGE_SIZE, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25),
                      resize=RESIZE_STRETCH)
    pack(model, torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE), tmp_path / "m.crisp",
         labels=[(c, f"c{c}") for c in range(4)], preprocess=prep)
    images = tmp_path / "photos"
    _png_folder(images, {"c1": [(250, 10, 10), (230, 30, 20)],
                         "teal": [(10, 200, 180), (0, 220, 200), (30, 180, 190)]})
    subprocess.run([str(tool), str(tmp_path / "m.crisp"), "--images", str(images), "--out",
                    str(tmp_path / "c.crisp")], check=True, capture_output=True)
    crisp_edge.personalize(tmp_path / "m.crisp", tmp_path / "py.crisp", data=str(images))
    with load(tmp_path / "c.crisp") as a, load(tmp_path / "py.crisp") as b:
        wa, ba = a.head_weights()
        wb, bb = b.head_weights()
        assert a.labels == b.labels == [(1, "c1"), (4, "teal")]
    assert np.array_equal(wa, wb) and np.array_equal(ba, bb)


def test_a_full_disk_is_named_and_leaves_nothing(tmp_path: Path) -> None:
    """ENOSPC while writing the new model: the runtime says the disk is full, removes its
    temporary file, and the old model beside it is untouched (a 64 KiB tmpfs; needs
    CAP_SYS_ADMIN, else skipped saying why)."""
    import subprocess

    from crisp_edge.errors import CrispIOError as IOErr

    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()})")
    try:
        _packed_tiny(tmp_path / "m.crisp")
        old = mount / "m.crisp"
        old.write_bytes((tmp_path / "m.crisp").read_bytes())
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        (mount / "filler").write_bytes(b"\0" * max(0, free - 4096))
        with pytest.raises(IOErr, match="disk full"):
            crisp_edge.personalize(old, mount / "p.crisp", data=_blobs(2, 3))
        assert sorted(p.name for p in mount.iterdir()) == ["filler", "m.crisp"]
        assert old.read_bytes() == (tmp_path / "m.crisp").read_bytes()
    finally:
        subprocess.run(["umount", str(mount)], timeout=30)


def test_tune_bias_trains_the_last_stage_and_nothing_else(tmp_path: Path) -> None:
    """--tune bias: the head and the biases of the last stage (here conv3, the ops at the
    global pool's resolution) change, every other tensor is the old file's byte for byte, the
    loss the C tuning reports is torch's cross-entropy of the written model, and it is no
    worse than the head-only start."""
    model = tiny_model(4).eval()
    with torch.no_grad():  # biases that matter: BatchNorm shifts folded into the convs
        for bn in (model.bn1, model.bn2, model.bn3):
            bn.bias.normal_(0, 0.5)
    pack(model, torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE), tmp_path / "m.crisp",
         labels=[(c, f"c{c}") for c in range(4)])
    groups = _blobs(3, 6, seed=4)
    res = crisp_edge.personalize(tmp_path / "m.crisp", tmp_path / "t.crisp", data=groups,
                                 tune="bias", epochs=20, lr=1e-2)
    fit = res.fit
    assert fit["loss_after"] <= fit["loss_before"] + 1e-6 and fit["steps"] > 0
    with load(tmp_path / "m.crisp") as m:
        stage = m.stage()
    assert len(stage["tuned"]) == 1 and fit["tuned_ops"] == [stage["tuned"][0][0]]
    old, new = read_model(tmp_path / "m.crisp"), read_model(tmp_path / "t.crisp")
    tuned_op = new.graph.ops[stage["tuned"][0][0]]
    head_op = new.graph.ops[stage["head_op"]]
    changed = {tuned_op.bias, head_op.weight, head_op.bias}
    for i, (a, b) in enumerate(zip(old.graph.tensors, new.graph.tensors)):
        if i not in changed:
            assert a.payload() == b.payload(), f"tensor {i} changed"
    if not fit["kept_start"]:
        assert old.graph.tensors[tuned_op.bias].payload() != \
            new.graph.tensors[tuned_op.bias].payload()
    x = np.concatenate([g.images for g in groups])
    y = torch.from_numpy(np.repeat(np.arange(3), 6))
    with load(tmp_path / "t.crisp") as t:
        logits = torch.from_numpy(t.run(x).astype(np.float64))
        w, _ = t.head_weights()
    ce = float(nn.functional.cross_entropy(logits, y))
    torch_loss = ce + 0.5 * 1e-3 * float((w.astype(np.float64) ** 2).sum())
    assert abs(torch_loss - fit["loss_after"]) <= 1e-3 * max(1.0, torch_loss)
