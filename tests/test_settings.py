"""config.yaml documents every setting, and bad values stop the server with one clear line."""

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sync_server.errors import StartupError
from sync_server.settings import Settings, documented, load

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_config_yaml():
    text = (ROOT / "config.yaml").read_text()
    for key, help_text in documented():
        section, name = key.split(".")
        assert re.search(rf"^{section}:", text, re.M), section
        assert f"  # {help_text}\n  {name}:" in text, f"{key} is missing or lacks its comment"


def test_config_yaml_loads_to_the_defaults():
    assert load(ROOT / "config.yaml") == Settings()


@pytest.mark.parametrize(
    "content, message",
    [
        ("server:\n  port: eighty\n", "'server.port' must be an integer"),
        ("server:\n  prot: 1\n", "unknown key 'server.prot'"),
        ("serveur: {}\n", "unknown section 'serveur'"),
        ("storage:\n  synchronous: sometimes\n", "'storage.synchronous' must be one of"),
        ("couchdb:\n  max_document_size: 0\n", "'couchdb.max_document_size' must be at least 1"),
        ("couchdb:\n  gzip_level: 10\n", "'couchdb.gzip_level' must be at most 9"),
        ("server: [1]\n", "'server' must be a mapping"),
        ("server:\n  port: [\n", "cannot read"),
    ],
)
def test_bad_config_raises_startup_error(tmp_path, content, message):
    path = tmp_path / "config.yaml"
    path.write_text(content)
    with pytest.raises(StartupError, match=re.escape(message)):
        load(path)


def test_cli_prints_one_line_for_a_bad_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("couchdb:\n  revs_limit: many\n")
    proc = subprocess.run([sys.executable, "-m", "sync_server", "serve", "--config", str(path),
                           "--data-dir", str(tmp_path / "d")], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "'couchdb.revs_limit' must be an integer" in lines[0]


def test_cli_on_a_port_already_taken_says_so_in_one_line_and_starts_no_sync(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    with socket.socket() as spare:  # a hub address nothing listens on
        spare.bind(("127.0.0.1", 0))
        hub = f"http://kiosk:pw@127.0.0.1:{spare.getsockname()[1]}/"
    path = tmp_path / "config.yaml"
    path.write_text(f"server:\n  port: {port}\nsync:\n  hub_url: {hub}\n  cell_db: cell-x\n  interval_seconds: 1\n")
    try:
        proc = subprocess.run([sys.executable, "-m", "sync_server", "serve", "--config", str(path),
                               "--data-dir", str(tmp_path / "d"), "--admin", "admin:secret"],
                              capture_output=True, text=True, timeout=60)
    finally:
        taken.close()
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"], proc.stderr
    assert "sync" not in proc.stdout, proc.stdout


def test_cli_refuses_a_malformed_admin(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sync_server", "serve", "--admin", "nopassword",
                           "--data-dir", str(tmp_path / "d")], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "USER:PASSWORD" in proc.stderr
