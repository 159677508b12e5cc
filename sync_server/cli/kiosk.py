"""``sync-server kiosk``: enrol a kiosk from the province's file, and issue such files (issue 13).

    sync-server kiosk enrol FILE [--config config.yaml] [--data-dir DIR]
    sync-server kiosk enrolment --hub URL --cell CODE --out FILE [--kiosk-hub-url URL] [--config province.yaml]

``enrol`` sets a new or wiped kiosk up in one command (sync_server/jobs/enrol.py);
``enrolment`` is the province's: a new file for a provisioned kiosk, whose hub account
gets a new password (a replacement kiosk; the old one's access ends).
"""

from __future__ import annotations

import json

import click

from ..settings import load


@click.group()
def kiosk() -> None:
    """Set a kiosk up from the province's enrolment file."""


@kiosk.command("enrol")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default="config.yaml", show_default=True,
              help="The kiosk's config.yaml, written (other keys kept).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the databases live (default: the config's, else ./data).")
def kiosk_enrol(file: str, config_path: str, data_dir: str | None) -> None:
    """Enrol this kiosk: settings, hub account (0600), its cell's records and the handbook."""
    from sync_server.jobs.enrol import enrol

    done = enrol(file, config_path, data_dir)  # errors: one line (sync_server/cli/__init__.py, _Commands)
    click.echo(f"enrolled for cell {done.cell}: settings in {done.config_path}, data in {done.data_dir}")
    click.echo(f"pulled {done.cell_docs} records of the cell and {done.handbook_docs} handbook documents")
    if done.admin_pin:
        click.echo(f"kiosk admin {done.cell}.kiosk: PIN {done.admin_pin} (shown once: open \"Đảng viên\" "
                   "on the kiosk screen to add members and give PINs)")
    if done.removed:
        click.echo(f"removed {file}: the kiosk's hub account is now kept in {done.data_dir}/hub-credentials only")
    else:
        click.echo(f"could not remove {file}: it opens the kiosk's hub account; destroy it now", err=True)
    if done.sync_error:
        click.echo(f"Error: the first pull stopped ({done.sync_error}); "
                   "`sync-server serve` or `sync-server sync --once` resumes it", err=True)
        raise SystemExit(1)


@kiosk.command("enrolment")
@click.option("--hub", "hub_url", required=True, help="Root URL of the hub, with an admin account in it.")
@click.option("--cell", required=True, help="The kiosk's cell code, e.g. TQ.NH.KH.C01.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The enrolment file to write (mode 0600).")
@click.option("--kiosk-hub-url", help="The hub's address as kiosks reach it (default: --hub without its account).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="The province's config.yaml: its signing.public_keys go into the file.")
def kiosk_enrolment(hub_url: str, cell: str, out: str, kiosk_hub_url: str | None, config_path: str | None) -> None:
    """Issue a new enrolment file for a provisioned kiosk (its hub password changes)."""
    from sync_server.jobs.enrol import reissue

    path = reissue(hub_url, cell, out, kiosk_hub_url, load(config_path).signing.public_keys)
    click.echo(f"wrote {path} for cell {json.loads(path.read_text())['cell']}: the kiosk's earlier password "
               "no longer works; carry the file to the kiosk and run `sync-server kiosk enrol` there")
