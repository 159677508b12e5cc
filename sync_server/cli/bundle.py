"""``sync-server bundle``: sync by USB stick (#6). Thin: parse, call sync_server.jobs.courier, print.

    sync-server bundle keys   [--url HUB]                 print this side's card (creates keys once)
    sync-server bundle trust  CARD                        trust the other side's card
    sync-server bundle export --to FILE [--for CELL] [--db DB] [--url HUB]
    sync-server bundle import FILE [--url HUB]

``--url`` is the root URL of a CouchDB-protocol hub (credentials may be in it) when
the bundles are applied to a hub this process does not hold (Apache CouchDB,
pouchdb-server); without it the local store of ``--data-dir`` is used. Keys, trusted
cards and bundle numbers are kept in ``DATA_DIR/bundle-keys/`` either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..errors import BundleError, CouchError, PeerUnavailable, StartupError
from ..private_file import write_atomic
from ..settings import Settings, load

_COMMON = [
    click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.yaml to read."),
    click.option("--data-dir", type=click.Path(file_okay=False), help="Where the databases and bundle keys live."),
    click.option("--url", help="Root URL of a hub to work on instead of the local store (credentials may be in it)."),
]


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_COMMON):
        func = option(func)
    return func


@click.group()
def bundle() -> None:
    """Sync without any link: signed, encrypted bundles carried on a USB stick."""


@contextmanager
def _context(config_path: str | None, data_dir: str | None, url: str | None) -> Iterator[tuple[Settings, Any, Any]]:
    """(settings, key store, side) for one command; every error becomes one line."""
    from replication.bundle import Side

    from ..handbook.policy import open_store
    from ..security.bundle_crypto import KeyStore

    server = None
    try:
        settings = load(config_path).replace("server", data_dir=data_dir)
        store = KeyStore(settings.server.data_dir)
        if url:
            side = Side.http(url)
        else:
            server = open_store(settings)
            side = Side.local(server)
        yield settings, store, side
    except (BundleError, StartupError, PeerUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    except CouchError as exc:
        raise click.ClickException(f"{exc.error}: {exc.reason}") from None
    finally:
        if server is not None:
            server.close()


def _kiosk(settings: Settings) -> tuple[list[list[Any]] | None, str | None]:
    """This replica's sync legs and cell when it is a kiosk (``sync.cell_db`` set)."""
    from sync_server.jobs.kiosk_sync import legs

    if not settings.sync.cell_db:
        return None, None
    found = [[leg.local, leg.remote, leg.direction, leg.selector] for leg in legs(settings, 0)]
    return found, settings.sync.hub_cell_db or settings.sync.cell_db


@bundle.command("keys")
@_common
def keys(config_path: str | None, data_dir: str | None, url: str | None) -> None:
    """Print this side's card (public keys, identity) for the other side to trust; create keys once."""
    from ..security.bundle_crypto import fingerprint

    with _context(config_path, data_dir, url) as (settings, store, side):
        created = store.ensure_keys()
        own_legs, own_cell = _kiosk(settings)
        card = store.card(side.root, own_cell, own_legs)
        if created:
            click.echo(f"created bundle keys in {store.directory} (keep them secret)")
        click.echo(f"key {fingerprint(store.key_id)} ({'kiosk of ' + own_cell if own_cell else 'hub'})")
        click.echo(card.text())


@bundle.command("trust")
@click.argument("card_text", metavar="CARD")
@_common
def trust(card_text: str, config_path: str | None, data_dir: str | None, url: str | None) -> None:
    """Trust the other side's CARD (printed there by `sync-server bundle keys`)."""
    from ..security.bundle_crypto import Card, fingerprint

    with _context(config_path, data_dir, url) as (_, store, _side):
        card = Card.parse(card_text)
        name = store.trust(card)
        click.echo(f"trusting {name}: key {fingerprint(card.key_id)}")


@bundle.command("export")
@click.option("--to", "path", required=True, type=click.Path(dir_okay=False), help="The bundle file to write.")
@click.option("--for", "for_cell", help="At a hub: the cell whose kiosk the bundle is for.")
@click.option("--db", "dbs", multiple=True, help="Only this local database (repeat for more).")
@_common
def export(path: str, for_cell: str | None, dbs: tuple[str, ...], config_path: str | None, data_dir: str | None,
           url: str | None) -> None:
    """Write what the other side has not acknowledged yet, sealed for it."""
    from sync_server.jobs.courier import export_bundle

    with _context(config_path, data_dir, url) as (settings, store, side):
        own_legs, own_cell = _kiosk(settings)
        done = export_bundle(store, side, own_legs=own_legs, own_cell=own_cell, for_cell=for_cell,
                             dbs=list(dbs) or None)
        write_atomic(path, done.data)
    parts = ", ".join(f"{db}: {count}" for db, count in done.legs) or "nothing new"
    click.echo(f"wrote {path}: bundle {done.number}, {done.docs} documents ({parts}), "
               f"{done.acks} acknowledgements, {len(done.data) / 1000:.1f} KB")


@bundle.command("import")
@click.argument("path", type=click.Path(dir_okay=False, exists=True))
@_common
def import_(path: str, config_path: str | None, data_dir: str | None, url: str | None) -> None:
    """Check a bundle and apply it, as a network replication would; nothing is applied if it is refused."""
    from sync_server.jobs.courier import import_bundle

    with _context(config_path, data_dir, url) as (settings, store, side):
        own_legs, own_cell = _kiosk(settings)
        done = import_bundle(store, side, Path(path).read_bytes(), own_legs=own_legs, own_cell=own_cell)
    click.echo(f"imported bundle {done.number} from {done.sender}: {done.acks} acknowledgements")
    for route, result in done.results:
        state = "ok" if result.ok else f"FAILED: {result.error}"
        click.echo(f"  {route.target_db}: {result.docs_written} documents written, "
                   f"{result.doc_write_failures} refused - {state}")
        for error in result.errors[:20]:
            click.echo(f"  refused {error['id']} {error['rev']}: {error['error']}: {error['reason']}", err=True)
    if not done.ok:
        raise click.ClickException("the bundle was not applied completely; importing it again resumes")

