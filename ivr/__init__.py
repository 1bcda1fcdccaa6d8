"""The IVR: YAML dialplans (``dialplan``, ``nodes``), the engine (``engine.run_flow``), say-number
grammar (``say``), schedules with Polish holidays (``schedule``), the server clock (``clock``)
and hot reload (``watcher``)."""

from ivr.clock import ServerClock, parse_clock
from ivr.dialplan import Dialplan, DialplanError, Line, Program, load_dialplans
from ivr.engine import (
    CallbackRequest,
    CallControl,
    CallerHungUp,
    ContactHistory,
    EndReason,
    FlowResult,
    IvrServices,
    Outcome,
    SurveyResult,
    VoicemailMessage,
    run_flow,
)
from ivr.watcher import DialplanWatcher

__all__ = [
    "CallControl",
    "CallbackRequest",
    "CallerHungUp",
    "ContactHistory",
    "Dialplan",
    "DialplanError",
    "DialplanWatcher",
    "EndReason",
    "FlowResult",
    "IvrServices",
    "Line",
    "Outcome",
    "Program",
    "ServerClock",
    "SurveyResult",
    "VoicemailMessage",
    "load_dialplans",
    "parse_clock",
    "run_flow",
]
