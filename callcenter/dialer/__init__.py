"""Outbound campaigns: lists, pacing (pure), the runner that places calls."""
