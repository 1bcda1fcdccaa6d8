"""The wallboard and the agent's desk: static HTML, CSS and JS from ``callcenter/web/static/``.

    GET /wallboard                 the page (no token needed: it holds no data)
    GET /wallboard/<file>          wallboard.js, wallboard.css
    GET /desk                      the agent's desk (it signs in with its own user)
    GET /desk/supervisor           the supervisor's view of its queues (agents, calls, listen)
    GET /desk/<file>               desk.js, desk.css
    GET /desk/call/<id>            the desk for one call's card (the ringing phone's Call-Info)

The page asks for a token once (or takes ``/wallboard?token=...``, keeps it in the browser's
localStorage and drops it from the address bar) and reads /api/queues, /api/agents,
/api/stats/intervals and the live stream /api/events/stream with it.
"""

from __future__ import annotations

from pathlib import Path

from callcenter.web.http import HttpError, HttpResponse, Router

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def _file(name: str) -> HttpResponse:
    path = (STATIC / name).resolve()
    if path.parent != STATIC or path.suffix not in TYPES or not path.is_file():
        raise HttpError(404, "not found")
    return HttpResponse(200, path.read_bytes(), TYPES[path.suffix],
                        {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


def register(router: Router) -> None:
    """Add /wallboard and its assets to ``router``."""
    router.add("GET", "/wallboard", lambda req: _file("wallboard.html"))
    router.add("GET", "/wallboard/{name}", lambda req: _file(req.params["name"]))
    router.add("GET", "/desk", lambda req: _file("desk.html"))
    router.add("GET", "/desk/supervisor", lambda req: _file("supervisor.html"))
    router.add("GET", "/desk/{name}", lambda req: _file(req.params["name"]))
    router.add("GET", "/desk/call/{id}", lambda req: _file("desk.html"))  # phones' Call-Info
