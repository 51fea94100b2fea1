"""crisp-edge deploy against a real sshd playing an rpi4 (binaries under qemu-aarch64)."""

from __future__ import annotations

import dataclasses
import os
import re
import struct
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import crisp_edge
from crisp_edge.cli import main
from crisp_edge.deploy import bundle as bundle_mod
from crisp_edge.deploy import ssh
from crisp_edge.deploy.boards import load_board
from crisp_edge.deploy.bundle import dense_twin, deploy, make_bundle, read_bundle
from crisp_edge.errors import (DeployError, DiskFullError, HostKeyError, RemoteError,
                               UnreachableError)
from sshd_fixture import rpi4_build, ssh_board  # noqa: F401  (fixtures)

DATA = Path(__file__).resolve().parents[2] / "runtime" / "tests" / "data"
SPARSE, QUANT = DATA / "sparse.crisp", DATA / "quant.crisp"


def _elf(path: Path) -> tuple[int, bool]:
    """(e_machine, has a PT_INTERP program header, i.e. is dynamically linked)."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF", f"{path} is not ELF"
    machine = struct.unpack_from("<H", data, 18)[0]
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return machine, 3 in types


AARCH64 = 183


def test_cross_built_binaries_are_static_aarch64(rpi4_build):
    for tool in (rpi4_build.crisp_run, rpi4_build.crisp_bench, rpi4_build.crisp_personalize):
        assert _elf(tool) == (AARCH64, False), f"{tool}: want a static aarch64 executable"
    assert _elf(rpi4_build.libcrisp)[0] == AARCH64


@pytest.mark.parametrize("name", ["sparse", "quant", "convs"])
def test_cross_built_outputs_equal_host_runtime(rpi4_build, tmp_path, name):
    x = np.load(DATA / f"{name}.input.npy")
    out = tmp_path / "out.npy"
    subprocess.run(["qemu-aarch64", "-cpu", "cortex-a72", str(rpi4_build.crisp_run),
                    str(DATA / f"{name}.crisp"), str(DATA / f"{name}.input.npy"),
                    "--output", str(out)], check=True, capture_output=True, timeout=60)
    with crisp_edge.load(DATA / f"{name}.crisp") as m:
        host = m.run(x)
    board = np.load(out).reshape(host.shape)
    tolerance = 1e-4 * max(1.0, float(np.abs(host).max()))
    assert float(np.abs(board - host).max()) <= tolerance


@pytest.mark.parametrize("model", [SPARSE, QUANT])
def test_dense_twin_same_outputs_all_macs(tmp_path, model):
    twin = tmp_path / "twin.crisp"
    assert dense_twin(model, twin)
    x = np.load(str(model).replace(".crisp", ".input.npy"))
    with crisp_edge.load(model) as m, crisp_edge.load(twin) as d:
        assert m.info()["effective_macs"] < m.info()["macs"]
        assert d.info()["effective_macs"] == d.info()["macs"] == m.info()["macs"]
        np.testing.assert_allclose(d.run(x), m.run(x), rtol=1e-5, atol=1e-5)


def test_bundle_is_reproducible_and_checksummed(rpi4_build, tmp_path):
    board = load_board("rpi4")
    a = make_bundle(board, [SPARSE], rpi4_build, tmp_path / "a.tar.gz")
    b = make_bundle(board, [SPARSE], rpi4_build, tmp_path / "b.tar.gz")
    assert a.bundle_id == b.bundle_id
    assert a.path.read_bytes() == b.path.read_bytes()
    with tarfile.open(a.path) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}
        tar.extractall(tmp_path / "x", filter="data")
    assert {"manifest.json", "SHA256SUMS", "board.toml", "bin/crisp-run", "bin/crisp-bench",
            "bin/crisp-personalize", "lib/libcrisp.so", "lib/crisp.h", "models/sparse.crisp",
            "models/sparse.dense.crisp", "smoke/sparse.input.npy"} <= names
    root = next((tmp_path / "x").iterdir())
    subprocess.run(["sha256sum", "-c", "--quiet", "--strict", "SHA256SUMS"], cwd=root,
                   check=True, timeout=30)
    assert read_bundle(a.path).manifest == a.manifest
    assert a.manifest["files"]["bin/crisp-personalize"]["mode"] == "0755"
    assert {m["role"] for m in a.manifest["models"]} == {"model", "dense-twin"}
    c = make_bundle(board, [SPARSE, QUANT], rpi4_build, tmp_path)
    assert c.bundle_id != a.bundle_id and c.path.parent == tmp_path


def test_deploy_smoke_noop_and_rollbacks(ssh_board, rpi4_build, tmp_path, monkeypatch):
    board = load_board("rpi4")
    remote, rdir = ssh_board.remote(), ssh_board.remote_dir("deploy")
    first = make_bundle(board, [SPARSE], rpi4_build, tmp_path)
    done = deploy(first, remote, board, remote_dir=rdir)
    assert done.status == "installed" and done.previous is None
    assert done.runner == "qemu-aarch64 -cpu cortex-a72" and done.emulated
    assert "#1 index" in done.smoke
    device = Path(rdir)
    assert os.readlink(device / "current") == f"releases/{first.bundle_id}"
    assert (device / "current" / "bin" / "crisp-run").stat().st_mode & 0o111

    assert deploy(first, remote, board, remote_dir=rdir).status == "unchanged"

    # A damaged install is not "unchanged": re-deploying the same bundle repairs it (into a
    # second copy, releases/ID.1: the live one is not deleted before the switch).
    (device / "current" / "models" / "sparse.crisp").write_bytes(b"damaged")
    assert deploy(first, remote, board, remote_dir=rdir).status == "installed"
    assert os.readlink(device / "current") == f"releases/{first.bundle_id}.1"
    assert deploy(first, remote, board, remote_dir=rdir).status == "unchanged"

    second = make_bundle(board, [SPARSE, QUANT], rpi4_build, tmp_path)
    done = deploy(second, remote, board, remote_dir=rdir)
    assert (done.status, done.previous) == ("installed", first.bundle_id)
    assert os.readlink(device / "previous") == f"releases/{first.bundle_id}.1"

    # Corrupted in transit: the device's checksum refuses it, nothing changes.
    third = make_bundle(board, [QUANT], rpi4_build, tmp_path)
    real_run_script = ssh.Remote.run_script

    def corrupting_upload(self, script, args, *, data=None, **kw):
        if data is not None:  # the install session: the archive follows the script on stdin
            flipped = bytearray(data)
            flipped[len(flipped) // 2] ^= 0xFF
            data = bytes(flipped)
        return real_run_script(self, script, args, data=data, **kw)

    monkeypatch.setattr(ssh.Remote, "run_script", corrupting_upload)
    with pytest.raises(RemoteError, match="corrupted.*nothing was changed"):
        deploy(third, remote, board, remote_dir=rdir)
    monkeypatch.undo()
    assert os.readlink(device / "current") == f"releases/{second.bundle_id}"
    assert list((device / "incoming").iterdir()) == []
    assert not (device / "releases" / third.bundle_id).exists()

    # The smoke run fails on the device (a profile whose qemu CPU does not exist): it runs
    # before the switch, so `current` stays at the bundle before.
    broken = dataclasses.replace(board, qemu_cpu="no-such-cpu")
    fourth = make_bundle(broken, [SPARSE], rpi4_build, tmp_path)
    with pytest.raises(RemoteError, match=f"smoke inference failed.*nothing was switched; "
                                              f"current: releases/{second.bundle_id}"):
        deploy(fourth, remote, broken, remote_dir=rdir)
    assert os.readlink(device / "current") == f"releases/{second.bundle_id}"
    assert sorted(p.name for p in (device / "releases").iterdir()) == sorted(
        [f"{first.bundle_id}.1", second.bundle_id])


def test_unknown_host_key_is_refused(ssh_board, rpi4_build, tmp_path):
    board = load_board("rpi4")
    bundle = make_bundle(board, [SPARSE], rpi4_build, tmp_path)
    known_hosts = ssh_board.root / "empty_known_hosts"
    with pytest.raises(HostKeyError, match="never skips host-key checking"):
        deploy(bundle, ssh_board.remote("board-unknown"), board,
               remote_dir=ssh_board.remote_dir("unknown"))
    assert known_hosts.read_text() == ""
    assert not Path(ssh_board.root / "device" / "unknown").exists()


def test_unreachable_host_is_explained(ssh_board, rpi4_build, tmp_path):
    board = load_board("rpi4")
    bundle = make_bundle(board, [SPARSE], rpi4_build, tmp_path)
    with pytest.raises(UnreachableError, match="cannot reach board-down.*Connection refused"):
        deploy(bundle, ssh_board.remote("board-down"), board, remote_dir="x")


@pytest.fixture
def small_disk(ssh_board):
    """A 512 KiB tmpfs as the device's install directory (needs CAP_SYS_ADMIN, which this
    container has; elsewhere the test is skipped, saying why)."""
    mount = Path(ssh_board.remote_dir("small-disk"))
    mount.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}); the disk-full "
                    "tests need CAP_SYS_ADMIN")
    yield mount
    subprocess.run(["umount", str(mount)], timeout=30)


def test_disk_full_is_explained(ssh_board, rpi4_build, tmp_path, small_disk):
    board = load_board("rpi4")
    bundle = make_bundle(board, [SPARSE], rpi4_build, tmp_path)
    remote = ssh_board.remote()
    # Checked before anything is sent ...
    with pytest.raises(DiskFullError, match="not enough free space.*KiB are free"):
        deploy(bundle, remote, board, remote_dir=str(small_disk))
    # ... and a write that runs out of room anyway (ENOSPC) says so and leaves nothing.
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1 << 20))
    with pytest.raises(DiskFullError, match="disk is full.*No space left on device"):
        remote.upload(big, f"{small_disk}/incoming", "big.bin")
    assert list((small_disk / "incoming").iterdir()) == []


def test_disk_full_during_the_install_upload(ssh_board, rpi4_build, tmp_path, small_disk,
                                             monkeypatch):
    """The archive streams into the install session itself: ENOSPC there (the probe's free-space
    figure was too optimistic) is "disk is full", and leaves no upload, release or lock."""
    board = load_board("rpi4")
    bundle = make_bundle(board, [SPARSE], rpi4_build, tmp_path)
    real_run_script = ssh.Remote.run_script

    def roomy_probe(self, script, args, **kw):
        done = real_run_script(self, script, args, **kw)
        if script is bundle_mod.PROBE_SCRIPT:
            done.stdout = re.sub(r"@@free_kb \d+", "@@free_kb 99999999", done.stdout)
        return done

    monkeypatch.setattr(ssh.Remote, "run_script", roomy_probe)
    with pytest.raises(DiskFullError, match="disk is full while installing the bundle.*"
                                            "No space left on device"):
        deploy(bundle, ssh_board.remote(), board, remote_dir=str(small_disk))
    assert list((small_disk / "incoming").iterdir()) == []
    assert list((small_disk / "releases").iterdir()) == []
    assert not os.path.lexists(small_disk / ".lock")


def test_cli_deploy_writes_archive_and_pushes(ssh_board, rpi4_build, tmp_path):
    runner = CliRunner()
    archive = tmp_path / "rpi4.tar.gz"
    done = runner.invoke(main, ["deploy", "--board", "rpi4", "--model", str(SPARSE),
                                "--out", str(archive)])
    assert done.exit_code == 0, done.output
    assert read_bundle(archive).manifest["board"]["name"] == "rpi4"
    rdir = ssh_board.remote_dir("cli")
    args = ["deploy", "--board", "rpi4", "--model", str(SPARSE), "--host", "board",
            "--ssh-config", str(ssh_board.config), "--remote-dir", rdir]
    done = runner.invoke(main, args)
    assert done.exit_code == 0, done.output
    assert "installed" in done.output and "emulated" in done.output
    done = runner.invoke(main, args)
    assert done.exit_code == 0 and "already current" in done.output, done.output
    done = runner.invoke(main, ["deploy", "--board", "rpi4", "--model", str(SPARSE), "--host",
                                "board-unknown", "--ssh-config", str(ssh_board.config)])
    assert done.exit_code == 1
    assert "crisp-edge: error: board-unknown: its SSH host key" in done.output


def test_bad_model_is_refused_before_anything_is_sent(rpi4_build, tmp_path):
    bad = tmp_path / "bad.crisp"
    bad.write_bytes(SPARSE.read_bytes()[:-10])
    with pytest.raises(crisp_edge.CrispError):
        make_bundle(load_board("rpi4"), [bad], rpi4_build, tmp_path)
    with pytest.raises(DeployError, match="does not exist"):
        make_bundle(load_board("rpi4"), [tmp_path / "nope.crisp"], rpi4_build, tmp_path)


@pytest.mark.parametrize("forged", ["../../.ssh", "0123456789ABCDEF", "abc", 42, None])
def test_a_forged_bundle_id_is_refused_before_anything_runs(tmp_path, forged):
    """Issue 14, finding 6: the id names releases/ID, which the device creates and deletes;
    read_bundle and deploy accept only the 16 hex digits make_bundle writes."""
    import io
    import json
    import tarfile

    from crisp_edge.deploy.bundle import BUNDLE_FORMAT, Bundle
    from crisp_edge.errors import DeployError

    manifest = json.dumps({"format": BUNDLE_FORMAT, "bundle_id": forged}).encode()
    path = tmp_path / "forged.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("crisp-bundle-x/manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    with pytest.raises(DeployError, match="is not 16 hex digits"):
        read_bundle(path)
    if isinstance(forged, str):
        with pytest.raises(DeployError, match="is not 16 hex digits"):
            deploy(Bundle(path, forged, {}), None, None)  # type: ignore[arg-type]


def test_a_model_packed_for_other_kernels_is_warned_about(rpi4_build, tmp_path):
    rpi4, x86 = load_board("rpi4"), load_board("generic-x86-64")
    warn = bundle_mod.tier_warning
    said = warn("m.crisp", {"isa": "avx512f"}, rpi4)
    assert "m.crisp was packed for the avx512f kernels; rpi4 runs neon" in said
    assert "crisp-edge pack --isa neon" in said
    assert "generic-x86-64 runs avx512f / avx2_fma / scalar" in warn("m.crisp", {"isa": "neon"}, x86)
    # Right tier, a tier the runtime picks at run time, or nothing chosen at pack time: quiet.
    for prov in ({"isa": "neon"}, {"isa": "portable"}, {"isa": "host"}, {}, None, {"isa": 3}):
        assert warn("m.crisp", prov, rpi4) is None
    assert warn("m.crisp", {"isa": "avx2_fma"}, x86) is None
    # make_bundle logs it and still bundles the model (it runs, only maybe slower).
    packed_for = tmp_path / "avx.crisp"
    mf = crisp_edge.format.read_model(SPARSE)
    mf.provenance = {**(mf.provenance or {}), "isa": "avx512f"}
    crisp_edge.format.write_model(packed_for, mf)
    lines: list[str] = []
    b = make_bundle(rpi4, [packed_for], rpi4_build, tmp_path / "b.tar.gz", log=lines.append)
    assert [line for line in lines if line.startswith("warning: avx.crisp was packed for")]
    assert "models/avx.crisp" in b.manifest["files"]
