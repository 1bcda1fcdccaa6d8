"""config.yaml reloaded in a running Application (no sockets): validated whole, applied as a
diff to the ACD, passwords, tokens and campaigns; errors and restart-only keys reported."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.app import Application
from callcenter.cli import load_setup
from callcenter.config import apply_overrides, load_config
from callcenter.config.live import differences
from callcenter.log import configure_logging

REPO = Path(__file__).resolve().parents[2]


class Running:
    """An Application on a copy of the shipped config.yaml, with the ACD started."""

    def __init__(self, tmp: Path) -> None:
        configure_logging("error", "json", None)
        self.path = tmp / "config.yaml"
        self.text = (REPO / "config.yaml").read_text(encoding="utf-8")
        self.text = self.text.replace("sounds: sounds", f"sounds: {REPO / 'sounds'}").replace(
            "dialplans: dialplans", f"dialplans: {REPO / 'dialplans'}")
        self.path.write_text(self.text, encoding="utf-8")
        self.db = tmp / "live.db"
        cfg, dialplan, _ = load_setup(self.path)
        cfg = apply_overrides(cfg, db=self.db)
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)

        async def build() -> Application:
            app = Application(cfg, dialplan, config_path=self.path,
                              read_config=lambda: apply_overrides(load_config(self.path),
                                                                  db=self.db))
            app.stack.loop = self.loop
            await app.queues.start()
            app._load_today_figures()
            return app

        self.app = self.loop.run_until_complete(build())

    def edit(self, old: str, new: str) -> None:
        assert old in self.text, old
        self.text = self.text.replace(old, new, 1)
        self.path.write_text(self.text, encoding="utf-8")

    def reload(self) -> dict[str, object]:
        async def go() -> dict[str, object]:
            return self.app.reload_config("test").to_json()
        return self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.run_until_complete(self.app.queues.close())
        self.loop.run_until_complete(asyncio.sleep(0))  # the cancelled tasks finish
        self.app.store.close()
        self.loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    r = Running(tmp_path)
    yield r
    r.close()


def test_an_agent_and_a_member_come_and_go_without_a_restart(running: Running) -> None:
    app = running.app
    engine = app.queues.engine
    assert engine is not None
    running.edit('  - {user: "2001"', '  - {user: "1005", password: "agent1005", role: agent, '
                 'name: "New Agent"}\n  - {user: "2001"')
    running.edit('members: ["1003", "1004"]', 'members: ["1003", "1005"]')
    result = running.reload()
    assert result["status"] == "applied", result
    assert result["changed"] == ["queues", "users"] and result["restart_required"] == []
    assert engine.members("support") == ["1003", "1005"]
    assert "1005" in engine.agent_ids and app.passwords["1005"] == "agent1005"
    assert app.queues.agent_stats("1005")[0]["name"] == "New Agent"
    assert running.reload()["status"] == "unchanged"
    (row,) = app.store.audit()  # the applied reload, not the unchanged one
    assert (row["who"], row["action"], row["detail"]["changed"]) == (
        "test", "config.reloaded", ["queues", "users"])


def test_a_broken_file_changes_nothing_and_says_where(running: Running) -> None:
    app = running.app
    running.edit('members: ["1003", "1004"]', 'members: ["1003", "1004"]\n    tier_wait: -3')
    running.edit('  - {user: "1004"', '  - {user: "1009", password: "x", role: agent}\n'
                 '  - {user: "1004"')
    result = running.reload()
    assert result["status"] == "error"
    errors = result["errors"]
    assert isinstance(errors, list)
    assert any(re.match(rf"{re.escape(str(running.path))}:\d+:\d+: queues\[1\]\.tier_wait", e)
               for e in errors), errors
    assert "1009" not in app.passwords and app.cfg.queue("support").ring_timeout == 15  # type: ignore[union-attr]


def test_restart_only_keys_are_reported_and_tokens_and_passwords_apply(
        running: Running) -> None:
    app = running.app
    old_login, _ = app.api.auth.login("1001", "agent")
    kept_login, _ = app.api.auth.login("1002", "agent")
    running.edit("  port: 5060", "  port: 5062")
    running.edit('password: "agent1001"', 'password: "changed-1001"')
    running.edit("token: demo-wallboard-token", "token: another-wallboard-token")
    result = running.reload()
    assert result["status"] == "applied"
    assert result["restart_required"] == ["sip.port"]
    assert app.passwords["1001"] == "changed-1001" and app.cfg.sip.port == 5060
    assert set(app.api.auth.tokens) == {"demo-admin-token", "another-wallboard-token"}
    assert set(app.api.auth.sessions) == {kept_login}  # a changed password logs 1001 out
    assert old_login not in app.api.auth.sessions
    # still not applied: still reported
    assert running.reload() == {"status": "unchanged", "errors": [], "changed": [],
                                "restart_required": ["sip.port"]}


def test_campaigns_and_queue_settings_change_live(running: Running) -> None:
    app = running.app
    running.edit("  - name: telesales", "  - name: renewals\n    queue: sales\n"
                 "  - name: telesales")
    running.edit('members: ["1003", "1004"]', 'members: ["1003", "1004"]\n    strategy: round-robin')
    result = running.reload()
    assert result["status"] == "applied", result
    assert set(app.dialer.live) == {"renewals", "telesales"}
    assert not app.dialer.live["renewals"].running
    assert app.queues.engine._queues["support"].cfg.strategy == "round-robin"  # type: ignore[union-attr]


def test_differences_name_dotted_keys() -> None:
    cfg = load_config(None)
    moved = cfg.model_copy(update={"http": cfg.http.model_copy(update={"port": 9})})
    assert differences(cfg, moved) == ([], ["http.port"])


def test_the_file_may_name_a_queue_the_api_added(running: Running, tmp_path: Path) -> None:
    """A campaign's queue and ``supervisor.queues`` may name a queue that lives in the
    database (``POST /api/queues``): the loader reads the database's queue names, read-only,
    for ``serve``, its reloads and ``check``; another database does not have it."""
    from callcenter.calls.directory import DirectoryConflict
    from callcenter.cli import _read_config
    from ivr.yamldoc import ConfigError

    app = running.app
    app.users.add_queue({"name": "vip", "strategy": "ringall"}, who="test")
    app.config.read = lambda: apply_overrides(_read_config(running.path, running.db),
                                              db=running.db)  # as serve reads it again
    running.edit("    queue: sales\n    list: telesales", "    queue: vip\n    list: telesales")
    running.edit("  queues: {}               # supervisor", '  queues: {"2001": [vip]}  #')
    result = running.reload()
    assert result["status"] == "applied", result
    assert app.cfg.supervisor.queues == {"2001": ["vip"]}
    assert [c.queue for c in app.cfg.campaigns] == ["vip"]
    assert load_setup(running.path, running.db)[0].campaigns[0].queue == "vip"  # check, serve
    with pytest.raises(ConfigError, match=r"campaigns\[0\]\.queue: expected a queue \(sales, "
                                          r"support\), got 'vip'"):
        load_setup(running.path, tmp_path / "other.db")
    assert not (tmp_path / "other.db").exists()  # only read
    with pytest.raises(DirectoryConflict, match="vip"):  # the file names it now
        app.users.remove_queue("vip", who="test")


def test_a_file_queue_overflows_to_a_queue_the_api_added(running: Running,
                                                        tmp_path: Path) -> None:
    """``queues[].overflow`` in the file may name an API queue of its database: the reload
    applies it and an empty ``sales`` moves its caller there; with another database (where
    ``vip`` does not exist) the file is refused at ``overflow``; DELETE of ``vip`` is 409."""
    from acd import events as ev
    from acd.actions import CallMoved
    from callcenter.calls.directory import DirectoryConflict
    from callcenter.cli import _read_config
    from ivr.yamldoc import ConfigError

    app = running.app
    app.users.add_queue({"name": "vip", "strategy": "ringall"}, who="test")
    app.config.read = lambda: apply_overrides(_read_config(running.path, running.db),
                                              db=running.db)
    running.edit("    join_empty: true\n    leave_when_empty: false\n    overflow: null",
                 "    join_empty: false\n    leave_when_empty: false\n    overflow: vip")
    result = running.reload()
    assert result["status"] == "applied", result
    engine = app.queues.engine
    assert engine is not None
    moved = [a for a in engine.handle(ev.CallArrived(call="c1", queue="sales"), app.now())
             if isinstance(a, CallMoved)]  # nobody is logged in to sales
    assert [(m.from_queue, m.to_queue) for m in moved] == [("sales", "vip")]
    assert load_setup(running.path, running.db)[0].queue("sales").overflow == "vip"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"queues\[0\]\.overflow: expected the name of "
                                          r"another queue \(sales, support\), got 'vip'"):
        load_setup(running.path, tmp_path / "other.db")
    with pytest.raises(DirectoryConflict, match="overflow"):
        app.users.remove_queue("vip", who="test")
