"""Hub credentials from the environment or a private file, never from config.yaml itself."""

import pytest

from sync_server.errors import StartupError
from sync_server.security.secrets_source import read_secret, with_credentials


def test_secret_from_environment():
    assert read_secret("env:HUB", {"HUB": "kiosk-a:pa ss\n"}) == "kiosk-a:pa ss"
    with pytest.raises(StartupError, match="HUB is not set") as caught:
        read_secret("env:HUB", {})
    assert "pa ss" not in str(caught.value)


def test_secret_from_a_private_file(tmp_path):
    path = tmp_path / "hub.secret"
    path.write_text("kiosk-a:s3cret\n")
    path.chmod(0o600)
    assert read_secret(f"file:{path}") == "kiosk-a:s3cret"
    path.chmod(0o644)
    with pytest.raises(StartupError, match="readable by others") as caught:
        read_secret(f"file:{path}")
    assert "s3cret" not in str(caught.value)


def test_unknown_source_and_missing_file(tmp_path):
    with pytest.raises(StartupError, match="env:NAME or file:/path"):
        read_secret("kiosk-a:s3cret")
    with pytest.raises(StartupError, match="cannot read"):
        read_secret(f"file:{tmp_path / 'nope'}")


def test_credentials_go_into_the_url():
    assert with_credentials("https://old:x@hub.example:6984/", "kiosk-a:p@ss:w") == "https://kiosk-a:p%40ss%3Aw@hub.example:6984/"
    with pytest.raises(StartupError):
        with_credentials("https://hub/", "no-colon")
