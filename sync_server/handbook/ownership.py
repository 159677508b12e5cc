"""Who may write which documents into which database, by the hierarchy. Pure rules, no I/O.

One rule definition serves two enforcers: this server checks it natively on
every write, and ``validate_doc_update`` (the JavaScript a CouchDB hub runs)
is rendered from the same data by :func:`validate_doc_update`.

- ``cell-<code>`` (a cell's database): only the cell's record types, and every
  one's ``cell`` must be that cell; units and articles never go there.
  A kiosk's certificate request (``cert_request``) is written by the kiosk
  (role ``kiosk``) alone, the certificate that answers it (``certificate``) by
  the province alone (issue #19); no person writes either.
- ``handbook``: only ``article`` and ``unit`` documents, written by the
  province (role ``province``) or an admin.
- a member's own attendance (issue 13): a check-in (``present``) made while check-in is
  open, from ``opens`` seconds before the meeting's ``scheduled`` time (carried on the record)
  to ``closes`` seconds after it, judged by its ``checked_in_at`` so a phone that checked in
  offline and syncs later is still accepted, never by more than ``skew`` seconds in the future;
  and the undo of that check-in (``absent`` with ``withdrawn_at``) on the day it was made.
The prefix of a document's id says what it is (``type`` must agree), and the
rules see the revision a write replaces: deletions meet them like any write.
Other databases carry no ownership rule.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

CELL_TYPES = ("member", "device", "meeting", "minutes", "attendance", "feedback", "reading", "cert_request", "certificate")
HANDBOOK_TYPES = ("article", "unit")
PROVINCE_ROLE = "province"
HANDBOOK_DB = "handbook"
DESIGN_ID = "_design/ownership"
KIOSK_ROLE = "kiosk"
# Kinds of a cell's database that one role alone writes (besides admins and the server itself).
WRITTEN_ONLY_BY = {"cert_request": KIOSK_ROLE, "certificate": PROVINCE_ROLE}
# Check-in opens an hour before a meeting (members arrive early, the kiosk is slow to share) and
# closes four hours after it starts (a meeting runs two or three hours; late comers still count).
CHECKIN_OPENS_MINUTES = 60
CHECKIN_CLOSES_MINUTES = 240
# How far ahead of this server's clock a phone's clock may be before its check-in is "in the future".
CLOCK_SKEW_SECONDS = 300
# RFC 3339 with an offset, as the schemas write times: both enforcers read only this shape.
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$"


def checkin_window(opens_minutes: int = CHECKIN_OPENS_MINUTES, closes_minutes: int = CHECKIN_CLOSES_MINUTES,
                   skew_seconds: int = CLOCK_SKEW_SECONDS) -> dict[str, int]:
    """The check-in window of a cell rule, in seconds around the meeting's ``scheduled`` time."""
    return {"opens": opens_minutes * 60, "closes": closes_minutes * 60, "skew": skew_seconds}


def cell_of_db(db_name: str) -> str | None:
    """The cell code of a cell database name (``cell-tq-nh-kh-c01`` -> ``TQ.NH.KH.C01``)."""
    if not db_name.startswith("cell-") or len(db_name) <= 5:
        return None
    return db_name[5:].upper().replace("-", ".")


def rules_for(db_name: str, handbook_db: str | None = None,
              checkin: dict[str, int] | None = None) -> dict[str, Any] | None:
    """The ownership rule of a database, or None.

    :param handbook_db: another name a kiosk keeps the handbook under (``sync.handbook_db``).
    :param checkin: the check-in window (:func:`checkin_window`); the defaults when None.
    """
    cell = cell_of_db(db_name)
    if cell is not None:
        return {"kind": "cell", "cell": cell, "types": list(CELL_TYPES), "checkin": checkin or checkin_window(),
                "only": dict(WRITTEN_ONLY_BY)}
    if db_name in (HANDBOOK_DB, handbook_db):
        return {"kind": "handbook", "types": list(HANDBOOK_TYPES), "writers": [PROVINCE_ROLE]}
    return None


def kind_of(doc_id: str) -> str:
    """The document kind an id names (``meeting:TQ.NH.KH.C01:...`` -> ``meeting``): the rules go by it."""
    return doc_id.split(":", 1)[0] if ":" in doc_id else ""


def check(rule: dict[str, Any] | None, doc: dict[str, Any], roles: tuple[str, ...] | None,
          name: str | None = None, old: dict[str, Any] | None = None, now: float | None = None) -> str | None:
    """Why ``doc`` may not replace ``old`` under ``rule``, written by a user with ``roles``; None when it may.

    The same function as CouchDB's ``validate_doc_update(newDoc, oldDoc, userCtx, secObj)``,
    and rendered into it by :func:`validate_doc_update`. The kind of a document is the
    prefix of its id, never its ``type`` (which must agree): a tombstone, an untyped
    document or a rewritten one meets the rule of the record its id names.

    :param roles: the writer's roles; None for the server itself (replication it runs).
    :param name: the writer's account name (members may only write their own records).
    :param old: the revision this write replaces (CouchDB's ``oldDoc``); None for a new document.
    :param now: this server's time (seconds since the epoch); the clock's when None.
    """
    doc_id = str(doc.get("_id", ""))
    if rule is None or doc_id.startswith("_design/"):
        return None
    deleted = bool(doc.get("_deleted"))
    live_old = old if old is not None and not old.get("_deleted") else None
    kind = kind_of(doc_id)
    shown = doc.get("type") if not deleted and "type" in doc else kind
    if shown not in rule["types"] or kind not in rule["types"]:
        return f"a {shown or doc_id} document does not belong in this database (allowed: {', '.join(rule['types'])})"
    if not deleted and doc.get("type") != kind:
        return f"a {kind} document needs \"type\": \"{kind}\" (its _id says it is one)"
    if rule["kind"] == "handbook" and roles is not None and "_admin" not in roles \
            and not set(roles) & set(rule["writers"]):
        return "only the province writes the handbook"
    if rule["kind"] == "cell":
        if not deleted and doc.get("cell") != rule["cell"]:
            return f"this is cell {rule['cell']}'s database; the document belongs to {doc.get('cell')!r}"
        if f":{rule['cell']}:" not in doc_id:
            return f"this is cell {rule['cell']}'s database; the _id {doc_id!r} names another cell"
        only = rule.get("only", {}).get(kind)
        if only is not None and roles is not None and "_admin" not in roles and only not in roles:
            return f"only the {only} writes {kind} documents"
        if roles is not None:
            reason = _person_check(rule["cell"], kind, doc, live_old, roles, name)
            if reason is None and kind == "attendance" and is_plain_member(roles):
                reason = _checkin_check(rule.get("checkin") or checkin_window(), doc, live_old,
                                        time.time() if now is None else now)
            return reason
    return None


def kiosk_security(db_name: str, cell: str | None) -> dict[str, Any]:
    """The ``_security`` of a kiosk's own databases: its cell's records for that cell's accounts,
    the handbook for the people of the kiosk. Any other database stays admin-only (deny by default)."""
    own = cell_of_db(db_name)
    roles = [cell_role(own)] if own is not None else \
        ([cell_role(cell)] if cell else []) + [MEMBER_ROLE, SECRETARY_ROLE, KIOSK_ADMIN_ROLE]
    return {"admins": {"names": [], "roles": []}, "members": {"names": [], "roles": roles}}


# Roles of people at a kiosk (issue 5). Accounts of the server itself, the province,
# kiosk accounts (the replication) and admins write anything the structure allows.
MEMBER_ROLE, SECRETARY_ROLE, KIOSK_ADMIN_ROLE = "member", "secretary", "kiosk-admin"
_TRUSTED = frozenset({"_admin", PROVINCE_ROLE, KIOSK_ROLE})
SECRETARY_TYPES = ("meeting", "minutes", "attendance", "feedback")
MEMBER_TYPES = ("attendance", "feedback")
KIOSK_ADMIN_TYPES = ("member", "device")


def cell_role(cell: str) -> str:
    """The role that ties an account to its cell."""
    return f"cell:{cell}"


def member_account(cell: str, member_no: str) -> str:
    """A member's account name: cell code and member number (``TQ.NH.KH.C01.001``)."""
    return f"{cell}.{member_no}"


def _person_check(cell: str, kind: str, doc: dict[str, Any], old: dict[str, Any] | None,
                  roles: tuple[str, ...], name: str | None) -> str | None:
    """What a member, secretary or kiosk admin of ``cell`` may write there (``old``: the live revision replaced)."""
    if set(roles) & _TRUSTED:
        return None
    if cell_role(cell) not in roles:
        return "you are not a member of this cell"
    if KIOSK_ADMIN_ROLE in roles and kind in KIOSK_ADMIN_TYPES:
        return None
    if SECRETARY_ROLE in roles:
        return None if kind in SECRETARY_TYPES else f"a secretary does not write {kind} documents"
    if MEMBER_ROLE not in roles:
        return "your account has no role in this cell"
    if doc.get("_deleted"):
        return "members do not delete records; ask the cell's secretary"
    if kind not in MEMBER_TYPES:
        return f"a member writes only attendance and feedback, not {kind}"
    number = (name or "")[len(cell) + 1:]
    own = f"member:{cell}:{number}"
    if not (name or "").startswith(cell + ".") or doc.get("member") != own:
        return f"a member writes only their own {kind} (member must be {own})"
    if kind == "attendance" and not str(doc.get("_id", "")).endswith(":" + number):
        return f"a member writes only their own attendance (the _id must end with :{number})"
    if old is not None and old.get("member") != own:
        return f"a member changes only their own {kind}; this one is {old.get('member')!r}'s"
    return None


def is_plain_member(roles: tuple[str, ...] | None) -> bool:
    """Whether the writer is a member and nothing more (no secretary, no kiosk, province or admin)."""
    return roles is not None and MEMBER_ROLE in roles and not set(roles) & (_TRUSTED | {SECRETARY_ROLE})


def _seconds(value: Any) -> float | None:
    """An RFC 3339 time (with its offset) as seconds since the epoch; None for anything else."""
    if not isinstance(value, str) or not re.match(TIME_PATTERN, value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _checkin_check(window: dict[str, int], doc: dict[str, Any], old: dict[str, Any] | None, now: float) -> str | None:
    """What a member's own attendance record must say: a check-in while it is open, or its undo that day."""
    status = doc.get("status")
    if status == "present":
        at, scheduled = _seconds(doc.get("checked_in_at")), _seconds(doc.get("scheduled"))
        if at is None or scheduled is None:
            return "a member's check-in carries checked_in_at and the meeting's scheduled time"
        if at > now + window["skew"]:
            return "checked_in_at is in the future (is the phone's clock right?)"
        if at < scheduled - window["opens"] or at > scheduled + window["closes"]:
            return (f"check-in is open from {window['opens'] // 60} minutes before the meeting "
                    f"to {window['closes'] // 60} minutes after it")
        return None
    if status == "absent":
        checked_in = old.get("checked_in_at") if old is not None else None
        if old is None or old.get("status") != "present" or _seconds(checked_in) is None:
            return "a member marks themself absent only to undo their own check-in"
        withdrawn = _seconds(doc.get("withdrawn_at"))
        if withdrawn is None:
            return "undoing a check-in carries withdrawn_at"
        if withdrawn > now + window["skew"]:
            return "withdrawn_at is in the future (is the phone's clock right?)"
        if str(doc.get("withdrawn_at"))[:10] != str(checked_in)[:10]:
            return "a check-in is undone on the day it was made; later, ask the cell's secretary"
        return None
    return "a member checks in (present) or undoes it (absent); the secretary records the rest"


def checkin_meets_meeting(doc: dict[str, Any], meeting: dict[str, Any] | None) -> str | None:
    """Why a member's check-in does not match its meeting as this kiosk holds it; None when it does.

    The hub's ``validate_doc_update`` sees no other document, so it trusts the ``scheduled`` a
    check-in carries; the kiosk, which has the meeting, also checks that it is the meeting's.
    """
    if doc.get("status") != "present":
        return None
    if meeting is None or meeting.get("_deleted"):
        return f"there is no meeting {doc.get('meeting')!r} to check in to"
    if meeting.get("status") == "cancelled":
        return "the meeting was cancelled"
    if _seconds(meeting.get("scheduled")) != _seconds(doc.get("scheduled")):
        return f"the meeting is scheduled at {meeting.get('scheduled')}, not {doc.get('scheduled')}"
    return None


_JS = """function (newDoc, oldDoc, userCtx, secObj) {
  // Generated by sync_server/handbook/ownership.py: the same rule the kiosk server enforces natively
  // (ownership.check); tests/integration/test_rule_equivalence.py runs both on one table of writes.
  var rule = %s;
  var trusted = %s;
  var id = newDoc._id;
  if (id.indexOf('_design/') === 0) { return; }
  function deny(why) { throw({forbidden: why}); }
  function has(list, x) { return list.indexOf(x) !== -1; }
  var deleted = newDoc._deleted === true;
  var old = (oldDoc && !oldDoc._deleted) ? oldDoc : null;
  var kind = id.indexOf(':') === -1 ? '' : id.slice(0, id.indexOf(':'));
  var shown = (!deleted && newDoc.type !== undefined) ? newDoc.type : kind;
  if (!has(rule.types, shown) || !has(rule.types, kind)) {
    deny('a ' + (shown || id) + ' document does not belong in this database (allowed: ' + rule.types.join(', ') + ')');
  }
  if (!deleted && newDoc.type !== kind) {
    deny('a ' + kind + ' document needs "type": "' + kind + '" (its _id says it is one)');
  }
  var roles = userCtx.roles || [];
  var writer = has(roles, '_admin');
  for (var i = 0; rule.writers && i < rule.writers.length; i++) {
    if (has(roles, rule.writers[i])) { writer = true; }
  }
  if (rule.kind === 'handbook' && !writer) { deny('only the province writes the handbook'); }
  if (rule.kind !== 'cell') { return; }
  var cell = rule.cell;
  if (!deleted && newDoc.cell !== cell) {
    deny("this is cell " + cell + "'s database; the document belongs to " + JSON.stringify(newDoc.cell));
  }
  if (id.indexOf(':' + cell + ':') === -1) {
    deny("this is cell " + cell + "'s database; the _id '" + id + "' names another cell");
  }
  var only = (rule.only || {})[kind];
  if (only !== undefined && !has(roles, '_admin') && !has(roles, only)) {
    deny('only the ' + only + ' writes ' + kind + ' documents');
  }
  for (var t = 0; t < trusted.length; t++) { if (has(roles, trusted[t])) { return; } }
  if (!has(roles, 'cell:' + cell)) { deny('you are not a member of this cell'); }
  if (has(roles, %s) && has(%s, kind)) { return; }
  if (has(roles, %s)) {
    if (has(%s, kind)) { return; }
    deny('a secretary does not write ' + kind + ' documents');
  }
  if (!has(roles, %s)) { deny('your account has no role in this cell'); }
  if (deleted) { deny("members do not delete records; ask the cell's secretary"); }
  if (!has(%s, kind)) { deny('a member writes only attendance and feedback, not ' + kind); }
  var name = userCtx.name || '';
  var number = name.slice(cell.length + 1);
  var own = 'member:' + cell + ':' + number;
  if (name.indexOf(cell + '.') !== 0 || newDoc.member !== own) {
    deny('a member writes only their own ' + kind + ' (member must be ' + own + ')');
  }
  var tail = ':' + number;
  if (kind === 'attendance' && id.slice(id.length - tail.length) !== tail) {
    deny('a member writes only their own attendance (the _id must end with :' + number + ')');
  }
  if (old !== null && old.member !== own) {
    deny('a member changes only their own ' + kind + "; this one is " + JSON.stringify(old.member) + "'s");
  }
  if (kind === 'attendance') { checkin(rule.checkin, newDoc, old, Date.now() / 1000); }

  function seconds(value) {
    if (typeof value !== 'string' || !new RegExp(%s).test(value)) { return null; }
    var t = Date.parse(value);
    return isNaN(t) ? null : t / 1000;
  }
  function checkin(win, doc, old, now) {
    if (doc.status === 'present') {
      var at = seconds(doc.checked_in_at), scheduled = seconds(doc.scheduled);
      if (at === null || scheduled === null) {
        deny("a member's check-in carries checked_in_at and the meeting's scheduled time");
      }
      if (at > now + win.skew) { deny("checked_in_at is in the future (is the phone's clock right?)"); }
      if (at < scheduled - win.opens || at > scheduled + win.closes) {
        deny('check-in is open from ' + Math.floor(win.opens / 60) + ' minutes before the meeting to '
             + Math.floor(win.closes / 60) + ' minutes after it');
      }
      return;
    }
    if (doc.status === 'absent') {
      var checkedIn = old !== null ? old.checked_in_at : undefined;
      if (old === null || old.status !== 'present' || seconds(checkedIn) === null) {
        deny('a member marks themself absent only to undo their own check-in');
      }
      var withdrawn = seconds(doc.withdrawn_at);
      if (withdrawn === null) { deny('undoing a check-in carries withdrawn_at'); }
      if (withdrawn > now + win.skew) { deny("withdrawn_at is in the future (is the phone's clock right?)"); }
      if (String(doc.withdrawn_at).slice(0, 10) !== String(checkedIn).slice(0, 10)) {
        deny("a check-in is undone on the day it was made; later, ask the cell's secretary");
      }
      return;
    }
    deny('a member checks in (present) or undoes it (absent); the secretary records the rest');
  }
}"""


def validate_doc_update(rule: dict[str, Any]) -> str:
    """The JavaScript ``validate_doc_update`` that enforces ``rule`` on a CouchDB hub."""
    j = json.dumps
    return _JS % (j(rule, sort_keys=True), j(sorted(_TRUSTED)), j(KIOSK_ADMIN_ROLE), j(list(KIOSK_ADMIN_TYPES)),
                  j(SECRETARY_ROLE), j(list(SECRETARY_TYPES)), j(MEMBER_ROLE), j(list(MEMBER_TYPES)),
                  j(TIME_PATTERN))


def design_doc(rule: dict[str, Any]) -> dict[str, Any]:
    """The design document a hub database gets from provisioning."""
    return {"_id": DESIGN_ID, "language": "javascript", "validate_doc_update": validate_doc_update(rule)}
