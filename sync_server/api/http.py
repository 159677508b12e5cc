"""Request parsing and response building shared by the endpoint modules.

Bodies are read once, with the configured size limit applied after gzip
decoding (so a small compressed bomb is refused too); JSON is strict UTF-8,
with no NaN or Infinity, as CouchDB's parser is.
"""

from __future__ import annotations

import itertools
import json
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Response, current_app, g, request

from ..errors import BadContentType, BadRequest, RequestTooLarge
from ..store import Server

JSON_TYPE = "application/json"


def server() -> Server:
    """The store this app serves."""
    return current_app.extensions["sync_server"]


def settings() -> Any:
    return current_app.config["SETTINGS"]


def raw_body() -> bytes:
    """The request body, gzip-decoded when so encoded, within the size limit.

    :raises RequestTooLarge: above ``couchdb.max_request_size``.
    """
    if "raw_body" in g:
        return g.raw_body
    limit = settings().couchdb.max_request_size
    if (request.content_length or 0) > limit:
        raise RequestTooLarge()
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise RequestTooLarge()
    if request.headers.get("Content-Encoding", "identity").lower() == "gzip":
        data = _gunzip(data, limit)
    g.raw_body = data
    return data


def _gunzip(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise BadRequest("Request body is not valid gzip") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise RequestTooLarge()
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def parse_json(data: bytes) -> Any:
    """Strict JSON from bytes.

    :raises BadRequest: ``invalid UTF-8 JSON``, as CouchDB says for any malformed body.
    """
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("invalid UTF-8 JSON") from None


def json_body(require_type: bool = True, expect: type | None = dict) -> Any:
    """The request body as JSON, checking its content type as CouchDB does for POSTs.

    :raises BadContentType: when the body is not declared as JSON.
    """
    if require_type and request.mimetype != JSON_TYPE:
        raise BadContentType()
    value = parse_json(raw_body())
    if expect is not None and not isinstance(value, expect):
        raise BadRequest(f"Request body must be a JSON {'object' if expect is dict else expect.__name__}")
    return value


def flag(name: str, default: bool = False) -> bool:
    """A boolean query parameter (``true``/``false``)."""
    value = request.args.get(name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise BadRequest(f"Invalid boolean parameter: {name}", error="query_parse_error")
    return value == "true"


def doc_read_options() -> dict[str, bool] | None:
    """What ``_all_docs`` and ``_changes`` add to included documents (``conflicts``, ``attachments``), or None."""
    options = {"conflicts": flag("conflicts"), "attachments_": flag("attachments")}
    return options if any(options.values()) else None


def integer(name: str, default: int | None = None, minimum: int = 0) -> int | None:
    """A non-negative integer query parameter."""
    value = request.args.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"Invalid value for integer parameter {name}: {value[:40]!r}", error="query_parse_error") from None
    if number < minimum:
        raise BadRequest(f"Invalid value for {name}: must be at least {minimum}", error="query_parse_error")
    return number


def json_param(name: str, default: Any = None) -> Any:
    """A JSON-encoded query parameter (``startkey``, ``open_revs``, ``doc_ids`` ...)."""
    value = request.args.get(name)
    if value is None:
        return default
    try:
        return json.loads(value)
    except ValueError:
        raise BadRequest(f"Invalid JSON in query parameter {name}", error="query_parse_error") from None


def respond(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"
    return Response(body, status=status, headers=headers, content_type=JSON_TYPE)


def wants_gzip() -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "").lower()


def stream(chunks: Iterable[str], *, live: bool = False, status: int = 200,
           content_type: str = JSON_TYPE) -> Response:
    """A response built from chunks: whole when small, streamed when large or live.

    Waitress closes the connection after every response without a length, so a
    body that fits in ``WHOLE_BODY_LIMIT`` is collected and sent with one: the
    client keeps its connection (on 3G, a new one costs a second or more).
    Larger bodies stream, memory flat. Gzip when the client accepts it.

    :param live: stream from the first chunk and flush the compressor after each
        (heartbeats, continuous feeds).
    """
    headers = {"Cache-Control": "must-revalidate"}
    if not live:
        iterator = iter(_coalesce(chunks))
        collected, size = [], 0
        for piece in iterator:
            collected.append(piece)
            size += len(piece)
            if size >= WHOLE_BODY_LIMIT:
                break
        else:
            return Response(b"".join(collected), status=status, headers=headers, content_type=content_type)
        encoded: Iterator[bytes] = itertools.chain(collected, iterator)
    else:
        encoded = (chunk.encode() for chunk in chunks)
    if wants_gzip():
        headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept-Encoding"
        encoded = _gzip(encoded, live)
    response = Response(encoded, status=status, headers=headers, content_type=content_type)
    response.direct_passthrough = True
    return response


# A response body up to this size is sent whole, with a Content-Length.
WHOLE_BODY_LIMIT = 1_048_576


# Rows are joined into writes of about this size: one write per row costs the
# WSGI server more than producing the row does.
STREAM_CHUNK = 65_536


def _coalesce(chunks: Iterable[str]) -> Iterator[bytes]:
    buffer: list[str] = []
    size = 0
    for chunk in chunks:
        buffer.append(chunk)
        size += len(chunk)
        if size >= STREAM_CHUNK:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode()


def _gzip(chunks: Iterator[bytes], live: bool) -> Iterator[bytes]:
    deflater = zlib.compressobj(6, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = deflater.compress(chunk)
        if live:
            out += deflater.flush(zlib.Z_SYNC_FLUSH)
        if out:
            yield out
    yield deflater.flush(zlib.Z_FINISH)


def compress_response(response: Response) -> Response:
    """Gzip a complete (non-streamed) response when asked and worth it."""
    if response.direct_passthrough or response.is_streamed or "Content-Encoding" in response.headers:
        return response
    if "Accept-Ranges" in response.headers:  # attachment data: ranges count identity bytes
        return response
    if not wants_gzip() or not (response.mimetype or "").startswith(("application/json", "text/")):
        return response
    data = response.get_data()
    if len(data) < settings().couchdb.gzip_min_size:
        return response
    response.set_data(zlib.compress(data, 6, wbits=31))
    response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    return response
