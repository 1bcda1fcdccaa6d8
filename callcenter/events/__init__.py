"""Events: typed records of everything that happens, one bus, sinks (log, MQTT, web)."""
