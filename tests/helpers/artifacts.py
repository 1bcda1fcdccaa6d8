"""Where a test keeps its logs, recordings and traces: tests/artifacts/<test name>/."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
ARTIFACTS = TESTS / "artifacts"


def artifact_dir(name: str) -> Path:
    """A clean-named directory for one test (created; earlier contents are kept)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "test"
    path = ARTIFACTS / safe
    path.mkdir(parents=True, exist_ok=True)
    return path
