"""Events: typed records of everything that happens, one bus, sinks (log, MQTT, web)."""

from callcenter.events.bus import SCHEMA, Event, EventBus

__all__ = ["SCHEMA", "Event", "EventBus"]
