"""The certificate round's peers (issue #19): BIND as the province's DNS zone taking RFC 2136 updates,
and Debian's pebble as the ACME CA, each a real process on loopback ports, stopped by its pid.

``scripts/install-acme`` installs both (``./scripts/test`` runs it).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import httpx
from couch_node import free_port
from province_ca import make_ca

ZONE = "kiosk.tq.test"
TSIG_NAME = "acme-update"


def missing() -> str | None:
    """Why the peers cannot run here, or None."""
    for name, package in (("named", "bind9"), ("pebble", "pebble")):
        if _binary(name) is None:
            return f"no {name}: run ./scripts/test (scripts/install-acme installs Debian's {package}), or apt-get install {package}"
    return None


def _binary(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Bind:
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
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([str(_binary("named")), "-g", "-4", "-c", str(workdir / "named.conf")],
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait()
        except BaseException:
            self.stop()
            raise

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

    def stop(self) -> None:
        _stop(self.proc)


class Pebble:
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
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([str(_binary("pebble")), "-config", str(workdir / "pebble.json"),
                                          "-dnsserver", dns], stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        try:
            self._wait()
        except BaseException:
            self.stop()
            raise

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

    def stop(self) -> None:
        _stop(self.proc)
