"""Files written whole or not at all; the private ones (keys, the keyring, device tokens, the
server identity) readable only by the service account.

The one way the project replaces a file: into a temporary file beside it (same directory, so the
rename stays on one file system), flushed to disk, then renamed over the old one. A crash or an
error leaves the old file or the new one, never half of either, and no temporary file behind.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["write_atomic", "write_private"]

# Read/write for everyone the umask lets through: what open() gives a new file.
_PUBLIC_MODE = 0o666
_PRIVATE_MODE = 0o600


def write_atomic(path: str | Path, data: bytes | str, *, private: bool = False, exclusive: bool = False) -> Path:
    """Replace ``path`` with ``data`` (text is written as UTF-8); return the path.

    :param private: mode 0600 (only the owner reads it), whatever the umask; otherwise the
        mode a new file gets (0666 less the umask).
    :param exclusive: never replace: the whole file appears under ``path`` only if nothing is
        there (a hard link), else FileExistsError (a new key must not overwrite an old one).
    :raises OSError: the old file, if any, is left as it was.
    """
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    # A name of its own per write: two writers never share a temporary file.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_MODE if private else _PUBLIC_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        if exclusive:
            os.link(tmp, path)
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)
    return path


def write_private(path: str | Path, data: bytes | str) -> Path:
    """``write_atomic`` with mode 0600."""
    return write_atomic(path, data, private=True)


def _sync_directory(folder: Path) -> None:
    """Make the rename itself survive a power cut (the new name is an entry in the directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # a directory we may not open: the file is whole either way
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory
    finally:
        os.close(fd)
