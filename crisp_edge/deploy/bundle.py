"""Put a model on a board: pack a versioned bundle of models and the runtime built for the board
(:mod:`crisp_edge.deploy.build`), install it over SSH: smoke-tested before it becomes current,
switched atomically, one deploy at a time. Layout and protocol: docs/deploy.md.

>>> board = load_board("rpi4")                                        # doctest: +SKIP
>>> bundle = make_bundle(board, ["model.crisp"], build_runtime(board), "out/")  # doctest: +SKIP
>>> deploy(bundle, Remote("pi@192.168.1.20"), board).status           # doctest: +SKIP
'installed'
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from crisp_edge import format as fmt
from crisp_edge.deploy.boards import BoardProfile
from crisp_edge.deploy.build import BoardBuild
from crisp_edge.deploy.programs import read_program
from crisp_edge.deploy.ssh import Remote, classify_failure
from crisp_edge.packing.forms import HOST, PORTABLE, TIERS
from crisp_edge.fileio import atomic_writer
from crisp_edge.errors import DeployError, DeviceBusyError, DiskFullError

BUNDLE_FORMAT = "crisp-bundle/1"
# On the device, relative to the login's home directory unless absolute.
DEFAULT_REMOTE_DIR = "crisp-edge"

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# ---------------------------------------------------------------------------------- bundling

# The packer's tiers (crisp_edge.packing.forms) each board architecture's runtime can select
# (x86-64: chosen at run time by the CPU, so any x86 tier is plausible).
_BOARD_TIERS = {"aarch64": ("neon",), "x86_64": tuple(t for t in TIERS if t != "neon")}


def tier_warning(model: str | os.PathLike[str], provenance: dict[str, Any] | None,
                 board: BoardProfile) -> str | None:
    """Why ``model`` may run slower on ``board`` than it could, or None: its PROV ``isa`` (the
    tier the packer chose dense-stored layers for, docs/format.md) is one the board's runtime
    never selects. The model still runs correctly: a file packed for one tier runs on every
    other."""
    isa = (provenance or {}).get("isa")
    tiers = _BOARD_TIERS.get(board.arch)
    if not isinstance(isa, str) or tiers is None or isa in tiers or isa in (PORTABLE, HOST):
        return None
    return (f"{Path(model).name} was packed for the {isa} kernels; {board.name} runs "
            f"{' / '.join(tiers)} ones, and the layers the packer stored dense for {isa} may "
            f"run slower there: repack it with `crisp-edge pack --isa {tiers[0]}` (or "
            f"`--isa portable`: the board's runtime chooses at load)")


def dense_twin(model: str | os.PathLike[str], out: str | os.PathLike[str]) -> bool:
    """Write ``model`` with every hybrid-sparse weight stored dense (same values, same graph):
    the baseline that field benchmarks compare against. Returns False (and writes nothing)
    when the model has no hybrid weight."""
    mf = fmt.read_model(model)
    changed = False
    for i, t in enumerate(mf.graph.tensors):
        if t.encoding == fmt.ENCODING_HYBRID_F32:
            mf.graph.tensors[i] = fmt.Tensor(t.dense())
        elif t.encoding == fmt.ENCODING_HYBRID_I8:
            q, scales = t.quantized()
            payload = scales.astype("<f4").tobytes() + np.ascontiguousarray(q).tobytes()
            mf.graph.tensors[i] = fmt.Tensor.encoded(fmt.ENCODING_DENSE_I8, t.dims, payload)
        else:
            continue
        changed = True
    if changed:
        mf.provenance = {**(mf.provenance or {}), "dense_twin_of": Path(model).name}
        fmt.write_model(out, mf)
    return changed


@dataclass(frozen=True)
class Bundle:
    """A bundle archive and its manifest (``manifest["files"]``: path → sha256, bytes, mode)."""

    path: Path
    bundle_id: str
    manifest: dict[str, Any]

    @property
    def unpacked_bytes(self) -> int:
        return sum(f["bytes"] for f in self.manifest["files"].values())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    """A manifest's ``files`` entry: sha256, bytes and mode ("0755" if executable)."""
    return {"sha256": _sha256(path), "bytes": path.stat().st_size,
            "mode": "0755" if os.access(path, os.X_OK) else "0644"}


def compute_bundle_id(files: dict[str, dict[str, Any]]) -> str:
    """A bundle's id: the first 16 hex digits of a SHA-256 over every file's path, hash and
    mode (``files``: the manifest's table), so equal content gives an equal id."""
    digest = hashlib.sha256(BUNDLE_FORMAT.encode())
    for f in sorted(files):
        digest.update(f"{f} {files[f]['sha256']} {files[f]['mode']}\n".encode())
    return digest.hexdigest()[:16]


def manifest_files(manifest: dict[str, Any]) -> tuple[bytes, bytes]:
    """The bytes of ``manifest.json`` and ``SHA256SUMS`` for a manifest: what the device checks
    with coreutils' ``sha256sum -c`` (every file of ``manifest["files"]``, and the manifest)."""
    text = json.dumps(manifest, indent=2, sort_keys=True).encode()
    table = manifest["files"]
    sums = [f"{table[f]['sha256']}  {f}" for f in sorted(table)]
    sums.append(f"{hashlib.sha256(text).hexdigest()}  manifest.json")
    return text, ("\n".join(sums) + "\n").encode()


def smoke_input(model: Path) -> np.ndarray:
    """The fixed smoke input of a model: seeded normal noise of its input shape."""
    from crisp_edge.runtime import load

    with load(model) as m:
        return np.random.default_rng(0).standard_normal((1, *m.input_shape)).astype(np.float32)


def expected_top1(model: Path, x: np.ndarray) -> int | None:
    """The host runtime's top-1 index for ``x`` when it is clear-cut, else None (a near-tie
    is not checked: kernels for different ISAs may order it differently)."""
    from crisp_edge.runtime import load

    with load(model) as m:
        scores = m.run(x).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    clear = len(order) < 2 or scores[order[0]] - scores[order[1]] > 1e-3 * max(
        1.0, abs(float(scores[order[0]])))
    return int(order[0]) if clear else None


def _smoke_case(model: Path, stage: Path, name: str) -> dict[str, Any]:
    """A deterministic input for the smoke run and, when the answer is clear-cut, the top-1
    index the host runtime gives (near-ties are not checked: ISAs may order them apart)."""
    x = smoke_input(model)
    np.save(stage / "smoke" / f"{name}.input.npy", x)
    return {"model": f"models/{name}.crisp", "input": f"smoke/{name}.input.npy",
            "expected_top1": expected_top1(model, x)}


def model_entry(path: Path, name: str, role: str) -> dict[str, Any]:
    """A manifest's ``models`` entry for the file ``path`` (bundled as models/NAME.crisp)."""
    from crisp_edge.runtime import load

    with load(path) as m:
        info = m.info()
    return {"name": name, "path": f"models/{name}.crisp", "role": role,
            "macs": info["macs"], "effective_macs": info["effective_macs"],
            "input_shape": list(info["input_shape"]), "output_shape": list(info["output_shape"])}


def _write_archive(stage: Path, files: Sequence[str], prefix: str, out: Path) -> None:
    """A reproducible tar.gz: sorted entries, zero times and owners, so equal content gives
    an equal archive."""
    with atomic_writer(out) as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                   filename="") as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(f).parent) for f in files} - {"."})
        for d in dirs:
            info = tarfile.TarInfo(f"{prefix}/{d}")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for f in sorted(files):
            data = (stage / f).read_bytes()
            info = tarfile.TarInfo(f"{prefix}/{f}")
            info.size, info.mtime = len(data), 0
            info.mode = 0o755 if os.access(stage / f, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))


def make_bundle(board: BoardProfile, models: Sequence[str | os.PathLike[str]],
                build: BoardBuild, out: str | os.PathLike[str], *, dense_twins: bool = True,
                log: Log = _quiet) -> Bundle:
    """Pack the board's binaries, ``models`` (plus, with ``dense_twins``, a dense copy of each
    hybrid one for benchmarks), the board profile and a manifest into a tar.gz at ``out`` (a
    file, or a directory to write ``crisp-bundle-<board>-<id>.tar.gz`` into). A model packed
    for kernels the board never runs is logged as a warning (:func:`tier_warning`).

    The bundle id is a hash of the content, so the same models and binaries give the same
    id (and a re-deploy of them does nothing)."""
    paths = [Path(m) for m in models]
    if not paths:
        raise DeployError("give at least one model (--model model.crisp)")
    names = [p.name.removesuffix(".crisp") for p in paths]
    if len(set(names)) != len(names):
        raise DeployError("two models have the same file name: " + ", ".join(map(str, paths)))
    for p in paths:
        if not p.is_file():
            raise DeployError(f"model {p} does not exist")
    with tempfile.TemporaryDirectory(prefix="crisp-bundle-") as tmp:
        stage = Path(tmp)
        for sub in ("bin", "lib", "models", "smoke"):
            (stage / sub).mkdir()
        shutil.copy(build.crisp_run, stage / "bin" / "crisp-run")
        shutil.copy(build.crisp_bench, stage / "bin" / "crisp-bench")
        shutil.copy(build.crisp_personalize, stage / "bin" / "crisp-personalize")
        shutil.copy(build.libcrisp, stage / "lib" / "libcrisp.so")
        shutil.copy(build.header, stage / "lib" / "crisp.h")
        (stage / "board.toml").write_text(board.to_toml())
        entries = []
        for path, name in zip(paths, names):
            mf = fmt.read_model(path)  # a corrupt model fails here, not on the board
            warning = tier_warning(path, mf.provenance, board)
            if warning:
                log(f"warning: {warning}")
            shutil.copy(path, stage / "models" / f"{name}.crisp")
            entries.append(model_entry(path, name, "model"))
            twin = stage / "models" / f"{name}.dense.crisp"
            if dense_twins and dense_twin(path, twin):
                entry = model_entry(twin, f"{name}.dense", "dense-twin")
                entries.append({**entry, "dense_twin_of": name})
        smoke = _smoke_case(paths[0], stage, names[0])
        files = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())
        table = {f: file_entry(stage / f) for f in files}
        from crisp_edge.version import __version__

        manifest = {
            "format": BUNDLE_FORMAT, "bundle_id": compute_bundle_id(table), "board": board.to_dict(),
            "crisp_edge_version": __version__,
            "build": build.info or {"toolchain_triple": board.toolchain_triple,
                                    "target_flags": list(board.target_flags),
                                    "static_tools": True},
            "models": entries, "smoke": smoke, "files": table}
        text, sums = manifest_files(manifest)
        (stage / "manifest.json").write_bytes(text)
        (stage / "SHA256SUMS").write_bytes(sums)
        bundle_id = manifest["bundle_id"]
        out_path = Path(out)
        prefix = f"crisp-bundle-{board.name}-{bundle_id}"
        if out_path.is_dir():
            out_path = out_path / f"{prefix}.tar.gz"
        out_path.parent.mkdir(parents=True, exist_ok=True)
        _write_archive(stage, files + ["manifest.json", "SHA256SUMS"], prefix, out_path)
    return Bundle(out_path, bundle_id, manifest)


BUNDLE_ID = re.compile(r"[0-9a-f]{16}")


def read_bundle(path: str | os.PathLike[str]) -> Bundle:
    """A bundle archive written by :func:`make_bundle` (reads its manifest)."""
    path = Path(path)
    try:
        with tarfile.open(path, "r:gz") as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("/manifest.json"))
            f = tar.extractfile(member)
            assert f is not None
            manifest = json.loads(f.read())
    except (OSError, tarfile.TarError, StopIteration, ValueError) as e:
        raise DeployError(f"{path} is not a crisp-edge bundle ({e or 'no manifest.json'})") from None
    if manifest.get("format") != BUNDLE_FORMAT:
        raise DeployError(f"{path}: bundle format {manifest.get('format')!r}, expected "
                          f"{BUNDLE_FORMAT!r}; rebuild it with this crisp-edge")
    bundle_id = manifest.get("bundle_id")
    if not isinstance(bundle_id, str) or not BUNDLE_ID.fullmatch(bundle_id):
        # The id names a directory the device creates and deletes (releases/ID): "../../.ssh"
        # would reach rm -rf. make_bundle writes 16 hex digits.
        raise DeployError(f"{path}: bundle_id {bundle_id!r} is not 16 hex digits; the manifest "
                          "was not written by crisp-edge: rebuild the bundle")
    return Bundle(path, bundle_id, manifest)


# --------------------------------------------------------------------------------- installing

# The device programs are files of crisp_edge.deploy.programs (docs/deploy.md, "The device
# protocol").
# How device binaries run: natively, or under qemu-user where the device is another arch
# (the emulated board of the tests). Defines pick_runner, which sets $runner and prints
# @@runner. Shared with fieldbench.
RUNNER_SH = read_program("runner.sh")

# One operation at a time per install directory: take_lock OP / release_lock (the symlink
# REMOTE_DIR/.lock names its owner; a dead or timed-out owner's lock is recovered). Any program
# that changes releases or links puts it in front and calls take_lock first.
LOCK_SH = read_program("lock.sh")

# Releases and the current/previous links: release_ok, smoke_release (smoke-test a release
# before it is current, record .verified), switch_current (previous := current, current := REL,
# each a rename), restore_current, prune_releases. Needs RUNNER_SH for smoke_release.
SWITCH_SH = read_program("switch.sh")

# Runs on the device: prepares the install directory, tidies what interrupted operations left
# (under the lock) and reports what is there.
PROBE_SCRIPT = LOCK_SH + SWITCH_SH + read_program("deploy_probe.sh")

# Runs on the device with the archive on stdin: lock, receive, verify, unpack, verify,
# smoke-test the new release, switch `current` to it, prune.
INSTALL_SCRIPT = RUNNER_SH + LOCK_SH + SWITCH_SH + read_program("install.sh")

# The exit status of take_lock when another live operation holds the lock.
LOCKED_STATUS = 75


def parse_markers(text: str) -> dict[str, list[str]]:
    """``@@key value`` lines of a device script's output, by key (values in order)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("@@"):
            key, _, value = line[2:].partition(" ")
            found.setdefault(key, []).append(value)
    return found


def _first(markers: dict[str, list[str]], key: str) -> str:
    return markers.get(key, [""])[0]


def normalise_remote_dir(remote_dir: str) -> str:
    """``~/x`` → ``x`` (ssh starts in the home directory; a quoted ``~`` would not expand)."""
    if remote_dir in ("~", "~/"):
        return "."
    return remote_dir[2:] if remote_dir.startswith("~/") else remote_dir


@dataclass(frozen=True)
class DeployResult:
    host: str
    bundle_id: str
    status: str  # "installed" or "unchanged"
    remote_dir: str
    previous: str | None = None
    runner: str = "native"  # or the qemu command line when the device emulates the board
    smoke: str = ""

    @property
    def emulated(self) -> bool:
        return self.runner != "native"


def deploy(bundle: Bundle, remote: Remote, board: BoardProfile, *,
           remote_dir: str = DEFAULT_REMOTE_DIR, log: Log = _quiet) -> DeployResult:
    """Install ``bundle`` on the device behind ``remote`` (docs/deploy.md, "The device
    protocol"); a no-op when that bundle is already current, intact and smoke-tested there.
    The new release is smoke-tested before `current` points at it, under the device's lock.
    Raises DeviceBusyError when another operation holds that lock, else a RemoteError
    subclass or DeployError saying what failed and where `current` is."""
    if not BUNDLE_ID.fullmatch(bundle.bundle_id):
        raise DeployError(f"bundle id {bundle.bundle_id!r} is not 16 hex digits (it names "
                          "directories the device creates and removes); use read_bundle or "
                          "make_bundle")
    rdir = normalise_remote_dir(remote_dir)
    done = remote.run_script(PROBE_SCRIPT, [rdir], timeout=60, what="checking the device",
                             check=False)
    probe = parse_markers(done.stdout)
    where = _first(probe, "dir") or rdir
    check_lock(remote.host, where, probe, log)
    if done.returncode != 0:
        raise classify_failure(remote.host, done.returncode, done.stderr, "checking the device")
    if _first(probe, "current") == bundle.bundle_id and "current_ok" in probe:
        log(f"{remote.host}: bundle {bundle.bundle_id} is already current in {where}")
        return DeployResult(remote.host, bundle.bundle_id, "unchanged", where)
    if "missing" in probe:
        raise DeployError(f"{remote.host} lacks {', '.join(probe['missing'])}, needed to install "
                          "a bundle (coreutils, tar, gzip)")
    machine = _first(probe, "machine")
    machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(machine, machine)
    if machine != board.arch and not (board.qemu_cpu and f"qemu-{board.arch}" in
                                      probe.get("qemu", [])):
        raise DeployError(f"{remote.host} is an {machine} machine but the {board.name} bundle is "
                          f"{board.arch}; is --board right? (crisp-edge boards lists them)")
    archive_bytes = bundle.path.stat().st_size
    need_kb = (archive_bytes + bundle.unpacked_bytes) * 11 // 10 // 1024 + 64
    free_kb = int(_first(probe, "free_kb") or 0)
    if free_kb < need_kb:
        raise DiskFullError(f"{remote.host}: not enough free space in {where}: the bundle needs "
                            f"{need_kb} KiB (upload + unpacked), {free_kb} KiB are free; free "
                            "space there or pass --remote-dir on a filesystem with room")
    smoke = bundle.manifest["smoke"]
    top1 = "" if smoke["expected_top1"] is None else str(smoke["expected_top1"])
    log(f"{remote.host}: uploading {bundle.path.name} ({archive_bytes // 1024} KiB) to {where}; "
        f"verifying, smoke-testing {bundle.bundle_id}, switching to it")
    done = remote.run_script(
        INSTALL_SCRIPT, [rdir, bundle.bundle_id, _sha256(bundle.path), board.arch,
                         board.qemu_cpu or "", smoke["model"], smoke["input"], top1],
        data=bundle.path.read_bytes(), timeout=900 + 120 + archive_bytes / 50e3,
        what="installing the bundle", check=False)
    out = parse_markers(done.stdout)
    check_lock(remote.host, where, out, log)
    for line in out.get("restored", []):
        log(f"{remote.host}: current is back at {line}")
    if done.returncode != 0:
        raise classify_failure(remote.host, done.returncode, done.stderr,
                               "installing the bundle")
    if "unchanged" in out:
        log(f"{remote.host}: bundle {bundle.bundle_id} was installed meanwhile by another deploy")
        return DeployResult(remote.host, bundle.bundle_id, "unchanged", where)
    return DeployResult(remote.host, bundle.bundle_id, "installed", where,
                        previous=_first(out, "previous") or None,
                        runner=_first(out, "runner") or "native", smoke=_first(out, "smoke"))


def check_lock(host: str, where: str, markers: dict[str, list[str]], log: Log = _quiet) -> None:
    """After a device program that called lock.sh's take_lock: log a recovered lock, and raise
    DeviceBusyError when another live operation holds it (``@@locked PID SINCE OP HOST``)."""
    for reason in markers.get("lock_recovered", []):
        log(f"{host}: {reason}")
    if "locked" not in markers:
        return
    pid, since, op, owner_host = (markers["locked"][0].split() + ["?"] * 4)[:4]
    try:
        started = datetime.fromtimestamp(int(since)).strftime("%Y-%m-%d %H:%M:%S")
        age = f", {max(0, int(time.time()) - int(since))} s ago"
    except ValueError:
        started, age = since, ""
    raise DeviceBusyError(f"another {op} to {host} is running (pid {pid} since {started}{age}"
                          + (f", on {owner_host}" if owner_host not in ("?", "") else "")
                          + f"); wait or remove {where}/.lock")
