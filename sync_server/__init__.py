"""A CouchDB-compatible replica on SQLite, served over HTTP by Flask."""

__version__ = "0.1.0"

from .app import create_app  # noqa: E402
from .errors import CouchError, StartupError, SyncError  # noqa: E402
from .store import Server  # noqa: E402

__all__ = ["CouchError", "Server", "StartupError", "SyncError", "__version__", "create_app"]
