"""A small HTTP/1.1 server on asyncio streams for the JSON API and metrics.

No framework: routes are (method, path pattern) -> handler, handlers get a ``HttpRequest``
and return a ``HttpResponse``. Bodies are bounded, connections time out, and a handler's
exception becomes a 500 with a log line, never a dead server.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog

log = structlog.get_logger("http")

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024
READ_TIMEOUT = 15.0
REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
    413: "Payload Too Large", 422: "Unprocessable Entity", 429: "Too Many Requests",
    500: "Internal Server Error",
}


@dataclass
class HttpRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern
    #: (queues, agents) the role policy limits the answer to (None: everything), for the
    #: handlers that cut their answer themselves (a stream, a CSV)
    within: tuple[frozenset[str], frozenset[str]] | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as exc:
            raise HttpError(400, f"body is not JSON: {exc}") from None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class HttpResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    #: a streamed body (e.g. server-sent events): sent as it comes, then the connection closes
    stream: AsyncIterator[bytes] | None = None

    @classmethod
    def json(cls, data: Any, status: int = 200) -> HttpResponse:
        return cls(status, json.dumps(data, ensure_ascii=False, default=str).encode())

    @classmethod
    def text(cls, text: str, content_type: str = "text/plain; charset=utf-8") -> HttpResponse:
        return cls(200, text.encode(), content_type)


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Handler = Callable[[HttpRequest], Awaitable[HttpResponse] | HttpResponse]


class Router:
    def __init__(self, guard: Callable[[str, str, Handler], Handler] | None = None) -> None:
        """``guard(method, pattern, handler)``: what each handler is wrapped in as it is added
        (the API's roles)."""
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.guard = guard

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """``pattern`` like ``/api/agents/{id}``; ``{name}`` matches one path segment."""
        if self.guard is not None:
            handler = self.guard(method, pattern, handler)
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
        self._routes.append((method, re.compile(regex), handler))

    def find(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        allowed = False
        for route_method, regex, handler in self._routes:
            match = regex.match(path)
            if match:
                if route_method == method or (method == "HEAD" and route_method == "GET"):
                    return handler, match.groupdict()
                allowed = True
        raise HttpError(405 if allowed else 404, "method not allowed" if allowed else "not found")


class HttpServer:
    def __init__(self, router: Router, *, host: str, port: int) -> None:
        self.router = router
        self.host, self.port = host, port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    request = await asyncio.wait_for(self._read(reader), READ_TIMEOUT)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return
                except HttpError as exc:
                    await self._write(writer, HttpResponse.json({"error": exc.message},
                                                                 exc.status), False)
                    return
                if request is None:
                    return
                response = await self._dispatch(request)
                keep = request.headers.get("connection", "").lower() != "close"
                keep = keep and response.stream is None
                await self._write(writer, response, keep, head=request.method == "HEAD")
                if not keep:
                    return
        finally:
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> HttpRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise HttpError(413, "headers too large") from None
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                return None
            raise
        if len(head) > MAX_HEADER_BYTES:
            raise HttpError(413, "headers too large")
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            raise HttpError(400, "bad request line") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise HttpError(400, "bad Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise HttpError(413, "body too large")
        body = await reader.readexactly(length) if length else b""
        url = urlsplit(target)
        return HttpRequest(method.upper(), url.path, parse_qs(url.query), headers, body)

    async def _dispatch(self, request: HttpRequest) -> HttpResponse:
        try:
            handler, params = self.router.find(request.method, request.path)
            request.params = params
            result = handler(request)
            if asyncio.iscoroutine(result):
                result = await result
            assert isinstance(result, HttpResponse)
            return result
        except HttpError as exc:
            return HttpResponse.json({"error": exc.message}, exc.status)
        except Exception:
            log.exception("http_handler_failed", path=request.path)
            return HttpResponse.json({"error": "internal error"}, 500)

    @staticmethod
    async def _write(
        writer: asyncio.StreamWriter, resp: HttpResponse, keep: bool, *, head: bool = False
    ) -> None:
        reason = REASONS.get(resp.status, "Unknown")
        lines = [
            f"HTTP/1.1 {resp.status} {reason}",
            f"Content-Type: {resp.content_type}",
            *([] if resp.stream is not None else [f"Content-Length: {len(resp.body)}"]),
            "Cache-Control: no-store",
            f"Connection: {'keep-alive' if keep else 'close'}",
        ]
        lines.extend(f"{k}: {v}" for k, v in resp.headers.items())
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head:
            writer.write(resp.body)
        try:
            await writer.drain()
            if resp.stream is not None and not head:
                async for chunk in resp.stream:
                    writer.write(chunk)
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            if resp.stream is not None:
                aclose = getattr(resp.stream, "aclose", None)
                if aclose is not None:
                    await aclose()
