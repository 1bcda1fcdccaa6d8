"""Shared pytest setup: the repository on sys.path, artifact directories, binary checks."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.helpers.artifacts import artifact_dir  # noqa: E402

ALLOW_SKIP_ENV = "CALLCENTER_ALLOW_SKIP"

# Hypothesis's per-example deadline (200 ms) is a timed assertion: on a loaded box a plain
# example can take longer, and the test then fails for nothing the code did.
settings.register_profile("callcenter", deadline=None)
settings.load_profile("callcenter")


def require_binary(name: str) -> str:
    """Path of a needed program. Missing: fail, or skip when CALLCENTER_ALLOW_SKIP=1."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (tests/run.sh installs it)"
    if os.environ.get(ALLOW_SKIP_ENV) == "1":
        pytest.skip(message)
    pytest.fail(message)


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """tests/artifacts/<test name>/ for this test's logs, recordings and traces."""
    return artifact_dir(request.node.name)
