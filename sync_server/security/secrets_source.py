"""Secrets given indirectly in config.yaml: ``env:NAME`` or ``file:/path``, never the secret itself.

A kiosk's config.yaml is often copied around for support; the hub password
then stays in an environment variable or a file only the service account can
read. Values are read when needed and never logged or shown in the status.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from ..errors import StartupError


def read_secret(spec: str, environ: dict[str, str] | None = None) -> str:
    """The secret named by ``env:NAME`` or ``file:/path`` (first line, stripped).

    :raises StartupError: naming the source (never the value) when it is missing or unsafe.
    """
    kind, _, where = spec.partition(":")
    if kind == "env":
        value = (environ if environ is not None else os.environ).get(where)
        if not value:
            raise StartupError(f"the environment variable {where} is not set")
        return value.strip()
    if kind == "file":
        path = Path(where)
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise StartupError(f"cannot read the secret file {where}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StartupError(f"the secret file {where} is readable by others: chmod 600 it")
        return text.strip().splitlines()[0] if text.strip() else ""
    raise StartupError(f"a secret is given as env:NAME or file:/path, not {kind!r}")


def read_passphrase(spec: str, what: str) -> str:
    """A passphrase from ``env:NAME``, ``file:/path``, or ``prompt`` (asked on the terminal, not echoed).

    :raises StartupError: when ``prompt`` is asked but there is no terminal to ask on.
    """
    if spec != "prompt":
        return read_secret(spec)
    if not sys.stdin.isatty():
        raise StartupError(f"the passphrase of {what} is set to prompt, but there is no terminal to ask on")
    return getpass.getpass(f"Passphrase of {what}: ")


def with_credentials(url: str, credentials: str) -> str:
    """``url`` with ``user:password`` put into it (replacing any there)."""
    user, sep, password = credentials.partition(":")
    if not sep or not user:
        raise StartupError("hub credentials must be USER:PASSWORD")
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
