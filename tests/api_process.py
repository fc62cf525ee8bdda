"""A real ``smartmirror serve`` in its own process on 127.0.0.1, with its resident memory sampled from /proc.

Used by the hardening tests (memory bombs measured from the server process's RSS, kill -9, half-open sockets)
and by ``benchmarks/api_hardening.py``, which prints the same figures.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVE = "import sys; from smartmirror.cli.app import main; sys.argv = ['smartmirror', 'serve', *sys.argv[1:]]; main()"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (``VmRSS``)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen
    log_path: Path
    peak_mb: float = 0.0
    _sampling: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=httpx.Timeout(120.0), **kwargs)

    @contextmanager
    def peak_rss(self, interval_s: float = 0.01) -> Iterator[dict[str, float]]:
        """Sample the server's RSS while the block runs; yields ``{"before", "peak", "after"}`` in MB (filled at
        the end; ``growth`` = peak - before)."""
        out = {"before": self.rss_mb()}
        peak = [out["before"]]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], self.rss_mb())
                except (OSError, RuntimeError):
                    return
                stop.wait(interval_s)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield out
        finally:
            stop.set()
            thread.join(timeout=5)
            out["peak"] = peak[0]
            out["after"] = self.rss_mb() if self.process.poll() is None else float("nan")
            out["growth"] = out["peak"] - out["before"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def serve_process(tmp_dir: Path, env: dict[str, str] | None = None, start_timeout_s: float = 90.0,
                  host: str = "127.0.0.1", pythonpath: str | None = None) -> Iterator[ServerProcess]:
    """``smartmirror serve --port N`` in a child process; stopped (SIGTERM, then SIGKILL) when the block ends.

    ``pythonpath`` (default ``$SMARTMIRROR_TEST_SERVE_PYTHONPATH``) runs the server from another checkout, e.g. a
    copy of an older main, to see which of the hardening tests it fails.
    """
    pythonpath = pythonpath or os.environ.get("SMARTMIRROR_TEST_SERVE_PYTHONPATH")
    port = free_port()
    log_path = Path(tmp_dir) / f"serve-{port}.log"
    child_env = {**os.environ, "TMPDIR": str(tmp_dir), **(env or {})}
    if pythonpath is not None:
        child_env["PYTHONPATH"] = pythonpath
    with open(log_path, "wb") as log_file:
        # run from tmp_dir when another checkout is asked for (``python -c`` puts the working folder first)
        process = subprocess.Popen([sys.executable, "-c", SERVE, "--host", host, "--port", str(port)],
                                   stdout=log_file, stderr=subprocess.STDOUT, env=child_env,
                                   cwd=tmp_dir if pythonpath is not None else None)
    server = ServerProcess(f"http://{host}:{port}", process, log_path)
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{server.log()[-3000:]}")
            try:
                if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start in {start_timeout_s:g} s:\n{server.log()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
