"""ACD routes of the JSON API: live queue and agent figures, agent log-in/out and pause.

``register(router, auth, queues)`` adds them; reading needs any token, changing an agent an admin one::

    GET  /api/queues                      name, waiting, longest_wait, offered, answered,
                                          abandoned, service_level, asa, aht, ...
    GET  /api/agents                      id, state, time_in_state, reason, queues, calls, ...
    GET  /api/agents/{id}                 one agent, as in the list
    POST /api/agents/{id}/login|logout    body (optional): {"queue": "sales"}: that queue only
    POST /api/agents/{id}/pause|unpause   body for pause: {"reason": "lunch"} (name or code)
    POST /api/agents/{id}/disposition     {"code": "1"} (+ "call": id): the last queue call
    GET  /api/pause_reasons               {"1": "lunch", ...}: the config's ``pause_reasons``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from callcenter.web.http import HttpError, HttpRequest, HttpResponse, Router

if TYPE_CHECKING:
    from callcenter.calls.queues import QueueRunner
    from callcenter.web.auth import Auth

COMMANDS = ("login", "logout", "pause", "unpause", "disposition")


def register(router: Router, auth: Auth, acd: QueueRunner) -> None:
    """Add the ACD routes to ``router``."""

    def runner() -> QueueRunner:
        if acd.engine is None:
            raise HttpError(404, "the ACD is not running")
        return acd

    def queues(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        return HttpResponse.json(runner().queue_stats())

    def agents(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        return HttpResponse.json(runner().agent_stats())

    def command(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        agent, name = req.params["id"], req.params["command"]
        if name not in COMMANDS:
            raise HttpError(404, f"unknown command {name!r} (one of {', '.join(COMMANDS)})")
        body: Any = req.json() if req.body else {}
        if not isinstance(body, dict):
            raise HttpError(400, "the body must be a JSON object")
        acd = runner()
        if name == "disposition":
            return disposition(acd, agent, body)
        queue = body.get("queue")
        try:
            ok = acd.agent_command(agent, name, str(body.get("reason", "")),
                                   None if queue is None else str(queue))
        except KeyError:
            raise HttpError(404, f"no agent {agent!r}") from None
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        state = next(a for a in acd.agent_stats() if a["id"] == agent)
        if not ok:
            return HttpResponse.json(
                {"error": f"cannot {name} while {state['state']}", "agent": state}, 409)
        return HttpResponse.json(state)

    def disposition(acd: QueueRunner, agent: str, body: dict[str, Any]) -> HttpResponse:
        code, call = body.get("code"), body.get("call")
        if not isinstance(code, str) or not code:
            raise HttpError(400, "code: a disposition code of the call's queue is required")
        try:
            return HttpResponse.json(acd.dispose(agent, code, None if call is None else str(call)))
        except KeyError:
            raise HttpError(404, f"agent {agent!r} has no such queue call in the last hour") \
                from None
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None

    def agent(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        if req.params["id"] not in runner().engine.agent_ids:  # type: ignore[union-attr]
            raise HttpError(404, f"no agent {req.params['id']!r}")
        return HttpResponse.json(runner().agent_stats(req.params["id"])[0])

    def pause_reasons(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        return HttpResponse.json(dict(acd.cfg.pause_reasons))

    router.add("GET", "/api/pause_reasons", pause_reasons)
    router.add("GET", "/api/queues", queues)
    router.add("GET", "/api/agents", agents)
    router.add("GET", "/api/agents/{id}", agent)
    router.add("POST", "/api/agents/{id}/{command}", command)
