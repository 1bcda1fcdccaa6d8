"""Where a test keeps its logs, recordings and traces: tests/artifacts/<test name>/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
ARTIFACTS = TESTS / "artifacts"


def artifact_dir(name: str, *, clean: bool = True) -> Path:
    """The directory for one test, emptied first (a run never mixes with an earlier one)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "test"
    path = ARTIFACTS / safe
    if clean and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path
