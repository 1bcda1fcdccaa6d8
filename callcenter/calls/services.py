"""What the live services of a call share, handed to them by ``app.py``.

The IVR calls, the dialer and the supervisor get this one record instead of the
``Application``: they see the few collaborators they use and nothing above them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callcenter.calls.b2bua import B2BUA
    from callcenter.calls.call import Call, Leg
    from callcenter.config.models import Trunk
    from callcenter.events.bus import Event
    from callcenter.media.prompts import PromptCache
    from callcenter.sip.registrar import Registrar
    from ivr.clock import ServerClock

#: the screen pop's signature: (call id, agent, queue, number, why) -> (the customer's name,
#: the desk's page about the call, for the phone's Call-Info; "" each when there is none)
Offer = Callable[[str, str, str, str, Mapping[str, Any]], tuple[str, str]]


@dataclass(frozen=True, kw_only=True)
class CallServices:
    b2bua: B2BUA
    registrar: Registrar
    prompts: PromptCache
    now: Callable[[], float]  #: monotonic seconds (the SIP stack's loop time)
    clock: ServerClock  #: local wall time, for calendars and calling windows
    publish: Callable[[Event], None]  #: the event bus
    answered: Callable[[Call, Leg | None], None]  #: the CDR's answer (by us or by ``agent``)
    #: the screen pop (use ``flows.screen_pop``): told (the customer's call id, agent, queue
    #: or "", the customer's number, why the phone rings) before an agent's phone rings for a
    #: customer; returns what the phone shows: the customer's name and the call's desk page
    offer: Offer = lambda call_id, agent, queue, number, why: ("", "")
    #: the hold music of a queue's callers (None: a call from no queue)
    music: Callable[[str | None], str] = lambda queue: "hold_music"
    #: the configured trunks (after a reload, the new ones): where a trunk's failover goes
    trunks: Callable[[], Sequence[Trunk]] = lambda: ()
