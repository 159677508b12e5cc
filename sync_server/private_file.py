"""Files only the service account may read (keys, the keyring, device tokens), written atomically."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600: into a temporary file, synced, then renamed over it.

    A crash leaves the old file or the new one, never half of either.
    """
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
