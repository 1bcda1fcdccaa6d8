"""``POST /api/calls/{id}/transfer {"to": "1003" | "<queue>" | "<line>" | "<number>"}``: a
blind transfer of a live call's caller to a user, a queue, a dialplan line or an outside
number; the party the caller talks to is released once the target has the call (when the
target does not answer, the two talk again). ``"attended": true`` consults the target first
(``*2``); ``{"action": "complete" | "cancel" | "conference"}`` then ends the consultation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenter.calls.call import LegState
from callcenter.calls.transfer import CONSULT_ACTIONS
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
        body = data if isinstance(data, dict) else {}
        if "action" in body:
            action = body["action"]
            if action not in CONSULT_ACTIONS:
                raise HttpError(400, 'expected {"action": "complete", "cancel" or "conference"}')
            if not transfers.consult_action(call.id, action):
                raise HttpError(409, "no consultation with an answered target on this call")
            return HttpResponse.json({"call": call.id, "action": action, "status": "done"}, 202)
        to = body.get("to")
        if isinstance(to, int) and not isinstance(to, bool):
            to = str(to)
        if not isinstance(to, str) or not to:
            raise HttpError(400, 'expected {"to": "<user, queue or line>"}')
        leg = call.caller_leg
        transferor = b2bua.partner(leg) if leg and leg.state is LegState.ANSWERED else None
        if leg is None or transferor is None:
            raise HttpError(409, "the call is not bridged to anyone")
        attended = body.get("attended") is True
        try:
            if attended:
                transfers.start_consult(leg, to, agent=transferor, by="api")
            else:
                transfers.start(leg, to, transferor=transferor, by="api")
        except SipError as exc:  # an unknown target, or one of the call's own parties
            raise HttpError(400, exc.detail or exc.reason) from None
        status = "consulting" if attended else "transferring"
        return HttpResponse.json({"call": call.id, "to": to, "status": status}, 202)

    router.add("POST", "/api/calls/{id}/transfer", transfer)


_ERR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
openapi.add_paths({"/api/calls/{id}/transfer": {"post": {
    "summary": "Transfer of a live call's caller to a user, a queue, a dialplan line or an "
               "outside number: blind (the party the caller talks to is released when the "
               "target has the call), or attended (that party talks to the target first, the "
               "caller on hold music), then an action completes, cancels or makes a conference",
    "tags": ["calls"], "security": [{"bearer": []}],
    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                    "description": "the live call's id"}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": {
            "to": {"type": "string"}, "attended": {"type": "boolean"},
            "action": {"enum": list(CONSULT_ACTIONS)}}}}}},
    "responses": {
        "202": {"description": "the transfer started", "content": {"application/json": {
            "schema": {"type": "object", "properties": {
                "call": {"type": "string"}, "to": {"type": "string"},
                "action": {"type": "string"},
                "status": {"enum": ["transferring", "consulting", "done"]}}}}}},
        "400": {"description": "no to, no such target, a refused number, a bad action",
                "content": _ERR},
        "401": {"description": "missing or unknown bearer token", "content": _ERR},
        "403": {"description": "the token may only read", "content": _ERR},
        "404": {"description": "no such live call", "content": _ERR},
        "409": {"description": "the call is not bridged (an action: no consultation whose "
                "target answered)", "content": _ERR},
    },
}}})
