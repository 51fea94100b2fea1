"""Personalise the model installed on a board, on the board (docs/personalize.md, "On a board").

The board's own ``crisp-personalize`` (in every deploy bundle) does the work; this module moves
the images there, checks the result with the host runtime, and installs it as a new release
with the deploy machinery (crisp_edge.deploy: the device lock, checksums, the smoke test before
the atomic switch of ``current``, ``previous`` kept for rollback):

0. **probe** (one SSH session): take the device lock long enough to remove leftovers; report
   ``current``/``previous``, their manifests, free space, tools.
1. **run** (under the lock, images on stdin): copy ``current`` into ``releases/personalize.X``
   (not live), run its ``bin/crisp-personalize`` on ``models/NAME.orig.crisp`` (the deployed
   model, kept under that name by the first personalisation) into ``models/NAME.crisp``, send
   the tool's output and the new file back.
2. on the host: load the new file with the host runtime (labels, shapes), regenerate the dense
   twin and the smoke case, write the new manifest and ``SHA256SUMS`` as ``make_bundle`` does.
3. **finish** (under the lock): if ``current`` is still the release copied, put the manifest
   into the copy, ``sha256sum -c``, rename it to ``releases/ID``, smoke-test it, switch.

``rollback`` swaps ``current`` and ``previous`` (after a smoke test of ``previous``).

>>> personalize_on_board(Remote("pi@pi4"), load_board("rpi4"), data="photos/")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from crisp_edge.deploy.boards import BoardProfile, parse_board
from crisp_edge.deploy.bundle import (DEFAULT_REMOTE_DIR, LOCK_SH, RUNNER_SH, SWITCH_SH,
                                      check_lock, compute_bundle_id, dense_twin,
                                      expected_top1, file_entry, manifest_files, model_entry,
                                      normalise_remote_dir, parse_markers, smoke_input)
from crisp_edge.deploy.programs import read_program
from crisp_edge.deploy.ssh import Remote, classify_failure
from crisp_edge.fileio import atomic_writer
from crisp_edge.errors import ArgumentError, DeployError, DiskFullError
from crisp_edge.personalization.local import (IMAGE_EXTENSIONS, MIN_COVERAGE, MIN_IMAGES,
                                              image_files, no_class_folders)
from crisp_edge.runtime import load

Log = Callable[[str], None]

# Reports the install (and removes leftovers under the lock) before anything is sent.
PROBE_SCRIPT = LOCK_SH + SWITCH_SH + read_program("personalize_probe.sh")
# Under the lock: copy current, run its crisp-personalize, send the new model back.
RUN_SCRIPT = RUNNER_SH + LOCK_SH + SWITCH_SH + read_program("personalize_run.sh")
# Under the lock: complete the copy with the manifest, verify, smoke-test, switch.
FINISH_SCRIPT = RUNNER_SH + LOCK_SH + SWITCH_SH + read_program("personalize_finish.sh")
# Under the lock: smoke-test previous, switch current to it.
ROLLBACK_SCRIPT = RUNNER_SH + LOCK_SH + SWITCH_SH + read_program("personalize_rollback.sh")


def _quiet(_: str) -> None:
    pass


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------ images

def image_folder(folder: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """The image files of ``folder`` by class, as the board's tool will read them (sub-folders
    in sorted order, hidden entries skipped, .png/.jpg/.jpeg/.bmp files), checked here before
    anything is sent: at least one class folder, at least ``MIN_IMAGES`` files in each."""
    root = Path(folder)
    classes = image_files(root)
    if not classes:
        raise no_class_folders(root)
    for name, files in classes.items():
        if len(files) < MIN_IMAGES:
            raise ArgumentError(f"class {name!r} ({root / name}) has {len(files)} image "
                                f"file(s) ({', '.join(IMAGE_EXTENSIONS)}); each class needs "
                                f"at least {MIN_IMAGES}")
    return classes


def _tar(members: dict[str, bytes | Path]) -> bytes:
    """An uncompressed tar of ``members`` (name → bytes or a file), sorted, zero times."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(n).parent) for n in members} - {"."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name in sorted(members):
            value = members[name]
            data = value.read_bytes() if isinstance(value, Path) else value
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ------------------------------------------------------------------------------------ results

@dataclass
class BoardPersonalizeResult:
    """What ``personalize_on_board`` did: the model, its new classes, the new release (and
    its bundle id) now `current`, the release before it (`previous`: the rollback target)."""

    host: str
    remote_dir: str
    model: str
    mode: str
    classes: list[tuple[int, str]]
    bundle_id: str
    release: str
    previous: str
    source_release: str
    images: dict[str, int] = field(default_factory=dict)
    tool_output: list[str] = field(default_factory=list)
    runner: str = "native"
    smoke: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RollbackResult:
    host: str
    remote_dir: str
    current: str
    previous: str
    bundle_id: str
    personalized: dict[str, Any] | None
    smoke: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------ device

@dataclass
class _Install:
    """What the probe found on the device."""

    where: str
    current: str
    previous: str
    markers: dict[str, list[str]]
    manifests: dict[str, dict[str, Any]]

    def has(self, key: str) -> bool:
        return key in self.markers

    def first(self, key: str) -> str:
        return self.markers.get(key, [""])[0]


def _manifests(text: str) -> dict[str, str]:
    """The blocks between ``@@manifest_begin LINK`` and ``@@manifest_end LINK`` lines."""
    found: dict[str, str] = {}
    lines: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@@manifest_begin "):
            lines = []
        elif line.startswith("@@manifest_end ") and lines is not None:
            found[line.split(" ", 1)[1]] = "\n".join(lines)
            lines = None
        elif lines is not None:
            lines.append(line)
    return found


def _probe(remote: Remote, rdir: str, log: Log) -> _Install:
    done = remote.run_script(PROBE_SCRIPT, [rdir], timeout=120, what="checking the device",
                             check=False)
    markers = parse_markers(done.stdout)
    where = markers.get("dir", [rdir])[0]
    check_lock(remote.host, where, markers, log)
    if done.returncode != 0:
        raise classify_failure(remote.host, done.returncode, done.stderr, "checking the device")
    if "no_install" in markers or not markers.get("current", [""])[0]:
        raise DeployError(f"{remote.host}: no bundle is installed in {where}; run crisp-edge "
                          "deploy first")
    manifests = {}
    for link, text in _manifests(done.stdout).items():
        try:
            manifests[link] = json.loads(text)
        except ValueError as e:
            raise DeployError(f"{remote.host}: {where}/{link}/manifest.json is not valid JSON "
                              f"({e}); deploy again") from None
    return _Install(where, markers["current"][0], markers.get("previous", [""])[0], markers,
                    manifests)


def _board_for(install: _Install, link: str, board: BoardProfile | None, host: str
               ) -> BoardProfile:
    """The given board profile (checked against the installed bundle's), or the bundle's."""
    manifest = install.manifests.get(link)
    if manifest is None:
        raise DeployError(f"{host}: {install.where}/{link} has no manifest.json; deploy again")
    installed = manifest.get("board", {})
    if board is None:
        return parse_board(installed, f"{host}:{install.where}/{link}/manifest.json")
    if installed.get("name") != board.name:
        raise DeployError(f"{host}: the bundle installed in {install.where} is for "
                          f"{installed.get('name')!r}, not {board.name!r}; is --board right?")
    return board


def _check_machine(install: _Install, board: BoardProfile, host: str) -> None:
    machine = install.first("machine")
    machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(machine, machine)
    if machine != board.arch and not (board.qemu_cpu and f"qemu-{board.arch}" in
                                      install.markers.get("qemu", [])):
        raise DeployError(f"{host} is an {machine} machine but the {board.name} bundle is "
                          f"{board.arch}; is --board right?")


def _run_failed(remote: Remote, done: Any, what: str, where: str, log: Log) -> None:
    markers = parse_markers(done.stdout)
    check_lock(remote.host, where, markers, log)
    for line in markers.get("restored", []):
        log(f"{remote.host}: current is back at {line}")
    if done.returncode != 0:
        raise classify_failure(remote.host, done.returncode, done.stderr, what)


def _pick_model(manifest: dict[str, Any], model: str | None, host: str) -> dict[str, Any]:
    entries = [m for m in manifest.get("models", []) if m.get("role") == "model"]
    if not entries:
        raise DeployError(f"{host}: the installed bundle lists no model")
    if model is None:
        return entries[0]
    name = model.removesuffix(".crisp")
    for m in entries:
        if m["name"] == name:
            return m
    raise ArgumentError(f"{host}: the installed bundle has no model {model!r} (it has: "
                        + ", ".join(m["name"] for m in entries) + ")")


def _tool_options(*, classes: Sequence[str] | None, skip_bad: bool, threads: int,
                  epochs: int, l2: float, imprint_only: bool, tune: str, lr: float, seed: int,
                  min_coverage: float) -> list[str]:
    opts = ["--threads", str(threads)]
    if classes is not None:
        return opts + ["--classes", ",".join(classes), "--min-coverage", repr(min_coverage)]
    if skip_bad:
        opts.append("--skip-bad")
    if epochs:
        opts += ["--epochs", str(epochs)]
    if l2:
        opts += ["--l2", repr(l2)]
    if imprint_only:
        opts.append("--imprint-only")
    if tune != "head":
        opts += ["--tune", tune]
    if lr:
        opts += ["--lr", repr(lr)]
    if seed:
        opts += ["--seed", str(seed)]
    return opts


def _received_model(stdout: str, host: str) -> tuple[bytes, str]:
    """The new model's bytes (base64 between @@model_begin and @@model_end) and its sha256."""
    lines = stdout.splitlines()
    try:
        begin, end = lines.index("@@model_begin"), lines.index("@@model_end")
    except ValueError:
        raise DeployError(f"{host}: the device did not send the new model back (the connection "
                          "ended?); nothing was switched") from None
    try:
        data = base64.b64decode("".join(lines[begin + 1:end]), validate=True)
    except binascii.Error as e:
        raise DeployError(f"{host}: the new model came back garbled ({e}); nothing was "
                          "switched") from None
    sha = parse_markers(stdout).get("model_sha256", [""])[0]
    if hashlib.sha256(data).hexdigest() != sha:
        raise DeployError(f"{host}: the new model came back corrupted (sha256 mismatch); "
                          "nothing was switched")
    return data, sha


def personalize_on_board(remote: Remote, board: BoardProfile | None = None, *,
                         data: str | os.PathLike[str] | None = None,
                         classes: Sequence[str] | str | None = None,
                         model: str | None = None, remote_dir: str = DEFAULT_REMOTE_DIR,
                         threads: int | None = None, skip_bad: bool = False, epochs: int = 0,
                         l2: float = 0.0, imprint_only: bool = False, tune: str = "head",
                         lr: float = 0.0, seed: int = 0, min_coverage: float = MIN_COVERAGE, log: Log = _quiet,
                         keep_copy: str | os.PathLike[str] | None = None
                         ) -> BoardPersonalizeResult:
    """Personalise model ``model`` (default: the bundle's first) of the bundle installed on the
    device behind ``remote``, with the board's own ``crisp-personalize``: learn the classes of
    the image folder ``data``, or re-select ``classes`` of a full head. The result is installed
    as a new release beside the old one, smoke-tested, and made `current`; the old one is
    `previous` (:func:`rollback_on_board`). If anything fails, `current` is not changed.

    ``board`` defaults to the installed bundle's profile; when given, it must be that one.
    ``keep_copy``: also write the new model file there (once it is installed)."""
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    if (data is None) == (classes is None or not classes):
        raise ArgumentError("give images (--data DIR) to learn classes, or --classes to "
                            "re-select classes of a full-head model (not both)")
    images: dict[str, list[Path]] = {}
    archive = b""
    if data is not None:  # checked and packed before anything is sent
        images = image_folder(data)
        archive = _tar({f"{c}/{f.name}": f for c, files in images.items() for f in files})
    rdir = normalise_remote_dir(remote_dir)
    install = _probe(remote, rdir, log)
    host, where = remote.host, install.where
    board = _board_for(install, "current", board, host)
    if "current_ok" not in install.markers:
        raise DeployError(f"{host}: current ({install.current}) in {where} is damaged or was "
                          "never smoke-tested; deploy again before personalising")
    if "has_tool" not in install.markers:
        raise DeployError(f"{host}: the bundle installed in {where} has no bin/crisp-personalize "
                          "(it was built before on-board personalisation); deploy again with "
                          "this crisp-edge, then personalise")
    if "missing" in install.markers:
        raise DeployError(f"{host} lacks {', '.join(install.markers['missing'])}, needed to "
                          "personalise on the device")
    _check_machine(install, board, host)
    manifest = install.manifests["current"]
    entry = _pick_model(manifest, model, host)
    name = entry["name"]
    release_kb = int(install.first("release_kb") or 0)
    need_kb = release_kb * 11 // 10 + 2 * len(archive) // 1024 + 64
    free_kb = int(install.first("free_kb") or 0)
    if free_kb < need_kb:
        raise DiskFullError(f"{host}: not enough free space in {where}: personalising needs "
                            f"{need_kb} KiB (a copy of the release and the images), {free_kb} "
                            "KiB are free; free space there")
    options = _tool_options(classes=classes if data is None else None, skip_bad=skip_bad,
                            threads=threads or board.default_threads, epochs=epochs, l2=l2,
                            imprint_only=imprint_only, tune=tune, lr=lr, seed=seed,
                            min_coverage=min_coverage)
    what = (f"learning {len(images)} classes from {sum(map(len, images.values()))} images"
            if data is not None else f"re-selecting classes {','.join(classes or [])}")
    log(f"{host}: {what} with the board's crisp-personalize on {name} "
        f"({install.current}); sending {len(archive) // 1024} KiB")
    sha = hashlib.sha256(archive).hexdigest() if data is not None else ""
    done = remote.run_script(
        RUN_SCRIPT, [rdir, install.current, name, sha, board.arch, board.qemu_cpu or "",
                     *options],
        data=archive if data is not None else None,
        timeout=1800 + len(archive) / 50e3, what="personalising on the device", check=False)
    _run_failed(remote, done, "personalising on the device", where, log)
    markers = parse_markers(done.stdout)
    tool_output = markers.get("tool", [])
    partial = markers.get("partial", [""])[0]
    if not re.fullmatch(r"releases/personalize\.[A-Za-z0-9_]+", partial):
        raise DeployError(f"{host}: the device named its new release {partial!r}, not "
                          "releases/personalize.XXXXXX; nothing was switched")
    try:
        new_bytes, _ = _received_model(done.stdout, host)
        with tempfile.TemporaryDirectory(prefix="crisp-personalize-") as tmp:
            labels, new_manifest, upload = _describe(
                Path(tmp), new_bytes, manifest, entry, images, classes, install.current,
                tool_output, host)
    except BaseException:
        _tidy(remote, rdir)
        raise
    smoke = new_manifest["smoke"]
    new_id = new_manifest["bundle_id"]
    top1 = "" if smoke["expected_top1"] is None else str(smoke["expected_top1"])
    log(f"{host}: installing the personalised release {new_id}: verifying, smoke-testing, "
        "switching to it")
    done = remote.run_script(
        FINISH_SCRIPT, [rdir, install.current, partial, new_id,
                        hashlib.sha256(upload).hexdigest(), board.arch, board.qemu_cpu or "",
                        smoke["model"], smoke["input"], top1],
        data=upload, timeout=900 + len(upload) / 50e3,
        what="installing the personalised model", check=False)
    _run_failed(remote, done, "installing the personalised model", where, log)
    out = parse_markers(done.stdout)
    if keep_copy is not None:
        with atomic_writer(keep_copy) as f:
            f.write(new_bytes)
    return BoardPersonalizeResult(
        host, where, name, new_manifest["personalized"]["mode"],
        [(int(c), n) for c, n in labels], new_id, out.get("installed", [""])[0],
        out.get("previous", [""])[0], install.current,
        images={c: len(f) for c, f in images.items()}, tool_output=tool_output,
        runner=out.get("runner", ["native"])[0], smoke=out.get("smoke", [""])[0])


def _tidy(remote: Remote, rdir: str) -> None:
    """After session 2 succeeded and the host refused its result (or was interrupted): remove
    the copy it left on the device now rather than at the next operation (the probe takes the
    lock and prunes). Best effort: a failure here changes nothing live."""
    try:
        remote.run_script(PROBE_SCRIPT, [rdir], timeout=60, what="tidying the device",
                          check=False)
    except Exception:  # noqa: BLE001
        pass


def _describe(stage: Path, new_bytes: bytes, manifest: dict[str, Any], entry: dict[str, Any],
              images: dict[str, list[Path]], classes: Sequence[str] | None,
              source_release: str, tool_output: list[str], host: str
              ) -> tuple[list[tuple[int, str]], dict[str, Any], bytes]:
    """Check the board's new model here and describe the new release: its labels, manifest,
    and the tar of the files the host makes for it (manifest.json, SHA256SUMS, smoke input,
    dense twin)."""
    name = entry["name"]
    new_model = stage / f"{name}.crisp"
    new_model.write_bytes(new_bytes)
    labels, new_entry = _check_new_model(new_model, entry, images, classes, host)
    new_manifest, members = _new_manifest(
        manifest, new_model, name, new_entry, labels, stage, source_release,
        personalized={"mode": "learn" if images else "reselect",
                      "images": {c: len(f) for c, f in images.items()},
                      "tool_output": tool_output})
    text, sums = manifest_files(new_manifest)
    members.update({"manifest.json": text, "SHA256SUMS": sums})
    return labels, new_manifest, _tar(members)


def _check_new_model(path: Path, entry: dict[str, Any], images: dict[str, list[Path]],
                     classes: Sequence[str] | None, host: str
                     ) -> tuple[list[tuple[int, str]], dict[str, Any]]:
    """Load the board's new file with the host runtime: same input, one output per label, the
    classes asked for. Returns its labels and its manifest entry."""
    try:
        with load(path) as m:
            labels = list(m.labels)
            outputs = int(np.prod(m.output_shape))
            input_shape = list(m.input_shape)
    except Exception as e:  # noqa: BLE001  (any failure: the file is not installed)
        raise DeployError(f"{host}: the personalised model does not load here ({e}); nothing "
                          "was switched") from None
    problem = None
    if input_shape != list(entry["input_shape"]):
        problem = f"its input shape {input_shape} is not the model's {entry['input_shape']}"
    elif outputs != len(labels):
        problem = f"it has {outputs} outputs but {len(labels)} labels"
    elif images and [n for _, n in labels] != list(images):
        problem = f"its classes {[n for _, n in labels]} are not the folders {list(images)}"
    elif classes and len(labels) != len(classes):
        problem = f"it has {len(labels)} classes, {len(classes)} were asked for"
    if problem:
        raise DeployError(f"{host}: the personalised model is wrong: {problem}; nothing was "
                          "switched")
    new_entry = {**model_entry(path, entry["name"], "model"),
                 "labels": [[int(c), n] for c, n in labels]}
    return labels, new_entry


def _new_manifest(manifest: dict[str, Any], new_model: Path, name: str,
                  new_entry: dict[str, Any], labels: list[tuple[int, str]], stage: Path,
                  source_release: str, personalized: dict[str, Any]
                  ) -> tuple[dict[str, Any], dict[str, bytes | Path]]:
    """The new release's manifest (files, models, smoke case, the "personalized" record, the
    bundle id from the content) and the files the host makes for it (name → content)."""
    from crisp_edge.version import __version__

    files = dict(manifest["files"])
    path, orig = f"models/{name}.crisp", f"models/{name}.orig.crisp"
    files.setdefault(orig, files[path])  # the deployed model, now under its .orig name
    files[path] = {**file_entry(new_model), "mode": "0644"}
    members: dict[str, bytes | Path] = {}
    models = []
    for m in manifest["models"]:
        if m["name"] == name:
            models.append(new_entry)
        elif m.get("dense_twin_of") == name:
            twin = stage / f"{name}.dense.crisp"
            if dense_twin(new_model, twin):
                files[m["path"]] = {**file_entry(twin), "mode": "0644"}
                members[m["path"]] = twin
                models.append({**model_entry(twin, m["name"], "dense-twin"),
                               "dense_twin_of": name})
            else:
                files.pop(m["path"], None)
        else:
            models.append(m)
    x = smoke_input(new_model)
    buf = io.BytesIO()
    np.save(buf, x)
    smoke_path = f"smoke/{name}.input.npy"
    members[smoke_path] = buf.getvalue()
    files[smoke_path] = {"sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
                         "bytes": len(buf.getvalue()), "mode": "0644"}
    # The host runtime's answer for the new head (near-ties are not checked, as for deploy).
    smoke = {"model": path, "input": smoke_path, "expected_top1": expected_top1(new_model, x),
             "personalized": True}
    new = {**manifest, "models": models, "smoke": smoke, "files": files,
           "personalized": {"model": name, "original": orig,
                            "classes": [[int(c), n] for c, n in labels],
                            "source_release": source_release.removeprefix("releases/"),
                            "source_bundle": manifest["bundle_id"], "time": _now(),
                            "crisp_edge_version": __version__, **personalized}}
    new["bundle_id"] = compute_bundle_id(files)
    return new, members


def rollback_on_board(remote: Remote, board: BoardProfile | None = None, *,
                      remote_dir: str = DEFAULT_REMOTE_DIR, log: Log = _quiet
                      ) -> RollbackResult:
    """Make `previous` current again (after a smoke test of it); the release that was current
    becomes `previous`, so rolling back twice goes forward again."""
    rdir = normalise_remote_dir(remote_dir)
    install = _probe(remote, rdir, log)
    host, where = remote.host, install.where
    if not install.previous:
        raise DeployError(f"{host}: there is no previous release in {where} to roll back to")
    if "previous_intact" not in install.markers:
        raise DeployError(f"{host}: the previous release ({install.previous}) in {where} is "
                          "damaged (its files do not match SHA256SUMS); nothing was switched")
    board = _board_for(install, "previous", board, host)
    _check_machine(install, board, host)
    smoke = install.manifests["previous"]["smoke"]
    top1 = "" if smoke.get("expected_top1") is None else str(smoke["expected_top1"])
    log(f"{host}: smoke-testing {install.previous} and switching current back to it")
    done = remote.run_script(
        ROLLBACK_SCRIPT, [rdir, install.current, install.previous, board.arch,
                          board.qemu_cpu or "", smoke["model"], smoke["input"], top1],
        timeout=900, what="rolling back", check=False)
    _run_failed(remote, done, "rolling back", where, log)
    out = parse_markers(done.stdout)
    manifest = install.manifests["previous"]
    return RollbackResult(host, where, out.get("current", [""])[0],
                          out.get("previous", [""])[0], manifest.get("bundle_id", ""),
                          manifest.get("personalized"), smoke=out.get("smoke", [""])[0])
