"""Dialer pacing: how many new lines to dial now (pure, injected time).

A pacer gets a :class:`PacingSnapshot` (agents, calls in flight, estimates, abandon rates) and
returns a number of new calls to place. Pacers are small classes behind :class:`Pacer` and a
registry (:func:`register_pacer`, :func:`make_pacer`), in the style of aioquic's congestion
control. :class:`Stats` turns observed outcomes into exponentially weighted estimates.

Modes: ``predictive`` (our model-based pacing), ``progressive`` (one call per free agent),
``power`` (fixed lines per free agent), ``preview`` (the agent starts each call),
``adaptive-baseline`` (VICIdial's adaptive rule, see :class:`VicidialAdaptivePacer`) and the
experimental ``predictive-marginal`` (see :class:`MarginalPacer`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import numpy as np

#: default ceiling of the abandon rate (FTC / Ofcom: 3 % of live answers)
DEFAULT_ABANDON_LIMIT = 0.03
#: an answered call that finds no agent within this many seconds is abandoned
ABANDON_GRACE = 2.0


def _ndtr(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF, vectorised (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7)."""
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-z * z)
    cdf: np.ndarray = 0.5 * (1.0 + np.where(x >= 0, erf, -erf))
    return cdf


def _count_cdf(mean: np.ndarray, var: np.ndarray, jmax: int) -> np.ndarray:
    """``P(N <= j)`` for ``j < jmax``, rows by ``mean``: ``N`` a sum of independent Bernoullis.

    The sum (a Poisson-binomial count) is approximated by the binomial with the same mean and
    variance, ``n = mean / p`` trials of ``p = 1 - var / mean`` (real ``n``), which is exact when
    the probabilities are equal and much closer than a Poisson when they are not small.
    """
    mean = np.maximum(mean, 1e-12)
    p = np.clip(1.0 - var / mean, 1e-6, 1.0 - 1e-6)[:, None]
    n = mean[:, None] / p
    js = np.arange(1, jmax, dtype=float)[None, :]
    ratio = np.maximum(n - js + 1.0, 0.0) / js * (p / (1.0 - p))
    first = np.exp(n * np.log1p(-p))
    terms = np.concatenate([first, first * np.cumprod(ratio, axis=1)], axis=1)
    cdf: np.ndarray = np.minimum(np.cumsum(terms, axis=1), 1.0)
    return cdf


@dataclass(frozen=True, slots=True)
class LogNormal:
    """A log-normal duration: ``log(T) ~ N(mu, sigma²)``."""

    mu: float
    sigma: float

    @classmethod
    def from_mean(cls, mean: float, cv: float = 1.0) -> LogNormal:
        """The log-normal with this mean and coefficient of variation."""
        s2 = math.log1p(cv * cv)
        return cls(math.log(mean) - s2 / 2, math.sqrt(s2))

    @property
    def mean(self) -> float:
        return math.exp(self.mu + self.sigma * self.sigma / 2)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """P(T <= x), elementwise (0 for x <= 0)."""
        safe = np.maximum(x, 1e-9)
        return np.where(x > 0, _ndtr((np.log(safe) - self.mu) / self.sigma), 0.0)


@dataclass(frozen=True, slots=True)
class Estimates:
    """What the pacer believes about the list and the agents right now."""

    answer_rate: float = 0.3  #: P(a dial is answered by someone who needs an agent)
    ring: LogNormal = field(default_factory=lambda: LogNormal.from_mean(10.0, 0.6))
    talk: LogNormal = field(default_factory=lambda: LogNormal.from_mean(120.0, 1.0))
    wrapup: LogNormal = field(default_factory=lambda: LogNormal.from_mean(20.0, 0.3))


@dataclass(frozen=True, slots=True)
class PacingSnapshot:
    """Everything a pacer may look at, taken at ``now`` (seconds, monotonic)."""

    now: float
    free_agents: int  #: logged in, not paused, waiting for a call
    talking: tuple[float, ...] = ()  #: elapsed talk time of each agent on a call
    wrapping: tuple[float, ...] = ()  #: elapsed wrap-up time of each agent in wrap-up
    ringing: tuple[float, ...] = ()  #: elapsed ring time of each call being dialled
    waiting: int = 0  #: answered calls waiting (< 2 s) for an agent
    paused_agents: int = 0
    estimates: Estimates = field(default_factory=Estimates)
    abandon_rate_24h: float = 0.0
    abandon_rate_30d: float = 0.0
    answered_24h: int = 0  #: live answers behind abandon_rate_24h (its confidence)
    dials_today: int = 0
    answered_today: int = 0
    abandoned_today: int = 0
    limit: float = DEFAULT_ABANDON_LIMIT
    max_ring: float = 30.0
    max_lines: int | None = None  #: trunk capacity for this campaign, if limited

    @property
    def agents(self) -> int:
        """Agents available to the campaign (not paused)."""
        return self.free_agents + len(self.talking) + len(self.wrapping)

    def cap(self, n: int) -> int:
        """``n`` clipped to ``[0, trunk room]``."""
        if self.max_lines is not None:
            n = min(n, self.max_lines - len(self.ringing) - self.waiting - len(self.talking))
        return max(0, n)


class Pacer:
    """Base class: subclasses set ``name`` and implement :meth:`lines_to_dial`."""

    name: ClassVar[str] = ""
    #: each call belongs to one agent who starts it (preview) rather than to the pool
    agent_initiated: ClassVar[bool] = False

    def lines_to_dial(self, snap: PacingSnapshot) -> int:
        raise NotImplementedError


PACERS: dict[str, type[Pacer]] = {}


_P = TypeVar("_P", bound=type[Pacer])


def register_pacer(cls: _P) -> _P:
    """Class decorator: make a pacer available under ``cls.name``."""
    PACERS[cls.name] = cls
    return cls


def make_pacer(name: str, **options: float) -> Pacer:
    """A new pacer of the named mode; ``options`` go to its constructor."""
    try:
        cls = PACERS[name]
    except KeyError:
        raise ValueError(f"unknown dial mode {name!r}; known: {', '.join(PACERS)}") from None
    return cls(**options)


@register_pacer
class ProgressivePacer(Pacer):
    """One call in flight per free agent: no call can ever find no agent."""

    name = "progressive"

    def lines_to_dial(self, snap: PacingSnapshot) -> int:
        return snap.cap(snap.free_agents - len(snap.ringing) - snap.waiting)


@register_pacer
class PreviewPacer(ProgressivePacer):
    """The agent sees the contact and starts the call: at most one call per free agent.

    The runner (or simulator) reserves the agent for ``preview_seconds`` before dialling.
    """

    name = "preview"
    agent_initiated = True

    def __init__(self, *, preview_seconds: float = 10.0) -> None:
        self.preview_seconds = preview_seconds


@register_pacer
class PowerPacer(Pacer):
    """Fixed ratio: keep ``ratio`` lines in flight per free agent."""

    name = "power"

    def __init__(self, *, ratio: float = 2.0) -> None:
        if ratio < 1.0:
            raise ValueError("power ratio must be >= 1")
        self.ratio = ratio

    def lines_to_dial(self, snap: PacingSnapshot) -> int:
        goal = math.ceil(self.ratio * snap.free_agents - 1e-9)
        return snap.cap(goal - len(snap.ringing) - snap.waiting)


@dataclass(frozen=True, slots=True)
class _Projection:
    """What :meth:`PredictivePacer._project` sees coming, per second ``t = 1 .. horizon``."""

    mean_a: np.ndarray  #: mean of the answers by t of the calls in flight (and waiting)
    var_a: np.ndarray  #: their variance
    q0: np.ndarray  #: P(one new dial is answered by t)
    var0: np.ndarray  #: q0 (1 - q0)
    density: np.ndarray  #: P(a new dial is answered in second t | answered)
    m0: np.ndarray  #: agents free by t, integer part
    frac0: np.ndarray  #: and fractional part
    m2: np.ndarray  #: agents free by t + 2, integer part
    frac2: np.ndarray  #: and fractional part
    jmax: int
    rows: np.ndarray


@register_pacer
@dataclass(kw_only=True, eq=False)
class PredictivePacer(Pacer):
    """Model-based predictive pacing.

    Over the next ``max_ring + 2`` s, second by second, it projects ``A(t)``, the calls answered
    by ``t`` (the waiting ones, plus each call in flight by its answer probability and
    time-to-answer distribution conditioned on the ring time already elapsed; their sum taken
    as the binomial of the same mean and variance) and ``B(t)``, the agents free by ``t``: free now, in wrap-up (its end is
    near-certain when wrap-up is a campaign timer), or ending a call in time to wrap up.

    Answers are matched to agents first come, first served and one answered at ``t`` may take
    any agent free by ``t + 2``, so at least ``max_t (A(t) - B(t + 2))`` answers find nobody.
    A new dial answered at ``t`` adds one abandon (its own or a later call's) when ``A(t')``
    reaches ``B(t' + 2)`` at some ``t' >= t``; its *risk* is that probability (bounded below by
    the largest single ``P(A(t') >= B(t' + 2))``) averaged over when it is answered. Dials are
    added one by one while the risk stays under :meth:`target`, which steers the measured abandon
    rate to ``aim * limit``, is raised by ``idle_boost`` per agent idle with no call on its way,
    and is zero at the limit, where the pacer dials only what progressive
    would, which cannot abandon.

    The steering is steep (``gain``: the allowed risk falls to a third as the measured rate goes
    from ``aim * limit`` to the limit), so the limit itself is seldom reached; ``slack`` abandons
    over the limit are tolerated before falling back to progressive, because a few early
    abandons over few answers say little, while minutes of progressive dialling cost much
    occupancy.
    """

    name = "predictive"

    aim: float = 0.9
    base_scale: float = 1.0
    gain: float = 12.0
    max_scale: float = 3.0
    max_per_agent: float = 4.0
    confidence_answers: float = 200.0
    idle_boost: float = 0.5
    slack: float = 4.0
    _tables: dict[tuple[LogNormal, float, float], np.ndarray] = field(
        default_factory=dict, init=False, repr=False)

    def _cdf(self, dist: LogNormal, x: np.ndarray, step: float, span: float) -> np.ndarray:
        """``dist.cdf(x)`` from a table on a ``step`` grid over ``[0, span]`` (cached)."""
        key = (dist, step, span)
        table = self._tables.get(key)
        if table is None:
            if len(self._tables) > 16:
                self._tables.clear()
            table = dist.cdf(np.arange(0.0, span + 2 * step, step))
            self._tables[key] = table
        idx = np.clip(x * (1.0 / step), 0.0, len(table) - 2)
        lo = idx.astype(np.intp)
        frac = idx - lo
        return table[lo] * (1 - frac) + table[lo + 1] * frac

    def _conditional(
        self, dist: LogNormal, elapsed: np.ndarray, until: np.ndarray, step: float, span: float
    ) -> np.ndarray:
        """P(T <= until | T > elapsed), elementwise."""
        f_e = self._cdf(dist, elapsed, step, span)
        f_u = self._cdf(dist, until, step, span)
        p: np.ndarray = np.clip((f_u - f_e) / np.maximum(1.0 - f_e, 1e-12), 0.0, 1.0)
        return p

    def _project(self, snap: PacingSnapshot) -> _Projection:
        """Answers ``A(t)`` and agents free by ``t`` and ``t + 2`` over the next ``max_ring + 1`` s."""
        est = snap.estimates
        p = min(max(est.answer_rate, 1e-3), 1.0)
        max_ring = snap.max_ring
        horizon = int(math.ceil(max_ring)) + 1
        ts = np.arange(1.0, horizon + 1.0)
        span = max_ring + horizon

        # answers by t: of the calls in flight, and of one new dial
        g_max = max(float(self._cdf(est.ring, np.array([max_ring]), 0.1, span)[0]), 1e-9)
        q0 = p * self._cdf(est.ring, np.minimum(ts, max_ring), 0.1, span) / g_max
        mean_a = np.full(horizon, float(snap.waiting))
        var_a = np.zeros(horizon)
        if snap.ringing:
            r = np.array(snap.ringing)
            g_r = self._cdf(est.ring, r, 0.1, span) / g_max
            g_rt = self._cdf(est.ring, np.minimum(r[:, None] + ts, max_ring), 0.1, span) / g_max
            q = p * (g_rt - g_r[:, None]) / np.maximum(1.0 - p * g_r, 1e-9)[:, None]
            q = np.clip(q, 0.0, 1.0)
            mean_a += q.sum(axis=0)
            var_a += (q * (1.0 - q)).sum(axis=0)

        # agents free by t and by t + 2
        tb = np.concatenate([ts, ts + ABANDON_GRACE])
        free_b = np.full(2 * horizon, float(snap.free_agents))
        if snap.wrapping:
            w = np.array(snap.wrapping)[:, None]
            free_b += self._conditional(est.wrapup, w, w + tb, 0.05, 900.0).sum(axis=0)
        if snap.talking:
            e = np.array(snap.talking)[:, None]
            until = e + tb - est.wrapup.mean
            free_b += self._conditional(est.talk, e, until, 0.5, 7200.0).sum(axis=0)
        base = np.floor(free_b + 1e-6)
        m = base.astype(np.intp)
        return _Projection(
            mean_a=mean_a,
            var_a=var_a,
            q0=q0,
            var0=q0 * (1.0 - q0),
            density=np.diff(q0, prepend=0.0) / max(float(q0[-1]), 1e-9),
            m0=m[:horizon],
            frac0=(free_b - base)[:horizon],
            m2=m[horizon:],
            frac2=(free_b - base)[horizon:],
            jmax=int(m.max()) + 2,
            rows=np.arange(horizon),
        )

    def target(self, snap: PacingSnapshot) -> float:
        """The abandon risk allowed for one more dial (0 once the measured rate hits the limit)."""
        measured = max(snap.abandon_rate_24h, snap.abandon_rate_30d)
        # at the limit (``slack`` abandons over it, so that the first minutes are not progressive)
        if measured * snap.answered_24h >= snap.limit * snap.answered_24h + self.slack - 1e-9:
            return 0.0
        if measured >= snap.limit and snap.answered_24h >= 1000:
            return 0.0
        # few answers so far: trust the measured rate only as far as it is measured
        weight = snap.answered_24h / (snap.answered_24h + self.confidence_answers)
        error = weight * (self.aim * snap.limit - measured) / snap.limit
        scale = self.base_scale * math.exp(self.gain * error)
        return snap.limit * min(scale, self.max_scale)

    def lines_to_dial(self, snap: PacingSnapshot) -> int:
        floor = snap.free_agents - len(snap.ringing) - snap.waiting
        if snap.agents == 0:
            return 0
        target = self.target(snap)
        k_max = int(self.max_per_agent * snap.agents) - len(snap.ringing)
        if target <= 0.0 or k_max <= max(floor, 0):
            return snap.cap(floor)
        proj = self._project(snap)
        mean_a, var_a, q0, var0 = proj.mean_a, proj.var_a, proj.q0, proj.var0
        m, frac, jmax, density, rows = proj.m2, proj.frac2, proj.jmax, proj.density, proj.rows
        # agents idle now are the most costly: allow more risk to feed them
        target *= 1.0 + self.idle_boost * max(floor, 0)
        k = 0
        while k < k_max:
            cdf = _count_cdf(mean_a + k * q0, var_a + k * var0, jmax)
            below = np.where(m > 0, cdf[rows, np.maximum(m - 1, 0)], 0.0)
            p_over = 1.0 - ((1.0 - frac) * below + frac * cdf[rows, m])
            # answered at t, it costs an abandon if the others reach the agents at any t' >= t
            reach = np.maximum.accumulate(p_over[::-1])[::-1]
            if float(density @ reach) > target:
                break
            k += 1
        return snap.cap(max(k, floor))


@register_pacer
class MarginalPacer(PredictivePacer):
    """Predictive pacing by marginal analysis: each dial's idle time saved against its risk.

    On the projection of :class:`PredictivePacer`, the ``k``-th new dial *saves*
    ``sum_t P(answered by t) P(A(t) < B(t))`` agent-seconds over the next ``window`` s (an agent
    idle at ``t`` is busy one second more) and *costs* its abandon risk. Dials are added while
    ``saving >= price * risk``; the shadow price of an abandon, ``price``, rises exponentially as
    the measured abandon rate goes over ``aim * limit`` and falls under it, so the abandon budget
    is spent where it buys the most agent time. At the limit it dials only what progressive would.

    Experimental: on the issue-5 scenario it does not beat ``predictive`` (78.9 % occupancy at
    2.6 % abandons, seeds 1-5), so it is not the default.
    """

    name = "predictive-marginal"

    def __init__(
        self,
        *,
        price: float = 60.0,
        window: float = 10.0,
        aim: float = 0.95,
        gain: float = 12.0,
        max_scale: float = 10.0,
        max_per_agent: float = 4.0,
        confidence_answers: float = 200.0,
        slack: float = 4.0,
    ) -> None:
        super().__init__(aim=aim, gain=gain, max_scale=max_scale, max_per_agent=max_per_agent,
                         confidence_answers=confidence_answers, slack=slack)
        self.price = price
        self.window = window

    def shadow_price(self, snap: PacingSnapshot) -> float:
        """Agent-seconds one abandon is worth now (infinite at the limit)."""
        target = self.target(snap)
        if target <= 0.0:
            return math.inf
        return self.price * snap.limit / target

    def lines_to_dial(self, snap: PacingSnapshot) -> int:
        floor = snap.free_agents - len(snap.ringing) - snap.waiting
        if snap.agents == 0:
            return 0
        price = self.shadow_price(snap)
        k_max = int(self.max_per_agent * snap.agents) - len(snap.ringing)
        if math.isinf(price) or k_max <= max(floor, 0):
            return snap.cap(floor)
        proj = self._project(snap)
        rows, jmax = proj.rows, proj.jmax
        m0, m2 = proj.m0, proj.m2
        near = proj.q0 * (np.arange(1, len(rows) + 1) <= self.window)
        k = 0
        while k < k_max:
            cdf = _count_cdf(proj.mean_a + k * proj.q0, proj.var_a + k * proj.var0, jmax)
            below0 = np.where(m0 > 0, cdf[rows, np.maximum(m0 - 1, 0)], 0.0)
            p_idle = (1.0 - proj.frac0) * below0 + proj.frac0 * cdf[rows, m0]
            below2 = np.where(m2 > 0, cdf[rows, np.maximum(m2 - 1, 0)], 0.0)
            p_over = 1.0 - ((1.0 - proj.frac2) * below2 + proj.frac2 * cdf[rows, m2])
            reach = np.maximum.accumulate(p_over[::-1])[::-1]
            risk = float(proj.density @ reach)
            saving = float(near @ p_idle)
            if saving < price * risk:
                break
            k += 1
        return snap.cap(max(k, floor))


@register_pacer
class VicidialAdaptivePacer(Pacer):
    """VICIdial's adaptive predictive rule (``dial_method`` ADAPT_HARD_LIMIT), reproduced.

    Source: VICIdial ``bin/AST_VDadapt.pl`` (v2.4, ``count_agents_lines`` and
    ``calculate_dial_level``) and ``bin/AST_VDauto_dial.pl`` (goal calls), AGPLv2, read in
    public mirrors (e.g. github.com/inktel/Vicidial); re-implemented here, not copied.
    Our reading:

    * Every second it samples READY agents, LIVE calls (answered, waiting for an agent) and
      logged-in agents; the *differential* is the mean over the last 15 samples of
      ``ready - waiting``.
    * Every 15 s: ``mul = (differential + adaptive_dl_diff_target) / mean agents``; the
      intensity (``adaptive_intensity``, -40..40, default 0) scales it by
      ``1 + intensity/100`` when positive and ``|intensity/100 - 1|`` when negative; the new
      ``auto_dial_level = auto_dial_level * (1 + mul * scale)``, capped at
      ``adaptive_maximum_level`` (default 3.0) and raised to at least 1.0.
    * Then: if more than 20 calls were placed in the last minute and over 50 % of them were
      dropped, the level is halved; if more than 50 calls were placed today and today's drops
      per human answer exceed ``adaptive_dropped_percentage`` (3 %), ADAPT_HARD_LIMIT sets the
      level to 1.0. The level never goes below 1.0.
    * The dialling loop (AST_VDauto_dial) places ``round(level * agents) - existing`` calls,
      where ``agents`` are READY + INCALL agents (agents dispositioning a call show as PAUSED,
      so wrap-up is left out) and ``existing`` are the campaign's calls ringing, waiting or
      connected to an agent. At level 1.0 this is exactly progressive dialling.
    """

    name = "adaptive-baseline"

    def __init__(
        self,
        *,
        dial_level: float = 1.0,
        max_level: float = 3.0,
        intensity: float = 0.0,
        diff_target: float = 0.0,
        adapt_every: float = 15.0,
        samples: int = 15,
    ) -> None:
        self.level = dial_level
        self.max_level = max_level
        self.intensity = intensity
        self.diff_target = diff_target
        self.adapt_every = adapt_every
        self._samples: deque[tuple[int, int, int]] = deque(maxlen=samples)
        self._last_sample: float | None = None
        self._last_adapt: float | None = None
        self._minute: deque[tuple[float, int, int]] = deque()  # (now, dials, drops) history

    def _adapt(self, snap: PacingSnapshot) -> None:
        n = len(self._samples)
        ready = sum(s[0] for s in self._samples) / n
        waiting = sum(s[1] for s in self._samples) / n
        agents = sum(s[2] for s in self._samples) / n
        differential = ready - waiting + self.diff_target
        mul = differential / agents if agents and differential else 0.0
        scale = self.intensity / 100
        mul *= abs(scale - 1) if mul < 0 else scale + 1
        level = min(self.level * (1 + mul), self.max_level)
        level = max(level, 1.0)
        # last-minute drop check
        while self._minute and self._minute[0][0] < snap.now - 60:
            self._minute.popleft()
        if self._minute:
            calls_one = snap.dials_today - self._minute[0][1]
            drops_one = snap.abandoned_today - self._minute[0][2]
            if calls_one > 20 and drops_one / calls_one > 0.5:
                level /= 2
        if snap.dials_today > 50:
            answers = max(snap.answered_today, 1)
            if snap.abandoned_today / answers > snap.limit:
                level = 1.0  # ADAPT_HARD_LIMIT
        self.level = max(level, 1.0)

    def lines_to_dial(self, snap: PacingSnapshot) -> int:
        if self._last_sample is None or snap.now - self._last_sample >= 1.0:
            self._last_sample = snap.now
            logged_in = snap.agents + snap.paused_agents
            self._samples.append((snap.free_agents, snap.waiting, logged_in))
            self._minute.append((snap.now, snap.dials_today, snap.abandoned_today))
        if self._last_adapt is None:
            self._last_adapt = snap.now
        elif snap.now - self._last_adapt >= self.adapt_every:
            self._last_adapt = snap.now
            self._adapt(snap)
        agents = snap.free_agents + len(snap.talking)
        goal = round(self.level * agents)
        existing = len(snap.ringing) + snap.waiting + len(snap.talking)
        return snap.cap(goal - existing)


class Stats:
    """Exponentially weighted estimates of the list and agents, fed by outcomes.

    Durations are tracked as the mean and variance of their logarithm (a log-normal fit).
    ``alpha`` is the weight of one new observation once warmed up; before that the ``n``-th
    observation weighs ``1 / (n + prior_weight)`` (a running mean that starts from the prior),
    so the first minutes of a campaign do not dial on the prior's guesses.
    """

    def __init__(
        self,
        prior: Estimates | None = None,
        *,
        alpha_answer: float = 0.003,
        alpha_duration: float = 0.01,
        min_sigma: float = 0.01,
        prior_weight: float = 20.0,
    ) -> None:
        prior = prior or Estimates()
        self._answer = prior.answer_rate
        self._alpha_answer = alpha_answer
        self._prior_weight = prior_weight
        self._counts = {"answer": 0, "ring": 0, "talk": 0, "wrapup": 0}
        self._alpha = alpha_duration
        self._min_sigma = min_sigma
        self._logs = {
            "ring": [prior.ring.mu, prior.ring.sigma**2],
            "talk": [prior.talk.mu, prior.talk.sigma**2],
            "wrapup": [prior.wrapup.mu, prior.wrapup.sigma**2],
        }
        self._dists: dict[str, LogNormal] = {}
        self._cached: Estimates | None = prior

    def on_dial_result(self, answered: bool, ring_time: float | None = None) -> None:
        """A dial finished ringing: answered (after ``ring_time`` s) or not."""
        self._answer += self._weight("answer", self._alpha_answer) * (
            float(answered) - self._answer
        )
        if answered and ring_time is not None:
            self._observe("ring", ring_time)
        self._cached = None

    def on_talk(self, seconds: float) -> None:
        self._observe("talk", seconds)

    def on_wrapup(self, seconds: float) -> None:
        self._observe("wrapup", seconds)

    def _observe(self, key: str, seconds: float) -> None:
        x = math.log(max(seconds, 0.1))
        m = self._logs[key]
        d = x - m[0]
        alpha = self._weight(key, self._alpha)
        m[0] += alpha * d
        m[1] = (1 - alpha) * (m[1] + alpha * d * d)
        self._dists.pop(key, None)
        self._cached = None

    def _weight(self, key: str, alpha: float) -> float:
        n = self._counts[key] = self._counts[key] + 1
        return max(alpha, 1.0 / (n + self._prior_weight))

    def _dist(self, key: str) -> LogNormal:
        dist = self._dists.get(key)
        if dist is None:
            mu, var = self._logs[key]
            dist = self._dists[key] = LogNormal(mu, max(math.sqrt(var), self._min_sigma))
        return dist

    def estimates(self) -> Estimates:
        """The current estimates (cached until the next observation)."""
        if self._cached is None:
            self._cached = Estimates(
                answer_rate=self._answer,
                ring=self._dist("ring"),
                talk=self._dist("talk"),
                wrapup=self._dist("wrapup"),
            )
        return self._cached

