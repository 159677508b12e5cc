"""``sync-server member ...``: the same desk as the kiosk admin's screen, from the command line (issue 13)."""

from __future__ import annotations

import re

import yaml
from click.testing import CliRunner

from sync_server.cli import main
from sync_server.handbook.policy import open_store
from sync_server.security.auth import USER_PREFIX, Authenticator
from sync_server.settings import Settings

CELL, DB = "TQ.NH.KH.C01", "cell-tq-nh-kh-c01"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_members_from_the_command_line(tmp_path):
    data = tmp_path / "data"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"server": {"data_dir": str(data)}, "sync": {"cell_db": DB}}))
    conf = ["--config", str(config)]

    # no cell database yet: one plain line, not a traceback
    code, out = run("member", "list", *conf)
    assert code == 1 and out.strip() == f"Error: this kiosk has no database {DB} for cell {CELL}: enrol the kiosk first"
    server = open_store(Settings().replace("server", data_dir=str(data)))
    server.create(DB)
    server.close()

    register = tmp_path / "register.csv"
    register.write_text("member_no,name,born,gender,smartphone\n3,Hoàng Văn Thắng,1949,male,yes\n"
                        "12,Ma Thị Lụa,1968,female,no\n", encoding="utf-8")
    assert run("member", "import", str(register), *conf) == (0, f"imported {register}: 2 added, 0 updated\n")
    code, out = run("member", "add", "13", "Đặng Thị Hoà", "--born", "1970", "--gender", "female", *conf)
    assert code == 0 and out.startswith(f"added 0013 Đặng Thị Hoà (account {CELL}.0013")
    code, out = run("member", "add", "13", "Trùng", *conf)
    assert code == 1 and out == f"Error: cell {CELL} already has member 0013\n"

    code, out = run("member", "pin", "3", *conf)
    assert code == 0
    pin = re.fullmatch(rf"{CELL}\.0003: new PIN (\d{{6}}) \(shown once: give it to the member now\)\n", out).group(1)
    assert run("member", "secretary", "0003", *conf) == (0, f"{CELL}.0003 is the cell's secretary\n")
    code, out = run("member", "list", *conf)
    assert out.splitlines() == ["  0013  Đặng Thị Hoà  (active, no PIN)",
                                "  0012  Ma Thị Lụa  (active, no PIN)",
                                "  0003  Hoàng Văn Thắng  (active, secretary, smartphone)",
                                f"3 members in cell {CELL}"]
    assert run("member", "status", "0012", "moved", *conf)[0] == 0
    assert run("member", "pin", "12", *conf) == (1, "Error: member 0012 is moved: mark them active first\n")
    assert run("member", "pin", "99", *conf) == (1, f"Error: cell {CELL} has no member 0099\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("member_no,name,born\n20,Lý Văn Nam,19x0\n", encoding="utf-8")
    code, out = run("member", "import", str(bad), *conf)
    assert code == 1 and out == "Error: nothing imported: line 2: year of birth '19x0' is not a year\n"

    # the PIN printed works; the account is a plain secretary of the cell
    server = open_store(Settings().replace("server", data_dir=str(data)))
    try:
        users = server.get("_users")
        auth = Authenticator(None, "x", 600, lambda n: users.get(USER_PREFIX + n))
        assert sorted(auth.check_password(f"{CELL}.0003", pin).roles) == ["cell:" + CELL, "member", "secretary"]
    finally:
        server.close()
    log = (data / "audit.log").read_text()
    assert pin not in log and "cli:" in log
    assert run("audit", "verify", *conf)[0] == 0
