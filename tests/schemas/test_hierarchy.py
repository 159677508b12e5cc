"""The hierarchy file: a good file loads; each error names the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.hierarchy import (
    HierarchyError,
    Unit,
    cell_db_name,
    kiosk_account,
    load_hierarchy,
    parse_hierarchy,
)
from sync_server.errors import StartupError

GOOD = """\ufeff# Tuyên Quang, a part of it
# (comments and blank lines are allowed anywhere)

code,name,level,parent
TQ,Tuyên Quang,province,
TQ.NH,Huyện Na Hang,district,TQ

TQ.NH.KH,Xã Khâu Tinh,commune,TQ.NH
TQ.NH.KH.C01,Chi bộ thôn Nà Khậu,cell,TQ.NH.KH
  # an indented comment
TQ.NH.KH.C02,"Chi bộ thôn Khuổi Phầy, bản Tát Kẻ",cell,TQ.NH.KH
TQ.NH.TT.C01,Chi bộ tổ dân phố 1,cell,TQ.NH.TT
TQ.NH.TT,Thị trấn Na Hang,commune,TQ.NH
TQ.LB,Huyện Lâm Bình,district,TQ
TQ.LB.LC,Xã Lăng Can,commune,TQ.LB
TQ.LB.LC.C01,Chi bộ bản Nà Chang,cell,TQ.LB.LC
"""

HEADER = "code,name,level,parent\n"
BASE = HEADER + "TQ,Tuyên Quang,province,\nTQ.NH,Na Hang,district,TQ\nTQ.NH.KH,Khâu Tinh,commune,TQ.NH\n"
# BASE defines lines 1-4; a line appended to BASE is line 5.


def write(tmp_path: Path, text: str | bytes, name: str = "hierarchy.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_good_file_loads(tmp_path: Path) -> None:
    h = load_hierarchy(write(tmp_path, GOOD))
    assert len(h) == 10
    assert h.province == Unit("TQ", "Tuyên Quang", "province", None, 5)
    assert [u.code for u in h.districts()] == ["TQ.NH", "TQ.LB"]
    assert [u.code for u in h.communes()] == ["TQ.NH.KH", "TQ.NH.TT", "TQ.LB.LC"]
    assert [u.code for u in h.cells()] == ["TQ.NH.KH.C01", "TQ.NH.KH.C02", "TQ.NH.TT.C01", "TQ.LB.LC.C01"]
    assert h.units["TQ.NH.KH.C02"].name == "Chi bộ thôn Khuổi Phầy, bản Tát Kẻ"
    assert h.units["TQ.NH.KH.C01"].line == 9
    assert [u.code for u in h.children("TQ.NH")] == ["TQ.NH.KH", "TQ.NH.TT"]
    assert [u.code for u in h.children("TQ.NH.KH")] == ["TQ.NH.KH.C01", "TQ.NH.KH.C02"]
    assert h.children("TQ.LB.LC.C01") == []
    assert [u.code for u in h.ancestors("TQ.NH.TT.C01")] == ["TQ.NH.TT", "TQ.NH", "TQ"]
    assert h.ancestors("TQ") == []
    assert h.ancestor_at("TQ.LB.LC.C01", "district").code == "TQ.LB"
    assert h.ancestor_at("TQ.LB", "commune") is None
    assert [u.code for u in h.descendants("TQ.LB")] == ["TQ.LB.LC", "TQ.LB.LC.C01"]
    assert "TQ.NH" in h and "TQ.XX" not in h


def test_unit_docs_follow_the_model(tmp_path: Path) -> None:
    docs = load_hierarchy(write(tmp_path, GOOD)).unit_docs()
    assert docs[0] == {"_id": "unit:TQ", "type": "unit", "code": "TQ", "name": "Tuyên Quang",
                       "level": "province", "parent": None}
    assert docs[3] == {"_id": "unit:TQ.NH.KH.C01", "type": "unit", "code": "TQ.NH.KH.C01",
                       "name": "Chi bộ thôn Nà Khậu", "level": "cell", "parent": "TQ.NH.KH"}
    assert [d["_id"] for d in docs] == [f"unit:{d['code']}" for d in docs]


def test_round_trip_and_column_order(tmp_path: Path) -> None:
    h = load_hierarchy(write(tmp_path, GOOD))
    again = parse_hierarchy(h.to_csv())
    assert [(u.code, u.name, u.level, u.parent) for u in again] == [(u.code, u.name, u.level, u.parent) for u in h]
    # Columns may come in another order, with extra columns and CRLF line ends.
    other = "parent,level,code,name,note\r\n,province,TQ,Tuyên Quang,x\r\nTQ,district,TQ.NH,Na Hang,\r\n"
    h2 = parse_hierarchy(other.encode())
    assert h2.units["TQ.NH"] == Unit("TQ.NH", "Na Hang", "district", "TQ", 3)


def test_cell_db_name_and_kiosk_account() -> None:
    assert cell_db_name("TQ.NH.KH.C01") == "cell-tq-nh-kh-c01"
    assert kiosk_account("TQ.NH.KH.C01") == "kiosk-tq-nh-kh-c01"
    for bad in ("tq.nh", "TQ..NH", "TQ.NH-1", "", "TQ.ABCDEFGHIJKLM"):
        with pytest.raises(ValueError):
            cell_db_name(bad)
        with pytest.raises(ValueError):
            kiosk_account(bad)


ERRORS = [
    # (file text, line, words the message must contain)
    ("# only a header with a column missing\ncode,name,level\nTQ,Tuyên Quang,province\n", 2,
     ["header", "parent"]),
    ("code,name,parent\n", 1, ["header", "level"]),
    ("", 1, ["no header"]),
    ("# nothing\n\n", 1, ["no header"]),
    (HEADER, 1, ["no units"]),
    (BASE + "TQ.NH.KH.C01,Chi bộ,cell\n", 5, ["expected 4 fields", "got 3"]),
    (BASE + "TQ.NH.KH.C01,Chi bộ,cell,TQ.NH.KH,extra\n", 5, ["expected 4 fields", "got 5"]),
    (BASE + 'TQ.NH.KH.C01,"Chi bộ,cell,TQ.NH.KH\n', 5, ["bad CSV"]),
    (BASE + "TQ.NH.KH.c01,Chi bộ,cell,TQ.NH.KH\n", 5, ["bad code", "TQ.NH.KH.c01"]),
    (BASE + "TQ.NH..C01,Chi bộ,cell,TQ.NH.KH\n", 5, ["bad code"]),
    (BASE + "TQ.NH.KH.C0123456789012,Chi bộ,cell,TQ.NH.KH\n", 5, ["bad code"]),
    (BASE + "TQ.NH.KH.C-1,Chi bộ,cell,TQ.NH.KH\n", 5, ["bad code"]),
    (BASE + "TQ.NH.KH.C01,Chi bộ,village,TQ.NH.KH\n", 5, ["unknown level", "village"]),
    (BASE + "TQ.NH.KH.C01,,cell,TQ.NH.KH\n", 5, ["empty name"]),
    (BASE + "TQ.NH.KH.C01,Chi bộ,cell,tq.nh.kh\n", 5, ["bad parent code"]),
    (BASE + "TQ.NH.KH.C01,Chi bộ,cell,TQ.NH.KH\nTQ.NH.KH.C01,Chi bộ 2,cell,TQ.NH.KH\n", 6,
     ["duplicate code TQ.NH.KH.C01", "line 5"]),
    (BASE + "TQ.NH.KH.C01,Chi bộ,cell,TQ.NH.XX\n", 5, ["parent TQ.NH.XX", "not in the file"]),
    # A cycle is found before level order and code rules; the first line on it is named.
    (BASE + "TQ.NH.AA,Xã A,commune,TQ.NH.BB\nTQ.NH.BB,Xã B,commune,TQ.NH.AA\n", 5,
     ["cycle", "TQ.NH.AA -> TQ.NH.BB -> TQ.NH.AA"]),
    (BASE + "TQ.NH.AA,Xã A,commune,TQ.NH.AA\n", 5, ["cycle", "TQ.NH.AA -> TQ.NH.AA"]),
    (HEADER + "TQ.A,A,district,TQ.C\nTQ,Tuyên Quang,province,\nTQ.C,C,commune,TQ.B\nTQ.B,B,cell,TQ.A\n", 2,
     ["cycle", "TQ.A -> TQ.C -> TQ.B -> TQ.A"]),
    (BASE + "TQ.NH.KH.C01,Chi bộ,commune,TQ\n", 5, ["bad level order", "commune TQ.NH.KH.C01", "a district"]),
    (BASE + "TQ.NH.C01,Chi bộ,cell,TQ.NH\n", 5, ["bad level order", "must be a commune"]),
    (BASE + "TQ.NH.LB,Lâm Bình,district,TQ.NH\n", 5, ["bad level order", "must be a province"]),
    (BASE + "TQ.NH.KH.P,Tỉnh,province,TQ.NH.KH\n", 5, ["bad level order", "none"]),
    (BASE + "HG,Hà Giang,province,\n", 5, ["second province HG", "line 2", "exactly one"]),
    (BASE + "TQ.LB,Lâm Bình,district,\n", 5, ["unit TQ.LB: a district needs a parent"]),
    (BASE + "TQ.NH.XX.C01,Chi bộ,cell,TQ.NH.KH\n", 5, ["code TQ.NH.XX.C01 is not its parent's code TQ.NH.KH"]),
    (BASE + "TQ.NH.KH.C01.X,Chi bộ,cell,TQ.NH.KH\n", 5, ["is not its parent's code"]),
    (BASE + "XX.NH.KH.C01,Chi bộ,cell,TQ.NH.KH\n", 5, ["is not its parent's code"]),
    (HEADER + "TQ.X,Tuyên Quang,province,\n", 2, ["one part"]),
    (BASE.encode() + "TQ.NH.KH.C01,Chi b\xf4,cell,TQ.NH.KH\n".encode("latin-1"), 5, ["not UTF-8"]),
]


@pytest.mark.parametrize(("text", "line", "words"), ERRORS, ids=[f"{i:02d}-{e[2][0][:20]}" for i, e in
                                                                 enumerate(ERRORS)])
def test_error_names_file_and_line(tmp_path: Path, text: str | bytes, line: int, words: list[str]) -> None:
    path = write(tmp_path, text, "tinh-tuyen-quang.csv")
    with pytest.raises(StartupError) as caught:
        load_hierarchy(path)
    err = caught.value
    assert isinstance(err, HierarchyError)
    assert (err.path, err.line) == (str(path), line), str(err)
    assert str(err).startswith(f"{path}:{line}: "), str(err)
    for word in words:
        assert word in str(err), (word, str(err))


def test_missing_file_is_a_startup_error(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match=r"nowhere\.csv:0: cannot read"):
        load_hierarchy(tmp_path / "nowhere.csv")


def test_line_numbers_count_comments_and_blank_lines(tmp_path: Path) -> None:
    text = "# one\n\n# three\ncode,name,level,parent\n\nTQ,Tuyên Quang,province,\n# seven\nTQ.NH,Na Hang,district,TQ\n" \
           "\n\nTQ.NH.KH,Khâu Tinh,commune,TQ.NH\nTQ.NH.KH,Khâu Tinh,commune,TQ.NH\n"
    with pytest.raises(HierarchyError) as caught:
        load_hierarchy(write(tmp_path, text))
    assert caught.value.line == 12
    assert "first defined on line 11" in str(caught.value)
