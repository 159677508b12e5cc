"""``POST /_reading``: the article reads a member's app counted, added to the cell's daily counts.

The app counts the articles its member opens (also offline, at home) and sends the counts
when it reaches the kiosk: ``{"reads": {"2026-11-03": {"article:dieu-le-dang": 2}}}``. The
kiosk adds them to ``reading:<cell>:<date>:<kiosk>`` (``handbook/usage.py``), which names no
person: the hub learns how often a cell read an article on a day, never who read it.
Only a signed-in cell member may send; dates are the last ``MAX_AGE_DAYS`` days (by the
kiosk's clock, a day ahead allowed for a phone's time zone), at most ``MAX_READS`` reads a
request. Anything else is refused with 400 and nothing is counted. A member adds at most
``READS_PER_MEMBER_DAY`` (200) reads to one day; the answer's ``counted`` says how many were.
"""

from __future__ import annotations

import datetime
import re

from flask import Response, current_app, g

from ..errors import BadRequest, Forbidden, Unauthorized
from ..handbook.usage import member_of
from .http import json_body, respond

MAX_AGE_DAYS = 60
MAX_READS = 1000
_ARTICLE = re.compile(r"article:[a-z0-9](?:[a-z0-9-]{0,126}[a-z0-9])?", re.ASCII)
_DATE = re.compile(r"\d{4}-\d\d-\d\d", re.ASCII)


def _reads(body: dict, today: datetime.date) -> dict[str, dict[str, int]]:
    reads = body.get("reads")
    if not isinstance(reads, dict) or not reads:
        raise BadRequest('"reads" must be an object: {"YYYY-MM-DD": {"article:<slug>": times}}')
    total = 0
    for date, counts in reads.items():
        try:
            day = datetime.date.fromisoformat(date) if _DATE.fullmatch(date) else None
        except ValueError:
            day = None
        if day is None:
            raise BadRequest(f"not a date: {date[:40]!r}")
        if not today - datetime.timedelta(days=MAX_AGE_DAYS) <= day <= today + datetime.timedelta(days=1):
            raise BadRequest(f"{date}: reads are counted for the last {MAX_AGE_DAYS} days only")
        if not isinstance(counts, dict) or not counts:
            raise BadRequest(f"{date}: the reads of a day are an object of article ids and times")
        for article, times in counts.items():
            if not _ARTICLE.fullmatch(article):
                raise BadRequest(f"not an article id: {article[:140]!r}")
            if type(times) is not int or times < 1:
                raise BadRequest(f"{article}: times must be a whole number from 1")
            total += times
    if total > MAX_READS:
        raise BadRequest(f"at most {MAX_READS} reads a request")
    return reads


def post() -> Response:
    """``POST /_reading``: add a member's counted reads to the cell's daily counts."""
    if g.user.name is None:
        raise Unauthorized("Sign in to report what you read.")
    if member_of(g.user) is None:
        raise Forbidden("Only a cell's members report what they read.")
    usage = current_app.extensions["usage"]
    reads = _reads(json_body(), usage.clock().date())
    return respond({"ok": True, "counted": usage.read(g.user, reads)})
