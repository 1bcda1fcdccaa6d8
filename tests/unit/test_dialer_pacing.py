"""Pacing modes on hand-made snapshots."""

from __future__ import annotations

import pytest

from callcenter.dialer.pacing import (
    PACERS,
    PacingSnapshot,
    PredictivePacer,
    Stats,
    VicidialAdaptivePacer,
    make_pacer,
)


def snap(**kw: object) -> PacingSnapshot:
    base: dict[str, object] = {"now": 100.0, "free_agents": 0}
    base.update(kw)
    return PacingSnapshot(**base)  # type: ignore[arg-type]


def test_registry_has_all_modes() -> None:
    assert {"predictive", "progressive", "power", "preview", "adaptive-baseline"} <= set(PACERS)
    with pytest.raises(ValueError, match="unknown dial mode"):
        make_pacer("telepathic")


def test_progressive_one_call_per_free_agent() -> None:
    p = make_pacer("progressive")
    assert p.lines_to_dial(snap(free_agents=3)) == 3
    assert p.lines_to_dial(snap(free_agents=3, ringing=(1.0, 2.0))) == 1
    assert p.lines_to_dial(snap(free_agents=1, ringing=(1.0, 2.0))) == 0


def test_power_fixed_ratio_and_trunk_cap() -> None:
    p = make_pacer("power", ratio=2.5)
    assert p.lines_to_dial(snap(free_agents=2)) == 5
    assert p.lines_to_dial(snap(free_agents=2, max_lines=3)) == 3


def test_predictive_overdials_when_agents_free_and_idle() -> None:
    p = make_pacer("predictive")
    n = p.lines_to_dial(snap(free_agents=4, talking=(50.0,) * 16))
    assert n > 4  # more than progressive: answer rate 0.3 means most dials fail


def test_predictive_dials_ahead_of_wrapup_end() -> None:
    p = make_pacer("predictive")
    soon = p.lines_to_dial(snap(free_agents=0, wrapping=(19.0,) * 3, talking=(60.0,) * 17))
    late = p.lines_to_dial(snap(free_agents=0, wrapping=(1.0,) * 3, talking=(60.0,) * 17))
    assert soon > 0
    assert soon > late


def test_predictive_backs_off_to_progressive_at_the_limit() -> None:
    p = make_pacer("predictive")
    s = snap(free_agents=4, talking=(50.0,) * 16, abandon_rate_24h=0.031, answered_24h=2000)
    assert p.lines_to_dial(s) == make_pacer("progressive").lines_to_dial(s) == 4
    near = snap(free_agents=4, talking=(50.0,) * 16, abandon_rate_24h=0.028, answered_24h=2000)
    far = snap(free_agents=4, talking=(50.0,) * 16, abandon_rate_24h=0.005, answered_24h=2000)
    assert p.lines_to_dial(near) <= p.lines_to_dial(far)


def test_no_agents_no_dials() -> None:
    for name in ("predictive", "progressive", "power"):
        assert make_pacer(name).lines_to_dial(snap(free_agents=0)) == 0


def test_stats_adapt_towards_observations() -> None:
    stats = Stats()
    before = stats.estimates()
    for _ in range(500):
        stats.on_dial_result(False)
        stats.on_talk(300.0)
    after = stats.estimates()
    assert after.answer_rate < before.answer_rate / 2
    assert abs(after.talk.mean - 300.0) < 30.0


def test_vicidial_baseline_raises_level_then_hard_limits() -> None:
    p = VicidialAdaptivePacer()
    for t in range(0, 31):  # 10 of 20 agents idle, no calls waiting
        p.lines_to_dial(snap(now=float(t), free_agents=10, talking=(5.0,) * 10, dials_today=10))
    assert p.level > 1.0
    assert p.lines_to_dial(snap(now=31.0, free_agents=10, talking=(5.0,) * 10)) > 10
    # today's drops over 3 % of answers with more than 50 calls: back to 1.0
    for t in range(31, 62):
        p.lines_to_dial(snap(now=float(t), free_agents=10, talking=(5.0,) * 10,
                             dials_today=400, answered_today=100, abandoned_today=5))
    assert p.level == 1.0


def test_marginal_pacer_dials_ahead_and_backs_off() -> None:
    p = make_pacer("predictive-marginal")
    busy = (60.0,) * 17
    idle = p.lines_to_dial(snap(free_agents=4, talking=(50.0,) * 16))
    assert idle > 4  # overdials for idle agents
    soon = p.lines_to_dial(snap(wrapping=(24.0,) * 3, talking=busy))
    late = p.lines_to_dial(snap(wrapping=(1.0,) * 3, talking=busy))
    assert soon > late
    at_limit = snap(free_agents=4, talking=(50.0,) * 16, abandon_rate_24h=0.031,
                    answered_24h=2000)
    assert p.lines_to_dial(at_limit) == 4  # progressive at the limit
    crowded = snap(free_agents=1, talking=(50.0,) * 19, ringing=(2.0,) * 12)
    assert p.lines_to_dial(crowded) == 0


def test_predictive_projection_matches_snapshot() -> None:
    p = make_pacer("predictive")
    assert isinstance(p, PredictivePacer)
    proj = p._project(snap(free_agents=2, wrapping=(25.0,), talking=(10.0,) * 17))
    assert proj.m0[0] == 2 and proj.m2[-1] >= 3  # the wrap-up ends within the horizon
    assert float(proj.q0[-1]) == pytest.approx(0.3, abs=1e-6)
