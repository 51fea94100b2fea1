"""What an install directory on the sshd "board" looks like after a deploy: does its `current`
pass its own smoke test, and is anything left over from an interrupted operation.

The board is this machine, so the checks read the directory and run `current/bin/crisp-run`
directly (native bundles only: generic-x86-64)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path


def _release(device: Path, link: str) -> Path | None:
    target = device / link
    return target.resolve() if target.is_symlink() else None


def current_problem(device: Path) -> str | None:
    """None when `current` is a release whose files match its SHA256SUMS and whose own smoke
    case (manifest.json) gives the expected top-1 index; else what is wrong."""
    if not (device / "current").is_symlink():
        return "there is no current link"
    release = _release(device, "current")
    if release is None or not release.is_dir():
        return f"current points at {os.readlink(device / 'current')}, which does not exist"
    done = subprocess.run(["sha256sum", "-c", "--quiet", "--strict", "SHA256SUMS"], cwd=release,
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return f"{release.name}: files do not match SHA256SUMS: {done.stdout}{done.stderr}"
    smoke = json.loads((release / "manifest.json").read_text())["smoke"]
    done = subprocess.run([str(release / "bin" / "crisp-run"), smoke["model"], smoke["input"],
                           "--top-k", "1"], cwd=release, capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        return f"{release.name}: crisp-run failed: {done.stderr}"
    if smoke["expected_top1"] is not None and \
            f"#1 index {smoke['expected_top1']} " not in done.stdout:
        return (f"{release.name}: smoke answered {done.stdout.strip()!r}, its manifest expects "
                f"top-1 index {smoke['expected_top1']}")
    return None


def leftovers(device: Path) -> list[str]:
    """Files an interrupted operation left: uploads, partial releases, half-made links, the lock,
    releases neither current nor previous points at."""
    found = [str(p.relative_to(device)) for p in (device / "incoming").glob("*")] \
        if (device / "incoming").is_dir() else []
    found += [name for name in ("current.new", "previous.new", ".lock")
              if os.path.lexists(device / name)]
    live = {_release(device, "current"), _release(device, "previous")}
    for r in sorted((device / "releases").glob("*")):
        if r.resolve() not in live:
            found.append(str(r.relative_to(device)))
    return found
