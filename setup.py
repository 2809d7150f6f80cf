"""Everything about the package is in pyproject.toml; this only adds the build step it cannot express: a
wheel carries copies of the templates and events/scheduled.json (which live at the clone's root, where SAM
and people expect them), so that ``access-auditor demo`` works from an installed wheel too."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = (
    ROOT / "template.yaml",
    ROOT / "events" / "scheduled.json",
    ROOT / "organization" / "hub.yaml",
    ROOT / "organization" / "member.yaml",
)


class BuildWithDemoData(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "access_auditor" / "local_aws" / "data"
        target.mkdir(parents=True, exist_ok=True)
        for source in SHIPPED:
            shutil.copyfile(source, target / source.name)


setup(cmdclass={"build_py": BuildWithDemoData})
