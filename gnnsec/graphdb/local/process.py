"""Processes and ports, without psutil: is a port taken or answering, is a pid alive, what is its command line.

``/proc`` where there is one, ``ps`` otherwise (macOS). The server uses these to own only what it started.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on ``host:port`` (bind test, like the server's own)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports the kernel considers free right now (bind to port 0), for
    throw-away servers in tests and benchmarks."""
    probes: list[socket.socket] = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind(("127.0.0.1", 0))
            probes.append(probe)
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def port_answers(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """True when a TCP connection to ``host:port`` is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _is_zombie(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        if stat.parent.exists():
            return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
        out = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
        return out.stdout.strip().startswith("Z")
    except (OSError, IndexError):
        return False


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (our own exited children are reaped first)."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def process_cmdline(pid: int) -> list[str] | None:
    """The argv of a live process, or None when it is gone or cannot be read."""
    for attempt in range(3):
        if not pid_alive(pid):
            return None
        argv = _read_cmdline(pid)
        if argv:
            return argv
        time.sleep(0.05 * (attempt + 1))  # /proc/<pid>/cmdline reads empty for a moment around exec
    return None


def _read_cmdline(pid: int) -> list[str]:
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            raw = (proc / "cmdline").read_bytes()
        except OSError:
            return []
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    try:  # no /proc (macOS): ask ps
        out = subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True, text=True)
    except OSError:
        return []
    return out.stdout.split() if out.returncode == 0 else []


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_for_exit(pid: int, timeout: float) -> bool:
    """True once ``pid`` is gone; False when it still runs after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True
