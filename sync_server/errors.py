"""The one exception hierarchy of the project.

* SyncError
  + CouchError              500 unknown_error  -> {"error": ..., "reason": ...}
    - BadRequest            400 bad_request
    - InvalidDocId          400 illegal_docid
    - Unauthorized          401 unauthorized
    - Forbidden             403 forbidden        (schema or role rejection)
    - NotFound              404 not_found        reason "missing" / "deleted" / "Database does not exist."
    - MethodNotAllowed      405 method_not_allowed
    - NotAcceptable         406 not_acceptable
    - Conflict              409 conflict         "Document update conflict."
    - FileExists            412 file_exists      (PUT /{db} that already exists)
    - PreconditionFailed    412 missing_stub and friends
    - DocumentTooLarge      413 document_too_large
    - RequestTooLarge       413 too_large
    - BadContentType        415 bad_content_type
    - RangeNotSatisfiable   416 requested_range_not_satisfiable
    - StoreCorrupt          500 store_corrupt    (an encrypted value fails its check)
  + StartupError            bad config.yaml or command line; the CLI prints one line, exits 2
  + PeerUnavailable         a peer could not be reached (replication)
  + BundleError             a sync bundle refused (altered, cut short, unknown signer, misaddressed)

Only this module knows status codes; the HTTP layer turns a CouchError into JSON
with one handler, and the store raises these same classes.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of every error raised on purpose."""


class CouchError(SyncError):
    status = 500
    error = "unknown_error"
    reason = "Database encountered an unknown error"

    def __init__(self, reason: str | None = None, *, error: str | None = None) -> None:
        self.reason = reason or type(self).reason
        if error:
            self.error = error
        super().__init__(self.reason)

    def to_json(self) -> dict[str, str]:
        return {"error": self.error, "reason": self.reason}


class BadRequest(CouchError):
    status, error, reason = 400, "bad_request", "Bad request."


class InvalidDocId(CouchError):
    status, error, reason = 400, "illegal_docid", "Invalid document id."


class Unauthorized(CouchError):
    status, error, reason = 401, "unauthorized", "You are not authorized to access this db."


class Forbidden(CouchError):
    status, error, reason = 403, "forbidden", "Forbidden."


class NotFound(CouchError):
    status, error, reason = 404, "not_found", "missing"


class DatabaseGone(NotFound):
    """The database was deleted while a request was using it."""

    reason = "Database does not exist."


class MethodNotAllowed(CouchError):
    status, error, reason = 405, "method_not_allowed", "Method not allowed."


class NotAcceptable(CouchError):
    status, error, reason = 406, "not_acceptable", "Not acceptable."


class Conflict(CouchError):
    status, error, reason = 409, "conflict", "Document update conflict."


class Gone(CouchError):
    status, error, reason = 410, "gone", "Gone."


class FileExists(CouchError):
    status, error, reason = 412, "file_exists", "The database could not be created, the file already exists."


class PreconditionFailed(CouchError):
    status, error, reason = 412, "precondition_failed", "Precondition failed."


class RequestTimeout(CouchError):
    status, error, reason = 408, "request_timeout", "The request was not received in time."


class DocumentTooLarge(CouchError):
    status, error, reason = 413, "document_too_large", "Document exceeds the maximum document size."


class RequestTooLarge(CouchError):
    status, error, reason = 413, "too_large", "the request entity is too large"


class BadContentType(CouchError):
    status, error, reason = 415, "bad_content_type", "Content-Type must be application/json"


class RangeNotSatisfiable(CouchError):
    status, error, reason = 416, "requested_range_not_satisfiable", "Requested range not satisfiable"


class Unavailable(CouchError):
    """Refused at once because a limit is reached; sent with Retry-After."""

    status, error, reason = 503, "service_unavailable", "The server is busy; try again shortly."


class StoreCorrupt(CouchError):
    """A stored value fails its check: the file was edited, or rows were moved between places."""

    status, error, reason = 500, "store_corrupt", "A stored value fails its integrity check."


class StartupError(SyncError):
    """Bad configuration or command line: the CLI prints one line and exits non-zero."""


class PeerUnavailable(SyncError):
    """A replication peer could not be reached or timed out."""


class CertificateError(SyncError):
    """A certificate of the round of issue #19 that cannot be had or used: a request the province
    refuses (another cell's name), an ACME order or a DNS update that failed, a certificate
    returned for another key. The round logs it and goes on with the next kiosk or round."""


class BundleError(SyncError):
    """A sync bundle (USB stick) that is refused as a whole: nothing of it is applied (#6)."""


# Error names raised with ``error=`` on a broader class, so they map back to it.
_NAMED = {"missing_stub": "PreconditionFailed", "doc_validation": "BadRequest",
          "illegal_database_name": "BadRequest", "query_parse_error": "BadRequest"}


def error_for(error: str, reason: str, status: int | None = None) -> CouchError:
    """Rebuild the CouchError that a peer's body (or a ``_bulk_docs`` row) describes.

    :param status: the HTTP status when known; picks among classes sharing an error name.
    """
    classes = _subclasses(CouchError)
    named = [cls for cls in classes if cls.__name__ == _NAMED.get(error)]
    exact = [cls for cls in classes if cls.error == error and (status is None or cls.status == status)]
    loose = [cls for cls in classes if cls.error == error]
    for found in (exact, named, loose):
        if found:
            return found[0](reason, error=error)
    err = CouchError(reason, error=error)
    err.status = status or 500
    return err


def _subclasses(cls: type[CouchError]) -> list[type[CouchError]]:
    found: list[type[CouchError]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found
