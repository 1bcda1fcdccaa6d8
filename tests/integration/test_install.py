"""Installing the server as a new user would: the README's first command in a copy of the
checkout, and a wheel installed into a fresh virtualenv outside the checkout.

What is and is not tested: the README command's install part runs as written (`python3` is
the machine's own Python, Debian's /usr/bin/python3 and Python 3.13 when present; packages
come from the package index); its `serve` part runs with this test's ports and database
appended, up to the server answering OPTIONS. Debian's python3 *without* the python3-venv
package is covered by tests/unit/test_install_script.py with stand-in programs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.helpers import audio, ports
from tests.helpers.artifacts import REPO
from tests.helpers.rtp_sink import RtpSink
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp
from tests.integration.demo import LINE_TOLLFREE

SCENARIOS = Path(__file__).parent / "scenarios"
INSTALL_TIMEOUT = 900  # seconds for venv + pip install with downloads


def readme_first_command() -> str:
    """Line 1 of the code block under README's "Two commands", without its comment."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Two commands", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return block.splitlines()[0].split("#", 1)[0].strip()


def copy_checkout(dst: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) as they are now, under dst."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dst / name)
    return dst


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without a virtualenv or module path that could leak the checkout in."""
    return {**os.environ, "VIRTUAL_ENV": "", "PYTHONPATH": "", **extra}


def _interpreter(which: str) -> str:
    """The real executable behind a python3 on PATH or a path (pyenv shims resolved; a pyenv
    version that is installed but not selected is found too)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for found in [shutil.which(which), *sorted(pyenv.glob(f"versions/*/bin/{which}"))]:
        out = subprocess.run([found, "-c", "import sys; print(sys.executable)"],
                             capture_output=True, text=True, timeout=60) if found else None
        if out is not None and out.returncode == 0:
            return out.stdout.strip()
    pytest.skip(f"no working {which} on this machine")


@pytest.mark.parametrize(
    "python3", ["python3", "/usr/bin/python3", "python3.13"], ids=["own", "debian", "py313"]
)
def test_readme_first_command(tmp_path: Path, artifacts: Path, python3: str) -> None:
    """The README's first command with this `python3`: installs, and the server answers."""
    interpreter = _interpreter(python3)
    if python3 != "python3" and interpreter == _interpreter("python3"):
        pytest.skip(f"{python3} is the machine's python3 (already a case)")
    command = readme_first_command()
    install, serve = (part.strip() for part in command.rsplit("&&", 1))
    assert serve == ".venv/bin/callcenter serve", command
    checkout = copy_checkout(tmp_path / "checkout")
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python3").symlink_to(interpreter)
    env = _clean_env(PATH=f"{shim}{os.pathsep}{os.environ['PATH']}")
    with open(artifacts / "install.log", "wb") as log:
        done = subprocess.run(["sh", "-c", install], cwd=checkout, env=env, stdout=log,
                              stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT)
    assert done.returncode == 0, (artifacts / "install.log").read_text()[-3000:]
    venv_python = checkout / ".venv/bin/python"
    probe = "import sys, callcenter.media.g711 as g; print(sys.executable, g.HAVE_AUDIOOP)"
    seen = subprocess.run([venv_python, "-c", probe], capture_output=True, text=True,
                          env=env, timeout=60, check=True).stdout.split()
    assert seen[1] == "True", f"no audioop (fast G.711) under {interpreter}: {seen}"
    with ServerProcess(artifacts, serve_command=shlex.split(serve), cwd=checkout, env=env) as srv:
        assert srv.alive()


def _wheel_venv(tmp_path: Path) -> Path:
    """A fresh venv with only the project's wheel installed; its dependencies come from this
    test's environment through a .pth line (no downloads)."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(copy_checkout(tmp_path / "checkout"))],
        check=True, timeout=600, env=_clean_env(),
    )
    (wheel,) = dist.glob("callcenter-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    site = subprocess.run(
        [venv / "bin/python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    subprocess.run([venv / "bin/python", "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=300, env=_clean_env())
    return venv


def test_wheel_outside_checkout_plays_polish_welcome(tmp_path: Path, artifacts: Path) -> None:
    """`callcenter serve` from a wheel, run in an empty directory: 0800123456 hears the welcome."""
    require_binary("sipp")
    venv = _wheel_venv(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _clean_env()
    where = subprocess.run(
        [venv / "bin/python", "-c", "import callcenter; print(callcenter.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    scenario = tmp_path / "uac_listen.xml"
    template = (SCENARIOS / "uac_ivr.xml").read_text(encoding="iso-8859-1")
    scenario.write_text(template.replace("<!-- STEPS -->", '<pause milliseconds="4000"/>'),
                        encoding="iso-8859-1")
    with ServerProcess(artifacts, serve_command=[str(venv / "bin/callcenter"), "serve"],
                       cwd=elsewhere, env=env) as srv:
        sipp = Sipp(str(scenario), workdir=artifacts, ports=ports.allocate(8),
                    remote_port=srv.sip_port, service=LINE_TOLLFREE, timeout=30,
                    keys={"codec_pt": "0", "codec_name": "PCMU"})
        with RtpSink(sipp.sink_port) as sink:
            result = sipp.start().wait()
            heard = sink.audio(0)
        audio.write_wav(artifacts / "heard_by_caller.wav", heard)
        assert result.returncode == 0, result.summary()
    welcome, rate = audio.read_wav(REPO / "sounds/pl/welcome.wav")
    assert audio.best_match(welcome[: 2 * rate], heard) > 0.8, "the caller did not hear the welcome"
