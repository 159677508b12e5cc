"""The province's DNS zone, written for the ACME DNS-01 challenge (issue #19).

:class:`DnsProvider` is what the certificate job needs of a DNS service: put a TXT
record, take it away, and say when the zone answers it. :class:`Rfc2136` speaks RFC
2136 dynamic updates signed with a TSIG key (RFC 8945) to the zone's primary, which
BIND, Knot and PowerDNS all accept; another provider (a registrar's HTTP API) is one
more class with these three methods. Only the province holds the key; kiosks never do.
"""

from __future__ import annotations

import time
from typing import Protocol

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update

from sync_server.errors import CertificateError, StartupError

# TTL of the challenge records: short, they live for one validation.
CHALLENGE_TTL = 60
# Seconds one DNS request may take.
DNS_TIMEOUT = 10.0


class DnsProvider(Protocol):
    """A DNS zone the certificate job may write challenge records into."""

    def add_txt(self, name: str, value: str) -> None:
        """Add one TXT value at ``name`` (absolute, e.g. ``_acme-challenge.c01.kh.nh.kiosk.tq.example.vn``)."""

    def remove_txt(self, name: str, value: str) -> None:
        """Remove that TXT value again (the others at ``name`` stay)."""

    def wait_visible(self, name: str, value: str, seconds: float) -> bool:
        """Wait up to ``seconds`` until the zone answers ``value`` at ``name``; whether it did."""


def parse_tsig(text: str) -> tuple[str, str, str]:
    """``ALGORITHM:KEYNAME:SECRET`` (or ``KEYNAME:SECRET``, HMAC-SHA256), as ``nsupdate -y`` takes it.

    :raises StartupError: naming what is wrong (never the secret).
    """
    parts = text.strip().split(":")
    if len(parts) == 2:
        parts.insert(0, "hmac-sha256")
    if len(parts) != 3 or not all(parts):
        raise StartupError("the DNS TSIG key must be ALGORITHM:KEYNAME:BASE64SECRET (as nsupdate -y)")
    algorithm, name, secret = parts
    try:
        dns.tsig.get_context(dns.tsig.Key(name, secret, algorithm))
    except (NotImplementedError, ValueError, dns.exception.DNSException) as exc:
        raise StartupError(f"the DNS TSIG key {name} cannot be used ({algorithm}): {exc}") from None
    return algorithm, name, secret


class Rfc2136:
    """Dynamic updates (RFC 2136) over TCP to the zone's primary, signed with TSIG."""

    def __init__(self, server: str, zone: str, tsig: str | None) -> None:
        host, _, port = server.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.zone = dns.name.from_text(zone)
        self.key: dns.tsig.Key | None = None
        if tsig:
            algorithm, name, secret = parse_tsig(tsig)
            self.key = dns.tsig.Key(name, secret, algorithm)

    def _update(self, change: str, name: str, value: str) -> None:
        update = dns.update.UpdateMessage(self.zone, keyring=self.key)
        owner = dns.name.from_text(name)
        if not owner.is_subdomain(self.zone):
            raise CertificateError(f"{name} is not in the zone {self.zone.to_text(omit_final_dot=True)}")
        quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if change == "add":
            update.add(owner, CHALLENGE_TTL, dns.rdatatype.TXT, quoted)
        else:
            update.delete(owner, dns.rdatatype.TXT, quoted)
        try:
            answer = dns.query.tcp(update, self.host, port=self.port, timeout=DNS_TIMEOUT)
        except (OSError, dns.exception.DNSException) as exc:
            raise CertificateError(f"the DNS update of {name} at {self.host}:{self.port} failed: {exc}") from None
        if answer.rcode() != dns.rcode.NOERROR:
            raise CertificateError(f"the DNS server {self.host}:{self.port} refused the update of {name}: "
                                   f"{dns.rcode.to_text(answer.rcode())}")

    def add_txt(self, name: str, value: str) -> None:
        self._update("add", name, value)

    def remove_txt(self, name: str, value: str) -> None:
        self._update("delete", name, value)

    def wait_visible(self, name: str, value: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            query = dns.message.make_query(name, dns.rdatatype.TXT)
            try:
                answer = dns.query.tcp(query, self.host, port=self.port, timeout=DNS_TIMEOUT)
                values = {b"".join(rdata.strings).decode("ascii", "replace")
                          for rrset in answer.answer for rdata in rrset if rrset.rdtype == dns.rdatatype.TXT}
                if value in values:
                    return True
            except (OSError, dns.exception.DNSException):
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)
