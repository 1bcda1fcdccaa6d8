"""Hold and resume from any phone by re-INVITE (RFC 3264 §8.4): while a party's offer is
sendonly or inactive, the party bridged to it hears the hold music; the offer that makes it
sendrecv again gives the bridge back. The call counts the seconds spent on hold (its CDR's
``hold_seconds``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from callcenter.calls import flows
from callcenter.events.bus import CallHold

if TYPE_CHECKING:
    from callcenter.calls.call import Leg
    from callcenter.calls.services import CallServices

log = structlog.get_logger("calls")


class Holds:
    def __init__(self, services: CallServices) -> None:
        self.services = services

    def on_hold(self, leg: Leg, held: bool) -> None:
        """``leg``'s re-INVITE was answered; ``held`` is whether its offer holds the call."""
        if held == (leg.held_since is not None):
            return  # a session refresh, or a media change that keeps the hold as it was
        now = self.services.now()
        other = self.services.b2bua.partner(leg)
        if held:
            leg.held_since = now
            if other is not None:  # its relayed audio stops while the channel plays
                flows.hold_music(self.services, other)
        else:
            assert leg.held_since is not None
            leg.call.hold_seconds += now - leg.held_since
            leg.held_since = None
            if other is not None and other.channel is not None:
                other.channel.stop_playing()
        self.services.publish(CallHold(call_id=leg.call.id, party=leg.party, on=held))
        log.info("hold" if held else "resume", call_id=leg.call.id, party=leg.party,
                 other=other.party if other else None)
