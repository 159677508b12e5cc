"""One settings object, read from config.yaml and checked at start.

Each section of config.yaml is a frozen dataclass below; every field has a
default and a help text (``config.yaml`` documents each one, and a test keeps
them in step). Unknown keys and wrong types raise StartupError naming the key.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import StartupError


def _setting(default: Any, help: str, choices: tuple = (), minimum: int | None = None,
             pattern: str | None = None, example: str | None = None, maximum: int | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices, "minimum": minimum,
                                            "maximum": maximum, "pattern": pattern, "example": example})


@dataclass(frozen=True)
class ServerSettings:
    host: str = _setting("127.0.0.1", "Address to listen on. Without an admin account only loopback is allowed.")
    port: int = _setting(5984, "TCP port (CouchDB's is 5984).", minimum=0)
    data_dir: str = _setting("./data", "Directory holding the databases and the server identity.")
    threads: int = _setting(16, "Threads running requests while they compute; waiting _changes feeds, idle connections and slow clients hold none.", minimum=2)
    max_connections: int = _setting(1000, "Open connections in all (100 phones keep about 6 each); past it a request gets 503 with Retry-After at once.", minimum=1)
    max_connections_per_client: int = _setting(32, "Open connections from one address (a browser keeps 6 per site); past it 503 with Retry-After.", minimum=1)
    keepalive_timeout: int = _setting(60, "Seconds an idle keep-alive connection stays open.", minimum=1)
    header_timeout: int = _setting(20, "Seconds a request's head (line and headers) may take from its first byte, or from the connection opening; then the connection is closed.", minimum=1)
    io_timeout: int = _setting(60, "Longest silence, in seconds, while a request body is received or a response is sent; then the request ends.", minimum=1)
    hash_workers: int = _setting(2, "PIN and password checks (scrypt 16 MiB, PBKDF2) run at once; more wait their turn.", minimum=1)
    admin: str | None = _setting(None, "USER:PASSWORD of the server admin (better: --admin or SYNC_SERVER_ADMIN).")
    sample_db: str | None = _setting(None, "Name of a sample database to create and fill at start, if missing.")
    tls_port: int | None = _setting(None, "Port of HTTPS for phones on the local Wi-Fi (CouchDB's is 6984). Empty: HTTP only.",
                                    minimum=0)
    tls_cert: str | None = _setting(None, "PEM certificate for HTTPS (e.g. issued by the province). Empty: one is made in DATA_DIR/tls.")
    tls_key: str | None = _setting(None, "PEM private key of tls_cert (mode 600).")
    public_url: str | None = _setting(None, "Address phones on the village Wi-Fi use for this kiosk, put in the pairing QR code (e.g. https://192.168.50.1:6984/). Empty: the address the kiosk screen itself used.",
                                      pattern=r"https?://[^/\s]+/?", example="https://192.168.50.1:6984/")
    public_name: str | None = _setting(None, "This kiosk's name in the province's DNS zone (e.g. c01.kh.nh.kiosk.tq.example.vn): the kiosk asks the province for a trusted certificate for it over the sync link, serves it on tls_port, and the pairing QR code carries https://NAME:tls_port/. Empty: no certificate round.",
                                       pattern=r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]", example="c01.kh.nh.kiosk.tq.example.vn")
    screen_idle_seconds: int = _setting(90, "On the kiosk's shared screen (/_app/?screen=shared), sign the member out after this many idle seconds.",
                                        minimum=15)
    shared_screen_addresses: str = _setting("127.0.0.1 ::1", "Addresses (space-separated) of the kiosk's own shared screen, a browser on this machine: a member's phone is never remembered (POST /_pairing/remember) from them. Empty: none.",
                                            pattern=r"[0-9A-Fa-f:. ]*", example="127.0.0.1 ::1")
    usage_delay: int = _setting(60, "Seconds a member's first-of-the-day activity mark waits for others: the sign-ins of a meeting's arrivals are one write the phones pull once, not one each. 0: at once.",
                                minimum=0)
    checkin_opens_minutes: int = _setting(60, "A member may check in to a meeting from this many minutes before its scheduled time.",
                                          minimum=0)
    checkin_closes_minutes: int = _setting(240, "... until this many minutes after its scheduled time (judged by the check-in's own time, so a phone offline then still counts).",
                                           minimum=1)
    clock_skew_seconds: int = _setting(300, "How far ahead of the kiosk's clock a phone's clock may be before its check-in counts as in the future.",
                                       minimum=0)


@dataclass(frozen=True)
class CouchSettings:
    max_document_size: int = _setting(8_000_000, "Largest document JSON in bytes (CouchDB's default).", minimum=1)
    max_request_size: int = _setting(67_108_864, "Largest request body in bytes, after gzip decoding.", minimum=1)
    revs_limit: int = _setting(1000, "Revisions remembered per document in new databases.", minimum=1)
    session_timeout: int = _setting(600, "Seconds a _session cookie stays valid (CouchDB's default).", minimum=1)
    changes_timeout_ms: int = _setting(60_000, "Longest a longpoll/continuous _changes request waits.", minimum=0)
    default_security: str = _setting("admin_only", "Who may use a database whose _security lists no members (CouchDB 3: admins only; everyone opens it to anonymous writers).",
                                     choices=("admin_only", "everyone"))
    gzip_min_size: int = _setting(860, "Smallest response body worth gzip-compressing, in bytes.", minimum=0)
    gzip_level: int = _setting(1, "zlib level of gzip responses (1-9): 1 makes JSON about 4x smaller for a fifth of the CPU of 6 (6x); a kiosk serving a cell at once is short of CPU.",
                               minimum=1, maximum=9)


@dataclass(frozen=True)
class StorageSettings:
    synchronous: str = _setting("full", "SQLite synchronous mode: full survives power cuts, normal only crashes.",
                                choices=("normal", "full", "extra"))
    encryption_key: str | None = _setting(
        None, "Passphrase that unlocks the data key: env:NAME, file:/path (mode 600) or prompt. Empty: stored in clear.",
        pattern=r"env:.+|file:.+|prompt", example="env:SYNC_SERVER_PASSPHRASE")


@dataclass(frozen=True)
class SyncSettings:
    hub_url: str | None = _setting(None, "Root URL of the provincial hub, with this kiosk's account (https://user:pw@host/). Empty: no hub sync.")
    hub_credentials: str | None = _setting(None, "The kiosk's hub account as env:NAME or file:/path holding USER:PASSWORD (kept out of this file).")
    ca_bundle: str | None = _setting(None, "PEM file of the CA certificates the hub's certificate must chain to (a province's own CA). Empty: the system's.")
    cell_db: str | None = _setting(None, "Local database of this cell's records: pushed to the hub and pulled back.")
    hub_cell_db: str | None = _setting(None, "Name of the cell's database on the hub (default: the same as cell_db).")
    handbook_db: str | None = _setting(None, "Local database of handbook content, pulled from the hub's database of the same name.")
    handbook_selector: dict | None = _setting(None, "Mango selector limiting the handbook pull to this kiosk's audience.")
    handbook_every: int = _setting(8, "Pull the handbook every N rounds (content changes rarely; each idle pull costs bytes).", minimum=1)
    interval_seconds: int = _setting(1800, "Seconds between sync rounds while the hub answers.", minimum=1)
    backoff_seconds: int = _setting(30, "First wait after a failed round; doubles (with jitter) up to backoff_max_seconds.", minimum=1)
    backoff_max_seconds: int = _setting(3600, "Longest wait between attempts while the hub does not answer.", minimum=1)
    live_seconds: int = _setting(0, "After a good round keep syncing live (longpoll) until idle this long; 0: off.", minimum=0)
    timeout_seconds: int = _setting(60, "Timeout of one request to the hub.", minimum=1)
    batch_size: int = _setting(100, "Changes per batch (as PouchDB and CouchDB replicators).", minimum=1)
    batch_bytes: int = _setting(4_000_000, "Largest request body pushed at once, before gzip.", minimum=1000)


@dataclass(frozen=True)
class SigningSettings:
    public_keys: dict | None = _setting(None, "The province's Ed25519 public keys (key id: base64); when set, every article must be signed by one.")
    quarantine_db: str = _setting("quarantine", "Database (admins only) that keeps articles whose signature failed.")


@dataclass(frozen=True)
class ProvinceSettings:
    hub_url: str | None = _setting(None, "Root URL of the hub with the province's account; empty: this server does not report.")
    hierarchy: str | None = _setting(None, "The province's hierarchy CSV (code,name,level,parent).")
    merged_db: str = _setting("province", "Local database into which every cell's records are pulled.")
    report_dir: str = _setting("./reports", "Where reports are written, one folder per month.")
    report_time: str = _setting("02:30", "Time of day (HH:MM, local) of the nightly pull and reports.",
                                pattern=r"([01][0-9]|2[0-3]):[0-5][0-9]", example="02:30")
    acme_directory: str | None = _setting(None, "ACME directory URL of the CA issuing kiosks' certificates (e.g. https://acme-v02.api.letsencrypt.org/directory). Empty: no kiosk certificates are issued.",
                                          pattern=r"https://\S+", example="https://acme-v02.api.letsencrypt.org/directory")
    acme_account_key: str = _setting("./acme-account.pem", "The province's ACME account key (RSA, made on first use, mode 600).")
    acme_email: str | None = _setting(None, "Contact address of the ACME account (the CA's expiry notices).")
    acme_ca_bundle: str | None = _setting(None, "PEM file of the CA certificates the ACME server's own HTTPS chains to. Empty: the system's.")
    kiosk_zone: str | None = _setting(None, "The province's DNS zone of kiosk names: the kiosk of cell TQ.NH.KH.C01 is c01.kh.nh.<zone>, and only that name is certified for it.",
                                      pattern=r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]", example="kiosk.tq.example.vn")
    dns_server: str | None = _setting(None, "HOST:PORT of the zone's primary DNS server, which takes the RFC 2136 updates of the DNS-01 challenge.",
                                      pattern=r"\[?[0-9A-Za-z.:-]+\]?:[0-9]{1,5}", example="192.0.2.53:53")
    dns_tsig: str | None = _setting(None, "The TSIG key of those updates: env:NAME or file:/path (mode 600) holding ALGORITHM:KEYNAME:BASE64SECRET (as nsupdate -y). Kept by the province only.",
                                    pattern=r"env:.+|file:.+", example="file:/etc/handbook/acme-tsig.key")
    dns_wait_seconds: int = _setting(60, "Longest wait for the challenge's TXT record to be answered by dns_server before the CA is asked to look.", minimum=0)
    cert_interval_seconds: int = _setting(3600, "Seconds between looks at the hub for kiosks' certificate requests (serve, with acme_directory set).", minimum=1)


@dataclass(frozen=True)
class DesignSettings:
    js_time_limit_ms: int = _setting(5000, "CPU time one call of a design-document function (view, filter, validate_doc_update) may take, in ms (CouchDB's os_process_timeout).",
                                     minimum=1)
    js_memory_limit_mb: int = _setting(64, "Memory of one design document's JavaScript sandbox, in MB.", minimum=1)


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    couchdb: CouchSettings = field(default_factory=CouchSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    signing: SigningSettings = field(default_factory=SigningSettings)
    province: ProvinceSettings = field(default_factory=ProvinceSettings)
    design: DesignSettings = field(default_factory=DesignSettings)

    def replace(self, section: str, **changes: Any) -> Settings:
        """A copy with some keys of one section changed (command-line overrides)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        checked = _section(section, type(getattr(self, section)), {**dataclasses.asdict(getattr(self, section)), **changes})
        return dataclasses.replace(self, **{section: checked})


def documented() -> list[tuple[str, str]]:
    """(dotted key, help) of every setting."""
    out = []
    for section in dataclasses.fields(Settings):
        for item in dataclasses.fields(_section_class(section)):
            out.append((f"{section.name}.{item.name}", item.metadata["help"]))
    return out


def load(path: str | Path | None = None) -> Settings:
    """Read and check config.yaml (defaults alone when path is None).

    :raises StartupError: naming the file, the key and what is wrong.
    """
    if path is None:
        return Settings()
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise StartupError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise StartupError(f"{path}: the top level must be a mapping of sections")
    sections = {f.name: f for f in dataclasses.fields(Settings)}
    values = {}
    for name, content in raw.items():
        if name not in sections:
            raise StartupError(f"{path}: unknown section '{name}' (known: {', '.join(sections)})")
        try:
            values[name] = _section(name, _section_class(sections[name]), content or {})
        except StartupError as exc:
            raise StartupError(f"{path}: {exc}") from None
    return Settings(**values)


def _section_class(field: dataclasses.Field[Any]) -> type:
    """The dataclass of one section of Settings (each section field has a default factory)."""
    factory = field.default_factory
    assert callable(factory)
    return type(factory())


def _section(name: str, cls: type, content: Any) -> Any:
    if not isinstance(content, dict):
        raise StartupError(f"'{name}' must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in content.items():
        if key not in fields:
            raise StartupError(f"unknown key '{name}.{key}' (known: {', '.join(fields)})")
        _check(f"{name}.{key}", fields[key], value)
    return cls(**content)


def _check(key: str, item: dataclasses.Field, value: Any) -> None:
    expected = {"str": str, "int": int, "str | None": str, "int | None": int, "dict | None": dict}[str(item.type)]
    if value is None and "None" in str(item.type):
        return
    if not isinstance(value, expected) or isinstance(value, bool):
        kind = {int: "an integer", str: "a string", dict: "a mapping"}[expected]
        raise StartupError(f"'{key}' must be {kind}, not {value!r}")
    choices, minimum = item.metadata["choices"], item.metadata["minimum"]
    if choices and value not in choices:
        raise StartupError(f"'{key}' must be one of {', '.join(choices)}, not {value!r}")
    pattern = item.metadata.get("pattern")
    if pattern and not re.fullmatch(str(pattern), str(value)):
        raise StartupError(f"'{key}' must look like {item.metadata['example']}, not {value!r}")
    if minimum is not None and value < minimum:
        raise StartupError(f"'{key}' must be at least {minimum}, not {value}")
    maximum = item.metadata.get("maximum")
    if maximum is not None and value > maximum:
        raise StartupError(f"'{key}' must be at most {maximum}, not {value}")
