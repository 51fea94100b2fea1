"""Kill-mid-deploy (issue 14): deploy to the sshd "board" and interrupt the install at seeded
random points: SIGKILL of the remote session's process group at a random moment, SIGKILL of the
remote shell at a given step (install.sh's `step` hook), or the SSH connection cut (the local
ssh client killed). After each, the board's `current` must pass its own smoke test, nothing
may be left behind once the next deploy ran, and that next deploy must complete.

Native bundles (generic-x86-64): crisp-run runs without qemu, so a deploy is two SSH sessions.
`make test` runs a short version; the 50-trial figure in docs/deploy.md comes from
`make test-deploy-kill` (marker deploy_kill, deselected by default in pyproject.toml)."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from crisp_edge.deploy import bundle as bundle_mod
from crisp_edge.deploy.boards import load_board
from crisp_edge.deploy.bundle import Bundle, deploy, make_bundle
from crisp_edge.deploy.programs import read_program
from crisp_edge.errors import CrispError
from device_state import current_problem, leftovers
from sshd_fixture import native_build, ssh_board  # noqa: F401  (fixtures)

DATA = Path(__file__).resolve().parents[2] / "runtime" / "tests" / "data"
BOARD = "generic-x86-64"
STEPS = re.findall(r"^step (\w+)$", read_program("install.sh"), re.M)
SETTLE_S = 60  # how long an orphaned remote install (after a cut) may take to end


def _cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def remote_sessions(rdir: str, bundle_id: str | None = None) -> list[int]:
    """Processes on the board (this machine) running a deploy program for ``rdir`` (and that
    bundle id: the install session, not the probe): the shells sshd started."""
    found = []
    for pid in _pids():
        argv = _cmdline(pid)
        if not argv or os.path.basename(argv[0]) == b"ssh" or pid == os.getpid():
            continue
        if rdir.encode() in argv and (bundle_id is None or bundle_id.encode() in argv):
            found.append(pid)
    return found


def ssh_clients(bundle_id: str) -> list[int]:
    """This test's own ssh client processes carrying the install session of ``bundle_id``."""
    return [pid for pid in _pids() if (argv := _cmdline(pid)) and
            os.path.basename(argv[0]) == b"ssh" and any(bundle_id.encode() in a for a in argv)
            and _ppid(pid) == os.getpid()]


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])


def kill_sessions(pids: list[int]) -> bool:
    """SIGKILL each remote session's process group (the shell sshd started leads one: its
    tar, sha256sum or crisp-run die with it). True if anything was still running."""
    hit = False
    for pid in pids:
        try:
            pgid = os.getpgid(pid)
            if pgid == pid and pgid != os.getpgrp():
                os.killpg(pgid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
            hit = True
        except ProcessLookupError:
            pass
    return hit


@dataclass
class Trial:
    index: int
    mode: str          # "step", "kill" or "cut"
    target: str        # bundle id deployed
    point: str         # the step, or the delay after the install session started
    hit: bool = False  # the interruption happened while the install ran
    outcome: str = ""  # what the interrupted deploy returned or raised
    problem: str | None = None


class Board:
    def __init__(self, ssh_board, build, tmp_path: Path, name: str):
        self.board = load_board(BOARD)
        self.ssh_board = ssh_board
        self.rdir = ssh_board.remote_dir(name)
        self.device = Path(self.rdir)
        self.good = [make_bundle(self.board, [DATA / m], build, tmp_path / m, dense_twins=False)
                     for m in ("sparse.crisp", "quant.crisp")]
        self.bad = _bad_bundle(build, tmp_path)

    def deploy(self, b: Bundle):
        return deploy(b, self.ssh_board.remote(), self.board, remote_dir=self.rdir)

    def current_id(self) -> str:
        try:
            return os.readlink(self.device / "current").removeprefix("releases/").split(".")[0]
        except OSError:
            return ""


def _bad_bundle(build, tmp_path: Path) -> Bundle:
    """Its own manifest expects a wrong top-1 index: its smoke test always fails, so it must
    never become current (the old protocol switched first and could leave it live)."""
    (tmp_path / "bad").mkdir()
    model = tmp_path / "bad" / "sparse_bad.crisp"
    shutil.copy(DATA / "sparse.crisp", model)
    real = bundle_mod._smoke_case

    def wrong(*args, **kw):
        case = real(*args, **kw)
        return {**case, "expected_top1": 1 if case["expected_top1"] == 0 else 0}

    bundle_mod._smoke_case = wrong
    try:
        return make_bundle(load_board(BOARD), [model], build, tmp_path / "bad", dense_twins=False)
    finally:
        bundle_mod._smoke_case = real


def timed_install(board: Board, b: Bundle) -> float:
    """Seconds from the install session's start to the end of an uninterrupted deploy."""
    seen: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set() and not seen:
            if remote_sessions(board.rdir, b.bundle_id):
                seen.append(time.monotonic())
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert board.deploy(b).status == "installed"
    finally:
        end = time.monotonic()
        done.set()
        watcher.join()
    assert seen, "never saw the install session"
    return end - seen[0]


def interrupted_deploy(board: Board, trial: Trial, b: Bundle, delay: float) -> None:
    """Deploy ``b`` while a killer thread interrupts it as ``trial.mode`` says."""
    result: list[str] = []

    def run() -> None:
        try:
            result.append(board.deploy(b).status)
        except CrispError as e:
            result.append(f"{type(e).__name__}: {str(e).splitlines()[-1][-160:]}")

    script = bundle_mod.INSTALL_SCRIPT
    if trial.mode == "step":
        bundle_mod.INSTALL_SCRIPT = f"crisp_test_kill_at={trial.point}\n" + script
    worker = threading.Thread(target=run)
    try:
        worker.start()
        if trial.mode != "step":
            started = None
            while worker.is_alive() and started is None:
                if remote_sessions(board.rdir, b.bundle_id):
                    started = time.monotonic()
                time.sleep(0.002)
            if started is not None:
                while worker.is_alive() and time.monotonic() < started + delay:
                    time.sleep(0.001)
                if trial.mode == "kill":
                    trial.hit = kill_sessions(remote_sessions(board.rdir, b.bundle_id))
                else:
                    trial.hit = kill_sessions(ssh_clients(b.bundle_id))
        worker.join(timeout=300)
        assert not worker.is_alive(), "the interrupted deploy did not return within 300 s"
    finally:
        bundle_mod.INSTALL_SCRIPT = script
    trial.outcome = result[0] if result else "(no result)"
    if trial.mode == "step":  # reached: the shell killed itself (a bad bundle fails before)
        trial.hit = "was killed" in trial.outcome


def run_trials(ssh_board, build, tmp_path: Path, count: int, seed: int,
               modes: list[str] | None = None) -> list[Trial]:
    """``count`` interrupted deploys; each trial's mode is drawn (3:4:2 step:kill:cut) from the
    seeded generator unless ``modes`` gives them in turn."""
    board = Board(ssh_board, build, tmp_path, f"kill-{count}-{seed}")
    rng = random.Random(seed)
    timed_install(board, board.good[1])
    install_s = timed_install(board, board.good[0])
    steps = STEPS * (count // len(STEPS) + 1)
    rng.shuffle(steps)
    trials: list[Trial] = []
    for i in range(count):
        mode = rng.choices(["step", "kill", "cut"], weights=[3, 4, 2])[0]
        if modes:
            mode = modes[i % len(modes)]
        candidates = [b for b in [*board.good, board.bad] if b.bundle_id != board.current_id()]
        target = rng.choice(candidates)
        delay = rng.uniform(0, install_s)
        trial = Trial(i, mode, target.bundle_id,
                      steps.pop() if mode == "step" else f"{delay * 1000:.0f} ms")
        interrupted_deploy(board, trial, target, delay)
        # A cut leaves the remote side running until it writes to the dead connection or ends.
        deadline = time.monotonic() + SETTLE_S
        while remote_sessions(board.rdir) and time.monotonic() < deadline:
            time.sleep(0.05)
        problem = current_problem(board.device)
        follow = target if target is not board.bad else board.good[i % 2]
        try:
            status = board.deploy(follow).status
            after = current_problem(board.device)
            rest = leftovers(board.device)
            if status not in ("installed", "unchanged") or after or rest:
                problem = (problem or "") + f" | next deploy: {status}, {after}, left {rest}"
        except CrispError as e:
            problem = (problem or "") + f" | next deploy failed: {e}"
        trial.problem = problem
        trials.append(trial)
        print(f"trial {i:2d} {trial.mode:4s} at {trial.point:>10s} "
              f"{'hit ' if trial.hit else 'miss'} -> {trial.outcome[:90]!r}"
              + (f"  PROBLEM: {problem}" if problem else ""))
    working = sum(t.problem is None for t in trials)
    modes = {m: sum(t.mode == m for t in trials) for m in ("step", "kill", "cut")}
    hits = sum(t.hit for t in trials)
    print(f"kill-mid-deploy, seed {seed}: {working} of {count} boards left working "
          f"({modes['step']} step kills, {modes['kill']} SIGKILLs of the remote session at a "
          f"random moment, {modes['cut']} connection cuts; {hits} interrupted a running install; "
          f"install session {install_s * 1000:.0f} ms uninterrupted)")
    return trials


def _check(trials: list[Trial]) -> None:
    bad = [t for t in trials if t.problem]
    assert not bad, "\n".join(f"trial {t.index} ({t.mode} at {t.point}): {t.problem}"
                              for t in bad)


def test_kill_mid_deploy_short(ssh_board, native_build, tmp_path):
    _check(run_trials(ssh_board, native_build, tmp_path, count=6, seed=1,
                      modes=["step", "kill", "cut"]))


@pytest.mark.deploy_kill
def test_kill_mid_deploy_50(ssh_board, native_build, tmp_path):
    count = int(os.environ.get("CRISP_DEPLOY_KILL_TRIALS", "50"))
    seed = int(os.environ.get("CRISP_DEPLOY_KILL_SEED", "14"))
    _check(run_trials(ssh_board, native_build, tmp_path, count=count, seed=seed))
