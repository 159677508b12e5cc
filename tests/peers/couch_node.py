"""A real Apache CouchDB 3.4.3 node (or cluster) on loopback, for tests against the real hub.

Where the release comes from, in order:

- ``COUCHDB_URL`` (``http://admin:pass@host:port``): a CouchDB the user runs; used as is;
- ``COUCHDB_REL``: an unpacked release folder (the ``couchdb/`` of the tarball);
- ``.cache/couchdb``: where ``scripts/test`` unpacks ``../shared/couchdb/`` when it is there.

Each node is started with the shared ``start.sh``, behind an Erlang port mapper (epmd) of its
own on a free port, so test runs never meet; it is stopped by its process id. Passwords are
hashed with few PBKDF2 iterations (``[chttpd_auth] iterations``): the 600,000 of the default
make every first request with a password cost 200 ms, which says nothing about this project.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "couchdb"
CACHE = ROOT / ".cache" / "couchdb"
ADMIN = ("admin", "secret")
TEST_INI = """\
[chttpd_auth]
iterations = 10
[log]
level = warning
[couchdb]
max_dbs_open = 2000
"""


def release() -> Path | None:
    """The unpacked CouchDB release to run, or None."""
    chosen = os.environ.get("COUCHDB_REL")
    if chosen:
        return Path(chosen)
    return CACHE if (CACHE / "bin" / "couchdb").exists() else None


def why_missing() -> str:
    """One line saying why no CouchDB can be started here."""
    if not SHARED.exists():
        return (f"no CouchDB: {SHARED} is not there; set COUCHDB_URL to a CouchDB 3 you run, "
                "or COUCHDB_REL to an unpacked release")
    return f"no CouchDB: run ./scripts/test (it unpacks {SHARED} into {CACHE})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Epmd:
    """An Erlang port mapper of our own, on a free loopback port."""

    def __init__(self, rel: Path) -> None:
        self.port = free_port()
        binary = next(rel.glob("erts-*/bin/epmd"))
        self.proc = subprocess.Popen([str(binary), "-port", str(self.port), "-address", "127.0.0.1"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class CouchNode:
    """One CouchDB node started by start.sh (or cluster.sh) in ``data_dir``."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"http://{ADMIN[0]}:{ADMIN[1]}@127.0.0.1:{port}"
        self.auth = ADMIN

    @property
    def pid(self) -> int:
        return int((self.data_dir / "couchdb.pid").read_text())

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except (ProcessLookupError, FileNotFoundError, ValueError):
            return False
        return True

    def kill(self) -> None:
        """Stop the node (SIGTERM, then SIGKILL) by its process id."""
        if (self.data_dir / "couchdb.pid").exists():
            _kill(self.pid)

    def log(self) -> str:
        path = self.data_dir / "couchdb.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _env(rel: Path, epmd: Epmd, ini: Path, extra_ini: tuple[Path, ...] = ()) -> dict[str, str]:
    """start.sh's environment; ``extra_ini`` files are read after the test settings (theirs win)."""
    inis = " ".join(str(p) for p in (ini, *extra_ini))
    return {**os.environ, "COUCHDB_REL": str(rel), "ERL_EPMD_PORT": str(epmd.port), "EXTRA_INI": inis}


def _ini(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    ini = workdir / "test.ini"
    ini.write_text(TEST_INI)
    return ini


class CouchServer:
    """A running single CouchDB node with its epmd; ``stop()`` ends both.

    ``extra_ini``: more settings (e.g. deploy/couchdb/handbook-hub.ini), read after the test's own.
    """

    def __init__(self, workdir: Path, rel: Path, extra_ini: tuple[Path, ...] = ()) -> None:
        ini = _ini(workdir)
        self.epmd = Epmd(rel)
        self.node = CouchNode(workdir / "node", free_port())
        env = _env(rel, self.epmd, ini, extra_ini)
        proc = subprocess.run(["sh", str(SHARED / "start.sh"), str(self.node.port), str(self.node.data_dir),
                               ":".join(ADMIN)], env=env, capture_output=True, timeout=120, check=False)
        if proc.returncode != 0:
            self.stop()
            raise RuntimeError(f"CouchDB did not start: {proc.stderr.decode()}\n{self.node.log()}")
        self.base, self.url, self.auth = self.node.base, self.node.url, ADMIN
        _wait_settled(self.base)

    def stop(self) -> None:
        self.node.kill()
        self.epmd.stop()

    def wipe(self) -> None:
        """Delete every database but the system ones, and every user: the next test starts empty."""
        with httpx.Client(base_url=self.base, auth=ADMIN, trust_env=False, timeout=60) as http:
            for name in http.get("/_all_dbs").json():
                if not name.startswith("_"):
                    http.delete(f"/{name}")
            rows = http.get("/_users/_all_docs").json().get("rows", [])
            docs = [{"_id": r["id"], "_rev": r["value"]["rev"], "_deleted": True}
                    for r in rows if r["id"].startswith("org.couchdb.user:")]
            if docs:
                http.post("/_users/_bulk_docs", json={"docs": docs})


class CouchCluster:
    """Three CouchDB nodes joined by cluster.sh (``n = 3``), on consecutive ports."""

    def __init__(self, workdir: Path, rel: Path) -> None:
        ini = _ini(workdir)
        self.epmd = Epmd(rel)
        base_port = _free_run(3)
        env = _env(rel, self.epmd, ini)
        root = workdir / "cluster"
        self.nodes = [CouchNode(root / f"node{i}", base_port + i - 1) for i in (1, 2, 3)]
        self._env = env
        proc = subprocess.run(["sh", str(SHARED / "cluster.sh"), str(base_port), str(root), ":".join(ADMIN)],
                              env=env, capture_output=True, timeout=300, check=False)
        if proc.returncode != 0:
            self.stop()
            raise RuntimeError(f"the CouchDB cluster did not start: {proc.stderr.decode()}\n{self.nodes[0].log()}")
        _wait_settled(self.nodes[0].base)

    def start_node(self, index: int) -> None:
        """Start node ``index`` (0-based) again after ``kill()``, on its data and port; it rejoins the cluster."""
        node = self.nodes[index]
        env = {**self._env, "NODE_NAME": f"node{index + 1}@127.0.0.1", "SINGLE_NODE": "false", "CLUSTER_N": "3"}
        proc = subprocess.run(["sh", str(SHARED / "start.sh"), str(node.port), str(node.data_dir), ":".join(ADMIN)],
                              env=env, capture_output=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"CouchDB node{index + 1} did not start again: {proc.stderr.decode()}\n{node.log()}")

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
        self.epmd.stop()


def _wait_settled(base: str, timeout: float = 60.0) -> None:
    """Until CouchDB has written ``_users/_design/_auth``, which it does on its own some seconds
    after ``/_up`` answers: a test that compares ``_users`` before and after would see that write."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, auth=ADMIN, trust_env=False, timeout=10) as http:
        while http.get("/_users/_design/_auth").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"CouchDB at {base} never wrote _users/_design/_auth")
            time.sleep(0.2)


def _free_run(count: int) -> int:
    """A first port such that ``count`` consecutive ports are free now."""
    for _ in range(50):
        first = free_port()
        if first + count > 65535:
            continue
        socks = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                socks.append(sock)
            return first
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no run of free ports")
