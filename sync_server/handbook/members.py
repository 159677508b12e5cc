"""A cell's members at its kiosk: the register (``member`` documents) and their accounts (PINs).

One desk serves the HTTP endpoints (``/_members``, the kiosk admin's screen) and the
command line (``sync-server member ...``), so both obey the same rules:

- the desk works on one cell: the kiosk admin's own (its ``cell:`` role), or the one the
  server admin names; another cell's members are never listed or touched;
- it manages plain member accounts only (``<cell>.<member no>`` with the roles ``member``,
  ``secretary`` and ``cell:<cell>``): an account with any other role (a kiosk admin, the
  province, a kiosk's hub account) is refused, and no other role is ever given;
- a PIN is made here (6 random digits), returned once and kept only as its scrypt hash;
  a new PIN revokes the account's sessions and lifts its lockout;
- a member marked moved or inactive loses their account (sessions and paired phones stop
  at once); they get a new PIN when active again;
- every change goes to the audit log (never a PIN).

A member number of digits only is written with at least 4 digits ("3" is "0003"), as the
sign-in form reads it.
"""

from __future__ import annotations

import builtins
import csv
import io
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadRequest, Conflict, Forbidden, NotFound, error_for
from ..security.audit import AuditLog
from ..security.auth import USER_PREFIX
from ..store import Server
from . import validation
from .ownership import MEMBER_ROLE, SECRETARY_ROLE, cell_role, check, member_account, rules_for

PIN_DIGITS = 6
NUMBER_WIDTH = 4
STATUSES = ("active", "moved", "inactive")
_NUMBER = re.compile(r"^[A-Za-z0-9-]{1,32}$")
# Columns of a register CSV: the names below, or the Vietnamese headings a commune's register uses.
COLUMNS = {"member_no": "member_no", "no": "member_no", "số": "member_no", "số đảng viên": "member_no",
           "name": "name", "họ và tên": "name", "họ tên": "name",
           "born": "born", "năm sinh": "born",
           "gender": "gender", "giới tính": "gender",
           "joined": "joined", "ngày vào đảng": "joined",
           "smartphone": "smartphone", "điện thoại thông minh": "smartphone",
           "status": "status", "tình trạng": "status"}
_GENDERS = {"male": "male", "nam": "male", "female": "female", "nữ": "female", "nu": "female", "other": "other",
            "khác": "other"}
_YES = {"1", "yes", "true", "có", "co", "x"}
_NO = {"", "0", "no", "false", "không", "khong"}


def cell_db_name(cell: str) -> str:
    """The database of a cell's records (``TQ.NH.KH.C01`` -> ``cell-tq-nh-kh-c01``)."""
    return "cell-" + cell.lower().replace(".", "-")


def member_number(text: object) -> str:
    """A member number as the records write it ("3" -> "0003").

    :raises BadRequest: for anything but 1-32 letters, digits and dashes.
    """
    number = str(text if text is not None else "").strip()
    if number.isdigit() and len(number) < NUMBER_WIDTH:
        number = number.zfill(NUMBER_WIDTH)
    if not _NUMBER.match(number):
        raise BadRequest(f"a member number is 1-32 letters, digits or dashes, not {number[:40]!r}")
    return number


def new_pin() -> str:
    """A random PIN of PIN_DIGITS digits (the first never 0, so it survives a spreadsheet)."""
    return str(secrets.randbelow(9) + 1) + "".join(str(secrets.randbelow(10)) for _ in range(PIN_DIGITS - 1))


@dataclass
class Desk:
    """The members of one cell, as its kiosk admin (``by``) or the server admin manages them."""

    server: Server
    cell: str
    by: str | None
    audit: AuditLog
    # what the running server knows of sign-in: lift a lockout, seconds an account stays locked
    unlock: Callable[[str], None] = field(default=lambda name: None)
    locked_for: Callable[[str], float] = field(default=lambda name: 0.0)

    # --- reading -----------------------------------------------------------------------
    def _db(self) -> Any:
        name = cell_db_name(self.cell)
        if not self.server.exists(name):
            raise NotFound(f"this kiosk has no database {name} for cell {self.cell}: enrol the kiosk first")
        return self.server.get(name)

    def _member(self, number: str) -> dict:
        try:
            return self._db().get(f"member:{self.cell}:{number}")
        except NotFound:
            raise NotFound(f"cell {self.cell} has no member {number}") from None

    def _account(self, number: str) -> dict | None:
        if not self.server.exists("_users"):
            return None
        try:
            doc = self.server.get("_users").get(USER_PREFIX + member_account(self.cell, number))
        except NotFound:
            return None
        self._plain(doc)
        return doc

    def _plain(self, account: dict) -> None:
        """:raises Forbidden: for an account that is not a plain member account of this cell."""
        extra = set(account.get("roles") or []) - {MEMBER_ROLE, SECRETARY_ROLE, cell_role(self.cell)}
        if extra:
            raise Forbidden(f"{account.get('name')} is not a plain member account (roles {', '.join(sorted(extra))}): "
                            "the kiosk manages member accounts only")

    def list(self) -> list[dict]:
        """The cell's members by name, each with their account's state (no secrets)."""
        db = self._db()
        prefix = f"member:{self.cell}:"
        rows = db.all_docs(start=prefix, end=prefix + "\ufff0", include_docs=True)
        accounts = {}
        if self.server.exists("_users"):
            start = USER_PREFIX + self.cell + "."
            for row in self.server.get("_users").all_docs(start=start, end=start + "\ufff0", include_docs=True):
                accounts[row["id"][len(USER_PREFIX):]] = row["doc"]
        out = []
        for row in rows:
            doc = row["doc"]
            name = member_account(self.cell, doc["member_no"])
            account = accounts.get(name)
            roles = set(account.get("roles") or []) if account else set()
            plain = account is not None and roles <= {MEMBER_ROLE, SECRETARY_ROLE, cell_role(self.cell)}
            out.append({"member_no": doc["member_no"], "name": doc["name"], "account": name,
                        "born": doc.get("born"), "gender": doc.get("gender"), "status": doc["status"],
                        "smartphone": doc["smartphone"], "installed": doc["installed"],
                        "registered": doc["registered"], "has_pin": plain,
                        "secretary": plain and SECRETARY_ROLE in roles,
                        "locked_seconds": round(self.locked_for(name)) if plain else 0})
        return sorted(out, key=lambda m: (_sort_name(m["name"]), m["member_no"]))

    # --- writing -----------------------------------------------------------------------
    def _write(self, db: Any, docs: builtins.list[dict]) -> builtins.list[dict]:
        """Write documents checked beforehand: all of them, or (on a refusal) the first refusal raised."""
        for doc in docs:
            self._check(db.name, doc)
        results = db.bulk_docs(docs)
        failed = [r for r in results if "error" in r]
        if failed:
            raise error_for(failed[0]["error"], f"{failed[0]['id']}: {failed[0]['reason']}")
        return results

    def _check(self, db_name: str, doc: dict) -> None:
        if doc.get("type") in validation.DOCUMENT_TYPES:
            try:
                validation.validate(doc)
            except Forbidden as exc:
                raise BadRequest(exc.reason) from None
        reason = check(rules_for(db_name), doc, None)
        if reason:
            raise Forbidden(reason)

    def add(self, fields: dict[str, Any]) -> dict:
        """Add a member to the register (no account yet: that comes with a PIN).

        :raises Conflict: when the number is taken; BadRequest for a field the schema refuses.
        """
        doc = self._new_doc(fields)
        db = self._db()
        try:
            db.get(doc["_id"])
        except NotFound:
            pass
        else:
            raise Conflict(f"cell {self.cell} already has member {doc['member_no']}")
        self._write(db, [doc])
        self.audit.record("member_added", cell=self.cell, member=doc["member_no"], by=self.by)
        return self._shown(doc)

    def _new_doc(self, fields: dict[str, Any]) -> dict:
        number = member_number(fields.get("member_no"))
        name = str(fields.get("name") or "").strip()
        if not name:
            raise BadRequest(f"member {number}: a name is required")
        doc: dict[str, Any] = {"_id": f"member:{self.cell}:{number}", "type": "member", "cell": self.cell,
                               "member_no": number, "name": name, "status": "active",
                               "smartphone": bool(fields.get("smartphone", False)), "installed": False,
                               "registered": False}
        for key in ("born", "gender", "joined", "status"):
            if fields.get(key) not in (None, ""):
                doc[key] = fields[key]
        return doc

    def import_csv(self, text: str) -> dict[str, Any]:
        """Add or update members from a register CSV; all of it or nothing.

        Known members keep their handbook status (installed, registered) and accounts;
        name, year of birth, gender, date joined, smartphone and status are taken from the file.

        :raises BadRequest: naming every line that is wrong (nothing is written then).
        """
        rows, problems = _read_register(text)
        db = self._db()
        docs: builtins.list[dict] = []
        seen: dict[str, int] = {}
        added = 0
        for line, fields in rows:
            try:
                doc = self._new_doc(fields)
                if doc["member_no"] in seen:
                    raise BadRequest(f"member {doc['member_no']} is also on line {seen[doc['member_no']]}")
                seen[doc["member_no"]] = line
                try:
                    old = db.get(doc["_id"])
                except NotFound:
                    added += 1
                else:
                    kept = {k: old[k] for k in ("installed", "registered", "last_active", "_rev") if k in old}
                    doc = {**{k: v for k, v in old.items() if not k.startswith("_")}, **doc, **kept}
                    if "status" not in fields or fields["status"] in (None, ""):
                        doc["status"] = old["status"]
                self._check(db.name, doc)
                docs.append(doc)
            except (BadRequest, Forbidden) as exc:
                problems.append(f"line {line}: {exc.reason}")
        if problems:
            raise BadRequest("nothing imported: " + "; ".join(problems[:20])
                             + (f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""))
        if not docs:
            raise BadRequest("nothing imported: the file has no members")
        self._write(db, docs)
        self.audit.record("members_imported", cell=self.cell, added=added, updated=len(docs) - added, by=self.by)
        return {"ok": True, "added": added, "updated": len(docs) - added}

    def give_pin(self, number: str, pin: str | None = None) -> dict[str, Any]:
        """Give an active member a new PIN (a new account if needed): returned once, never kept in clear.

        A new PIN revokes the account's sessions (a new salt) and lifts its lockout.
        """
        number = member_number(number)
        member = self._member(number)
        if member["status"] != "active":
            raise Conflict(f"member {number} is {member['status']}: mark them active first")
        pin = pin if pin is not None else new_pin()
        if not (pin.isdigit() and 4 <= len(pin) <= 8):
            raise BadRequest("a PIN is 4 to 8 digits")
        name = member_account(self.cell, number)
        account = self._account(number)
        roles = [r for r in (account or {}).get("roles") or [] if r == SECRETARY_ROLE]
        doc = {"_id": USER_PREFIX + name, "type": "user", "name": name,
               "roles": [MEMBER_ROLE, *roles, cell_role(self.cell)], "pin": pin}
        if account is not None:
            doc["_rev"] = account["_rev"]
        self._write(self.server.get_or_create("_users"), [doc])
        self.unlock(name)
        self.audit.record("pin_given", cell=self.cell, member=number, account=name, new=account is None, by=self.by)
        return {"ok": True, "account": name, "pin": pin}

    def set_status(self, number: str, status: str) -> dict:
        """Mark a member active, moved or inactive; moved and inactive lose their account."""
        if status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
        number = member_number(number)
        member = self._member(number)
        account = self._account(number)  # refuses before anything is written
        if member["status"] != status:
            self._write(self._db(), [{**member, "status": status}])
        if status != "active" and account is not None:
            self._write(self.server.get("_users"), [{"_id": account["_id"], "_rev": account["_rev"], "_deleted": True}])
        self.audit.record("member_status", cell=self.cell, member=number, status=status,
                          account_removed=status != "active" and account is not None, by=self.by)
        return {"ok": True, "member_no": number, "status": status}

    def name_secretary(self, number: str) -> dict:
        """Make this member the cell's secretary; whoever held the role loses it."""
        number = member_number(number)
        self._member(number)
        account = self._account(number)
        if account is None:
            raise Conflict(f"member {number} has no account yet: give them a PIN first")
        users = self.server.get("_users")
        changes = []
        for other in self.list():
            if other["secretary"] and other["member_no"] != number:
                doc = users.get(USER_PREFIX + other["account"])
                changes.append({**doc, "roles": [r for r in doc["roles"] if r != SECRETARY_ROLE]})
        if SECRETARY_ROLE not in account["roles"]:
            roles = [r for r in account["roles"] if r != cell_role(self.cell)]
            changes.append({**account, "roles": [*roles, SECRETARY_ROLE, cell_role(self.cell)]})
        if changes:
            self._write(users, changes)
        self.audit.record("secretary_named", cell=self.cell, member=number, by=self.by,
                          replaced=[c["name"] for c in changes if c["name"] != account["name"]])
        return {"ok": True, "secretary": account["name"]}

    def _shown(self, doc: dict) -> dict:
        return next(m for m in self.list() if m["member_no"] == doc["member_no"])


def _sort_name(name: str) -> tuple[str, str]:
    """Vietnamese names sort by the given name (the last word), then the whole name; tones aside."""
    folded = "".join(c for c in unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
                     if not unicodedata.combining(c)).lower()
    parts = folded.split()
    return (parts[-1] if parts else "", folded)


def _read_register(text: str) -> tuple[builtins.list[tuple[int, dict[str, Any]]], builtins.list[str]]:
    """The rows of a register CSV (line number, fields), and what is wrong with it."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        return [], ["the file is empty"]
    keys = [COLUMNS.get(h.strip().lower()) for h in header]
    missing = {"member_no", "name"} - set(keys)
    if missing:
        return [], [f"line 1: the header needs columns {', '.join(sorted(missing))} "
                    f"(known: {', '.join(sorted(set(COLUMNS)))})"]
    unknown = [h for h, k in zip(header, keys) if k is None and h.strip()]
    if unknown:
        return [], [f"line 1: unknown columns {', '.join(unknown)}"]
    rows, problems = [], []
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append(f"line {line}: {len(values)} fields, the header has {len(header)}")
            continue
        try:
            rows.append((line, _fields(dict(zip(keys, (v.strip() for v in values))))))
        except BadRequest as exc:
            problems.append(f"line {line}: {exc.reason}")
    return rows, problems


def _fields(raw: dict[str | None, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {"member_no": raw.get("member_no"), "name": raw.get("name")}
    if raw.get("born"):
        if not raw["born"].isdigit():
            raise BadRequest(f"year of birth {raw['born']!r} is not a year")
        fields["born"] = int(raw["born"])
    if raw.get("gender"):
        gender = _GENDERS.get(raw["gender"].lower())
        if gender is None:
            raise BadRequest(f"gender {raw['gender']!r} is not one of {', '.join(sorted(_GENDERS))}")
        fields["gender"] = gender
    if raw.get("joined"):
        fields["joined"] = raw["joined"]
    if "smartphone" in raw:
        value = raw["smartphone"].lower()
        if value not in _YES | _NO:
            raise BadRequest(f"smartphone {raw['smartphone']!r} is not yes or no")
        fields["smartphone"] = value in _YES
    if raw.get("status"):
        fields["status"] = raw["status"].lower()
    return fields
