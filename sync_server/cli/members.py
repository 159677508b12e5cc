"""``sync-server member``: a cell's members at its kiosk, from the command line (issue 13).

    sync-server member list                      the register, with each account's state
    sync-server member add NUMBER NAME [--born 1949] [--gender male] [--smartphone]
    sync-server member import REGISTER.csv       all lines or none
    sync-server member pin NUMBER                a new PIN, printed once (lifts a lockout)
    sync-server member status NUMBER moved       active | moved | inactive
    sync-server member secretary NUMBER          name the cell's secretary

The cell is the kiosk's own (``sync.cell_db``) unless ``--cell`` names one. The same
rules as the kiosk admin's screen (``sync_server/handbook/members.py``); changes go to
the audit log as done by ``cli`` (the server admin at the machine).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..errors import CouchError, StartupError
from ..settings import load

_COMMON = [
    click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.yaml to read."),
    click.option("--data-dir", type=click.Path(file_okay=False), help="Where the databases live."),
    click.option("--cell", help="Cell code (default: the kiosk's, from sync.cell_db)."),
]


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_COMMON):
        func = option(func)
    return func


@contextmanager
def _desk(config_path: str | None, data_dir: str | None, cell: str | None) -> Iterator[Any]:
    """The members desk of one cell; every error becomes one line."""
    from ..handbook.members import Desk
    from ..handbook.ownership import cell_of_db
    from ..handbook.policy import open_store
    from ..security.audit import AuditLog

    server = None
    try:
        settings = load(config_path).replace("server", data_dir=data_dir)
        cell = cell or (cell_of_db(settings.sync.cell_db) if settings.sync.cell_db else None)
        if not cell:
            raise StartupError("name the cell with --cell (this kiosk has no sync.cell_db)")
        server = open_store(settings)
        yield Desk(server, cell, f"cli:{getpass.getuser()}", AuditLog(server.data_dir))
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    except CouchError as exc:
        raise click.ClickException(exc.reason) from None
    finally:
        if server is not None:
            server.close()


@click.group()
def member() -> None:
    """The cell's members: the register and their PINs."""


@member.command("list")
@_common
def member_list(config_path: str | None, data_dir: str | None, cell: str | None) -> None:
    """List the cell's members by name."""
    with _desk(config_path, data_dir, cell) as desk:
        rows = desk.list()
        for m in rows:
            marks = [m["status"]] + (["secretary"] if m["secretary"] else []) + \
                ([] if m["has_pin"] else ["no PIN"]) + (["smartphone"] if m["smartphone"] else [])
            click.echo(f"{m['member_no']:>6}  {m['name']}  ({', '.join(marks)})")
        click.echo(f"{len(rows)} members in cell {desk.cell}")


@member.command("add")
@click.argument("number")
@click.argument("name")
@click.option("--born", type=int, help="Year of birth.")
@click.option("--gender", type=click.Choice(["male", "female", "other"]))
@click.option("--joined", help="Date joined the Party (YYYY-MM-DD).")
@click.option("--smartphone", is_flag=True, help="Owns a smartphone.")
@_common
def member_add(number: str, name: str, born: int | None, gender: str | None, joined: str | None, smartphone: bool,
               config_path: str | None, data_dir: str | None, cell: str | None) -> None:
    """Add member NUMBER (3 is 0003) named NAME to the register."""
    with _desk(config_path, data_dir, cell) as desk:
        added = desk.add({"member_no": number, "name": name, "born": born, "gender": gender, "joined": joined,
                          "smartphone": smartphone})
        click.echo(f"added {added['member_no']} {added['name']} (account {added['account']}, no PIN yet)")


@member.command("import")
@click.argument("register", type=click.Path(dir_okay=False, exists=True))
@_common
def member_import(register: str, config_path: str | None, data_dir: str | None, cell: str | None) -> None:
    """Add or update members from the cell's register (CSV); nothing is written if a line is wrong."""
    with _desk(config_path, data_dir, cell) as desk:
        try:
            text = Path(register).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise click.ClickException(f"{register}: not UTF-8 text (save the register as CSV UTF-8)") from None
        done = desk.import_csv(text)
        click.echo(f"imported {register}: {done['added']} added, {done['updated']} updated")


@member.command("pin")
@click.argument("number")
@_common
def member_pin(number: str, config_path: str | None, data_dir: str | None, cell: str | None) -> None:
    """Give member NUMBER a new PIN (printed once; lifts a lockout, ends the old sessions)."""
    with _desk(config_path, data_dir, cell) as desk:
        given = desk.give_pin(number)
        click.echo(f"{given['account']}: new PIN {given['pin']} (shown once: give it to the member now)")


@member.command("status")
@click.argument("number")
@click.argument("status", type=click.Choice(["active", "moved", "inactive"]))
@_common
def member_status(number: str, status: str, config_path: str | None, data_dir: str | None, cell: str | None) -> None:
    """Mark member NUMBER active, moved or inactive (moved and inactive lose their account)."""
    with _desk(config_path, data_dir, cell) as desk:
        done = desk.set_status(number, status)
        click.echo(f"{done['member_no']} is now {status}")


@member.command("secretary")
@click.argument("number")
@_common
def member_secretary(number: str, config_path: str | None, data_dir: str | None, cell: str | None) -> None:
    """Name member NUMBER the cell's secretary (the previous one goes back to member)."""
    with _desk(config_path, data_dir, cell) as desk:
        click.echo(f"{desk.name_secretary(number)['secretary']} is the cell's secretary")
