"""The one atomic writer: modes, and a failed write leaves the old file whole (issue #16)."""

import json
import os
import stat

import pytest

from sync_server.private_file import write_atomic, write_private
from sync_server.store.server import Server


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_write_private_is_owner_only_even_over_a_readable_file(tmp_path):
    path = tmp_path / "key.pem"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, b"new")
    assert path.read_bytes() == b"new" and _mode(path) == 0o600


def test_write_atomic_gives_the_mode_of_a_new_file(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "report.html", "é")
    finally:
        os.umask(old)
    assert (tmp_path / "report.html").read_bytes() == "é".encode() and _mode(tmp_path / "report.html") == 0o644


def test_write_atomic_leaves_only_the_file(tmp_path):
    for text in ("one", "two"):
        write_atomic(tmp_path / "status.json", text)
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "server.json"
    write_private(path, b'{"uuid": "old"}')

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # the write got as far as the data, not to the disk
    with pytest.raises(OSError, match="No space"):
        write_private(path, b'{"uuid": "new", "secret": "' + b"x" * 100_000 + b'"}')
    monkeypatch.undo()
    assert path.read_bytes() == b'{"uuid": "old"}'
    assert [p.name for p in tmp_path.iterdir()] == ["server.json"]


def test_a_write_into_a_missing_directory_fails_without_a_trace(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "gone" / "x.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_server_identity_is_private(tmp_path):
    old = os.umask(0o022)  # what a careless service unit might leave
    try:
        server = Server(tmp_path / "data")
    finally:
        os.umask(old)
    path = tmp_path / "data" / "server.json"
    assert _mode(path) == 0o600
    assert json.loads(path.read_text())["uuid"] == server.uuid
    assert Server(tmp_path / "data").uuid == server.uuid  # read back, not written again
