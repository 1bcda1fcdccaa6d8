"""The IVR: YAML dialplans (``dialplan``, ``nodes``), the engine (``engine.run_flow``), say-number
grammar (``say``), schedules with Polish holidays (``schedule``), the server clock (``clock``)
and hot reload (``watcher``)."""
