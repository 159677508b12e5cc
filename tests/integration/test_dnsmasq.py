"""The village Wi-Fi's DNS (deploy/dnsmasq/handbook-kiosk.conf, #19): the shipped file, run by Debian's dnsmasq
on a loopback port, answers the kiosk's name with its Wi-Fi address, asked as a phone asks (dnspython)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest
from acme_peers import start, stop
from conftest import _no_couchdb, free_port

pytestmark = pytest.mark.peers
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "dnsmasq" / "handbook-kiosk.conf"
NAME, ADDRESS = "c01.kh.nh.kiosk.tq.example.vn", "192.168.50.1"


def dnsmasq() -> str:
    found = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None)
    if found is None:
        _no_couchdb("no dnsmasq: run ./scripts/test (scripts/install-acme installs Debian's dnsmasq-base)")
    return str(found)


def rendered(tmp_path: Path, port: int) -> Path:
    """The shipped file on loopback and a test port, with no upstream server (nothing leaves this machine)."""
    text = SHIPPED.read_text()
    assert f"address=/{NAME}/{ADDRESS}" in text
    text = re.sub(r"^interface=.*$", "interface=lo\nlisten-address=127.0.0.1", text, flags=re.M)
    text = re.sub(r"^server=.*$", "", text, flags=re.M)
    path = tmp_path / "dnsmasq.conf"
    path.write_text(text + f"\nport={port}\n")
    return path


def ask(port: int, name: str) -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=2)


def test_the_shipped_dnsmasq_answers_the_kiosks_name(tmp_path: Path) -> None:
    binary = dnsmasq()
    check = subprocess.run([binary, "--test", "-C", str(SHIPPED)], capture_output=True, text=True)
    assert check.returncode == 0 and "syntax check OK" in (check.stdout + check.stderr), check.stderr
    port = free_port()
    proc = start([binary, "-k", "-u", "root", "-C", str(rendered(tmp_path, port)), "--pid-file=" + str(tmp_path / "pid")],
                 tmp_path / "dnsmasq.log")
    try:
        answer = None
        for _ in range(50):
            try:
                answer = ask(port, NAME)
                break
            except (OSError, dns.exception.Timeout):
                time.sleep(0.1)
        assert answer is not None, (tmp_path / "dnsmasq.log").read_text()
        assert [r.address for rrset in answer.answer for r in rrset] == [ADDRESS]
        # A name the village does not know is not sent to the Internet: no answer for it.
        other = ask(port, "example.org")
        assert other.answer == [] and other.rcode() in (dns.rcode.REFUSED, dns.rcode.SERVFAIL, dns.rcode.NXDOMAIN)
    finally:
        stop(proc)
