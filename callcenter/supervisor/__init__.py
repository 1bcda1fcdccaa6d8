"""Supervisors: listen, whisper and barge on live calls (on the media mixer); call recording."""
