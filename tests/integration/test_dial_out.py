"""A registered agent dials outside numbers through the dialplan's outbound rules (issue 13).

The shipped rules: national numbers go to trunk ``pstn`` (here the simulated carrier) with
caller ID 0800123456; 0700 premium-rate and 00 international are refused with 403. Agent 1001
(queue ``sales``) dials from a SIPp phone; the carrier answers, talks and hangs up after
``max_call``; meanwhile the ACD counts 1001's phone in use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.carrier import Carrier
from tests.helpers.phones import register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, run_sipp, wait_until
from tests.integration.demo import USERS
from tests.integration.test_dialer import api
from tests.integration.test_dialer_preview import sales_and_trunk

AGENT, NATIONAL, PREMIUM = "1001", "0221234567", "0700123456"
ON_TRUNK = "+48221234567"  # what the carrier gets: the pstn trunk presents numbers as E.164


def test_an_agent_dials_a_national_number_and_is_refused_premium_rate(artifacts: Path) -> None:
    require_binary("sipp")
    carrier_port = ports.allocate(2).base
    with Carrier(carrier_port, max_call=3) as carrier, \
            ServerProcess(artifacts, overrides=sales_and_trunk(carrier_port)) as server:
        block = ports.allocate(8)
        register(server, AGENT, block, artifacts / "reg")
        dial = dict(workdir=artifacts / "call", ports=block, remote_port=server.sip_port,
                    auth=(AGENT, USERS[AGENT]), keys={"user": AGENT}, timeout=20)
        in_use: list[bool] = []
        with Sipp("uac_feature_code.xml", service=NATIONAL, **dial) as phone:  # type: ignore[arg-type]
            def talking() -> bool:
                calls = list(carrier.calls.values())
                if calls and calls[0].answered is not None and calls[0].ended is None:
                    agent = next(a for a in api(server, "GET", "/api/agents")
                                 if a["id"] == AGENT)
                    in_use.append(agent["in_use"])
                return bool(calls) and calls[0].ended is not None
            assert wait_until(talking, 15, 0.2), server.log_tail()
            result = phone.wait(10)
        assert result.returncode == 0, result.summary() + server.log_tail()
        call_id = result.messages.split("Call-ID: ", 1)[1].split()[0]
        cdr = server.wait_cdr(lambda r: r["sip_call_id"] == call_id and r["end"] is not None)
        refused = run_sipp("uac_refused.xml", service=PREMIUM,  # type: ignore[arg-type]
                           **{**dial, "workdir": artifacts / "premium"})
        agents = api(server, "GET", "/api/agents")
        invites = carrier.snapshot()
    assert [i["number"] for i in invites] == [ON_TRUNK], invites  # never the premium number
    assert invites[0]["from"].startswith("<sip:+48800123456@"), invites  # in its E.164 format
    assert [c.by for c in carrier.calls.values()] == ["carrier"], carrier.calls
    assert cdr is not None and cdr["direction"] == "outbound", cdr
    assert (cdr["caller"], cdr["called"], cdr["answer"] is not None) == (AGENT, NATIONAL, True)
    assert in_use and all(in_use), in_use  # the ACD knew 1001's phone was busy
    assert not next(a for a in agents if a["id"] == AGENT)["in_use"]
    assert refused.returncode == 0, refused.summary()
    assert "403 Forbidden (premium-rate)" in refused.messages, refused.summary()


IVR_PLAN = """lines:
  - {number: "0800999000", accept: [pstn], flow: out}
outbound:
  - {pattern: "^0[1-9][0-9]{8}$", allow: [ivr], trunk: pstn}
nodes:
  out: {type: transfer, number: "0221234567"}
"""


def with_plan(artifacts: Path, carrier_port: int, plan: str) -> dict[str, Any]:
    """``sales_and_trunk`` with one dialplan file of text ``plan``."""
    plans = artifacts / "dialplans"
    plans.mkdir(parents=True, exist_ok=True)
    (plans / "plan.yaml").write_text(plan, encoding="utf-8")
    return {**sales_and_trunk(carrier_port), "dialplans": str(plans)}


def test_the_ivr_transfers_a_caller_to_an_outside_number(artifacts: Path) -> None:
    require_binary("sipp")
    carrier_port = ports.allocate(2).base
    config = with_plan(artifacts, carrier_port, IVR_PLAN)
    with Carrier(carrier_port, max_call=3) as carrier, \
            ServerProcess(artifacts, overrides=config) as server:
        result = run_sipp("uac_queue_call.xml", workdir=artifacts / "caller", ports=ports.allocate(8),
                          remote_port=server.sip_port, service="0800999000", timeout=20)
        assert result.returncode == 0, result.summary() + server.log_tail()
        call_id = result.messages.split("Call-ID: ", 1)[1].split()[0]
        cdr = server.wait_cdr(lambda r: r["sip_call_id"] == call_id and r["end"] is not None)
        invites = carrier.snapshot()
    assert [i["number"] for i in invites] == [ON_TRUNK], invites
    assert invites[0]["from"].startswith("<sip:4822000"), invites  # the caller's own number
    assert [c.by for c in carrier.calls.values()] == ["carrier"], carrier.calls
    assert cdr is not None and cdr["direction"] == "inbound" and cdr["line"] == "0800999000"
