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
The prefix of a document's id says what it is (``type`` must agree), and the
rules see the revision a write replaces: deletions meet them like any write.
Other databases carry no ownership rule.
"""

from __future__ import annotations

import json
from typing import Any

CELL_TYPES = ("member", "device", "meeting", "minutes", "attendance", "feedback", "cert_request", "certificate")
HANDBOOK_TYPES = ("article", "unit")
PROVINCE_ROLE = "province"
HANDBOOK_DB = "handbook"
DESIGN_ID = "_design/ownership"
KIOSK_ROLE = "kiosk"
# Kinds of a cell's database that one role alone writes (besides admins and the server itself).
WRITTEN_ONLY_BY = {"cert_request": KIOSK_ROLE, "certificate": PROVINCE_ROLE}


def cell_of_db(db_name: str) -> str | None:
    """The cell code of a cell database name (``cell-tq-nh-kh-c01`` -> ``TQ.NH.KH.C01``)."""
    if not db_name.startswith("cell-") or len(db_name) <= 5:
        return None
    return db_name[5:].upper().replace("-", ".")


def rules_for(db_name: str, handbook_db: str | None = None) -> dict[str, Any] | None:
    """The ownership rule of a database, or None.

    :param handbook_db: another name a kiosk keeps the handbook under (``sync.handbook_db``).
    """
    cell = cell_of_db(db_name)
    if cell is not None:
        return {"kind": "cell", "cell": cell, "types": list(CELL_TYPES), "only": dict(WRITTEN_ONLY_BY)}
    if db_name in (HANDBOOK_DB, handbook_db):
        return {"kind": "handbook", "types": list(HANDBOOK_TYPES), "writers": [PROVINCE_ROLE]}
    return None


def kind_of(doc_id: str) -> str:
    """The document kind an id names (``meeting:TQ.NH.KH.C01:...`` -> ``meeting``): the rules go by it."""
    return doc_id.split(":", 1)[0] if ":" in doc_id else ""


def check(rule: dict[str, Any] | None, doc: dict[str, Any], roles: tuple[str, ...] | None,
          name: str | None = None, old: dict[str, Any] | None = None) -> str | None:
    """Why ``doc`` may not replace ``old`` under ``rule``, written by a user with ``roles``; None when it may.

    The same function as CouchDB's ``validate_doc_update(newDoc, oldDoc, userCtx, secObj)``,
    and rendered into it by :func:`validate_doc_update`. The kind of a document is the
    prefix of its id, never its ``type`` (which must agree): a tombstone, an untyped
    document or a rewritten one meets the rule of the record its id names.

    :param roles: the writer's roles; None for the server itself (replication it runs).
    :param name: the writer's account name (members may only write their own records).
    :param old: the revision this write replaces (CouchDB's ``oldDoc``); None for a new document.
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
            return _person_check(rule["cell"], kind, doc, live_old, roles, name)
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
}"""


def validate_doc_update(rule: dict[str, Any]) -> str:
    """The JavaScript ``validate_doc_update`` that enforces ``rule`` on a CouchDB hub."""
    j = json.dumps
    return _JS % (j(rule, sort_keys=True), j(sorted(_TRUSTED)), j(KIOSK_ADMIN_ROLE), j(list(KIOSK_ADMIN_TYPES)),
                  j(SECRETARY_ROLE), j(list(SECRETARY_TYPES)), j(MEMBER_ROLE), j(list(MEMBER_TYPES)))


def design_doc(rule: dict[str, Any]) -> dict[str, Any]:
    """The design document a hub database gets from provisioning."""
    return {"_id": DESIGN_ID, "language": "javascript", "validate_doc_update": validate_doc_update(rule)}
