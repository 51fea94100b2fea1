"""A real OpenSSH server on 127.0.0.1 playing a board, and the board's runtime built once.

The server runs Debian's /usr/sbin/sshd with a generated host key and user key; the client
side is a throwaway ssh config passed as ``ssh -F`` (so the user's ~/.ssh is never read or
written). Aliases in that config:

    board          the server, with its host key in known_hosts
    board-unknown  the same server, with an empty known_hosts (host key unknown)
    board-down     a port nothing listens on (unreachable)

This machine is x86-64, so the "board" runs its aarch64 binaries under qemu-aarch64 with
the profile's qemu CPU model (deploy and bench say so in their output).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from crisp_edge.deploy.boards import load_board
from crisp_edge.deploy.build import BoardBuild, build_runtime
from crisp_edge.deploy.ssh import Remote

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path,
                   timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with status {proc.returncode}: "
                               + log.read_text(errors="replace"))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"sshd did not listen on port {port} within {timeout} s")


@dataclass
class SshBoard:
    config: Path
    root: Path

    def remote(self, alias: str = "board") -> Remote:
        return Remote(alias, config=self.config, connect_timeout=5)

    def remote_dir(self, name: str) -> str:
        """A fresh install directory on the "device" (absolute)."""
        d = self.root / "device" / name
        shutil.rmtree(d, ignore_errors=True)
        return str(d)


@pytest.fixture(scope="session")
def ssh_board(tmp_path_factory: pytest.TempPathFactory):
    """The sshd "board" (session-wide; stopped at the end)."""
    for tool in (SSHD, "ssh", "ssh-keygen", "qemu-aarch64"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install openssh-server openssh-client "
                        "qemu-user", pytrace=False)
    root = tmp_path_factory.mktemp("sshd")
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
    subprocess.run(keygen + ["-f", str(root / "host_key")], check=True, timeout=30)
    subprocess.run(keygen + ["-f", str(root / "user_key")], check=True, timeout=30)
    shutil.copy(root / "user_key.pub", root / "authorized_keys")
    port = _free_port()
    (root / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {root}/host_key
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
""")
    host_key = (root / "host_key.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    (root / "empty_known_hosts").write_text("")
    common = f"""\
  HostName 127.0.0.1
  User {os.environ.get('USER') or 'root'}
  IdentityFile {root}/user_key
  IdentitiesOnly yes
  IdentityAgent none
  GlobalKnownHostsFile /dev/null
  LogLevel ERROR
"""
    (root / "ssh_config").write_text(
        f"Host board\n  Port {port}\n  UserKnownHostsFile {root}/known_hosts\n{common}"
        f"Host board-unknown\n  Port {port}\n  UserKnownHostsFile {root}/empty_known_hosts\n"
        f"{common}"
        f"Host board-down\n  Port {_free_port()}\n  UserKnownHostsFile {root}/known_hosts\n"
        f"{common}")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    # sshd's log goes to a file: a pipe nobody reads fills up after enough logged errors (the
    # kill test's cut connections) and then every sshd process blocks writing to it.
    log = root / "sshd.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
                                stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        _wait_for_port(port, proc, log)
        yield SshBoard(root / "ssh_config", root)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def rpi4_build() -> BoardBuild:
    """libcrisp, crisp-run and crisp-bench cross-built for rpi4 (cached in build/boards/)."""
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.fail("aarch64-linux-gnu-gcc is missing: apt-get install gcc-aarch64-linux-gnu "
                    "libc6-dev-arm64-cross", pytrace=False)
    return build_runtime(load_board("rpi4"))


@pytest.fixture(scope="session")
def native_build() -> BoardBuild:
    """The runtime built for this machine's own arch (generic-x86-64): the sshd "board" runs
    it natively, so a deploy costs two SSH sessions and a millisecond smoke run, not qemu."""
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip(f"the native board profile is generic-x86-64; this is {platform.machine()}")
    return build_runtime(load_board("generic-x86-64"))
