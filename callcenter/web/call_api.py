"""``POST /api/calls/{id}/transfer {"to": "1003" | "<queue>" | "<line>"}``: a blind transfer of
a live call's caller to a user, a queue or a dialplan line; the party the caller talks to is
released once the target has the call (when the target does not answer, the two talk again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenter.calls.call import LegState
from callcenter.sip.errors import SipError
from callcenter.web import openapi
from callcenter.web.http import HttpError, HttpRequest, HttpResponse, Router

if TYPE_CHECKING:
    from callcenter.calls.b2bua import B2BUA
    from callcenter.calls.transfer import Transfers
    from callcenter.web.auth import Auth


def register(router: Router, auth: Auth, b2bua: B2BUA, transfers: Transfers) -> None:
    def transfer(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        call = b2bua.calls.get(req.params["id"])
        if call is None:
            raise HttpError(404, "no such live call")
        data = req.json()
        to = data.get("to") if isinstance(data, dict) else None
        if isinstance(to, int) and not isinstance(to, bool):
            to = str(to)
        if not isinstance(to, str) or not to:
            raise HttpError(400, 'expected {"to": "<user, queue or line>"}')
        leg = call.caller_leg
        transferor = b2bua.partner(leg) if leg and leg.state is LegState.ANSWERED else None
        if leg is None or transferor is None:
            raise HttpError(409, "the call is not bridged to anyone")
        try:
            transfers.start(leg, to, transferor=transferor, by="api")
        except SipError as exc:  # an unknown target, or one of the call's own parties
            raise HttpError(400, exc.detail or exc.reason) from None
        return HttpResponse.json({"call": call.id, "to": to, "status": "transferring"}, 202)

    router.add("POST", "/api/calls/{id}/transfer", transfer)


_ERR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
openapi.add_paths({"/api/calls/{id}/transfer": {"post": {
    "summary": "Blind transfer of a live call's caller to a user, a queue or a dialplan line; "
               "the party the caller talks to is released when the target has the call",
    "tags": ["calls"], "security": [{"bearer": []}],
    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                    "description": "the live call's id"}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]}}}},
    "responses": {
        "202": {"description": "the transfer started", "content": {"application/json": {
            "schema": {"type": "object", "properties": {
                "call": {"type": "string"}, "to": {"type": "string"},
                "status": {"const": "transferring"}}}}}},
        "400": {"description": "no to, or no such user, queue or line", "content": _ERR},
        "401": {"description": "missing or unknown bearer token", "content": _ERR},
        "403": {"description": "the token may only read", "content": _ERR},
        "404": {"description": "no such live call", "content": _ERR},
        "409": {"description": "the call is not bridged", "content": _ERR},
    },
}}})
