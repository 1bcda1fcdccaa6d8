"""Hot reload of dialplans: ``DialplanWatcher.poll()`` reloads when a file changed.

The server calls ``poll()`` every second and reads ``current`` when a call starts; a call keeps
the ``Dialplan`` object it started with, so a reload never changes a flow under a caller. A
reload that fails keeps the previous version (and logs why); it is not retried until a file
changes again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from ivr.dialplan import Dialplan, DialplanError, dialplan_files, load_dialplans

log = logging.getLogger("ivr.watcher")

#: (file name, mtime in ns, size) of every dialplan file
Snapshot = frozenset[tuple[str, int, int]]


class DialplanWatcher:
    """Keeps ``current`` (the last good Dialplan) and reloads it when the files change."""

    def __init__(
        self,
        directory: Path,
        sounds: Path,
        *,
        trunks: Iterable[str] | None = None,
        current: Dialplan | None = None,
    ) -> None:
        self.directory = directory
        self.sounds = sounds
        self.trunks = None if trunks is None else list(trunks)
        self._snapshot = self.snapshot()
        #: the errors of the last failed reload (empty after a good one)
        self.errors: list[str] = []
        self.current = current if current is not None else self._load()

    def snapshot(self) -> Snapshot:
        """What the dialplan files look like now (a vanished file counts as a change)."""
        out = set()
        if self.directory.is_dir():
            for path in dialplan_files(self.directory):
                try:
                    st = path.stat()
                except OSError:
                    continue
                out.add((path.name, st.st_mtime_ns, st.st_size))
        return frozenset(out)

    def _load(self) -> Dialplan:
        return load_dialplans(self.directory, self.sounds, trunks=self.trunks)

    def poll(self) -> Dialplan | DialplanError | None:
        """None when nothing changed; the new Dialplan after a good reload; the DialplanError of
        a failed one (``current`` is then unchanged)."""
        snapshot = self.snapshot()
        if snapshot == self._snapshot:
            return None
        self._snapshot = snapshot
        try:
            plan = self._load()
        except DialplanError as exc:
            self.errors = exc.errors
            log.error(
                "dialplan reload failed, keeping the previous version (%d lines): %s",
                len(self.current), "; ".join(exc.errors),
            )
            return exc
        self.errors = []
        self.current = plan
        log.info("dialplans reloaded: %d lines", len(plan))
        return plan
