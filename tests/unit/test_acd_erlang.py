"""Erlang B/C/A formulas, and the simulator (driving the real engine) agreeing with them."""

from __future__ import annotations

import json
import math

import pytest

from acd.erlang import erlang_a, erlang_b, erlang_c, erlang_c_result
from acd.simulator import SimConfig, simulate
from callcenter.cli import main


def _erlang_c_direct(n: int, a: float) -> float:
    top = a**n / math.factorial(n) * n / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


def test_erlang_b_textbook_value() -> None:
    assert erlang_b(10, 5.0) == pytest.approx(0.018385, abs=1e-6)
    assert erlang_b(1, 1.0) == pytest.approx(0.5)


@pytest.mark.parametrize(("n", "a"), [(1, 0.5), (6, 5.0), (20, 16.67), (50, 45.0)])
def test_erlang_c_matches_the_direct_formula(n: int, a: float) -> None:
    assert erlang_c(n, a) == pytest.approx(_erlang_c_direct(n, a), rel=1e-9)


def test_erlang_c_single_server_is_rho() -> None:
    r = erlang_c_result(1, 0.5, 1.0, 0.0)
    assert r.p_wait == pytest.approx(0.5)
    assert r.asa == pytest.approx(1.0)  # M/M/1: Wq = rho / (mu - lam)
    assert r.service_level == pytest.approx(0.5)


def test_erlang_a_tends_to_erlang_c() -> None:
    c = erlang_c_result(6, 100 / 3600, 1 / 180, 20)
    a = erlang_a(6, 100 / 3600, 1 / 180, 1e-9, 20)
    assert a.service_level == pytest.approx(c.service_level, abs=1e-5)
    assert a.asa == pytest.approx(c.asa, rel=1e-4)
    assert a.abandon_rate < 1e-6


def test_erlang_a_abandonment_is_theta_times_queue_length() -> None:
    # a flow balance independent of the phase computation: lam * P(ab) = theta * E[Lq]
    from acd.erlang import _stationary

    n, lam, mu, theta = 5, 0.05, 1 / 120, 1 / 45
    pi = _stationary(n, lam, mu, theta)
    lq = sum(max(k - n, 0) * p for k, p in enumerate(pi))
    assert erlang_a(n, lam, mu, theta, 20).abandon_rate == pytest.approx(theta * lq / lam)


def test_erlang_a_overloaded_queue_is_stable() -> None:
    r = erlang_a(5, 10 / 60, 1 / 60, 1 / 30, 20)  # 10 erlangs on 5 agents
    assert 0.4 < r.abandon_rate < 0.6
    assert r.occupancy < 1.0


def _close(sim: float, theory: float, stderr: float, floor: float) -> bool:
    return abs(sim - theory) <= 4 * stderr + floor


@pytest.mark.parametrize(("agents", "rate", "aht", "strategy", "seed"), [
    (6, 100, 180, "longest-idle-agent", 2),
    (20, 400, 150, "round-robin", 3),
])
def test_simulator_agrees_with_erlang_c(
    agents: int, rate: float, aht: float, strategy: str, seed: int
) -> None:
    r = simulate(SimConfig(agents=agents, arrival_rate=rate, aht=aht, calls=40_000,
                           strategy=strategy, seed=seed, warmup=2_000))
    th = erlang_c_result(agents, rate / 3600, 1 / aht, 20)
    assert r.abandoned == 0 and r.answered == r.calls
    assert _close(r.service_level, th.service_level, r.service_level_stderr, 0.005)
    assert _close(r.asa, th.asa, r.asa_stderr, 0.5)
    assert r.occupancy == pytest.approx(th.occupancy, abs=0.015)
    assert r.service_level_stderr < 0.02  # the check is not vacuous


@pytest.mark.parametrize(("agents", "rate", "aht", "patience", "seed"), [
    (6, 100, 180, 60, 4),
    (20, 360, 150, 90, 5),
    (4, 150, 120, 30, 6),  # overloaded: 5 erlangs on 4 agents, held by abandonment
])
def test_simulator_agrees_with_erlang_a(
    agents: int, rate: float, aht: float, patience: float, seed: int
) -> None:
    r = simulate(SimConfig(agents=agents, arrival_rate=rate, aht=aht, patience=patience,
                           calls=40_000, seed=seed, warmup=2_000))
    th = erlang_a(agents, rate / 3600, 1 / aht, 1 / patience, 20)
    assert _close(r.service_level, th.service_level, r.service_level_stderr, 0.005)
    assert _close(r.abandon_rate, th.abandon_rate, r.abandon_rate_stderr, 0.003)
    assert _close(r.asa, th.asa, r.asa_stderr, 0.2)
    assert r.occupancy == pytest.approx(th.occupancy, abs=0.015)


def test_longest_idle_spreads_calls_evenly_when_agents_answer_alike() -> None:
    # (nearly) equal handle times: every agent takes its turn (tiny drift over 20,000 calls)
    r = simulate(SimConfig(agents=8, arrival_rate=200, aht=120, calls=20_000, seed=9,
                           handle_dist="lognormal", handle_cv=0.001))
    assert max(r.calls_per_agent) - min(r.calls_per_agent) <= 2
    assert sum(r.calls_per_agent) == r.answered == 20_000


def test_linear_loads_the_first_agents_most() -> None:
    r = simulate(SimConfig(agents=5, arrival_rate=60, aht=120, calls=5_000, seed=9,
                           strategy="linear"))
    assert r.calls_per_agent == sorted(r.calls_per_agent, reverse=True)
    assert r.calls_per_agent[0] > 3 * r.calls_per_agent[-1]


def test_lognormal_and_wrap_up_run_through_the_same_engine() -> None:
    r = simulate(SimConfig(agents=6, arrival_rate=100, aht=150, calls=5_000, seed=1,
                           handle_dist="lognormal", handle_cv=0.5, wrap_up=30))
    assert r.answered == r.calls
    # wrap-up keeps agents busy: occupancy counts (talk + wrap) / staffed time
    assert r.occupancy == pytest.approx(100 * 180 / 3600 / 6, abs=0.03)


def test_simulate_is_deterministic_for_a_seed() -> None:
    cfg = SimConfig(agents=3, arrival_rate=60, aht=150, patience=40, calls=3_000, seed=11,
                    strategy="random")
    a, b = simulate(cfg), simulate(cfg)
    assert (a.calls_per_agent, a.service_level, a.asa) == (b.calls_per_agent, b.service_level,
                                                           b.asa)


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "acd", "--agents", "6", "--arrival-rate", "100", "--aht", "180",
                 "--patience", "60", "--calls", "3000", "--seed", "3", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("service_level", "asa", "abandon_rate", "calls_per_agent", "occupancy"):
        assert key in out
    assert len(out["calls_per_agent"]) == 6
    assert out["calls"] == 3000
    assert out["theory"]["model"] == "erlang_a"
    assert abs(out["abandon_rate"] - out["theory"]["abandon_rate"]) < 0.05


def test_cli_table_and_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "acd", "--agents", "2", "--arrival-rate", "30", "--aht", "100",
                 "--calls", "500", "--strategy", "fewest-calls"]) == 0
    out = capsys.readouterr().out
    assert "service level" in out and "Erlang C" in out and "calls per agent" in out
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "acd", "--agents", "0", "--arrival-rate", "30", "--aht", "100"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["simulate", "acd", "--agents", "2", "--arrival-rate", "30", "--aht", "100",
              "--strategy", "nope"])
