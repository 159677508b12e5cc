"""``sync-server replicate``: the library call behind the command, and its progress line."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .errors import StartupError
from .store import Server


def run_replication(source: str, target: str, data_dir: str | None, selector: str | None,
                    doc_ids: str | None, continuous: bool, batch_size: int) -> Any:
    """Open both peers, replicate, print a summary line; returns the replication result."""
    from replication import Options, open_peer

    from replication.replicator import Replicator

    server = Server(data_dir) if data_dir else None
    try:
        peers = [open_peer(spec, server) for spec in (source, target)]
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
