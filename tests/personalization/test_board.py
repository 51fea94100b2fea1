"""crisp-edge personalize on a board: the loopback sshd "board" playing an rpi4 (its aarch64
binaries, crisp-personalize included, run under qemu-aarch64), end to end through the CLI, the
re-selection of a --keep-head model, rollback, and bad input: nothing is half-written and the
old model keeps working (docs/personalize.md, "On a board")."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import crisp_edge
from crisp_edge.cli import main as cli
from crisp_edge.deploy import ssh
from crisp_edge.deploy.boards import load_board
from crisp_edge.deploy.bundle import Bundle, deploy, make_bundle
from crisp_edge.errors import (ArgumentError, DeployError, DeviceBusyError, RemoteError,
                               UnreachableError)
from crisp_edge.format import RESIZE_STRETCH, Preprocess
from crisp_edge.packing.pack import pack
from crisp_edge.personalization import board as board_mod
from crisp_edge.personalization.board import personalize_on_board, rollback_on_board
from device_state import leftovers
from prune_helpers import IMAGE_SIZE, tiny_model
from sshd_fixture import rpi4_build, ssh_board  # noqa: F401  (fixtures)

QEMU = ["qemu-aarch64", "-cpu", "cortex-a72"]
PREP = Preprocess(IMAGE_SIZE, IMAGE_SIZE, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25),
                  resize=RESIZE_STRETCH)
COLOURS = {"blue": [(10, 20, 240), (0, 40, 220), (30, 10, 250)],
           "red": [(250, 10, 10), (230, 30, 20), (240, 0, 40)]}


def png_folder(root: Path, classes: dict[str, list[tuple[int, int, int]]]) -> Path:
    """``root/<class>/<i>.png`` of flat colours (20×14: the model's PREP stretches them)."""
    from PIL import Image

    for name, colours in classes.items():
        (root / name).mkdir(parents=True)
        for i, rgb in enumerate(colours):
            Image.new("RGB", (20, 14), rgb).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def bundle(rpi4_build, tmp_path_factory) -> Bundle:  # noqa: F811
    """An rpi4 bundle of a tiny CNN packed with PREP (4 classes c0..c3)."""
    tmp = tmp_path_factory.mktemp("bundle")
    model = tmp / "m.crisp"
    pack(tiny_model(4).eval(), torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE), model,
         labels=[(c, f"c{c}") for c in range(4)], preprocess=PREP)
    return make_bundle(load_board("rpi4"), [model], rpi4_build, tmp, dense_twins=False)


def deployed(ssh_board, bundle: Bundle, name: str) -> tuple[str, Path]:  # noqa: F811
    rdir = ssh_board.remote_dir(name)
    assert deploy(bundle, ssh_board.remote(), load_board("rpi4"), remote_dir=rdir).status \
        == "installed"
    return rdir, Path(rdir)


def link(device: Path, name: str = "current") -> str:
    return os.readlink(device / name)


def labels(device: Path, where: str = "current", model: str = "m") -> list[tuple[int, str]]:
    with crisp_edge.load(device / where / "models" / f"{model}.crisp") as m:
        return list(m.labels)


def release_problem(device: Path, where: str = "current") -> str | None:
    """None when the release's files match its SHA256SUMS and its own crisp-run (under qemu)
    gives its manifest's smoke answer; else what is wrong."""
    release = (device / where).resolve()
    done = subprocess.run(["sha256sum", "-c", "--quiet", "--strict", "SHA256SUMS"], cwd=release,
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return f"{release.name}: files do not match SHA256SUMS: {done.stdout}{done.stderr}"
    smoke = json.loads((release / "manifest.json").read_text())["smoke"]
    done = subprocess.run([*QEMU, "bin/crisp-run", smoke["model"], smoke["input"], "--top-k",
                           "1"], cwd=release, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return f"{release.name}: crisp-run failed: {done.stderr}"
    if smoke["expected_top1"] is not None and \
            f"#1 index {smoke['expected_top1']} " not in done.stdout:
        return f"{release.name}: smoke answered {done.stdout!r}, expected {smoke}"
    return None


def classify(device: Path, image: Path, where: str = "current") -> str:
    """The class name the release's own crisp-run (under qemu) gives an image file."""
    done = subprocess.run([*QEMU, "bin/crisp-run", "models/m.crisp", "--image", str(image)],
                          cwd=device / where, capture_output=True, text=True, timeout=120,
                          check=True)
    return re.search(r"#1 index \d+ class -?\d+ \"([^\"]*)\"", done.stdout).group(1)  # type: ignore


def cli_args(ssh_board, rdir: str, *args: str) -> list[str]:  # noqa: F811
    return ["personalize", "--host", "board", "--ssh-config", str(ssh_board.config),
            "--remote-dir", rdir, *args]


# --------------------------------------------------------------------------------- end to end

def test_personalize_on_the_board_then_roll_back(ssh_board, bundle, tmp_path):  # noqa: F811
    started = time.monotonic()
    rdir, device = deployed(ssh_board, bundle, "e2e")
    old_release = link(device)
    old_model = (device / "current" / "models" / "m.crisp").read_bytes()
    photos = png_folder(tmp_path / "photos", COLOURS)
    runner = CliRunner()
    done = runner.invoke(cli, cli_args(ssh_board, rdir, "--board", "rpi4", "--data",
                                       str(photos), "--out", str(tmp_path / "copy.crisp")))
    assert done.exit_code == 0, done.output
    assert "wrote models/m.crisp: 2 classes (blue, red)" in done.output  # the tool's summary
    assert "learn, 2 classes: blue (id 4), red (id 5)" in done.output
    assert "roll back with: crisp-edge personalize --host board --rollback" in done.output
    assert "emulated" in done.output

    # current: a new release with the new head, verified, smoke-tested; the old one is previous
    assert link(device, "previous") == old_release and link(device) != old_release
    assert labels(device) == [(4, "blue"), (5, "red")]
    assert release_problem(device) is None
    assert (device / "current" / ".verified").is_file()
    assert (device / "current" / "models" / "m.orig.crisp").read_bytes() == old_model
    assert (tmp_path / "copy.crisp").read_bytes() == \
        (device / "current" / "models" / "m.crisp").read_bytes()
    for cls, colours in COLOURS.items():
        assert classify(device, photos / cls / "1.png") == cls
    manifest = json.loads((device / "current" / "manifest.json").read_text())
    assert link(device) == f"releases/{manifest['bundle_id']}"
    record = manifest["personalized"]
    assert record["mode"] == "learn" and record["classes"] == [[4, "blue"], [5, "red"]]
    assert record["images"] == {"blue": 3, "red": 3}
    assert record["source_release"] == old_release.removeprefix("releases/")
    assert record["source_bundle"] == bundle.bundle_id
    entry = next(m for m in manifest["models"] if m["name"] == "m")
    assert entry["output_shape"] == [2] and entry["labels"] == [[4, "blue"], [5, "red"]]
    assert manifest["smoke"]["personalized"] is True
    assert set(manifest["files"]) == set(bundle.manifest["files"]) | {"models/m.orig.crisp"}
    assert labels(device, "previous") == [(c, f"c{c}") for c in range(4)]
    assert leftovers(device) == []
    new_release = link(device)

    # rollback: the old model is back (smoke-tested first); a second one goes forward again
    done = runner.invoke(cli, cli_args(ssh_board, rdir, "--rollback"))
    assert done.exit_code == 0, done.output
    assert "models as deployed" in done.output
    assert (link(device), link(device, "previous")) == (old_release, new_release)
    assert labels(device) == [(c, f"c{c}") for c in range(4)]
    assert release_problem(device) is None
    done = runner.invoke(cli, cli_args(ssh_board, rdir, "--rollback"))
    assert done.exit_code == 0, done.output
    assert "personalised m (blue, red)" in done.output
    assert (link(device), link(device, "previous")) == (new_release, old_release)

    # Personalising again starts from the deployed model (m.orig.crisp), not the personalised
    # one: the new classes' ids continue after the original label map's.
    again = png_folder(tmp_path / "again", {"green": [(10, 240, 20), (30, 220, 10)],
                                            "red": COLOURS["red"][:2]})
    result = personalize_on_board(ssh_board.remote(), data=again, remote_dir=rdir)
    assert result.classes == [(4, "green"), (5, "red")] and result.previous == new_release
    assert labels(device) == [(4, "green"), (5, "red")]
    assert (device / "current" / "models" / "m.orig.crisp").read_bytes() == old_model
    assert release_problem(device) is None and leftovers(device) == []
    assert time.monotonic() - started < 120


def test_reselect_on_the_board_from_a_keep_head_model(ssh_board, rpi4_build, tmp_path):  # noqa: F811
    from crisp_edge.models.checkpoint import save_checkpoint
    from crisp_edge.packing.pack import pack_checkpoint
    from crisp_edge.pruning.engine import prune, result_checkpoint
    from prune_helpers import DATA, tiny_config, write_net

    spec = write_net(tmp_path)
    result = prune(tiny_model(), DATA, [1, 4, 6], tiny_config(keep_head=True), progress=False)
    save_checkpoint(result_checkpoint(result, model_source=spec, data=DATA), tmp_path / "f.pt")
    full = tmp_path / "full.crisp"
    pack_checkpoint(tmp_path / "f.pt", full, model_source=spec)
    with crisp_edge.load(full) as m:
        names = dict(m.labels)
    b = make_bundle(load_board("rpi4"), [full], rpi4_build, tmp_path)
    rdir, device = deployed(ssh_board, b, "reselect")
    res = personalize_on_board(ssh_board.remote(), load_board("rpi4"), classes="6,2",
                               remote_dir=rdir)
    assert res.mode == "reselect" and res.classes == [(6, names[6]), (2, names[2])]
    assert any("coverage" in line for line in res.tool_output)
    assert labels(device, model="full") == [(6, names[6]), (2, names[2])]
    assert release_problem(device) is None and leftovers(device) == []
    manifest = json.loads((device / "current" / "manifest.json").read_text())
    twins = [m for m in manifest["models"] if m["role"] == "dense-twin"]
    # the dense twin is the new model's, regenerated on the host
    assert [t["output_shape"] for t in twins] == [[2]] * len(twins)
    # Re-selecting again starts from the full head kept as full.orig.crisp.
    res = personalize_on_board(ssh_board.remote(), classes="1", remote_dir=rdir)
    assert res.classes == [(1, names[1])]
    assert release_problem(device) is None


# ---------------------------------------------------------------------------------- bad input

def test_a_class_of_one_image_is_refused_before_anything_is_sent(ssh_board, monkeypatch,
                                                                  tmp_path):  # noqa: F811
    photos = png_folder(tmp_path / "photos", {"blue": COLOURS["blue"],
                                              "red": COLOURS["red"][:1]})
    (photos / "red" / "notes.txt").write_text("not an image")

    def no_ssh(*args, **kw):
        raise AssertionError("nothing may be sent")

    monkeypatch.setattr(ssh.Remote, "run", no_ssh)
    with pytest.raises(ArgumentError, match=r"class 'red' .* has 1 image file"):
        personalize_on_board(ssh_board.remote(), data=photos, remote_dir="x")
    done = CliRunner().invoke(cli, cli_args(ssh_board, "x", "--data", str(photos)))
    assert done.exit_code == 1 and "class 'red'" in done.output
    with pytest.raises(ArgumentError, match="not both"):
        personalize_on_board(ssh_board.remote(), data=photos, classes="a,b", remote_dir="x")
    done = CliRunner().invoke(cli, cli_args(ssh_board, "x", "--data", "synthetic:10",
                                            "--classes", "1,2"))
    assert done.exit_code == 2 and "give a folder of images" in done.output


def test_unreachable_board_and_a_busy_lock(ssh_board, bundle, tmp_path):  # noqa: F811
    photos = png_folder(tmp_path / "photos", COLOURS)
    with pytest.raises(UnreachableError, match="cannot reach board-down"):
        personalize_on_board(ssh_board.remote("board-down"), data=photos, remote_dir="x")
    rdir, device = deployed(ssh_board, bundle, "busy")
    before = link(device)
    start = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]
    (device / ".lock").symlink_to(f"pid={os.getpid()} start={start} since={int(time.time())} "
                                  f"host={os.uname().nodename} op=deploy")
    try:
        with pytest.raises(DeviceBusyError, match=r"another deploy to board is running"):
            personalize_on_board(ssh_board.remote(), data=photos, remote_dir=rdir)
        with pytest.raises(DeviceBusyError):
            rollback_on_board(ssh_board.remote(), remote_dir=rdir)
        assert link(device) == before and not list((device / "incoming").iterdir())
    finally:
        (device / ".lock").unlink()
    with pytest.raises(DeployError, match="no previous release"):
        rollback_on_board(ssh_board.remote(), remote_dir=rdir)
    with pytest.raises(DeployError, match="no bundle is installed"):
        personalize_on_board(ssh_board.remote(), data=photos,
                             remote_dir=ssh_board.remote_dir("empty"))


def test_a_corrupt_image_reaches_the_user_and_nothing_switches(ssh_board, bundle,
                                                               tmp_path):  # noqa: F811
    rdir, device = deployed(ssh_board, bundle, "corrupt")
    before = link(device)
    photos = png_folder(tmp_path / "photos", COLOURS)
    (photos / "red" / "9.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    done = CliRunner().invoke(cli, cli_args(ssh_board, rdir, "--data", str(photos)))
    assert done.exit_code == 1
    assert re.search(r"crisp-personalize failed on the device: crisp-personalize: error: "
                     r".*red/9\.png.*--skip-bad", done.output, re.S), done.output
    assert link(device) == before and release_problem(device) is None
    assert leftovers(device) == []
    # --skip-bad goes on without it, and the tool's note reaches the user
    res = personalize_on_board(ssh_board.remote(), data=photos, remote_dir=rdir, skip_bad=True)
    assert any("skipped" in line and "9.png" in line for line in res.tool_output)
    assert link(device, "previous") == before and release_problem(device) is None


def test_a_result_the_host_refuses_is_removed_at_once(ssh_board, bundle, tmp_path,
                                                     monkeypatch):  # noqa: F811
    """The host checks the board's new file before anything is switched; when it refuses it,
    the copy left on the board is pruned right away (not only by the next operation)."""
    rdir, device = deployed(ssh_board, bundle, "refused")
    before = link(device)

    def refuse(*args, **kw):
        raise DeployError("board: the personalised model is wrong: test; nothing was switched")

    monkeypatch.setattr(board_mod, "_check_new_model", refuse)
    with pytest.raises(DeployError, match="model is wrong"):
        personalize_on_board(ssh_board.remote(), data=png_folder(tmp_path / "p", COLOURS),
                             remote_dir=rdir)
    assert link(device) == before and leftovers(device) == []
    assert release_problem(device) is None


def test_a_bundle_without_the_tool_asks_for_a_redeploy(ssh_board, bundle, tmp_path):  # noqa: F811
    """A release deployed before bundles carried bin/crisp-personalize (made here from this
    one: the tool and its checksum line removed)."""
    rdir, device = deployed(ssh_board, bundle, "old-bundle")
    old = device / "releases" / "0123456789abcdef"
    subprocess.run(["cp", "-a", str(device / "current") + "/.", str(old)], check=True)
    (old / "bin" / "crisp-personalize").unlink()
    sums = (old / "SHA256SUMS").read_text().splitlines()
    (old / "SHA256SUMS").write_text("\n".join(s for s in sums if "crisp-personalize" not in s)
                                    + "\n")
    (device / "current.tmp").symlink_to("releases/0123456789abcdef")
    os.replace(device / "current.tmp", device / "current")
    with pytest.raises(DeployError, match="no bin/crisp-personalize.*deploy again"):
        personalize_on_board(ssh_board.remote(), classes="c1,c2", remote_dir=rdir)
    assert link(device) == "releases/0123456789abcdef"


# ------------------------------------------------------------------------------- interruptions

def _remote_shells(rdir: str) -> list[int]:
    """The board-side shells of this install directory's sessions (the board is this machine)."""
    found = []
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) != b"ssh" and pid != os.getpid() \
                and rdir.encode() in argv:
            found.append(pid)
    return found


def _tool_running(rdir: str) -> bool:
    """Is the board's crisp-personalize (under qemu) running for this install directory?"""
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if b"crisp-personalize" in argv and cwd.startswith(rdir):
            return True
    return False


def _settle(device: Path, rdir: str, timeout: float = 60) -> None:
    """Wait until no session of the install directory runs any more (an orphaned one after a
    cut ends at its next write, or when its work is done)."""
    deadline = time.monotonic() + timeout
    while _remote_shells(rdir) or _tool_running(rdir):
        assert time.monotonic() < deadline, "the board's session did not end"
        time.sleep(0.1)


@pytest.mark.parametrize("how", ["step:received", "step:personalized", "step:completed",
                                 "step:verified", "kill-tool", "cut-tool"])
def test_an_interrupted_run_leaves_the_old_model_working(ssh_board, bundle, tmp_path,
                                                         monkeypatch, how):  # noqa: F811
    rdir, device = deployed(ssh_board, bundle, f"interrupt-{how.replace(':', '-')}")
    before = link(device)
    photos = png_folder(tmp_path / "photos", COLOURS)
    kind, _, point = how.partition(":")
    if kind == "step":  # SIGKILL of the board's shell at a step (the scripts' test hook)
        for name in ("RUN_SCRIPT", "FINISH_SCRIPT"):
            monkeypatch.setattr(board_mod, name,
                                f"crisp_test_kill_at={point}\n" + getattr(board_mod, name))
    stop = threading.Event()
    hits: list[int] = []

    def interrupt() -> None:  # while the board's crisp-personalize runs
        while not stop.is_set() and not _tool_running(rdir):
            time.sleep(0.005)
        if stop.is_set():
            return
        if kind == "kill-tool":  # SIGKILL of the remote session's process group
            for pid in _remote_shells(rdir):
                try:
                    pgid = os.getpgid(pid)
                    if pgid == pid and pgid != os.getpgrp():  # sshd made it a group leader
                        os.killpg(pgid, signal.SIGKILL)
                    else:
                        os.kill(pid, signal.SIGKILL)
                    hits.append(pid)
                except ProcessLookupError:
                    pass
        else:  # the connection cut: this machine's ssh client killed
            for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if os.path.basename(argv[0]) == b"ssh" and rdir.encode() in b" ".join(argv):
                    os.kill(pid, signal.SIGKILL)
                    hits.append(pid)

    worker = threading.Thread(target=interrupt)
    if kind != "step":
        worker.start()
    try:
        with pytest.raises((RemoteError, DeployError)):
            personalize_on_board(ssh_board.remote(), data=photos, remote_dir=rdir)
    finally:
        stop.set()
        if worker.is_alive():
            worker.join()
    assert hits or kind == "step", "the interruption missed the run"
    _settle(device, rdir)
    assert link(device) == before, "an interrupted personalisation switched current"
    assert release_problem(device) is None
    assert labels(device) == [(c, f"c{c}") for c in range(4)]
    monkeypatch.undo()
    res = personalize_on_board(ssh_board.remote(), data=photos, remote_dir=rdir)
    assert res.previous == before and labels(device) == [(4, "blue"), (5, "red")]
    assert release_problem(device) is None and leftovers(device) == []
