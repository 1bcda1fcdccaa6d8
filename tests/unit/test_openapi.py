"""The HTTP API against its OpenAPI document, property-based (hypothesis).

The real ``Application`` is built (no sockets: requests go straight to the HTTP server's
dispatcher). For random operations, path parameters, query strings and credentials: a request
without a valid token gets 401 (a read token on an admin route 403), and every answer has a
status the document lists for that operation, with a JSON body matching its schema.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import callcenter.app  # noqa: F401  (every module describes its routes on import)
from callcenter.cli import load_setup
from callcenter.log import configure_logging
from callcenter.store.records import CallRecord
from callcenter.web.http import HttpRequest, HttpResponse
from callcenter.web.openapi import spec

SPEC = spec()
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
# path-level parameters (OpenAPI 3.1 §4.8.9) apply to every operation of the path
OPERATIONS = [
    (path, method.upper(),
     {**op, "parameters": [*item.get("parameters", []), *op.get("parameters", [])]})
    for path, item in SPEC["paths"].items() for method, op in item.items() if method in METHODS
]
TOKENS = {"admin": "demo-admin-token", "read": "demo-wallboard-token"}


class Harness:
    def __init__(self, tmp: Path) -> None:
        from callcenter.app import Application

        configure_logging("error", "json", None)
        cfg, dialplan, _ = load_setup(None)
        cfg = cfg.model_copy(update={"database": tmp / "api.db"})
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)

        async def build() -> Application:
            app = Application(cfg, dialplan)
            app.stack.loop = self.loop  # the clock the ACD reads; nothing is bound
            await app.queues.start()
            return app

        self.app = self.loop.run_until_complete(build())
        self.app.store.start_call(CallRecord(id="c1", sip_call_id="x@y", direction="inbound",
                                             caller="48221234567", called="0800123456",
                                             source="trunk:pstn", start=1.0e9))

    def request(self, method: str, path: str, query: dict[str, list[str]],
                headers: dict[str, str], body: bytes = b"") -> HttpResponse:
        req = HttpRequest(method, path, query, headers, body)
        resp = self.loop.run_until_complete(self.app.http._dispatch(req))
        if resp.stream is not None:
            first = self.loop.run_until_complete(resp.stream.__anext__())
            assert first.startswith(b"retry:")
            self.loop.run_until_complete(resp.stream.aclose())
        return resp

    def close(self) -> None:
        self.loop.run_until_complete(self.app.queues.close())
        self.app.store.close()
        self.loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("openapi"))
    yield h
    h.close()


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        node: Any = SPEC
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        return dict(node)
    return schema


def check(value: Any, schema: dict[str, Any], where: str = "$") -> None:
    """A small JSON-schema subset: type, enum, const, properties, required, items, allOf."""
    schema = _resolve(schema)
    for sub in schema.get("allOf", []):
        check(value, sub, where)
    if "const" in schema:
        assert value == schema["const"], where
    if "enum" in schema:
        assert value in schema["enum"], (where, value)
    kinds = schema.get("type")
    if kinds:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        py = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
              "integer": int, "number": (int, float)}
        ok = any(isinstance(value, py[k]) and not (k in ("integer", "number")
                                                    and isinstance(value, bool)) for k in kinds)
        assert ok, (where, value, kinds)
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, (where, key)
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                check(value[key], sub, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            check(item, schema["items"], f"{where}[{i}]")


def _param_value(param: dict[str, Any]) -> st.SearchStrategy[str]:
    schema = param["schema"]
    valid: st.SearchStrategy[str]
    if "enum" in schema:
        valid = st.sampled_from([str(v) for v in schema["enum"]])
    elif schema.get("format") == "date":
        valid = st.dates().map(lambda d: d.isoformat())
    elif schema.get("type") == "integer":
        valid = st.integers(schema.get("minimum", -5), schema.get("maximum", 2000)).map(str)
    else:
        valid = st.sampled_from(["c1", "1001", "sales", "queue.,agent."])
    junk = st.text(st.characters(codec="utf-8", exclude_characters="/?#"), min_size=1,
                   max_size=12)
    return st.one_of(valid, junk)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, Any], dict[str, list[str]],
                                       dict[str, str], str]:
    path, method, op = draw(st.sampled_from(OPERATIONS))
    concrete = path
    query: dict[str, list[str]] = {}
    for param in op.get("parameters", []):
        if param["name"] == "token":
            continue
        if param["in"] == "path":
            concrete = concrete.replace("{" + param["name"] + "}", draw(_param_value(param)))
        elif param.get("required") or draw(st.booleans()):
            query[param["name"]] = [draw(_param_value(param))]
    who = draw(st.sampled_from(["none", "garbage", "scheme", "read", "admin"]))
    headers = {}
    if who in TOKENS:
        headers["authorization"] = f"Bearer {TOKENS[who]}"
    elif who == "garbage":
        headers["authorization"] = "Bearer " + draw(st.text(
            st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30))
    elif who == "scheme":
        headers["authorization"] = f"Basic {TOKENS['admin']}"
    return concrete, method, op, query, headers, who


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(requests())
def test_every_answer_is_documented(harness: Harness, case: tuple[Any, ...]) -> None:
    path, method, op, query, headers, who = case
    resp = harness.request(method, path, query, headers)
    documented = op["responses"]
    assert str(resp.status) in documented, (method, path, who, resp.status, resp.body[:200])
    secured = op.get("security", SPEC["security"]) != []
    if secured and who not in TOKENS:
        assert resp.status == 401, (method, path, who, resp.status)
    if secured and who == "read" and "403" in documented:
        assert resp.status == 403
    media = documented[str(resp.status)].get("content", {})
    if "application/json" in media and resp.content_type == "application/json":
        check(json.loads(resp.body), media["application/json"]["schema"])


def test_every_api_route_is_documented(harness: Harness) -> None:
    routed = {(m, rx.pattern) for m, rx, _ in harness.app.api.router._routes
              if rx.pattern.startswith("^/api/")}
    documented = {(m, "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", p) + "$")
                  for p, m, _ in OPERATIONS}
    missing = routed - documented
    assert not missing, f"routes not in the OpenAPI document: {sorted(missing)}"


def test_openapi_json_is_served_without_token(harness: Harness) -> None:
    resp = harness.request("GET", "/api/openapi.json", {}, {})
    assert resp.status == 200
    assert json.loads(resp.body)["paths"].keys() == SPEC["paths"].keys()


def test_query_token_works_for_csv_but_not_without(harness: Harness) -> None:
    ok = harness.request("GET", "/api/cdr.csv", {"from": ["2001-09-09"],
                                                 "token": [TOKENS["read"]]}, {})
    assert ok.status == 200 and ok.content_type.startswith("text/csv")
    lines = ok.body.decode().splitlines()
    assert lines[0].startswith("id,start,answer,end") and lines[1].startswith("c1,2001-09-09")
    assert harness.request("GET", "/api/cdr.csv", {"from": ["2001-09-09"]}, {}).status == 401
