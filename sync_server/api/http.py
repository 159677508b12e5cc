"""Request parsing and response building shared by the endpoint modules.

Bodies are read once, with the configured size limit applied after gzip
decoding (so a small compressed bomb is refused too); JSON is strict UTF-8,
with no NaN or Infinity, as CouchDB's parser is.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
from flask import Response, current_app, g, request

from ..errors import BadContentType, BadRequest, RequestTooLarge
from ..store import Server
from ..store.document import MAX_DEPTH, RawJSON

JSON_TYPE = "application/json"


class FeedWait(bytes):
    """A point where a streamed response waits for a change of ``db`` after ``seq``, at most ``timeout`` s.

    Yielded by a feed's generator through :func:`stream` to the server. It is an
    empty chunk, so any WSGI server can pass it on; sync_server/api/serving.py recognises
    it, sends what came before, waits for the database without holding a thread, sets
    ``changed`` (True: a change or the database closed; False: the timeout passed) and
    resumes the generator, which waits by itself when ``changed`` is still None.
    """

    db: Any
    seq: int
    timeout: float
    changed: bool | None

    def __new__(cls, db: Any, seq: int, timeout: float) -> FeedWait:
        wait = super().__new__(cls, b"")
        wait.db, wait.seq, wait.timeout, wait.changed = db, seq, timeout, None
        return wait


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


# 19 digits in a row: perhaps an integer beyond 64 bits, which orjson reads as a float.
_LONG_DIGITS = re.compile(rb"\d{19}")


def parse_json(data: bytes) -> Any:
    """Strict JSON from bytes, read by orjson (C, several times faster than the standard library).
    What it refuses CouchDB refuses too (``tests/api/test_differential.py``): malformed text,
    invalid UTF-8, escapes of lone surrogates, numbers beyond a double's range, ``NaN``. A body
    with 19 digits in a row is read again by the standard library, which keeps integers beyond
    64 bits exact (orjson makes them floats; CouchDB keeps them).

    :raises BadRequest: ``invalid UTF-8 JSON``, as CouchDB says for any malformed body.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _refused(exc.msg.startswith("depth limit")) from None
    if _LONG_DIGITS.search(data):
        try:
            return json.loads(data.decode("utf-8"))
        except RecursionError:  # deeper than the standard library goes (past 100 levels a document is refused anyway)
            raise _refused(True) from None
    return value


def _refused(too_deep: bool) -> BadRequest:
    """CouchDB's answer to a malformed body; one nested past what a parser follows says so."""
    return BadRequest(f"JSON nested deeper than {MAX_DEPTH} levels" if too_deep else "invalid UTF-8 JSON")


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


def flag(name: str, default: bool = False, args: Mapping[str, str] | None = None) -> bool:
    """A boolean query parameter (``true``/``false``); ``args``: other parameters than the query string's."""
    value = (request.args if args is None else args).get(name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise BadRequest(f"Invalid boolean parameter: {name}", error="query_parse_error")
    return value == "true"


def doc_read_options(args: Mapping[str, str] | None = None) -> dict[str, bool] | None:
    """What ``_all_docs`` and ``_changes`` add to included documents (``conflicts``, ``attachments``), or None."""
    options = {"conflicts": flag("conflicts", args=args), "attachments_": flag("attachments", args=args)}
    return options if any(options.values()) else None


def integer(name: str, default: int | None = None, minimum: int = 0,
            args: Mapping[str, str] | None = None) -> int | None:
    """A non-negative integer query parameter."""
    value = (request.args if args is None else args).get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"Invalid value for integer parameter {name}: {value[:40]!r}", error="query_parse_error") from None
    if number < minimum:
        raise BadRequest(f"Invalid value for {name}: must be at least {minimum}", error="query_parse_error")
    return number


def json_param(name: str, default: Any = None, args: Mapping[str, str] | None = None) -> Any:
    """A JSON-encoded query parameter (``startkey``, ``open_revs``, ``doc_ids`` ...)."""
    value = (request.args if args is None else args).get(name)
    if value is None:
        return default
    try:
        return json.loads(value)
    except ValueError:
        raise BadRequest("invalid UTF-8 JSON") from None  # CouchDB's words, whichever parameter


def encode(obj: Any) -> bytes:
    """Compact UTF-8 JSON and a newline, as CouchDB answers: orjson (C, several times faster than the
    standard library, which a kiosk serving a cell at once is short of), or the standard library for
    what orjson refuses (integers beyond 64 bits, lone surrogates read from a client's escapes).
    A :class:`RawJSON` value (a document's text from the store) is embedded as it is."""
    try:
        return orjson.dumps(obj, default=_embed, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_SUBCLASS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return (json.dumps(_parsed(obj), separators=(",", ":")) + "\n").encode()  # ASCII: a lone surrogate stays an escape


def _embed(value: Any) -> Any:
    """orjson's hook for subclasses: RawJSON goes in as it is, other subclasses as their base type."""
    if isinstance(value, RawJSON):
        return orjson.Fragment(str(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, (list, tuple)):
        return list(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def _parsed(value: Any) -> Any:
    """``value`` with its RawJSON parts parsed, for the standard library's encoder (which would quote them)."""
    if isinstance(value, RawJSON):
        return json.loads(value)
    if isinstance(value, dict):
        return {k: _parsed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_parsed(v) for v in value]
    return value


def respond(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    return Response(encode(obj), status=status, headers=headers, content_type=JSON_TYPE)


def wants_gzip() -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "").lower()


def stream(chunks: Iterable[str | FeedWait], *, live: bool = False, status: int = 200,
           content_type: str = JSON_TYPE) -> Response:
    """A response built from chunks: whole when small, streamed when large or live.

    A body that fits in ``WHOLE_BODY_LIMIT`` is collected and sent with a length, in
    one message (a client that meets a connection closed after a streamed answer pays
    a new one, on 3G a second or more). Larger bodies stream, memory flat. Gzip when
    the client accepts it.

    :param live: stream from the first chunk: what came before each
        :class:`FeedWait` (heartbeats, rows of a continuous feed) is sent, and the
        compressor flushed, before the wait.
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
        encoded = _coalesce(chunks)
    if wants_gzip():
        headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept-Encoding"
        encoded = _gzip(encoded, live, settings().couchdb.gzip_level)
    response = Response(encoded, status=status, headers=headers, content_type=content_type)
    response.direct_passthrough = True
    return response


# A response body up to this size is sent whole, with a Content-Length.
WHOLE_BODY_LIMIT = 1_048_576


# Rows are joined into writes of about this size: one write per row costs the
# WSGI server more than producing the row does.
STREAM_CHUNK = 65_536


def _coalesce(chunks: Iterable[str | FeedWait]) -> Iterator[bytes]:
    """Chunks joined into writes of about STREAM_CHUNK; a FeedWait flushes what came before and passes."""
    buffer: list[str] = []
    size = 0
    for chunk in chunks:
        if isinstance(chunk, FeedWait):
            if buffer:
                yield "".join(buffer).encode()
                buffer, size = [], 0
            yield chunk
            continue
        buffer.append(chunk)
        size += len(chunk)
        if size >= STREAM_CHUNK:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode()


def _gzip(chunks: Iterator[bytes | FeedWait], live: bool, level: int) -> Iterator[bytes]:
    deflater = zlib.compressobj(level, zlib.DEFLATED, 31)
    for chunk in chunks:
        if isinstance(chunk, FeedWait):  # what came before goes out before the wait
            out = deflater.flush(zlib.Z_SYNC_FLUSH) if live else b""
            if out:
                yield out
            yield chunk
            continue
        out = deflater.compress(chunk)
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
    response.set_data(_gzipped(data, settings().couchdb.gzip_level))
    response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    return response


# Gzipped bodies of recent large responses, by digest of the body: phones of one cell pull
# the same handbook in the same batches, so most _bulk_get answers are asked for again and
# again, and compressing them is most of a kiosk's CPU (issue 14). Small bodies are not kept.
GZIP_CACHE_BYTES = 16_000_000
GZIP_CACHE_MIN = 16_384
_gzip_cache: OrderedDict[bytes, bytes] = OrderedDict()
_gzip_cache_size = 0
_gzip_cache_lock = threading.Lock()


def _gzipped(data: bytes, level: int) -> bytes:
    global _gzip_cache_size
    if len(data) < GZIP_CACHE_MIN:
        return zlib.compress(data, level, wbits=31)
    key = hashlib.blake2b(data, digest_size=16, person=bytes([level])).digest()
    with _gzip_cache_lock:
        found = _gzip_cache.get(key)
        if found is not None:
            _gzip_cache.move_to_end(key)
            return found
    out = zlib.compress(data, level, wbits=31)
    with _gzip_cache_lock:
        if key not in _gzip_cache:
            _gzip_cache[key] = out
            _gzip_cache_size += len(out)
        while _gzip_cache_size > GZIP_CACHE_BYTES:
            _, dropped = _gzip_cache.popitem(last=False)
            _gzip_cache_size -= len(dropped)
    return out
