"""A small layer over the system OpenSSH client: run a command or a shell script on a device,
stream a file to it, and turn ssh's failures into errors a user can act on.

It runs ``ssh`` itself, so everything in ``~/.ssh/config`` (Host aliases, ports, users,
ProxyJump, IdentityFile), the agent and ``known_hosts`` apply as in a terminal. It never
disables host-key checking; ``BatchMode=yes`` makes an unknown host key or a password prompt
an error instead of a question nobody is there to answer.

>>> remote = Remote("pi@192.168.1.20")                          # doctest: +SKIP
>>> remote.run("uname -m").stdout                               # doctest: +SKIP
'aarch64\\n'
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from crisp_edge.errors import (AuthenticationError, DiskFullError, HostKeyError, RemoteError,
                               UnreachableError)

# ssh exits with 255 when ssh itself failed (connection, authentication, host key); any
# other status is the remote command's.
SSH_FAILED = 255


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"


def classify_failure(host: str, returncode: int, stderr: str, what: str) -> RemoteError:
    """The error for a failed ssh call: unreachable, host key, login, disk full or other."""
    text = stderr or ""
    if "No space left on device" in text or "Disk quota exceeded" in text:
        return DiskFullError(f"{host}: the device's disk is full while {what} "
                             f"({_last_line(text)}); free space there, or pass --remote-dir "
                             "on a filesystem with room")
    if returncode == SSH_FAILED:
        if ("Host key verification failed" in text or "HOST IDENTIFICATION HAS CHANGED" in text
                or "No ED25519 host key is known" in text or "host key for" in text.lower()):
            return HostKeyError(
                f"{host}: its SSH host key is not in your known_hosts (or has changed), and "
                "crisp-edge never skips host-key checking. Check the key's fingerprint on the "
                "device (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then connect once "
                f"with `ssh {host}` and accept it")
        if "Permission denied" in text or "Too many authentication failures" in text:
            return AuthenticationError(
                f"{host} refused the login ({_last_line(text)}); crisp-edge logs in without "
                f"prompting (BatchMode): install your key with `ssh-copy-id {host}` or load it "
                "into ssh-agent")
        unreachable = ("Connection refused", "Connection timed out", "No route to host",
                       "Could not resolve hostname", "Network is unreachable",
                       "Operation timed out", "Connection closed", "Connection reset",
                       "kex_exchange_identification")
        if any(marker in text for marker in unreachable):
            return UnreachableError(
                f"cannot reach {host}: {_last_line(text)}. Is the device powered, on the "
                "network and running sshd? Check the address, and the port/user in "
                "~/.ssh/config")
        if not text.strip():  # sshd reported the command killed by a signal, or the link died
            return RemoteError(f"{host}: the connection ended, or the command there was killed, "
                               f"while {what} (ssh exit status 255, no message)")
        return RemoteError(f"ssh to {host} failed while {what}: {_last_line(text)}")
    detail = text.strip()[-2000:] or f"exit status {returncode}"
    return RemoteError(f"{host}: {what} failed: {detail}")


@dataclass
class Remote:
    """A device reachable with ``ssh HOST``. ``config`` is passed as ``ssh -F`` (tests use a
    throwaway one; by default the user's own config applies)."""

    host: str
    config: Path | None = None
    connect_timeout: int = 10
    extra_options: Sequence[str] = field(default_factory=tuple)

    def ssh_command(self, remote_command: str) -> list[str]:
        """The argv that runs ``remote_command`` (a shell command line) on the device."""
        argv = ["ssh"]
        if self.config is not None:
            argv += ["-F", str(self.config)]
        # No -o StrictHostKeyChecking: the user's setting (default: ask) stands, and
        # BatchMode turns "ask" into a refusal.
        argv += ["-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}",
                 "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
                 *self.extra_options, "--", self.host, remote_command]
        return argv

    def run(self, command: str, *, input: bytes | None = None, timeout: float = 60,
            what: str = "running a command", check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        """Run a shell command line on the device; raises a :class:`RemoteError` subclass on
        failure (unless ``check`` is false) or when it takes longer than ``timeout`` s."""
        try:
            done = subprocess.run(self.ssh_command(command), input=input, capture_output=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{self.host}: {what} did not finish within {timeout:.0f} s") from None
        result = subprocess.CompletedProcess(done.args, done.returncode,
                                             done.stdout.decode("utf-8", "replace"),
                                             done.stderr.decode("utf-8", "replace"))
        if check and result.returncode != 0:
            raise classify_failure(self.host, result.returncode, result.stderr, what)
        return result

    def run_script(self, script: str, args: Sequence[str], *, data: bytes | None = None,
                   timeout: float = 60, what: str = "running a script", check: bool = True
                   ) -> subprocess.CompletedProcess[str]:
        """Run a POSIX sh ``script`` (sent on stdin) with ``args`` as $1, $2, …; with ``data``,
        the script reads those bytes from its stdin.

        The script is sent as one ``{ … }`` group: sh parses a group whole before running any
        of it, so a connection cut while the script is in transit runs nothing (without it,
        sh would run the commands it had received). With ``data``, ``dd bs=1`` reads exactly
        the script's bytes (one read(2) each, never past it) and the rest of stdin is left to
        the script."""
        body = ("{\n" + script.rstrip("\n") + "\n}\n").encode()
        quoted = " ".join(shlex.quote(a) for a in args)
        if data is None:
            return self.run("sh -s -- " + quoted, input=body, timeout=timeout, what=what,
                            check=check)
        command = (f"sh -c 'eval \"$(dd bs=1 count={len(body)} 2>/dev/null)\"' crisp-script "
                   + quoted)
        return self.run(command, input=body + data, timeout=timeout, what=what, check=check)

    def upload(self, local: Path, remote_dir: str, name: str, *, timeout: float = 600) -> str:
        """Stream ``local`` into a fresh temporary directory under ``remote_dir`` on the device
        (``mktemp -d``) as ``name``; returns that directory. A failed upload leaves nothing."""
        command = (f"set -e; d={shlex.quote(remote_dir)}; mkdir -p \"$d\"; "
                   "t=$(mktemp -d \"$d/upload.XXXXXX\"); echo \"$t\"; "
                   f"if ! cat > \"$t\"/{shlex.quote(name)}; then rm -rf \"$t\"; exit 1; fi")
        with open(local, "rb") as f:
            data = f.read()
        done = self.run(command, input=data, timeout=timeout,
                        what=f"uploading {local.name} ({len(data) // 1024} KiB)")
        return done.stdout.strip().splitlines()[-1]
