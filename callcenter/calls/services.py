"""What the live services of a call share, handed to them by ``app.py``.

The IVR calls, the dialer and the supervisor get this one record instead of the
``Application``: they see the few collaborators they use and nothing above them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callcenter.calls.b2bua import B2BUA
    from callcenter.calls.call import Call, Leg
    from callcenter.events.bus import Event
    from callcenter.media.prompts import PromptCache
    from callcenter.sip.registrar import Registrar
    from ivr.clock import ServerClock


@dataclass(frozen=True, kw_only=True)
class CallServices:
    b2bua: B2BUA
    registrar: Registrar
    prompts: PromptCache
    now: Callable[[], float]  #: monotonic seconds (the SIP stack's loop time)
    clock: ServerClock  #: local wall time, for calendars and calling windows
    publish: Callable[[Event], None]  #: the event bus
    answered: Callable[[Call, Leg | None], None]  #: the CDR's answer (by us or by ``agent``)
    #: the screen pop: told (caller's call id, agent, queue or "", caller) before an agent's
    #: phone rings for a caller; returns the caller's name for the phone's display
    offer: Callable[[str, str, str, str], str] = lambda call_id, agent, queue, caller: ""
    #: the hold music of a queue's callers (None: a call from no queue)
    music: Callable[[str | None], str] = lambda queue: "hold_music"
