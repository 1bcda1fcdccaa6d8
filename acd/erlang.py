"""Erlang C (M/M/n) and Erlang A (M/M/n+M, Palm's model with exponential patience).

Rates are per second: ``lam`` arrivals, ``mu`` = 1 / mean handle time, ``theta`` = 1 / mean
patience. ``t`` is the service-level target. The service level is the fraction of *all*
offered calls answered within ``t`` (abandoned calls count against it).

Erlang A is computed exactly (up to a truncation below 1e-15 of the probability mass) from the
birth-death chain of the number of calls in the system: an arrival that finds ``j`` calls
waiting ahead advances through phases ``j, j-1, ..., 0`` at rates ``n*mu + i*theta`` (an agent
frees up, or someone ahead gives up) while its own patience runs out at rate ``theta``. That
gives P(served), the mean wait of served calls, and, by uniformization of the phase chain,
P(served within t). It agrees with Garnett, Mandelbaum and Reiman (2002) and tends to Erlang C
as ``theta -> 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class ErlangResult:
    p_wait: float  # P(an arrival finds every agent busy)
    service_level: float  # P(answered within t)
    asa: float  # mean wait of answered calls, seconds
    abandon_rate: float  # P(abandon)
    occupancy: float  # mean fraction of agents busy


def erlang_b(n: int, a: float) -> float:
    """Blocking probability of n servers offered ``a`` erlangs (stable recursion)."""
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(n: int, a: float) -> float:
    """P(wait) in M/M/n with ``a`` = lam/mu erlangs (1.0 when a >= n: the queue grows)."""
    if a >= n:
        return 1.0
    b = erlang_b(n, a)
    return n * b / (n - a * (1.0 - b))


def erlang_c_result(n: int, lam: float, mu: float, t: float) -> ErlangResult:
    a = lam / mu
    if a >= n:
        raise ValueError(f"unstable: {a:.3f} erlangs offered to {n} agents")
    c = erlang_c(n, a)
    gap = n * mu - lam
    return ErlangResult(
        p_wait=c,
        service_level=1.0 - c * math.exp(-gap * t),
        asa=c / gap,
        abandon_rate=0.0,
        occupancy=a / n,
    )


def _stationary(n: int, lam: float, mu: float, theta: float) -> np.ndarray:
    """P(k calls in system), k = 0..K, truncated where the tail is below 1e-16."""
    logs = [0.0]
    k = 0
    peak = 0.0
    while True:
        k += 1
        death = min(k, n) * mu + max(k - n, 0) * theta
        value = logs[-1] + math.log(lam / death)
        logs.append(value)
        peak = max(peak, value)
        if k > n and value < peak - 40.0 and lam < death:
            break
        if k > 10_000_000:
            raise ValueError("Erlang A: the distribution does not converge")
    arr = np.exp(np.array(logs) - peak)
    dist: np.ndarray = arr / arr.sum()
    return dist


def erlang_a(n: int, lam: float, mu: float, theta: float, t: float) -> ErlangResult:
    """M/M/n+M: n agents, Poisson arrivals, exponential handle times and patience."""
    if theta <= 0:
        return erlang_c_result(n, lam, mu, t)
    pi = _stationary(n, lam, mu, theta)
    p_nowait = float(pi[:n].sum())
    p = pi[n:]  # an arrival finds j = 0, 1, ... calls waiting ahead (PASTA)
    jmax = len(p)
    r = n * mu + theta * np.arange(jmax)  # leave phase j towards the agent
    q = r + theta  # leave phase j at all (advance or give up)
    h = np.cumprod(r / q)  # P(served | starting in phase j)
    p_served = p_nowait + float((p * h).sum())
    # expected visits to phase j: v_j = p_j + v_{j+1} * r_{j+1} / q_{j+1}
    v = np.empty(jmax)
    acc = 0.0
    for j in range(jmax - 1, -1, -1):
        acc = p[j] + (acc * r[j + 1] / q[j + 1] if j + 1 < jmax else 0.0)
        v[j] = acc
    wait_served = float((v / q * h).sum())
    return ErlangResult(
        p_wait=1.0 - p_nowait,
        service_level=p_nowait + _served_within(p, r, q, t),
        asa=wait_served / p_served,
        abandon_rate=1.0 - p_served,
        occupancy=lam * p_served / (n * mu),
    )


def _served_within(p: np.ndarray, r: np.ndarray, q: np.ndarray, t: float) -> float:
    """P(start in phase j ~ p, reach the agent within t), by uniformization."""
    if t <= 0:
        return 0.0
    rate = float(q[-1])
    lt = rate * t
    steps = int(lt + 12.0 * math.sqrt(lt) + 30)
    stay = 1.0 - q / rate
    down = r / rate  # phase j -> j-1, and phase 0 -> served
    x = p.astype(float).copy()
    served = 0.0
    total = 0.0
    log_lt = math.log(lt)
    for m in range(steps + 1):
        weight = math.exp(-lt + m * log_lt - math.lgamma(m + 1))
        total += weight * served
        # one step of the discrete chain
        served += float(x[0] * down[0])
        moved = x * down
        x = x * stay
        x[:-1] += moved[1:]
    return total
