"""``sync-server replicate``: the library call behind the command, and its progress line."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from ..errors import StartupError
from ..handbook.policy import open_store


def run_replication(settings: Any, source: str, target: str, use_store: bool, selector: str | None,
                    doc_ids: str | None, continuous: bool, batch_size: int) -> Any:
    """Open both peers, replicate, print a summary line; returns the replication result."""
    from replication import Options, open_peer
    from replication.replicator import Replicator

    server = open_store(settings) if use_store else None
    try:
        peers = [open_peer(spec, server, settings.sync.ca_bundle) for spec in (source, target)]
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    options = Options(selector=_selector(selector), doc_ids=doc_ids.split(",") if doc_ids else None,
                      batch_size=batch_size, continuous=continuous)
    try:
        result = Replicator(peers[0], peers[1], options, progress=_progress).run()
    except KeyboardInterrupt:
        raise StartupError("interrupted; the next run resumes from the last checkpoint") from None
    finally:
        for peer in peers:
            peer.close()
        if server is not None:
            server.close()
    _clear()
    click.echo(f"replicated {result.docs_written} of {result.docs_read} changes "
               f"({result.doc_write_failures} refused), {_size(result.bytes_sent)} up, "
               f"{_size(result.bytes_received)} down, {result.requests} requests, {result.seconds:.1f} s")
    for error in result.errors[:20]:
        click.echo(f"  refused {error['id']} {error['rev']}: {error['error']}: {error['reason']}", err=True)
    return result


def _selector(text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise StartupError("--selector must be a JSON object") from None
    if not isinstance(value, dict):
        raise StartupError("--selector must be a JSON object")
    return value


def _size(count: int) -> str:
    return f"{count / 1e6:.2f} MB" if count >= 1e6 else f"{count / 1e3:.1f} KB"


def _progress(result: Any) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{result.docs_written} docs, {_size(result.bytes_sent)} up, "
                         f"{_size(result.bytes_received)} down ")
        sys.stderr.flush()


def _clear() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")


def run_sync_once(settings: Any) -> bool:
    """One sync round from the command line, with a progress line; True when it completed."""
    from sync_server.jobs.kiosk_sync import Syncer

    if not settings.sync.hub_url:
        raise StartupError("no hub configured: set sync.hub_url in config.yaml")
    server = open_store(settings)
    syncer = Syncer(settings, server)
    try:
        done = syncer.run_round(progress=_progress)
    finally:
        syncer.close()
        server.close()
    _clear()
    for leg, result in done.results:
        arrow = "up  " if leg.direction == "push" else "down"
        state = "ok" if result.ok else f"FAILED: {result.error}"
        click.echo(f"{arrow} {leg.local}: {result.docs_written} docs, {_size(result.bytes_sent)} sent, "
                   f"{_size(result.bytes_received)} received, {result.doc_write_failures} refused - {state}")
    if not done.ok:
        click.echo(f"Error: sync did not complete: {done.error}", err=True)
    return done.ok


def show_status(settings: Any, as_json: bool) -> None:
    """Print the kiosk's sync status (sync-server status)."""
    from ..handbook.policy import quarantined_count
    from ..sync_status import SyncStatus, summary, waiting_up

    server = open_store(settings)
    try:
        stored = SyncStatus(server.data_dir).read()
        info = summary(stored, waiting_up(server, stored, settings.sync.cell_db),
                       quarantined_count(server, settings.signing.quarantine_db))
    finally:
        server.close()
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=1))
        return
    for line in describe(info):
        click.echo(line)


def describe(info: dict[str, Any]) -> list[str]:
    """The status in plain lines, for people at the kiosk."""
    def when(stamp: Any) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "never"

    if not info["configured"]:
        return ["No hub configured (sync.hub_url in config.yaml)."]
    state = "running now" if info["running"] else ("synced" if info["synced"] else "NOT synced")
    lines = [f"Hub: {info['hub']} - {state}"]
    for db, stamp in sorted(info["last_push_ok"].items()):
        lines.append(f"Last push of {db}: {when(stamp)}")
    for db, stamp in sorted(info["last_pull_ok"].items()):
        lines.append(f"Last pull of {db}: {when(stamp)}")
    for db, count in sorted(info["waiting_up"].items()):
        lines.append(f"Waiting to go up from {db}: {count} documents")
    if info["refused"]:
        lines.append(f"Refused by the hub: {len(info['refused'])} (newest: {info['refused'][0]['id']}: "
                     f"{info['refused'][0]['reason']})")
    if info["quarantined"]:
        lines.append(f"Articles held back because their signature failed: {info['quarantined']}")
    if info["last_error"] and not info["synced"]:
        lines.append(f"Last error ({when(info['last_error']['time'])}): {info['last_error']['message']}")
    today = info["bytes_today"]
    lines.append(f"Data used today: {_size(today['sent'])} sent, {_size(today['received'])} received")
    return lines
