"""IVR engine with a fake call on a virtual clock: every node type, keys, timeouts, retries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivr.dialplan import Dialplan, load_dialplans
from ivr.engine import (
    CallbackRequest,
    CallerHungUp,
    ContactHistory,
    Customer,
    EndReason,
    FlowResult,
    SurveyResult,
    VoicemailMessage,
    run_flow,
)

REPO = Path(__file__).resolve().parents[2]
SOUNDS = REPO / "sounds"
WARSAW = ZoneInfo("Europe/Warsaw")
OPEN = datetime(2026, 11, 23, 10, 0, tzinfo=WARSAW)  # a Monday
SUNDAY = datetime(2026, 11, 22, 10, 0, tzinfo=WARSAW)
EASTER_MONDAY = datetime(2026, 4, 6, 10, 0, tzinfo=WARSAW)
PROMPT_SECONDS = 2.0


@dataclass
class FakeCall:
    """A caller pressing keys at given seconds; prompts last PROMPT_SECONDS each."""

    keys: list[tuple[float, str]] = field(default_factory=list)
    caller: str = "48601111222"
    called: str = "0800123456"
    start: datetime = OPEN
    outcomes: dict[str, str] = field(default_factory=dict)
    hangup_at: float | None = None
    call_id: str = "call-1"
    t: float = 0.0
    played: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    transfers: list[tuple[str, Any]] = field(default_factory=list)
    recordings: list[tuple[Path, float, bool]] = field(default_factory=list)
    hung_up: bool = False

    def _alive(self) -> None:
        if self.hung_up or (self.hangup_at is not None and self.t >= self.hangup_at):
            raise CallerHungUp

    def _key_until(self, until: float) -> str | None:
        if self.keys and self.keys[0][0] <= until:
            when, key = self.keys.pop(0)
            self.t = max(self.t, when)
            return key
        return None

    def _advance(self, until: float) -> None:
        if self.hangup_at is not None and until >= self.hangup_at:
            self.t = self.hangup_at
            raise CallerHungUp
        self.t = until

    async def play(self, prompts: Sequence[str], *, interruptible: bool) -> str | None:
        for path in prompts:
            self._alive()
            name = str(Path(path).relative_to(SOUNDS).with_suffix(""))
            self.played.append(name)
            end = self.t + PROMPT_SECONDS
            if interruptible:
                key = self._key_until(end)
                if key is not None:
                    self.interrupted.append(name)
                    return key
            self._advance(end)
        return None

    async def get_digit(self, timeout: float) -> str | None:
        self._alive()
        key = self._key_until(self.t + timeout)
        if key is None:
            self._advance(self.t + timeout)
        return key

    async def record(self, path: Path, *, max_seconds: float, beep: bool) -> float:
        self._alive()
        seconds = max_seconds
        if self.hangup_at is not None:
            seconds = min(seconds, self.hangup_at - self.t)
        self.recordings.append((path, max_seconds, beep))
        self.t += seconds
        return seconds

    async def transfer_to_queue(self, queue: str, *, priority: int, skills: dict[str, int]) -> str:
        self._alive()
        self.transfers.append(("queue", (queue, priority, skills)))
        return self.outcomes.get(queue, "hangup")

    async def transfer_to_user(self, user: str) -> str:
        self._alive()
        self.transfers.append(("user", user))
        return self.outcomes.get(user, "hangup")

    async def transfer_to_number(self, number: str) -> str:
        self._alive()
        self.transfers.append(("number", number))
        return self.outcomes.get(number, "hangup")

    async def hangup(self) -> None:
        self.hung_up = True

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    def event(self, type: str, **data: Any) -> None:
        self.events.append((type, data))

    def nodes(self) -> list[str]:
        return [data["node"] for kind, data in self.events if kind == "ivr_node"]


@dataclass
class FakeServices:
    history: ContactHistory = ContactHistory()
    card: Customer | Exception = Customer()
    accounts: dict[str, Customer] = field(default_factory=dict)
    identified: list[tuple[str, str]] = field(default_factory=list)
    callbacks: list[CallbackRequest] = field(default_factory=list)
    voicemails: list[VoicemailMessage] = field(default_factory=list)
    surveys: list[SurveyResult] = field(default_factory=list)
    lookups: int = 0
    root: Path = Path("/tmp/vm")
    fail_surveys: bool = False

    async def contact_history(self, caller: str) -> ContactHistory:
        self.lookups += 1
        return self.history

    async def customer(self, call_id: str, caller: str, now: datetime) -> Customer:
        self.lookups += 1
        if isinstance(self.card, Exception):
            raise self.card
        return self.card

    async def identify(self, call_id: str, field: str, value: str,
                       now: datetime) -> Customer | None:
        self.identified.append((field, value))
        return self.accounts.get(value)

    async def create_callback(self, request: CallbackRequest) -> None:
        self.callbacks.append(request)

    def voicemail_path(self, queue: str, call_id: str) -> Path:
        return self.root / queue / f"{call_id}.wav"

    async def save_voicemail(self, message: VoicemailMessage) -> None:
        self.voicemails.append(message)

    async def save_survey(self, result: SurveyResult) -> None:
        if self.fail_surveys:
            raise RuntimeError("database is locked")
        self.surveys.append(result)


@pytest.fixture(scope="module")
def demo() -> Dialplan:
    return load_dialplans(REPO / "dialplans", SOUNDS, trunks=["pstn"])


def run(plan: Dialplan, call: FakeCall, services: FakeServices | None = None) -> FlowResult:
    return asyncio.run(run_flow(call, plan, services=services or FakeServices(), sounds=SOUNDS))


def plan_of(tmp_path: Path, nodes: str, *, flow: str = "start", extra: str = "",
            language: str = "pl") -> Dialplan:
    """A one-line dialplan (0800123456) whose flow starts at ``flow``."""
    d = tmp_path / "dialplans"
    d.mkdir(exist_ok=True)
    text = (
        f'lines:\n  - {{number: "0800123456", accept: [pstn], language: {language}, '
        f"flow: {flow}}}\n{extra}nodes:\n{nodes}"
    )
    (d / "t.yaml").write_text(text, encoding="utf-8")
    return load_dialplans(d, SOUNDS)


# -- the demo hotline --------------------------------------------------------------------------


def test_demo_no_key_three_times_goes_to_sales(demo: Dialplan) -> None:
    call = FakeCall()
    result = run(demo, call)
    assert call.played == [
        "pl/welcome", "pl/menu", "pl/no_input", "pl/menu", "pl/no_input", "pl/menu",
        "pl/queue_sales",
    ]
    assert call.transfers == [("queue", ("sales", 0, {}))]
    assert result.reason is EndReason.CALLER_HANGUP
    assert call.nodes() == ["welcome_free", "business_hours", "main_menu", "sales"]
    assert [e for e, d in call.events].count("ivr_timeout") == 3


@pytest.mark.parametrize(
    ("key", "queue"), [("1", "sales"), ("2", "support")]
)
def test_demo_menu_key_barges_in_and_routes(demo: Dialplan, key: str, queue: str) -> None:
    call = FakeCall(keys=[(3.0, key)])  # during the menu prompt (2 s - 4 s)
    run(demo, call)
    assert call.interrupted == ["pl/menu"]
    assert call.transfers == [("queue", (queue, 0, {}))]
    assert call.played[-1] == f"pl/queue_{queue}"
    choice = next(d for e, d in call.events if e == "ivr_choice")
    assert choice == {"node": "main_menu", "key": key, "target": queue}


def test_demo_key_during_welcome_is_type_ahead_for_the_menu(demo: Dialplan) -> None:
    call = FakeCall(keys=[(0.5, "2")])
    run(demo, call)
    assert call.played == ["pl/welcome", "pl/queue_support"]  # the menu prompt is skipped
    assert call.interrupted == ["pl/welcome"]


def test_demo_shared_cost_line_says_local_rate(demo: Dialplan) -> None:
    call = FakeCall(called="0801123456", keys=[(3.0, "1")])
    run(demo, call)
    assert call.played[:2] == ["pl/welcome_shared_cost", "pl/menu"]


def test_demo_english_rest_of_call_and_menu_repeated(demo: Dialplan) -> None:
    call = FakeCall(keys=[(3.0, "3"), (4.0, "1")], outcomes={"sales": "answered"})
    result = run(demo, call)
    assert call.played[:4] == ["pl/welcome", "pl/menu", "en/menu", "en/queue_sales"]
    assert call.played[4] == "en/survey"  # the agent hung up: survey in English
    assert call.played[-1] == "en/goodbye"
    assert result.variables["language"] == "en"
    assert result.reason is EndReason.HANGUP and call.hung_up


def test_demo_three_toggles_back_to_polish(demo: Dialplan) -> None:
    call = FakeCall(keys=[(3.0, "3"), (4.0, "3"), (5.0, "2")])
    run(demo, call)
    assert call.played == ["pl/welcome", "pl/menu", "en/menu", "pl/menu", "pl/queue_support"]


def test_demo_zero_repeats_and_invalid_keys_retry(demo: Dialplan) -> None:
    call = FakeCall(keys=[(3.0, "0"), (6.0, "7"), (11.0, "7"), (16.0, "7")])
    run(demo, call)
    assert call.played == [
        "pl/welcome", "pl/menu", "pl/menu", "pl/invalid_option", "pl/menu",
        "pl/invalid_option", "pl/menu", "pl/queue_sales",
    ]
    invalid = [d["count"] for e, d in call.events if e == "ivr_invalid"]
    assert invalid == [1, 2, 3]


def test_demo_key_during_invalid_prompt_counts(demo: Dialplan) -> None:
    call = FakeCall(keys=[(3.0, "7"), (4.5, "2")])  # 2 pressed while "no such option" plays
    run(demo, call)
    assert call.played == ["pl/welcome", "pl/menu", "pl/invalid_option", "pl/queue_support"]


def test_demo_closed_sunday_hours_then_voicemail(demo: Dialplan) -> None:
    call = FakeCall(start=SUNDAY, keys=[(5.0, "9")], hangup_at=30.0)
    services = FakeServices()
    result = run(demo, call, services)
    assert call.played == [
        "pl/welcome", "pl/closed_hours", "pl/closed_options", "pl/voicemail_intro",
    ]
    assert call.recordings == [(Path("/tmp/vm/sales/call-1.wav"), 120, True)]
    [message] = services.voicemails
    assert message.queue == "sales" and message.caller == "48601111222"
    assert message.seconds == pytest.approx(30.0 - 7.0)  # hung up to finish the message
    assert result.reason is EndReason.CALLER_HANGUP
    assert ("ivr_schedule", {"node": "business_hours", "state": "closed"}) in call.events


def test_demo_easter_monday_is_closed(demo: Dialplan) -> None:
    call = FakeCall(start=EASTER_MONDAY)
    run(demo, call)
    assert call.played[:3] == ["pl/welcome", "pl/closed_hours", "pl/closed_options"]
    assert call.transfers == [] and call.played[-1] == "pl/goodbye" and call.hung_up
    assert ("ivr_schedule", {"node": "business_hours", "state": "holiday"}) in call.events


def test_demo_callback_confirming_own_number(demo: Dialplan) -> None:
    call = FakeCall(keys=[(3.0, "8"), (5.0, "1")])
    services = FakeServices()
    run(demo, call, services)
    [job] = services.callbacks
    assert (job.number, job.queue, job.language) == ("48601111222", "sales", "pl")
    assert call.played[-3:] == ["pl/callback_confirm", "pl/callback_booked", "pl/goodbye"]


def test_demo_callback_to_another_number(demo: Dialplan) -> None:
    keys = [(3.0, "8")] + [(5.0 + i * 0.5, d) for i, d in enumerate("601234567#")]
    call = FakeCall(keys=keys)
    services = FakeServices()
    run(demo, call, services)
    assert services.callbacks[0].number == "601234567"


def test_callback_from_a_hidden_number_asks_for_one(demo: Dialplan) -> None:
    keys = [(3.0, "8"), (5.0, "1")] + [(12.0 + i * 0.5, d) for i, d in enumerate("221234567#")]
    call = FakeCall(caller="anonymous", keys=keys)
    services = FakeServices()
    run(demo, call, services)
    assert "pl/callback_enter_number" in call.played
    assert "pl/callback_confirm" not in call.played
    # "1" alone is too short: invalid, asked again, then the full number
    assert services.callbacks[0].number == "221234567"
    assert "pl/invalid_option" in call.played


def test_demo_queue_failure_offers_callback_or_voicemail(demo: Dialplan) -> None:
    call = FakeCall(keys=[(3.0, "1")], outcomes={"sales": "no_agents"})
    run(demo, call)
    assert call.played[3:5] == ["pl/transfer_failed", "pl/closed_options"]
    assert call.played[-1] == "pl/goodbye"


def test_demo_survey_after_agent_hangs_up(demo: Dialplan) -> None:
    call = FakeCall(keys=[(3.0, "1"), (6.0, "7"), (9.0, "4")], outcomes={"sales": "answered"})
    services = FakeServices()
    run(demo, call, services)
    [survey] = services.surveys
    assert (survey.rating, survey.queue) == (4, "sales")
    assert call.played[-6:] == [
        "pl/queue_sales", "pl/survey", "pl/invalid_option", "pl/survey", "pl/thank_you",
        "pl/goodbye",
    ]


def test_demo_english_line(demo: Dialplan) -> None:
    call = FakeCall(called="0800123457")
    run(demo, call)
    assert call.played[:2] == ["en/welcome", "en/menu"]


def test_line_with_queue_and_no_flow_goes_straight_to_the_queue(demo: Dialplan) -> None:
    call = FakeCall(called="0800000001", outcomes={"sales": "timeout"})
    run(demo, call)
    assert call.transfers == [("queue", ("sales", 0, {}))]
    assert call.played == ["pl/goodbye"] and call.hung_up


def test_caller_hanging_up_in_the_menu_ends_quietly(demo: Dialplan) -> None:
    call = FakeCall(hangup_at=3.0)
    result = run(demo, call)
    assert result.reason is EndReason.CALLER_HANGUP
    assert call.events[-1][0] == "ivr_end"
    assert call.events[-1][1]["reason"] == "caller_hangup"


def test_every_node_entered_is_an_event_with_digits(demo: Dialplan) -> None:
    call = FakeCall(keys=[(3.0, "8"), (5.0, "1")])
    run(demo, call)
    entered = [(d["node"], d["digits"]) for e, d in call.events if e == "ivr_node"]
    assert entered == [
        ("welcome_free", ""), ("business_hours", ""), ("main_menu", ""), ("callback", "8"),
        ("goodbye", "81"),
    ]


# -- node types one by one ---------------------------------------------------------------------


COLLECT = """\
  start:
    type: collect
    prompts: please_hold
    variable: account
    min_digits: 4
    max_digits: 6
    pattern: "[1-9][0-9]*"
    retries: 2
    next: say_it
    on_invalid: hangup
    on_timeout: hangup
  say_it:
    type: say
    say: digits
    value: "${account}"
    next: hangup
"""


def test_collect_terminator_and_say_digits(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, COLLECT)
    call = FakeCall(keys=[(2.5, "1"), (3.0, "2"), (3.5, "3"), (4.0, "4"), (4.5, "#")])
    result = run(plan, call)
    assert result.variables["account"] == "1234"
    assert call.played == ["pl/please_hold", *(f"pl/numbers/{d}" for d in "1234")]


def test_collect_max_digits_ends_entry_without_terminator(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, COLLECT)
    call = FakeCall(keys=[(0.5 + i * 0.1, d) for i, d in enumerate("1234567")])
    result = run(plan, call)
    assert result.variables["account"] == "123456"


def test_collect_invalid_pattern_then_inter_digit_timeout(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, COLLECT)
    # "0123" fails the pattern; "98765" ends by a 3 s pause (inter-digit timeout)
    keys = [(2.5, "0"), (2.6, "1"), (2.7, "2"), (2.8, "3"), (2.9, "#")]
    keys += [(6.5 + i * 0.5, d) for i, d in enumerate("98765")]
    call = FakeCall(keys=keys)
    result = run(plan, call)
    assert result.variables["account"] == "98765"
    assert call.played[:3] == ["pl/please_hold", "pl/invalid_option", "pl/please_hold"]


def test_collect_timeouts_go_to_on_timeout(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, COLLECT)
    call = FakeCall()
    result = run(plan, call)
    assert call.played == ["pl/please_hold", "pl/no_input", "pl/please_hold"]
    assert result.path == ["start", "hangup"] and call.hung_up
    assert call.t == pytest.approx(2 + 5 + 2 + 2 + 5)


def test_set_branch_and_history_route_a_repeat_caller(tmp_path: Path) -> None:
    nodes = """\
  start:
    type: branch
    cases:
      - {variable: history.last_agent, empty: false, goto: last_agent}
    else: menu
  last_agent:
    type: transfer
    user: "${history.last_agent}"
    on_failure: menu
  menu:
    type: play
    prompts: menu
"""
    plan = plan_of(tmp_path, nodes)
    services = FakeServices(history=ContactHistory(previous_calls=3, last_agent="1002"))
    call = FakeCall(outcomes={"1002": "busy"})
    run(plan, call, services)
    assert call.transfers == [("user", "1002")]
    assert call.played == ["pl/menu", "pl/goodbye"]
    assert services.lookups == 1
    call = FakeCall()
    run(plan, call, FakeServices())
    assert call.transfers == [] and call.played == ["pl/menu", "pl/goodbye"]


@pytest.mark.parametrize(("card", "outcomes", "transfers"), [
    (Customer(), {}, [("queue", ("support", 0, {}))]),
    (Customer(known=True, fields={"tier": "vip"}, last_contact_days=0, last_agent="1002"), {},
     [("queue", ("support", 10, {}))]),
    (Customer(known=True, last_contact_days=0, last_agent="1002"), {"1002": "answered"},
     [("user", "1002")]),
    (Customer(known=True, last_contact_days=0, last_agent="1002"), {"1002": "busy"},
     [("user", "1002"), ("queue", ("support", 0, {}))]),
    (Customer(known=True, last_contact_days=1, last_agent="1002"), {},
     [("queue", ("support", 0, {}))]),
    (Customer(known=True, last_contact_days=0), {}, [("queue", ("support", 0, {}))]),
    (RuntimeError("database is locked"), {}, [("queue", ("support", 0, {}))]),
])
def test_demo_support_routes_by_customer(demo: Dialplan, card: Customer | Exception,
                                         outcomes: dict[str, str],
                                         transfers: list[tuple[str, Any]]) -> None:
    """Within 24 h to the agent the customer spoke to, VIPs ahead in the queue."""
    services = FakeServices(card=card)
    call = FakeCall(keys=[(0.5, "2")], outcomes=outcomes)
    run(demo, call, services)
    assert call.transfers == transfers
    assert services.lookups == 1
    assert any(e == "ivr_error" for e, _ in call.events) == isinstance(card, Exception)


def test_customer_variables_and_fields(tmp_path: Path) -> None:
    nodes = """\
  start:
    type: set
    variables:
      summary: "${customer.known}|${customer.name}|${customer.tier}|${customer.language}|\\
        ${customer.open_callbacks}|${customer.last_agent}|${customer.last_contact_days}|\\
        ${customer.fields.plan}"
    next: menu
  menu:
    type: play
    prompts: menu
"""
    plan = plan_of(tmp_path, nodes)
    card = Customer(known=True, name="Anna", fields={"tier": "vip", "language": "en",
                                                      "plan": "gold"},
                    open_callbacks=2, last_agent="1001", last_contact_days=3)
    call = FakeCall()
    assert run(plan, call, FakeServices(card=card)).variables["summary"] == (
        "1|Anna|vip|en|2|1001|3|gold")
    assert [d for e, d in call.events if e == "ivr_customer"] == [{"known": True,
                                                                    "name": "Anna"}]
    assert run(plan, FakeCall(), FakeServices()).variables["summary"] == "0||||0|||"


def test_collect_identifies_the_caller(tmp_path: Path) -> None:
    nodes = """\
  start:
    type: collect
    prompts: menu
    variable: account
    identify: account
    max_digits: 6
    next: route
  route:
    type: branch
    cases:
      - {variable: customer.tier, equals: vip, goto: vip}
    else: hangup
  vip:
    type: set
    variables: {who: "${customer.name} ${customer.known} ${customer.fields.x}"}
    next: hangup
"""
    plan = plan_of(tmp_path, nodes)
    anna = Customer(known=True, name="Anna", fields={"tier": "vip"})
    services = FakeServices(card=Customer(fields={"x": "stale"}), accounts={"123456": anna})
    call = FakeCall(keys=[(0.5, "1"), (0.6, "2"), (0.7, "3"), (0.8, "4"), (0.9, "5"),
                          (1.0, "6")])
    result = run(plan, call, services)
    assert services.identified == [("account", "123456")]
    assert result.variables["who"] == "Anna 1 "
    assert [d for e, d in call.events if e == "ivr_identified"] == [
        {"field": "account", "found": True}]
    assert services.lookups == 0  # identified: no caller ID lookup after
    call = FakeCall(keys=[(0.5, "9"), (0.6, "9"), (0.7, "9"), (0.8, "9"), (0.9, "9"),
                          (1.0, "9")])
    result = run(plan, call, FakeServices(accounts={"123456": anna}))
    assert "who" not in result.variables and result.path == ["start", "route", "hangup"]
    assert [d for e, d in call.events if e == "ivr_identified"] == [
        {"field": "account", "found": False}]


BRANCHES = """\
  start:
    type: set
    variables: {tier: "gold", count: 7, copy: "${caller}"}
    next: check
  check:
    type: branch
    cases:
      - {called: "0800XXXXXX", caller: "48N.", variable: count, min: 5, max: 10, goto: vip}
      - {variable: tier, in: [silver, gold], goto: hangup}
    else: goodbye
  vip:
    type: branch
    cases:
      - {variable: copy, matches: "48[0-9]+", goto: say_position}
    else: hangup
  say_position:
    type: say
    say: position
    value: "${count}"
    next: wait
  wait:
    type: say
    say: wait_time
    value: 125
    next: hangup
"""


def test_set_branch_conditions_and_say_position_and_wait(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, BRANCHES)
    call = FakeCall()
    result = run(plan, call)
    assert result.variables["copy"] == "48601111222"
    assert call.played == [
        "pl/position_is", "pl/numbers/7", "pl/wait_time_is", "pl/numbers/3", "pl/minutes_few",
    ]
    call = FakeCall(caller="1001")  # caller pattern 48N. fails: second case, tier gold
    result = run(plan, call)
    assert result.path == ["start", "check", "hangup"] and call.played == []


def test_language_node_switches_prompt_folder(tmp_path: Path) -> None:
    nodes = """\
  start:
    type: language
    language: en
    next: wait
  wait:
    type: say
    say: wait_time
    value: 60
    next: goodbye
"""
    call = FakeCall()
    run(plan_of(tmp_path, nodes), call)
    assert call.played == ["en/wait_time_is", "en/numbers/1", "en/minutes_one", "en/goodbye"]


def test_transfer_to_number_and_outcomes(tmp_path: Path) -> None:
    nodes = """\
  start:
    type: transfer
    number: "221234567"
    outcomes: {busy: sorry}
  sorry:
    type: hangup
    prompts: transfer_failed
"""
    call = FakeCall(outcomes={"221234567": "busy"})
    result = run(plan_of(tmp_path, nodes), call)
    assert call.transfers == [("number", "221234567")]
    assert call.played == ["pl/transfer_failed"] and call.hung_up
    assert result.variables["outcome"] == "busy"


def test_queue_priority_and_skills(tmp_path: Path) -> None:
    nodes = """\
  start:
    type: queue
    queue: support
    priority: 5
    skills: {english: 2}
"""
    call = FakeCall(outcomes={"support": "answered"})
    run(plan_of(tmp_path, nodes), call)
    assert call.transfers == [("queue", ("support", 5, {"english": 2}))]
    assert call.played == ["pl/goodbye"]


def test_goto_and_non_interruptible_play_keeps_keys_as_type_ahead(tmp_path: Path) -> None:
    nodes = """\
  start:
    type: play
    prompts: [welcome, please_hold]
    next: jump
  jump:
    type: goto
    target: menu
  menu:
    type: menu
    prompts: menu
    options: {"#": hangup}
"""
    call = FakeCall(keys=[(1.0, "#")])
    result = run(plan_of(tmp_path, nodes), call)
    assert call.played == ["pl/welcome", "pl/please_hold"]  # not interrupted; menu skipped
    assert result.path == ["start", "jump", "menu", "hangup"]


def test_voicemail_too_short_is_not_saved(tmp_path: Path) -> None:
    nodes = """\
  start:
    type: voicemail
    queue: support
    min_seconds: 2
    beep: false
"""
    call = FakeCall(hangup_at=3.0)  # 2 s intro, 1 s of message
    services = FakeServices()
    run(plan_of(tmp_path, nodes), call, services)
    assert services.voicemails == [] and call.recordings[0][2] is False


def test_survey_timeouts_store_nothing(tmp_path: Path) -> None:
    nodes = "  start:\n    type: survey\n    retries: 2\n"
    call = FakeCall()
    services = FakeServices()
    run(plan_of(tmp_path, nodes), call, services)
    assert services.surveys == []
    assert call.played == ["pl/survey", "pl/survey", "pl/goodbye"]


def test_failing_service_still_says_goodbye(tmp_path: Path) -> None:
    nodes = "  start:\n    type: survey\n"
    call = FakeCall(keys=[(1.0, "5")])
    result = run(plan_of(tmp_path, nodes), call, FakeServices(fail_surveys=True))
    assert result.reason is EndReason.ERROR
    assert call.played[-1] == "pl/goodbye" and call.hung_up


def test_user_goodbye_node_overrides_builtin(tmp_path: Path) -> None:
    nodes = """\
  start:
    type: play
    prompts: welcome
  goodbye:
    type: play
    prompts: thank_you
    next: goodbye
"""
    call = FakeCall()
    run(plan_of(tmp_path, nodes), call)
    assert call.played == ["pl/welcome", "pl/thank_you", "pl/goodbye"] and call.hung_up


def test_calls_keep_the_dialplan_they_started_with(tmp_path: Path) -> None:
    old = plan_of(tmp_path, "  start:\n    type: play\n    prompts: welcome\n")
    plan_of(tmp_path, "  start:\n    type: play\n    prompts: menu\n")  # a reload
    call = FakeCall()
    run(old, call)
    assert call.played == ["pl/welcome", "pl/goodbye"]
