"""Helpers for the integration tests: ports, the server process, SIP peers, RTP and audio."""
