"""Revision ids must be byte-for-byte CouchDB's (couch_doc:new_revid/1).

The expected values are revisions Apache CouchDB itself returns for these
documents (they appear throughout CouchDB's documentation and mailing lists).
"""

import pytest

from sync_server.store.revid import _encode, new_revid


@pytest.mark.parametrize(
    "deleted, old_pos, old_hash, body, expected",
    [
        (False, 0, None, {}, "967a00dff5e02add41819138abb3284d"),  # PUT {"_id": "x"}
        (True, 1, "967a00dff5e02add41819138abb3284d", {}, "eec205a9d413992850a6e32678485900"),  # its DELETE
        (False, 0, None, {"foo": "bar"}, "4c6114c65e295552ab1019e2b046b10e"),
        (False, 0, None, {"servings": 4, "subtitle": "Delicious with fresh bread", "title": "Fish Stew"},
         "9c65296036141e575d32ba9c034dd3ee"),  # CouchDB manual, "PUT /db/doc"
    ],
)
def test_new_revid_matches_couchdb(deleted, old_pos, old_hash, body, expected):
    assert new_revid(deleted, old_pos, old_hash, body, []) == expected


def test_new_revid_depends_on_attachment_digests():
    plain = new_revid(False, 0, None, {}, [])
    with_att = new_revid(False, 0, None, {}, [("a.txt", "text/plain", b"\x00" * 16)])
    other_att = new_revid(False, 0, None, {}, [("a.txt", "text/plain", b"\x01" * 16)])
    assert len({plain, with_att, other_att}) == 3


@pytest.mark.parametrize(
    "term, encoded",
    [
        (0, b"a\x00"),
        (255, b"a\xff"),
        (256, b"b\x00\x00\x01\x00"),
        (-1, b"b\xff\xff\xff\xff"),
        (2**40, b"n\x06\x00" + (2**40).to_bytes(6, "little")),
        (-(2**40), b"n\x06\x01" + (2**40).to_bytes(6, "little")),
        (1.5, b"F?\xf8\x00\x00\x00\x00\x00\x00"),
        (True, b"d\x00\x04true"),
        (None, b"d\x00\x04null"),
        ("é", b"m\x00\x00\x00\x02\xc3\xa9"),
        ([], b"j"),
        ([1], b"l\x00\x00\x00\x01a\x01j"),
        ({}, b"h\x01j"),
    ],
)
def test_encode_uses_erlang_external_term_format(term, encoded):
    assert _encode(term) == encoded
