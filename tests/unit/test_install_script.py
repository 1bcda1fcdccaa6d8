"""install.sh on Debian's own python3 without the python3-venv package, with stand-in programs
on PATH: `python3 -m venv` fails (leaving a .venv without pip, as Debian's does) until
`apt-get install python3-venv` ran; then the venv is made again and the project installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.artifacts import REPO

STUBS = {
    "python3": """\
[ "$1 $2" = "-m venv" ] || exit 2
mkdir -p "$3/bin"
if [ -e "$LOG.venv-package" ]; then
    printf '#!/bin/sh\\necho "venv-python $*" >> "$LOG"\\n' > "$3/bin/python"
else
    printf '#!/bin/sh\\nexit 1\\n' > "$3/bin/python"
    echo "ensurepip is not available" >&2
fi
chmod +x "$3/bin/python"
[ -e "$LOG.venv-package" ]
""",
    "apt-get": """\
echo "apt-get $*" >> "$LOG"
case "$*" in *"install "*python3-venv*) touch "$LOG.venv-package" ;; esac
""",
    "sudo": 'echo "sudo $1" >> "$LOG"; exec "$@"\n',
    "id": 'echo "$STUB_UID"\n',
}


def run_install(tmp_path: Path, *, uid: int, venv_package: bool) -> list[str]:
    """Run a copy of install.sh with the stand-ins; the calls they saw, in order."""
    project, stubs, log = tmp_path / "project", tmp_path / "bin", tmp_path / "calls.log"
    project.mkdir()
    shutil.copy(REPO / "install.sh", project)
    stubs.mkdir()
    for name, body in STUBS.items():
        (stubs / name).write_text("#!/bin/sh\n" + body)
        (stubs / name).chmod(0o755)
    if venv_package:
        (tmp_path / "calls.log.venv-package").touch()
    env = {**os.environ, "PATH": f"{stubs}:/usr/bin:/bin", "LOG": str(log), "STUB_UID": str(uid)}
    done = subprocess.run(["sh", "install.sh"], cwd=project, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize(("uid", "sudo"), [(0, []), (1000, ["sudo apt-get", "sudo env"])])
def test_missing_venv_package_is_installed(tmp_path: Path, uid: int, sudo: list[str]) -> None:
    calls = run_install(tmp_path, uid=uid, venv_package=False)
    apt = ["apt-get update", "apt-get install -y --no-install-recommends python3-venv"]
    assert [c for c in calls if c.startswith("sudo")] == sudo
    assert [c for c in calls if c.startswith("apt-get")] == apt
    assert calls[-1] == "venv-python -m pip install --quiet -e ."


def test_venv_package_present_no_apt(tmp_path: Path) -> None:
    calls = run_install(tmp_path, uid=1000, venv_package=True)
    assert calls == ["venv-python -m pip install --quiet -e ."]
