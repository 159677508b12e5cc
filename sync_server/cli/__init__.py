"""The ``sync-server`` command line. Thin: parse, call the library, print one line on error."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from typing import Any

import click

from ..errors import CouchError, StartupError, SyncError
from ..settings import Settings, load

LOOPBACK = "127.0.0.1"


class _Commands(click.Group):
    """The one error path of the command line: a library error is one plain line, exit 1.

    Commands raise the library's errors (sync_server/errors.py) and never catch them to
    reword: a refusal from a peer reads ``refused: <error>: <reason>``, any other error its
    message. Nested groups run inside this ``invoke``, so they are covered too.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CouchError as exc:
            raise click.ClickException(f"refused: {exc.error}: {exc.reason}") from None
        except SyncError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Commands)
def main() -> None:
    """Offline-first sync for party cells: a CouchDB-compatible kiosk replica."""


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the databases live.")
@click.option("--host", help="Address to bind (default from config, 127.0.0.1).")
@click.option("--port", type=int, help="TCP port (default from config, 5984).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.yaml to read.")
@click.option("--admin", help="USER:PASSWORD of the server admin (or SYNC_SERVER_ADMIN).")
@click.option("--sample", is_flag=True, help="Create a sample database if it is missing.")
def serve(data_dir: str | None, host: str | None, port: int | None, config_path: str | None,
          admin: str | None, sample: bool) -> None:
    """Start the server (uvicorn in front of the Flask app; see sync_server/api/serving.py)."""
    settings = _serve_settings(config_path, data_dir, host, port, admin or os.environ.get("SYNC_SERVER_ADMIN"))
    _run(settings, sample)


def _serve_settings(config_path: str | None, data_dir: str | None, host: str | None, port: int | None,
                    admin: str | None) -> Settings:
    settings = load(config_path).replace("server", data_dir=data_dir, host=host, port=port, admin=admin)
    admin = settings.server.admin
    if admin is not None and (":" not in admin or not admin.split(":", 1)[0] or not admin.split(":", 1)[1]):
        raise StartupError("the admin account must be given as USER:PASSWORD")
    if admin is None and not _is_loopback(settings.server.host):
        click.echo(f"sync-server: no admin account set, so binding to {LOOPBACK} only "
                   "(set --admin USER:PASSWORD or SYNC_SERVER_ADMIN to serve the network)", err=True)
        settings = settings.replace("server", host=LOOPBACK)
    return settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _run(settings: Settings, sample: bool) -> None:
    from ..api import serving
    from ..app import create_app
    from ..handbook.sample import ensure_sample
    from ..security import passwords

    serving.tune_malloc()  # before any thread: PIN checks' 16 MiB go back to the system at once
    passwords.set_hash_workers(settings.server.hash_workers)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(settings)
    except OSError as exc:
        raise StartupError(f"cannot open data directory {settings.server.data_dir}: {exc.strerror or exc}") from None
    name = settings.server.sample_db or ("handbook-sample" if sample else None)
    if name and ensure_sample(app.extensions["sync_server"], name):
        click.echo(f"sync-server: created sample database '{name}'")
    # Only a server running the sample tells the web app the demo accounts (GET /_app/sample.json).
    app.config["SAMPLE_ACCOUNTS"] = bool(name)
    served = serving.Serving(app, settings)
    sock = serving.listen(settings.server.host, settings.server.port)
    served.add(sock)
    _add_https(settings, app, served)
    # the jobs start once the listeners are bound: a port already taken ends the command before any sync
    if settings.sync.hub_url or settings.province.hub_url:
        from sync_server.jobs.scheduler import start_if_configured

        start_if_configured(settings, app.extensions["sync_server"])
    if settings.sync.hub_url:
        click.echo(f"sync-server: syncing with the hub every {settings.sync.interval_seconds} s")
    if settings.province.hub_url:
        click.echo(f"sync-server: pulling every cell and writing reports at {settings.province.report_time} daily")
    if settings.province.hub_url and settings.province.acme_directory:
        click.echo(f"sync-server: answering kiosks' certificate requests every {settings.province.cert_interval_seconds} s")
    click.echo(f"sync-server: listening on http://{settings.server.host}:{sock.getsockname()[1]}/ "
               f"(data in {os.path.abspath(settings.server.data_dir)})")
    sys.stdout.flush()
    served.run()
    app.extensions["usage"].flush()  # activity marks still waiting


def _add_https(settings: Settings, app: object, served: object) -> None:
    """The HTTPS listener for phones (server.tls_port), beside HTTP on the same loop, when set."""
    if settings.server.tls_port is None:
        return
    from ..api import serving
    from ..security import tls

    cert = tls.certificate_for(settings)
    sock = serving.listen(settings.server.host, settings.server.tls_port)
    port = sock.getsockname()[1]
    app.config["TLS"] = {"port": port, "fingerprint": cert.fingerprint}  # type: ignore[attr-defined]

    def now_served() -> tuple[str, str, str]:  # the certificate round may have installed a new one
        current = tls.certificate_for(settings)
        return str(current.cert_path), str(current.key_path), current.fingerprint

    def changed(fingerprint: str) -> None:
        app.config["TLS"] = {"port": port, "fingerprint": fingerprint}  # type: ignore[attr-defined]

    served.add(sock, str(cert.cert_path), str(cert.key_path), watch=now_served, changed=changed)  # type: ignore[attr-defined]
    made = " (generated)" if cert.generated else ""
    click.echo(f"sync-server: listening on https://{settings.server.host}:{port}/ "
               f"certificate {cert.fingerprint}{made}")


@main.command()
@click.argument("source")
@click.argument("target")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Local store for peers given by database name.")
@click.option("--selector", help="Replicate only documents matching this Mango selector (JSON).")
@click.option("--doc-ids", help="Replicate only these document ids (comma-separated).")
@click.option("--continuous", is_flag=True, help="Keep replicating new changes until interrupted.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.yaml to read.")
def replicate(source: str, target: str, data_dir: str | None, selector: str | None, doc_ids: str | None,
              continuous: bool, batch_size: int, config_path: str | None) -> None:
    """Replicate SOURCE into TARGET: each a database URL or, with --data-dir, a local database name.

    Exits 0 only when the replication completed.
    """
    from .replicate import run_replication

    settings = load(config_path).replace("server", data_dir=data_dir)
    use_store = data_dir is not None or config_path is not None
    result = run_replication(settings, source, target, use_store, selector, doc_ids, continuous, batch_size)
    if not result.ok:
        raise click.ClickException(f"replication stopped: {result.error}")


@main.command()
@click.option("--once", is_flag=True, required=True, help="Run one round now (the server runs rounds on schedule).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.yaml to read.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the databases live.")
def sync(once: bool, config_path: str | None, data_dir: str | None) -> None:
    """Sync this kiosk with the hub: push the cell's records, pull them and the handbook."""
    from .replicate import run_sync_once

    settings = load(config_path).replace("server", data_dir=data_dir)
    ok = run_sync_once(settings)
    if not ok:
        raise SystemExit(1)


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.yaml to read.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the databases live.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(config_path: str | None, data_dir: str | None, as_json: bool) -> None:
    """Show the sync status: last push and pull, what waits to go up, refusals, bytes today."""
    from .replicate import show_status

    show_status(load(config_path).replace("server", data_dir=data_dir), as_json)


@main.group()
def keys() -> None:
    """The province's signing keys (Ed25519)."""


@keys.command("create")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False), help="Where private keys are kept.")
@click.option("--id", "key_id", required=True, help="Key id, e.g. tq-2026 (rotate by creating a new one).")
def keys_create(directory: str, key_id: str) -> None:
    """Create a signing key; print the public key to list in config.yaml."""
    from ..security import signing

    path, public = signing.create_key(directory, key_id)
    click.echo(f"created {path} (keep it secret)")
    click.echo(f"add to config.yaml of every kiosk:\nsigning:\n  public_keys:\n    {key_id}: {public}")


@keys.command("list")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False))
def keys_list(directory: str) -> None:
    """List the keys in a directory with their public keys."""
    from pathlib import Path

    from ..security import signing

    for path in sorted(Path(directory).glob("*.pem")):
        click.echo(f"{path.stem}: {signing.public_text(signing.load_key(path))}")


@main.command()
@click.argument("article", type=click.Path(dir_okay=False))
@click.option("--hub", "hub_url", required=True, help="URL of the hub's handbook database (credentials may be in it).")
@click.option("--key", "key_path", type=click.Path(dir_okay=False), help="Private key to sign with.")
@click.option("--key-id", help="Key id (default: the key file's name).")
@click.option("--attach", "files", multiple=True, type=click.Path(dir_okay=False, exists=True), help="A file to attach.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.yaml with the public keys.")
def publish(article: str, hub_url: str, key_path: str | None, key_id: str | None, files: tuple[str, ...],
            config_path: str | None) -> None:
    """Sign ARTICLE (a JSON file) and publish it, with attachments, to the hub."""
    doc_id, rev = _put_signed(hub_url, lambda publishing: publishing.prepare(
        publishing.read_article(article), list(files), key_path, key_id, load(config_path).signing.public_keys or {}))
    click.echo(f"published {doc_id} ({rev})")


def _put_signed(hub_url: str, build: Any) -> tuple[str, str]:
    """Build a signed document with ``sync_server.jobs.publish`` and put it on the hub: (id, rev).

    A refusal, here or at the hub, is one plain line (``_Commands``).
    """
    from sync_server.jobs import publish as publishing

    doc = build(publishing)
    return doc["_id"], publishing.publish(doc, hub_url)


@main.command()
@click.argument("article_id")
@click.option("--hub", "hub_url", required=True, help="URL of the hub's handbook database (credentials may be in it).")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False), help="Private key to sign with.")
@click.option("--key-id", help="Key id (default: the key file's name).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.yaml with the public keys.")
def retract(article_id: str, hub_url: str, key_path: str, key_id: str | None, config_path: str | None) -> None:
    """Delete ARTICLE_ID (article:<slug>) on the hub with a signed tombstone, the only deletion kiosks apply."""
    _, rev = _put_signed(hub_url, lambda publishing: publishing.retraction(
        article_id, key_path, key_id, load(config_path).signing.public_keys or {},
        publishing.current(article_id, hub_url)))
    click.echo(f"retracted {article_id} ({rev})")


@main.command()
@click.option("--hub", "hub_url", required=True, help="Root URL of the hub, with an admin account in it.")
@click.option("--hierarchy", "hierarchy_path", required=True, type=click.Path(dir_okay=False, exists=True),
              help="The province's hierarchy CSV (code,name,level,parent).")
@click.option("--credentials", type=click.Path(dir_okay=False), default="kiosk-credentials.csv", show_default=True,
              help="Where new kiosk accounts' passwords are appended (mode 0600).")
@click.option("--enrolment-dir", type=click.Path(file_okay=False),
              help="Write one enrolment file per new kiosk account here (for `sync-server kiosk enrol`).")
@click.option("--kiosk-hub-url", help="The hub's address as kiosks reach it (default: --hub without its account).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="The province's config.yaml: its signing.public_keys go into the enrolment files.")
def provision(hub_url: str, hierarchy_path: str, credentials: str, enrolment_dir: str | None,
              kiosk_hub_url: str | None, config_path: str | None) -> None:
    """Set the hub up: handbook, one database per cell with its access rules, kiosk accounts."""
    from schemas.hierarchy import load_hierarchy
    from sync_server.jobs.provision import provision as run

    keys = load(config_path).signing.public_keys
    if enrolment_dir and not keys:
        raise StartupError("--enrolment-dir needs the province's signing.public_keys (--config): "
                           "a kiosk enrolled without them would accept unsigned articles")
    report = run(hub_url, load_hierarchy(hierarchy_path), credentials)
    if enrolment_dir and report.accounts_created:
        from sync_server.jobs.enrol import write_enrolments

        write_enrolments(enrolment_dir, kiosk_hub_url or hub_url, report.accounts_created, keys)
    click.echo(f"provisioned: {report.created_dbs} databases created, {report.security_set} access rules set, "
               f"{report.design_docs} validation documents, {report.units_written} units, "
               f"{len(report.accounts_created)} kiosk accounts"
               + (f" (passwords in {credentials})" if report.accounts_created else "")
               + (f"; enrolment files in {enrolment_dir}" if enrolment_dir and report.accounts_created else ""))


@main.command()
@click.option("--now", is_flag=True, required=True, help="Run the nightly pull and reports now.")
@click.option("--month", help="Month to report, YYYY-MM (default: this month).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.yaml to read.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the merged replica lives.")
def report(now: bool, month: str | None, config_path: str | None, data_dir: str | None) -> None:
    """The province's nightly job: pull every cell from the hub, then write the month's reports."""
    from sync_server.jobs.nightly import run_nightly

    from ..handbook.policy import open_store

    settings = load(config_path).replace("server", data_dir=data_dir)
    if month is not None and not _is_month(month):
        raise StartupError(f"--month must be YYYY-MM, not {month!r}")
    server = open_store(settings)
    try:
        done = run_nightly(settings, server, month)
    finally:
        server.close()
    province = done.report.province
    click.echo(f"pulled {done.cells} cells ({done.cells_changed} changed, {done.docs_written} documents) "
               f"in {done.seconds:.1f} s; reports in {done.files['report.html'].parent}")
    if province.meetings_held == 0 and not province.members:
        click.echo(f"no data for {done.month}: nothing to report (not 0%)")
    else:
        click.echo(f"{done.month}: installed {_pct(province.install_rate_all)} of members, "
                   f"{_pct(province.install_rate_target)} of the smartphone target group; "
                   f"{_pct(province.share_using)} of cells used the handbook in meetings (goal 80%)")
    if done.failed:
        click.echo(f"INCOMPLETE: {len(done.failed)} cells could not be pulled; the report names them", err=True)
    for cell, error in done.failed[:20]:
        click.echo(f"  cell {cell} not pulled: {error}", err=True)
    if done.failed:
        raise SystemExit(1)


@main.command()
@click.option("--now", is_flag=True, required=True, help="Answer the kiosks' pending certificate requests now.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="The province's config.yaml.")
def certificates(now: bool, config_path: str | None) -> None:
    """The province's certificate job: a trusted certificate (ACME DNS-01) for each kiosk that asked."""
    from sync_server.jobs.certificates import issue_pending

    done = issue_pending(load(config_path))
    click.echo(f"certificates: {done.cells} cells looked at, {done.pending} requests pending, "
               f"{len(done.issued)} issued" + (f" ({', '.join(done.issued)})" if done.issued else ""))
    for cell, error in done.failed[:20]:
        click.echo(f"  cell {cell}: no certificate: {error}", err=True)
    if done.failed:
        raise SystemExit(1)


def _is_month(text: str) -> bool:
    import re

    return re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text) is not None


def _pct(value: float | None) -> str:
    return "no data" if value is None else f"{value * 100:.0f}%"


@main.group()
def audit() -> None:
    """The audit log (sign-ins, refused writes, syncs), chained by hashes."""


@audit.command("verify")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.yaml to read.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the databases live.")
def audit_verify(config_path: str | None, data_dir: str | None) -> None:
    """Check that no line of the audit log was edited, removed or cut off."""
    from ..security.audit import verify

    settings = load(config_path).replace("server", data_dir=data_dir)
    intact, count, problem = verify(settings.server.data_dir)
    if not intact:
        raise click.ClickException(f"audit log tampered with: {problem} ({count} entries check out before it)")
    click.echo(f"audit log intact: {count} entries")


@main.group()
def encryption() -> None:
    """Encryption at rest of the data directory (storage.encryption_key)."""


@encryption.command("passphrase")
@click.option("--new", "new_spec", required=True, help="The new passphrase: env:NAME, file:/path or prompt.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.yaml to read.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the databases live.")
def encryption_passphrase(new_spec: str, config_path: str | None, data_dir: str | None) -> None:
    """Change the passphrase (the old one is storage.encryption_key); the data is not rewritten."""
    from ..security.secrets_source import read_passphrase
    from ..store import crypto

    settings = load(config_path).replace("server", data_dir=data_dir)
    where = settings.server.data_dir
    if settings.storage.encryption_key is None:
        raise StartupError("set storage.encryption_key to the current passphrase first")
    old = read_passphrase(settings.storage.encryption_key, f"the data directory {where}")
    crypto.change_passphrase(where, old, read_passphrase(new_spec, "the data directory (new)"))
    click.echo(f"passphrase changed for {where}; set storage.encryption_key to the new one")


from .bundle import bundle as _bundle  # noqa: E402  (sync by USB stick, #6; needs `main` defined)

main.add_command(_bundle)

from .members import member as _member  # noqa: E402  (a cell's members at the kiosk, #13)

main.add_command(_member)

from .kiosk import kiosk as _kiosk  # noqa: E402  (kiosk enrolment and restore, #13)

main.add_command(_kiosk)
