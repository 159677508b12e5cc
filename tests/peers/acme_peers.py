"""The certificate round's peers (issue #19): BIND as the province's DNS zone taking RFC 2136 updates,
and Debian's pebble as the ACME CA, each a real process on loopback ports, stopped by its pid.

``scripts/install-acme`` installs both (``./scripts/test`` runs it).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from couch_node import free_port
from cryptography import x509
from province_ca import make_ca

from schemas.hierarchy import load_hierarchy
from sync_server.handbook.policy import open_store
from sync_server.jobs.kiosk_sync import Syncer
from sync_server.jobs.provision import provision
from sync_server.settings import load

ZONE = "kiosk.tq.test"
TSIG_NAME = "acme-update"
CELL = "TQ.NH.KH.C01"
DB = "cell-tq-nh-kh-c01"
NAME = f"c01.kh.nh.{ZONE}"
HIERARCHY = """code,name,level,parent
TQ,Tuyên Quang,province,
TQ.NH,Na Hang,district,TQ
TQ.NH.KH,Khâu Tinh,commune,TQ.NH
TQ.NH.KH.C01,Chi bộ thôn Nà Khà,cell,TQ.NH.KH
"""




def missing() -> str | None:
    """Why the peers cannot run here, or None."""
    for name, package in (("named", "bind9"), ("pebble", "pebble")):
        if _binary(name) is None:
            return f"no {name}: run ./scripts/test (scripts/install-acme installs Debian's {package}), or apt-get install {package}"
    return None


def _binary(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)


def start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A peer process in its own session, its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


class _Peer:
    proc: subprocess.Popen[bytes]

    def _wait(self) -> None:
        raise NotImplementedError

    def _started(self) -> None:
        """Wait until it answers; a peer that does not is stopped."""
        try:
            self._wait()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        stop(self.proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a peer by its pid: SIGTERM, then SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Bind(_Peer):
    """``named`` serving ZONE on 127.0.0.1:port; updates signed with the TSIG key ``tsig`` are allowed (TXT only)."""

    def __init__(self, workdir: Path, records: dict[str, str]) -> None:
        self.workdir, self.port = workdir, free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.tsig = f"hmac-sha256:{TSIG_NAME}:{secret}"
        lines = ["$TTL 60", f"@ IN SOA ns.{ZONE}. admin.{ZONE}. 1 60 60 600 60", f"@ IN NS ns.{ZONE}.", "ns IN A 127.0.0.1"]
        lines += [f"{name} IN A {address}" for name, address in records.items()]
        (workdir / "zone.db").write_text("\n".join(lines) + "\n")
        (workdir / "named.conf").write_text(f"""
options {{
  directory "{workdir}";
  pid-file "{workdir}/named.pid";
  session-keyfile "{workdir}/session.key";
  listen-on port {self.port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  allow-query {{ 127.0.0.1; }};
}};
controls {{ }};
key "{TSIG_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "{ZONE}" {{
  type primary;
  file "{workdir}/zone.db";
  update-policy {{ grant {TSIG_NAME} zonesub TXT; }};
}};
""")
        self.log = workdir / "named.log"
        self.proc = start([str(_binary("named")), "-g", "-4", "-c", str(workdir / "named.conf")], self.log)
        self._started()

    def _wait(self) -> None:
        import dns.message
        import dns.query

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"named exited: {self.log.read_text()[-3000:]}")
            try:
                answer = dns.query.tcp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=self.port, timeout=1)
                if answer.answer:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"named did not answer: {self.log.read_text()[-3000:]}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class Pebble(_Peer):
    """pebble on 127.0.0.1, validating DNS-01 challenges by asking ``dns`` (HOST:PORT)."""

    def __init__(self, workdir: Path, dns: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.ca, cert, key = make_ca(workdir)  # pebble's own HTTPS listener, trusted by the ACME client
        self.port, self.management = free_port(), free_port()
        config = {"pebble": {"listenAddress": f"127.0.0.1:{self.port}",
                             "managementListenAddress": f"127.0.0.1:{self.management}",
                             "certificate": str(cert), "privateKey": str(key),
                             "httpPort": free_port(), "tlsPort": free_port(),
                             "ocspResponderURL": "", "externalAccountBindingRequired": False}}
        (workdir / "pebble.json").write_text(json.dumps(config))
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0", PEBBLE_AUTHZREUSE="0")
        self.log = workdir / "pebble.log"
        self.proc = start([str(_binary("pebble")), "-config", str(workdir / "pebble.json"), "-dnsserver", dns],
                          self.log, env)
        self._started()

    def _wait(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pebble exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.directory, verify=self.trust, timeout=1, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"pebble did not answer: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    @property
    def trust(self) -> ssl.SSLContext:
        """Trusts pebble's own HTTPS listener (not the certificates it issues)."""
        return ssl.create_default_context(cafile=str(self.ca))

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def root_pem(self) -> str:
        """The root that pebble's issued chains end at (its management interface; a new one each start)."""
        return httpx.get(f"https://127.0.0.1:{self.management}/roots/0", verify=self.trust, timeout=10,
                         trust_env=False).text



class Round:
    """The hub provisioned for one cell, the province's config and a kiosk's config."""

    def __init__(self, hub: Any, bind: Bind, pebble: Pebble, tmp: Path) -> None:
        self.hub, self.pebble, self.tmp = hub, pebble, tmp
        (tmp / "hierarchy.csv").write_text(HIERARCHY, encoding="utf-8")
        report = provision(hub.url, load_hierarchy(tmp / "hierarchy.csv"))
        (_, account, password), = report.accounts_created
        self.admin = httpx.Client(base_url=hub.base, auth=hub.auth, trust_env=False, timeout=30)
        self.admin.put("/_users/org.couchdb.user:tinh", json={"_id": "org.couchdb.user:tinh", "name": "tinh", "type": "user",
                                                               "roles": ["province"], "password": "pw-tinh"})
        tsig = tmp / "tsig.key"
        tsig.write_text(bind.tsig + "\n")
        tsig.chmod(0o600)
        base = hub.base.split("://", 1)[1]
        self.province = tmp / "province.yaml"
        self.province.write_text(yaml.safe_dump({
            "server": {"data_dir": str(tmp / "province")},
            "province": {"hub_url": f"http://tinh:pw-tinh@{base}/", "hierarchy": str(tmp / "hierarchy.csv"),
                         "acme_directory": pebble.directory, "acme_ca_bundle": str(pebble.ca),
                         "acme_account_key": str(tmp / "acme-account.pem"), "kiosk_zone": ZONE,
                         "dns_server": bind.address, "dns_tsig": f"file:{tsig}", "dns_wait_seconds": 20}}))
        self.kiosk_data = tmp / "kiosk"
        self.hub_url = f"http://{account}:{password}@{base}/"
        self.kiosk = tmp / "kiosk.yaml"
        self.write_kiosk(self.hub_url)

    def write_kiosk(self, hub_url: str, **server: Any) -> None:
        self.kiosk.write_text(yaml.safe_dump({
            # a free port unless one is given: never the default 5984, which another server may hold
            "server": {"data_dir": str(self.kiosk_data), "public_name": NAME, "port": free_port(), **server},
            "sync": {"hub_url": hub_url, "cell_db": DB, "interval_seconds": 2, "timeout_seconds": 10,
                     "backoff_seconds": 1, "backoff_max_seconds": 2}}))

    def kiosk_round(self, now: datetime.datetime | None = None) -> Any:
        settings = load(self.kiosk)
        server = open_store(settings)
        syncer = Syncer(settings, server)
        try:
            return syncer.run_round(now=now)
        finally:
            syncer.close()
            server.close()

    def hub_doc(self, doc_id: str) -> dict | None:
        response = self.admin.get(f"/{DB}/{doc_id}")
        return response.json() if response.status_code == 200 else None

    def trust(self) -> ssl.SSLContext:
        """A client that trusts pebble's root alone, as a phone trusts a public CA."""
        context = ssl.create_default_context(cadata=self.pebble.root_pem())
        return context

    def close(self) -> None:
        self.admin.close()


def served_certificate(port: int, context: ssl.SSLContext) -> x509.Certificate:
    """The certificate a TLS client verifying NAME gets from 127.0.0.1:port (ssl.SSLError when untrusted)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=NAME) as conn:
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def wait_until(check: Any, seconds: float, what: str, log: Path | None = None) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = check()
        except (OSError, ssl.SSLError):
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {seconds} s" + (f"\n{log.read_text()[-3000:]}" if log else ""))
        time.sleep(0.5)
