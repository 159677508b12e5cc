"""Signed articles: RFC 8785 canonical JSON, Ed25519, attachments by SHA-256."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync_server.errors import Forbidden
from sync_server.security import signing


def test_canonical_matches_rfc8785_example():
    # RFC 8785 section 3.2.2 (the numbers, string escaping and literals example)
    source = ('{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],'
              '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}')
    expected = ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
                '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')
    assert signing.canonical(json.loads(source)).decode() == expected


def test_canonical_sorts_members_by_utf16_code_units():
    # RFC 8785 section 3.2.3
    keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    text = signing.canonical({k: 0 for k in keys}).decode()
    assert [k for k in json.loads(text)] == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def article():
    return {"_id": "article:nghi-quyet-01", "_rev": "3-abc", "type": "article", "title": "Nghị quyết số 01",
            "body": "Toàn văn nghị quyết…", "category": "resolution", "language": "vi",
            "audience": ["TQ"], "published_at": "2026-11-01T08:00:00+07:00"}


def keys_of(*pairs):
    return {key_id: signing.public_text(k) for key_id, k in pairs}


def test_sign_then_verify(key, article):
    signed = signing.sign(article, key, "tq-2026", {"a.pdf": b"%PDF-1.7 ..."})
    signing.verify(signed, keys_of(("tq-2026", key)), {"a.pdf": b"%PDF-1.7 ..."})
    assert signed["signature"]["alg"] == "Ed25519" and signed["signature"]["key_id"] == "tq-2026"


def test_signature_survives_reordering_and_couch_fields(key, article):
    signed = signing.sign(article, key, "k", {})
    shuffled = dict(reversed(list(signed.items())))
    shuffled.update(_rev="9-def", _revisions={"start": 9, "ids": []}, _conflicts=[])
    signing.verify(json.loads(json.dumps(shuffled)), keys_of(("k", key)), {})


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (lambda d: d.update(title="Nghị quyết giả"), "does not verify"),
        (lambda d: d.update(_id="article:other"), "does not verify"),  # a signature cannot be moved
        (lambda d: d["signature"].update(key_id="unknown"), "unknown key"),
        (lambda d: d.pop("signature"), "not signed"),
        (lambda d: d["signature"].update(attachments={"a.pdf": signing.attachment_hash(b"other")}), "does not verify"),
    ],
)
def test_tampered_article_is_refused(key, article, tamper, reason):
    signed = signing.sign(article, key, "k", {"a.pdf": b"data"})
    tamper(signed)
    with pytest.raises(Forbidden, match=reason):
        signing.verify(signed, keys_of(("k", key)), {"a.pdf": b"data"})


def test_swapped_attachment_data_is_refused(key, article):
    signed = signing.sign(article, key, "k", {"a.pdf": b"real"})
    with pytest.raises(Forbidden, match="attachment a.pdf does not match"):
        signing.verify(signed, keys_of(("k", key)), {"a.pdf": b"fake"})
    with pytest.raises(Forbidden, match="attachments differ"):
        signing.verify(signed, keys_of(("k", key)), {"a.pdf": b"real", "extra.pdf": b"x"})


def test_key_rotation_accepts_any_listed_key(key, article):
    new = Ed25519PrivateKey.generate()
    trusted = keys_of(("tq-2025", key), ("tq-2026", new))
    signing.verify(signing.sign(article, key, "tq-2025", {}), trusted, {})
    signing.verify(signing.sign(article, new, "tq-2026", {}), trusted, {})
    with pytest.raises(Forbidden):
        signing.verify(signing.sign(article, new, "tq-2025", {}), trusted, {})  # wrong key for the id


def test_key_files(tmp_path):
    path, public = signing.create_key(tmp_path, "tq-2026")
    assert path.stat().st_mode & 0o777 == 0o600
    assert signing.public_text(signing.load_key(path)) == public
    assert len(base64.b64decode(public)) == 32
    before = path.read_bytes()
    with pytest.raises(Exception, match="exists already"):
        signing.create_key(tmp_path, "tq-2026")
    assert path.read_bytes() == before  # the old key is never replaced


def test_a_key_cut_off_while_written_leaves_no_file(tmp_path, monkeypatch):
    """A crash (here: the disk refusing to sync) while a key is written leaves no half key under its name."""
    import os as os_module

    def refuse(_fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os_module, "fsync", refuse)
    with pytest.raises(OSError, match="disk full"):
        signing.create_key(tmp_path, "tq-2027")
    assert list(tmp_path.iterdir()) == []  # neither the key nor a temporary file
