"""Shared fixtures.

The first section starts real protocol peers as subprocesses on loopback: our own
server (``kiosk``, ``kiosk_factory``), pouchdb-server (``pouchdb_server``) and PouchDB
in Node (``pouch``). Each process is stopped by its id: its process group is sent
SIGTERM (SIGKILL if it lingers) and then waited for.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

# --- real peers (integration harness) -----------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / "peers"
POUCH_JS = PEERS / "pouch.js"
POUCHDB_SERVER = ROOT / "node_modules" / ".bin" / "pouchdb-server"
ADMIN = ("admin", "secret")
START_TIMEOUT = 20.0  # seconds a peer may take to answer GET /
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
POUCH_TIMEOUT = 120.0  # seconds one pouch.js command may run

# Test modules import couch_dump and dataset from tests/peers.
sys.path.insert(0, str(PEERS))


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session: SIGTERM its group, then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Wait until GET url answers 200; fail with the log if the process dies or times out."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1.0, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_process(proc)
    pytest.fail(f"{proc.args!r} did not answer GET {url} in {START_TIMEOUT} s:\n{log.read_text()}")


def start_process(args: list[str], cwd: Path, log: Path,
                  env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start args in a new session (its own process group), output appended to log."""
    with log.open("ab") as out:
        return subprocess.Popen(
            args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env=None if env is None else {**os.environ, **env},
        )


class Kiosk:
    """One of our servers, run as ``python -m sync_server serve`` on a fixed port and data dir."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"http://{ADMIN[0]}:{ADMIN[1]}@127.0.0.1:{port}"
        self.log = data_dir.parent / f"{data_dir.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.extra_args: list[str] = []  # more `serve` options, e.g. ["--config", path]
        self.env: dict[str, str] | None = None  # more environment variables

    @property
    def pid(self) -> int:
        """Return the process id of the running server."""
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Kiosk:
        """Start the server and wait until GET / answers 200."""
        args = [sys.executable, "-m", "sync_server", "serve", "--data-dir", str(self.data_dir),
                "--host", "127.0.0.1", "--port", str(self.port), "--admin", ":".join(ADMIN), *self.extra_args]
        self.proc = start_process(args, ROOT, self.log, self.env)
        wait_ready(self.proc, self.url + "/", self.log)
        return self

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM, then SIGKILL)."""
        if self.proc is not None:
            stop_process(self.proc)

    def kill9(self) -> None:
        """Send SIGKILL to the server's pid and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> Kiosk:
        """Stop the server if it runs, then start it again on the same data dir and port."""
        self.stop()
        return self.start()


class PouchServer:
    """A pouchdb-server on a free port, its databases, config and log in a tmp dir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "stdout.log"
        args = [str(POUCHDB_SERVER), "--port", str(self.port), "--host", "127.0.0.1",
                "--dir", str(workdir / "dbs"), "--config", str(workdir / "config.json"), "--no-color"]
        (workdir / "dbs").mkdir(parents=True)
        # cwd is the tmp dir: pouchdb-server writes log.txt into its working directory.
        self.proc = start_process(args, workdir, self.log)
        wait_ready(self.proc, self.url + "/", self.log)

    @property
    def pid(self) -> int:
        """Return the process id of pouchdb-server."""
        return self.proc.pid


@pytest.fixture
def kiosk_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Kiosk]]:
    """Yield a function that starts one more of our servers; all are stopped afterwards."""
    started: list[Kiosk] = []

    def start() -> Kiosk:
        data_dir = tmp_path_factory.mktemp("kiosk") / "data"
        data_dir.mkdir()
        started.append(Kiosk(data_dir, free_port()))
        return started[-1].start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def kiosk(kiosk_factory: Callable[[], Kiosk]) -> Kiosk:
    """Return our server, started on a free port with a fresh data dir."""
    return kiosk_factory()


@pytest.fixture
def pouchdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PouchServer]:
    """Yield a running pouchdb-server (admin party: no credentials needed)."""
    server = PouchServer(tmp_path_factory.mktemp("pouchdb-server"))
    yield server
    stop_process(server.proc)


class ExternalCouch:
    """A CouchDB the user runs, named by ``COUCHDB_URL`` (credentials in the URL)."""

    def __init__(self, url: str) -> None:
        parts = httpx.URL(url)
        self.url = url.rstrip("/")
        self.base = str(parts.copy_with(username=None, password=None)).rstrip("/")
        self.auth = (parts.username, parts.password)

    def stop(self) -> None:
        pass

    def wipe(self) -> None:
        """Nothing is deleted on a CouchDB this suite did not start; tests use their own names."""


def _no_couchdb(reason: str) -> None:
    """In CI a missing CouchDB fails the run; elsewhere its tests are skipped, saying why."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _couch_release(couch_peer: Any) -> Any:
    """The unpacked CouchDB release; missing, a failure in CI and a skip elsewhere."""
    rel = couch_peer.release()
    if rel is None:
        _no_couchdb(couch_peer.why_missing())
    return rel


@pytest.fixture(scope="session")
def couchdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Apache CouchDB 3.4.3 node for the whole session (see tests/peers/couch_node.py)."""
    import couch_node as couch_peer  # tests/peers/couch_node.py

    if os.environ.get("COUCHDB_URL"):
        yield ExternalCouch(os.environ["COUCHDB_URL"])
        return
    server = couch_peer.CouchServer(tmp_path_factory.mktemp("couchdb"), _couch_release(couch_peer))
    yield server
    server.stop()


@pytest.fixture
def couchdb(couchdb_server: Any) -> Iterator[Any]:
    """The session's CouchDB node, emptied after each test. ``.url`` has the admin's credentials."""
    yield couchdb_server
    couchdb_server.wipe()


@pytest.fixture
def couchdb_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh 3-node CouchDB cluster (n = 3); its nodes are in ``.nodes``."""
    import couch_node as couch_peer

    cluster = couch_peer.CouchCluster(tmp_path_factory.mktemp("couch-cluster"), _couch_release(couch_peer))
    yield cluster
    cluster.stop()


@pytest.fixture
def nginx_binary() -> str:
    """Debian's nginx (deploy/nginx/ is tested with it); missing: a failure in CI, a skip elsewhere."""
    import nginx_proxy  # tests/peers/nginx_proxy.py

    found = nginx_proxy.binary()
    if found is None:
        _no_couchdb(nginx_proxy.why_missing())
    return str(found)


def run_pouch(command: dict[str, Any]) -> Any:
    """Run one tests/peers/pouch.js command and return its parsed JSON result."""
    proc = subprocess.run(
        ["node", str(POUCH_JS)],
        input=json.dumps(command).encode(),
        cwd=ROOT,
        capture_output=True,
        timeout=POUCH_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"pouch.js {command.get('op')} failed ({proc.returncode}):\n{proc.stderr.decode()}")
    return json.loads(proc.stdout)


@pytest.fixture
def pouch() -> Callable[[dict[str, Any]], Any]:
    """Return the function that runs a pouch.js command (see tests/peers/pouch.js)."""
    return run_pouch


# --- end of real peers --------------------------------------------------------------


# --- in-process app fixtures ---
# The app built by sync_server.app.create_app, served by Flask's test client:
# no sockets, a fresh data directory (tmp_path) per test, admin "admin:secret".

import base64 as _base64  # noqa: E402

from sync_server.app import create_app as _create_app  # noqa: E402
from sync_server.settings import Settings as _Settings  # noqa: E402

ADMIN_AUTH_HEADER = "Basic " + _base64.b64encode(":".join(ADMIN).encode()).decode()


@pytest.fixture
def app_settings(tmp_path: Path) -> _Settings:
    """Return default settings with data_dir=tmp_path and the admin account admin:secret."""
    return _Settings().replace("server", data_dir=str(tmp_path), admin=":".join(ADMIN))


@pytest.fixture
def make_app(app_settings: _Settings) -> Iterator[Callable[..., Any]]:
    """Yield a function building an app; keyword arguments override the ``couchdb`` section.

    ``make_app(settings=...)`` uses other settings (e.g. a second app on the same data dir).
    Every store opened is closed afterwards.
    """
    apps: list[Any] = []

    def make(settings: _Settings | None = None, **couchdb: Any) -> Any:
        chosen = settings or app_settings
        if couchdb:
            chosen = chosen.replace("couchdb", **couchdb)
        apps.append(_create_app(chosen))
        return apps[-1]

    yield make
    for built in apps:
        built.extensions["sync_server"].close()


@pytest.fixture
def make_client() -> Callable[..., Any]:
    """Return a function giving a test client of an app, with the admin's basic auth unless auth=False."""

    def make(flask_app: Any, auth: bool = True) -> Any:
        test_client = flask_app.test_client()
        if auth:
            test_client.environ_base["HTTP_AUTHORIZATION"] = ADMIN_AUTH_HEADER
        return test_client

    return make


@pytest.fixture
def app(make_app: Callable[..., Any]) -> Any:
    """Return a fresh in-process app on tmp_path, admin admin:secret."""
    return make_app()


@pytest.fixture
def client(app: Any, make_client: Callable[..., Any]) -> Any:
    """Return a test client that sends the admin's basic auth on every request."""
    return make_client(app)


@pytest.fixture
def anon(app: Any, make_client: Callable[..., Any]) -> Any:
    """Return a test client of the same app without credentials."""
    return make_client(app, auth=False)


# --- the certificate round's peers (#19): BIND, pebble, and a hub set up for one kiosk -----


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """BIND serving the province's kiosk zone and pebble validating through it (tests/peers/acme_peers.py)."""
    import acme_peers

    why = acme_peers.missing()
    if why:
        _no_couchdb(why)
    work = tmp_path_factory.mktemp("acme")
    bind = acme_peers.Bind(work / "bind", {"c01.kh.nh": "127.0.0.1"})
    try:
        pebble = acme_peers.Pebble(work / "pebble", bind.address)
    except BaseException:
        bind.stop()
        raise
    yield bind, pebble
    pebble.stop()
    bind.stop()


@pytest.fixture
def cert_round(couchdb: Any, acme: Any, tmp_path: Path) -> Iterator[Any]:
    """A CouchDB hub provisioned for one cell, the province's config (ACME, DNS) and a kiosk's config."""
    import acme_peers

    bind, pebble = acme
    made = acme_peers.Round(couchdb, bind, pebble, tmp_path)
    yield made
    made.close()
