"""Reading multipart request bodies (``multipart/related`` documents, ``multipart/form-data`` uploads).

CouchDB's reader (couch_httpd:parse_multipart_request) splits on the boundary and
stops at the closing delimiter, whatever follows it; parts may have no headers at
all. Python's ``email`` parser is stricter (a closing delimiter must end its line)
and would keep an epilogue inside the last part's data, so the split is done here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BadRequest

_BOUNDARY = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_PARAM = re.compile(r';\s*([\w-]+)\s*=\s*(?:"([^"]*)"|([^;\s]*))')


@dataclass
class Part:
    """One part: its headers (names lowercased) and its raw data."""

    headers: dict[str, str]
    data: bytes

    def param(self, header: str, name: str) -> str | None:
        """A parameter of a header, such as ``name`` or ``filename`` of ``Content-Disposition``."""
        for key, quoted, bare in _PARAM.findall(self.headers.get(header, "")):
            if key.lower() == name:
                return quoted if quoted or not bare else bare
        return None


def boundary_of(content_type: str) -> bytes:
    """The boundary a multipart ``Content-Type`` names.

    :raises BadRequest: when there is none.
    """
    found = _BOUNDARY.search(content_type)
    if not found:
        raise BadRequest("multipart body without a boundary")
    return (found.group(1) or found.group(2)).encode()


def parts(content_type: str, body: bytes) -> list[Part]:
    """The parts of a multipart body, up to its closing delimiter.

    :raises BadRequest: when the body holds no part.
    """
    delimiter = b"\r\n--" + boundary_of(content_type)
    found = []
    for chunk in (b"\r\n" + body).split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter: what follows is an epilogue
        rest = chunk[chunk.find(b"\r\n") + 2:] if b"\r\n" in chunk else b""
        if rest.startswith(b"\r\n"):
            head, data = b"", rest[2:]
        else:
            head, _, data = rest.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        found.append(Part(headers, data))
    if not found:
        raise BadRequest("multipart body has no parts")
    return found
