"""config.yaml edited while calls are up (issue 15): agent 1001 talks to a support caller
while two more wait; the file then loses 1001 and gains user 1002 as a support member. 1002
registers with its new password and takes the two waiting callers in the order they came;
1001 finishes its call and is offered nothing more; nobody is cut. A broken save changes
nothing and is reported with file:line; ``callcenter reload`` asks the running server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http, rows
from tests.helpers.artifacts import REPO
from tests.helpers.phones import answering_phone
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, wait_until
from tests.integration.test_queue_members import LINE_SUPPORT, SUPPORT_LINE

QUEUE = {"ring_timeout": 5, "wrapup": 0, "announce_every": None, "whisper": False}


def _caller(server: ServerProcess, workdir: Path, stack: ExitStack) -> Sipp:
    return stack.enter_context(Sipp(
        "uac_queue_call.xml", workdir=workdir, ports=ports.allocate(8),
        remote_port=server.sip_port, service=LINE_SUPPORT, timeout=90))


def _support(server: ServerProcess) -> dict[str, Any]:
    return next(q for q in http(server, "GET", "/api/queues")[1] if q["name"] == "support")


def _agent(server: ServerProcess, agent: str) -> dict[str, Any] | None:
    return next((a for a in http(server, "GET", "/api/agents")[1] if a["id"] == agent), None)


def _edit(server: ServerProcess, change: Any) -> None:
    data = yaml.safe_load(server.config_path.read_text(encoding="utf-8"))
    change(data)
    server.config_path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                                  encoding="utf-8")


def _staff(data: dict[str, Any]) -> None:
    data["users"] = [u for u in data["users"] if u["user"] != "1001"] + [
        {"user": "1002", "password": "agent1002", "role": "agent", "name": "New Agent"}]
    data["queues"] = [{"name": "sales", "members": ["1002"], **QUEUE},
                      {"name": "support", "members": ["1002"], **QUEUE}]


def test_agents_come_and_go_in_the_file_while_callers_wait(artifacts: Path) -> None:
    require_binary("sipp")
    dialplans = artifacts / "dialplans"
    shutil.rmtree(dialplans, ignore_errors=True)
    shutil.copytree(REPO / "dialplans", dialplans)
    (dialplans / "support.yaml").write_text(SUPPORT_LINE.replace("timeout: 10", "timeout: 120"),
                                            encoding="utf-8")
    users = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["users"]
    server = ServerProcess(artifacts, overrides={
        "dialplans": str(dialplans), "users": [u for u in users if u["user"] != "1002"],
        "queues": [{"name": "sales", "members": ["1001"], **QUEUE},
                   {"name": "support", "members": ["1001"], **QUEUE}]})
    with server, ExitStack() as stack:
        answering_phone(server, "1001", artifacts / "a1001", stack, talk_ms=12000)
        callers = [_caller(server, artifacts / "caller0", stack)]
        assert wait_until(lambda: (_agent(server, "1001") or {}).get("state") == "on_call", 30)
        for i in (1, 2):
            callers.append(_caller(server, artifacts / f"caller{i}", stack))
            assert wait_until(lambda i=i: _support(server)["waiting"] == i, 30), _support(server)

        broken = server.config_path.read_text(encoding="utf-8")
        server.config_path.write_text(broken + "queues: [\n", encoding="utf-8")
        assert wait_until(lambda: "config_reload_failed" in server.log_text(), 10)
        assert f"{server.config_path}:" in server.log_text()
        server.config_path.write_text(broken, encoding="utf-8")

        _edit(server, _staff)
        assert wait_until(lambda: _agent(server, "1002") is not None, 10), server.log_tail()
        assert _agent(server, "1001") is None  # gone from the list, still on its call
        status, body = http(server, "GET", "/api/queues/support")
        assert [m["agent"] for m in body["members"]] == ["1002"], body
        assert _support(server)["waiting"] == 2
        answering_phone(server, "1002", artifacts / "a1002", stack, talk_ms=1500)
        for caller in callers:
            result = caller.wait()
            assert result.returncode == 0, result.summary() + server.log_tail()

        cli = subprocess.run(
            [sys.executable, "-m", "callcenter", "reload", "--config", str(server.config_path),
             "--http-port", str(server.http_port)],
            capture_output=True, text=True, timeout=60, cwd=REPO, env=dict(os.environ))
        assert cli.returncode == 0 and cli.stdout.startswith("unchanged"), cli
        status, trail = http(server, "GET", "/api/audit")
        assert status == 200 and [(r["who"], r["action"], r["detail"]["changed"])
                                  for r in trail] == [
            ("file change", "config.reloaded", ["queues", "users"])], trail

    log = rows(server.db_path, "SELECT event, agent, hung_up_by FROM queue_log "
                               "WHERE queue = 'support' AND event IN ('connect', 'complete') "
                               "ORDER BY id")
    connects = [r["agent"] for r in log if r["event"] == "connect"]
    assert connects == ["1001", "1002", "1002"], log
    completes = [(r["agent"], r["hung_up_by"]) for r in log if r["event"] == "complete"]
    assert sorted(completes) == [("1001", "agent"), ("1002", "agent"), ("1002", "agent")], log
    enters = rows(server.db_path, "SELECT call_id FROM queue_log WHERE queue = 'support' AND "
                                  "event = 'enter' ORDER BY id")
    taken = rows(server.db_path, "SELECT call_id FROM queue_log WHERE queue = 'support' AND "
                                 "event = 'connect' ORDER BY id")
    assert [r["call_id"] for r in taken] == [r["call_id"] for r in enters]  # in their order
