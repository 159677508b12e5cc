"""nginx from Debian in front of a hub, run with the repository's own deploy/nginx/handbook-hub.conf.

The shipped server block is used as it is, but for what must differ on a test machine: the
``listen`` port (loopback), the certificate and key, and the upstream servers. nginx runs in the
foreground in its own session with every file in a temporary folder, and is stopped by its pid.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER_BLOCK = ROOT / "deploy" / "nginx" / "handbook-hub.conf"
START_TIMEOUT = 20.0


def binary() -> str | None:
    """The nginx executable, or None."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


def why_missing() -> str:
    return "no nginx: run ./scripts/test (scripts/install-couchdb installs Debian's nginx-light), or apt-get install nginx-light"


def render(port: int, cert: Path, key: Path, upstreams: list[str]) -> str:
    """The shipped server block with the test's port, certificate and upstream servers."""
    text = SERVER_BLOCK.read_text(encoding="utf-8")
    text = re.sub(r"^(\s*)listen 443 ssl;", rf"\1listen 127.0.0.1:{port} ssl;", text, count=1, flags=re.MULTILINE)
    text = re.sub(r"^(\s*ssl_certificate)\s+\S+;", rf"\1 {cert};", text, count=1, flags=re.MULTILINE)
    text = re.sub(r"^(\s*ssl_certificate_key)\s+\S+;", rf"\1 {key};", text, count=1, flags=re.MULTILINE)
    servers = "".join(f"    server {u} max_fails=2 fail_timeout=10s;\n" for u in upstreams)
    text, found = re.subn(r"^\s*server 127\.0\.0\.1:5984[^\n]*\n", servers, text, count=1, flags=re.MULTILINE)
    assert found == 1 and f"listen 127.0.0.1:{port} ssl;" in text, "deploy/nginx/handbook-hub.conf changed shape"
    return text


class NginxProxy:
    """nginx on a free loopback port, TLS with ``cert``/``key``, proxying to ``upstreams`` (host:port)."""

    def __init__(self, workdir: Path, port: int, cert: Path, key: Path, upstreams: list[str]) -> None:
        exe = binary()
        if exe is None:
            raise RuntimeError(why_missing())
        self.port, self.workdir = port, workdir
        self.base = f"https://127.0.0.1:{port}"
        for sub in ("logs", "temp"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        (workdir / "handbook-hub.conf").write_text(render(port, cert, key, upstreams), encoding="utf-8")
        # As root the workers would switch to "nobody", who cannot write the temp folders here.
        user = f"user {pwd.getpwuid(os.getuid()).pw_name};\n" if os.getuid() == 0 else ""
        temp = workdir / "temp"
        (workdir / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {workdir}/nginx.pid;\nerror_log {workdir}/logs/error.log warn;\n"
            "worker_rlimit_nofile 16384;\nevents { worker_connections 8192; }\n"
            "http {\n"
            f"  access_log {workdir}/logs/access.log;\n"
            f"  client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fastcgi;\n"
            f"  uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;\n"
            "  default_type application/octet-stream;\n"
            f"  include {workdir}/handbook-hub.conf;\n"
            "}\n", encoding="utf-8")
        log = (workdir / "logs" / "stdout.log").open("ab")
        self.proc = subprocess.Popen([exe, "-p", str(workdir), "-c", str(workdir / "nginx.conf")],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nginx did not listen on {self.port}: {self.log()}")

    def log(self) -> str:
        parts = [(self.workdir / "logs" / n) for n in ("stdout.log", "error.log")]
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in parts if p.exists())

    def requests(self) -> list[str]:
        """The access log's lines."""
        path = self.workdir / "logs" / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def stop(self) -> None:
        """SIGQUIT (graceful) to the master's pid, SIGKILL to its group if it lingers."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
