"""deploy/: the systemd unit passes `systemd-analyze verify` (with this checkout's program in
place of /opt/callcenter's) without a warning."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.artifacts import REPO

UNIT = REPO / "deploy" / "callcenter.service"


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    program = Path(sys.executable).parent / "callcenter"
    text = UNIT.read_text(encoding="utf-8")
    assert "/opt/callcenter/.venv/bin/callcenter serve" in text
    unit = tmp_path / "callcenter.service"
    unit.write_text(text.replace("/opt/callcenter/.venv/bin/callcenter", str(program)),
                    encoding="utf-8")
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done
    for line in ("ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "DynamicUser=yes"):
        assert line in text.splitlines()
