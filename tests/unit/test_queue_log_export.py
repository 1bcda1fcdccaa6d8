"""The queue log in Asterisk's queue_log format (`callcenter queue-log`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from callcenter.cli import main
from callcenter.report.queue_log import asterisk_lines
from callcenter.store.db import Store
from callcenter.store.records import CallRecord

T = 1_800_000_000.0
QUEUE_LOG = [  # ts, call, event, agent, position, wait, talk, hung_up_by, detail, queue
    (T + 0.2, "c1", "enter", None, 2, None, None, None, "", "sales"),
    (T + 9.7, "c1", "connect", "1001", None, 9.5, None, None, "", "sales"),
    (T + 70.0, "c1", "complete", "1001", 1, 9.5, 60.3, "caller", "", "sales"),
    (T + 1.0, "c2", "enter", None, 1, None, None, None, "", "sales"),
    (T + 4.0, "c2", "ringnoanswer", "1002", None, None, None, None, "", "sales"),
    (T + 30.0, "c2", "abandon", None, 1, 29.0, None, None, "", "sales"),
    (T + 31.0, "c3", "enter", None, 1, None, None, None, "", "sales"),
    (T + 33.0, "c3", "callback", None, 1, 2.0, None, None, "", "sales"),
    (T + 34.0, "c3", "watchdog", "1002", None, None, None, None, "", "sales"),
    (T + 0.5, "NONE", "addmember", "1002", None, None, None, None, "", "sales"),
    (T + 0.5, "NONE", "addmember", "1002", None, None, None, None, "", "support"),
    (T + 80.0, "NONE", "pause", "1002", None, None, None, None, "lunch", "support"),
    (T + 90.0, "NONE", "unpause", "1002", None, None, None, None, "", "support"),
    (T + 95.0, "NONE", "removemember", "1002", None, None, None, None, "", "sales"),
    (T + 91.0, "c4", "enter", None, 1, None, None, None, "", "sales"),
    (T + 92.0, "c4", "connect", "1001", None, 1.0, None, None, "", "sales"),
    (T + 95.0, "c4", "attendedtransfer", "1001", 1, 1.0, 3.0, None, "user:1003", "sales"),
]
AGENT_STATES = [  # ts, agent, old, new, reason
    (T + 0.5, "1002", "logged_out", "available", "log_in"),
    (T + 1.5, "1002", "available", "ringing", "ring"),
    (T + 4.0, "1002", "ringing", "available", "no_answer"),
    (T + 6.0, "1001", "available", "ringing", "ring"),
    (T + 9.7, "1001", "ringing", "on_call", "answer"),
    (T + 80.0, "1002", "available", "paused", "lunch"),
    (T + 90.0, "1002", "paused", "available", "unpause"),
]
EXPECTED = """\
1800000000|c1|sales|NONE|ENTERQUEUE||48221234567
1800000000|NONE|sales|1002|ADDMEMBER|
1800000000|NONE|support|1002|ADDMEMBER|
1800000001|c2|sales|NONE|ENTERQUEUE||48600000002
1800000004|c2|sales|1002|RINGNOANSWER|2500
1800000009|c1|sales|1001|CONNECT|10||4
1800000030|c2|sales|NONE|ABANDON|1|1|29
1800000031|c3|sales|NONE|ENTERQUEUE||
1800000033|c3|sales|NONE|EXITWITHKEY|1|1|1|2
1800000070|c1|sales|1001|COMPLETECALLER|10|60|2
1800000080|NONE|support|1002|PAUSE|lunch
1800000090|NONE|support|1002|UNPAUSE|
1800000091|c4|sales|NONE|ENTERQUEUE||
1800000092|c4|sales|1001|CONNECT|1||86
1800000095|NONE|sales|1002|REMOVEMEMBER|
1800000095|c4|sales|1001|ATTENDEDTRANSFER|BRIDGE|user:1003|1|3|1
"""


def make_db(path: Path) -> Path:
    store = Store(path)
    for call_id, caller in (("c1", "48221234567"), ("c2", "48600000002")):
        store.start_call(CallRecord(id=call_id, sip_call_id=f"{call_id}@x", direction="inbound",
                                    caller=caller, called="0800000001", source="trunk:pstn",
                                    start=T))
    store.close()
    con = sqlite3.connect(path)
    with con:
        con.executemany("INSERT INTO queue_log (ts, call_id, event, agent, position, wait, talk,"
                        " hung_up_by, detail, queue) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        QUEUE_LOG)
        con.executemany("INSERT INTO agent_states (ts, agent, old, new, reason) "
                        "VALUES (?, ?, ?, ?, ?)", AGENT_STATES)
    con.close()
    return path


def test_every_event_in_asterisk_form(tmp_path: Path) -> None:
    con = sqlite3.connect(make_db(tmp_path / "cc.db"))
    lines = list(asterisk_lines(con, T, T + 86400, {"sales": "1"}))
    assert "\n".join(lines) + "\n" == EXPECTED


def test_the_command_writes_the_days_asked(tmp_path: Path) -> None:
    db = make_db(tmp_path / "cc.db")
    out = tmp_path / "queue_log"
    # T is 2027-01-15 08:00 UTC, 09:00 in Warsaw (the built-in config's time zone)
    assert main(["queue-log", "--from", "2027-01-15", "--db", str(db), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("1800000000|c1|sales|NONE|ENTERQUEUE||48221234567\n")
    assert "|1001|CONNECT|10||4\n" in text
    assert main(["queue-log", "--from", "2027-01-16", "--db", str(db), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == ""
