"""Issue 14, finding 5: deploy atomicity on the sshd "board", with native (generic-x86-64) bundles.

(a) a release becomes `current` only after its smoke test passed, and a `current` that never
    passed one is not "unchanged"; (b) a redeploy never deletes the live release before the
    switch; (c) one operation at a time per install directory (the `.lock`), a dead owner's lock
    is recovered; and leftovers of killed deploys are removed."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from crisp_edge.deploy import bundle as bundle_mod
from crisp_edge.deploy.boards import load_board
from crisp_edge.deploy.bundle import Bundle, deploy, make_bundle
from crisp_edge.deploy.programs import read_program
from crisp_edge.errors import CrispError, DeployError, RemoteError
from device_state import current_problem, leftovers
from sshd_fixture import native_build, ssh_board  # noqa: F401  (fixtures)

DATA = Path(__file__).resolve().parents[2] / "runtime" / "tests" / "data"
SPARSE, QUANT = DATA / "sparse.crisp", DATA / "quant.crisp"
BOARD = "generic-x86-64"


def _bundle(build, tmp_path: Path, model: Path) -> Bundle:
    return make_bundle(load_board(BOARD), [model], build, tmp_path, dense_twins=False)


def bad_bundle(build, tmp_path: Path, monkeypatch) -> Bundle:
    """A bundle whose own smoke case cannot pass: its manifest expects a wrong top-1 index (a
    model under another name, so its id differs from the good bundles')."""
    model = tmp_path / "sparse_bad.crisp"
    shutil.copy(SPARSE, model)
    real = bundle_mod._smoke_case

    def wrong(*args, **kw):
        case = real(*args, **kw)
        assert case["expected_top1"] is not None
        return {**case, "expected_top1": 1 if case["expected_top1"] == 0 else 0}

    monkeypatch.setattr(bundle_mod, "_smoke_case", wrong)
    try:
        return _bundle(build, tmp_path, model)
    finally:
        monkeypatch.undo()


def host_says_wrong_top1(b: Bundle) -> Bundle:
    """The same archive (and id), but the host expects another top-1 index: its smoke test on
    the device fails although the files are intact."""
    smoke = b.manifest["smoke"]
    assert smoke["expected_top1"] is not None
    wrong = 1 if smoke["expected_top1"] == 0 else 0
    return dataclasses.replace(b, manifest={**b.manifest, "smoke": {**smoke,
                                                                    "expected_top1": wrong}})


def unpack_unverified(b: Bundle, device: Path) -> str:
    """What an install killed after switching `current` and before the smoke test leaves (the
    protocol before this fix): the release unpacked and intact, `current` pointing at it, the
    bundle before as `previous`."""
    release = device / "releases" / b.bundle_id
    with tarfile.open(b.path) as tar:
        for m in tar.getmembers():
            m.name = m.name.split("/", 1)[1] if "/" in m.name else "."
        tar.extractall(release, filter="data")
    before = os.readlink(device / "current")
    (device / "previous.tmp").symlink_to(before)
    os.replace(device / "previous.tmp", device / "previous")
    (device / "current.tmp").symlink_to(f"releases/{b.bundle_id}")
    os.replace(device / "current.tmp", device / "current")
    return before


def release_id(device: Path, link: str = "current") -> str:
    """The bundle id of the release a link points at (releases/ID or releases/ID.N)."""
    return os.readlink(device / link).removeprefix("releases/").split(".")[0]


# ------------------------------------------------------------------------------------- (a)

def test_unverified_current_is_reinstalled_not_unchanged(ssh_board, native_build, tmp_path):
    board, remote = load_board(BOARD), ssh_board.remote()
    rdir = ssh_board.remote_dir("unverified-good")
    device = Path(rdir)
    a, b = _bundle(native_build, tmp_path, SPARSE), _bundle(native_build, tmp_path, QUANT)
    assert deploy(a, remote, board, remote_dir=rdir).status == "installed"
    unpack_unverified(b, device)
    done = deploy(b, remote, board, remote_dir=rdir)
    assert done.status == "installed", "a current that never passed a smoke test is not current"
    assert "#1 index" in done.smoke
    assert release_id(device) == b.bundle_id and current_problem(device) is None
    assert deploy(b, remote, board, remote_dir=rdir).status == "unchanged"


def test_unverified_failing_current_goes_back_to_previous(ssh_board, native_build, tmp_path,
                                                          monkeypatch):
    board, remote = load_board(BOARD), ssh_board.remote()
    rdir = ssh_board.remote_dir("unverified-bad")
    device = Path(rdir)
    a = _bundle(native_build, tmp_path, SPARSE)
    bad = bad_bundle(native_build, tmp_path, monkeypatch)
    assert deploy(a, remote, board, remote_dir=rdir).status == "installed"
    unpack_unverified(bad, device)
    assert current_problem(device) is not None  # the untested bundle is live and broken
    with pytest.raises(RemoteError, match="smoke inference answered"):
        deploy(bad, remote, board, remote_dir=rdir)
    assert release_id(device) == a.bundle_id
    assert current_problem(device) is None
    assert leftovers(device) == []


def test_smoke_test_runs_before_current_switches(ssh_board, native_build, tmp_path,
                                                 monkeypatch):
    """A bundle that fails its smoke test is never `current`, not even for a moment: a watcher
    polls the link during the deploy."""
    board, remote = load_board(BOARD), ssh_board.remote()
    rdir = ssh_board.remote_dir("smoke-first")
    device = Path(rdir)
    a = _bundle(native_build, tmp_path, SPARSE)
    bad = bad_bundle(native_build, tmp_path, monkeypatch)
    assert deploy(a, remote, board, remote_dir=rdir).status == "installed"
    seen: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                seen.add(release_id(device))
            except OSError:
                seen.add("(none)")

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(3):
            with pytest.raises(RemoteError, match="smoke inference answered"):
                deploy(bad, remote, board, remote_dir=rdir)
    finally:
        stop.set()
        watcher.join()
    assert seen == {a.bundle_id}
    assert current_problem(device) is None and leftovers(device) == []


# ------------------------------------------------------------------------------------- (b)

def test_redeploy_over_corrupt_current_never_leaves_no_bundle(ssh_board, native_build, tmp_path):
    board, remote = load_board(BOARD), ssh_board.remote()
    rdir = ssh_board.remote_dir("corrupt-current")
    device = Path(rdir)
    a, b = _bundle(native_build, tmp_path, SPARSE), _bundle(native_build, tmp_path, QUANT)
    deploy(a, remote, board, remote_dir=rdir)
    deploy(b, remote, board, remote_dir=rdir)
    assert (release_id(device), release_id(device, "previous")) == (b.bundle_id, a.bundle_id)
    (device / "current" / "models" / "quant.crisp").write_bytes(b"damaged")
    # The same bundle again; its smoke test fails this time (the host expects another answer).
    with pytest.raises(RemoteError, match="smoke inference answered"):
        deploy(host_says_wrong_top1(b), remote, board, remote_dir=rdir)
    assert current_problem(device) is None, "the board was left without a working bundle"
    assert release_id(device) == a.bundle_id  # the damaged current gave way to previous
    assert leftovers(device) == []
    # and an honest redeploy repairs it
    done = deploy(b, remote, board, remote_dir=rdir)
    assert done.status == "installed" and release_id(device) == b.bundle_id
    assert current_problem(device) is None


def test_redeploy_over_corrupt_current_repairs_it(ssh_board, native_build, tmp_path):
    board, remote = load_board(BOARD), ssh_board.remote()
    rdir = ssh_board.remote_dir("repair")
    device = Path(rdir)
    a, b = _bundle(native_build, tmp_path, SPARSE), _bundle(native_build, tmp_path, QUANT)
    deploy(a, remote, board, remote_dir=rdir)
    deploy(b, remote, board, remote_dir=rdir)
    (device / "current" / "models" / "quant.crisp").write_bytes(b"damaged")
    done = deploy(b, remote, board, remote_dir=rdir)
    assert (done.status, done.previous) == ("installed", a.bundle_id)
    assert release_id(device) == b.bundle_id and release_id(device, "previous") == a.bundle_id
    assert current_problem(device) is None and leftovers(device) == []
    assert deploy(b, remote, board, remote_dir=rdir).status == "unchanged"


# --------------------------------------------------------------------------- leftovers

def test_leftovers_of_killed_deploys_are_removed(ssh_board, native_build, tmp_path):
    board, remote = load_board(BOARD), ssh_board.remote()
    rdir = ssh_board.remote_dir("leftovers")
    device = Path(rdir)
    a, b = _bundle(native_build, tmp_path, SPARSE), _bundle(native_build, tmp_path, QUANT)
    deploy(a, remote, board, remote_dir=rdir)
    for name in ("upload.Ab12Cd", "upload.x"):
        (device / "incoming" / name).mkdir(parents=True)
        (device / "incoming" / name / "bundle.tar.gz").write_bytes(b"half an upload")
    (device / "releases" / f"{b.bundle_id}.partial" / "bin").mkdir(parents=True)
    (device / "current.new").symlink_to(f"releases/{b.bundle_id}")
    done = deploy(b, remote, board, remote_dir=rdir)
    assert done.status == "installed"
    assert leftovers(device) == []
    assert current_problem(device) is None


# ------------------------------------------------------------------------------------- (c)

LOCK_HOLDER = """
cd "$1" || exit 1
take_lock "$2" || exit $?
echo "@@held $$"
read -r _ || true
"""


class Holder:
    """Another operation (here: a `personalize`) holding the device lock through lock.sh, over
    its own SSH session, until its stdin is closed or it is killed."""

    def __init__(self, remote, rdir: str, op: str = "personalize"):
        script = "{\n" + read_program("lock.sh") + LOCK_HOLDER + "}\n"
        self.proc = subprocess.Popen(remote.ssh_command(f"sh -s -- {rdir} {op}"),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(script.encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().decode()
        assert line.startswith("@@held "), line + self.proc.stderr.read().decode()
        self.pid = int(line.split()[1])  # the remote shell: on this machine

    def release(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)

    def kill_remote(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def test_a_live_lock_is_a_clear_error_not_a_hang(ssh_board, native_build, tmp_path):
    board, remote = load_board(BOARD), ssh_board.remote()
    rdir = ssh_board.remote_dir("locked")
    device = Path(rdir)
    a, b = _bundle(native_build, tmp_path, SPARSE), _bundle(native_build, tmp_path, QUANT)
    deploy(a, remote, board, remote_dir=rdir)
    holder = Holder(remote, rdir)
    try:
        started = time.monotonic()
        with pytest.raises(DeployError, match=rf"another personalize to board is running "
                                              rf"\(pid {holder.pid} since [^)]+\); wait or "
                                              rf"remove {rdir}/\.lock"):
            deploy(b, remote, board, remote_dir=rdir)
        assert time.monotonic() - started < 30
        assert release_id(device) == a.bundle_id
        assert not list((device / "incoming").glob("*"))
    finally:
        holder.release()
    assert not os.path.lexists(device / ".lock")
    assert deploy(b, remote, board, remote_dir=rdir).status == "installed"
    assert leftovers(device) == []


def test_a_lock_of_another_machine_is_not_broken_before_its_timeout(ssh_board, native_build,
                                                                     tmp_path):
    """Its process cannot be checked from here (an install directory on a shared disk)."""
    board, remote = load_board(BOARD), ssh_board.remote()
    rdir = ssh_board.remote_dir("foreign-lock")
    device = Path(rdir)
    a = _bundle(native_build, tmp_path, SPARSE)
    device.mkdir(parents=True)
    (device / ".lock").symlink_to(f"pid=1 start=1 since={int(time.time()) - 60} "
                                  "host=another-board op=deploy")
    with pytest.raises(DeployError, match=r"another deploy to board is running \(pid 1 since"):
        deploy(a, remote, board, remote_dir=rdir)
    assert os.path.lexists(device / ".lock")


def test_a_dead_owners_lock_is_recovered_with_a_message(ssh_board, native_build, tmp_path):
    board, remote = load_board(BOARD), ssh_board.remote()
    rdir = ssh_board.remote_dir("stale-lock")
    device = Path(rdir)
    a, b = _bundle(native_build, tmp_path, SPARSE), _bundle(native_build, tmp_path, QUANT)
    deploy(a, remote, board, remote_dir=rdir)
    holder = Holder(remote, rdir)
    holder.kill_remote()  # SIGKILL: no trap runs, the lock stays behind
    assert os.path.lexists(device / ".lock")
    said: list[str] = []
    assert deploy(b, remote, board, remote_dir=rdir, log=said.append).status == "installed"
    assert any(f"recovered the lock of personalize pid {holder.pid}" in s and "is gone" in s
               for s in said), said
    assert leftovers(device) == [] and current_problem(device) is None


def test_a_lock_older_than_the_timeout_is_recovered(ssh_board, native_build, tmp_path):
    board, remote = load_board(BOARD), ssh_board.remote()
    rdir = ssh_board.remote_dir("old-lock")
    device = Path(rdir)
    a = _bundle(native_build, tmp_path, SPARSE)
    device.mkdir(parents=True)
    # A live process (this one), on this host, but the lock is two hours old.
    (device / ".lock").symlink_to(f"pid={os.getpid()} start=1 since={int(time.time()) - 7200} "
                                  f"host={os.uname().nodename} op=deploy")
    said: list[str] = []
    assert deploy(a, remote, board, remote_dir=rdir, log=said.append).status == "installed"
    assert any("recovered the lock of deploy pid" in s and "s old" in s for s in said), said
    assert leftovers(device) == []


def test_concurrent_deploys_are_serialised(ssh_board, native_build, tmp_path):
    """A fleet file listing one host twice, or a retry racing the first attempt: each deploy
    either completes or says another one is running; the board ends consistent."""
    board = load_board(BOARD)
    rdir = ssh_board.remote_dir("concurrent")
    device = Path(rdir)
    a, b = _bundle(native_build, tmp_path, SPARSE), _bundle(native_build, tmp_path, QUANT)
    deploy(a, ssh_board.remote(), board, remote_dir=rdir)
    outcomes: list[str] = []
    for round_ in range(4):
        targets = [b, b] if round_ % 2 == 0 else [a, b]
        results: list[str] = [""] * len(targets)

        def run(i: int, target: Bundle) -> None:
            try:
                results[i] = deploy(target, ssh_board.remote(), board, remote_dir=rdir).status
            except DeployError as e:
                results[i] = "busy" if "is running" in str(e) else f"error: {e}"
            except CrispError as e:
                results[i] = f"error: {e}"

        threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        outcomes += results
        assert all(r in ("installed", "unchanged", "busy") for r in results), results
        assert current_problem(device) is None and leftovers(device) == []
    assert "installed" in outcomes
