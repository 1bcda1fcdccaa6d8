"""Build hook: a wheel carries the checkout's sounds/ and dialplans/ as callcenter/data/.

The checkout's top-level folders stay the one source; `callcenter serve` on its built-in
configuration finds them there (a checkout, an editable install) or in the package (a wheel).
The rest of the metadata is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            for name in ("sounds", "dialplans"):
                target = Path(self.build_lib, "callcenter", "data", name)
                shutil.copytree(HERE / name, target, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithData})
