"""Reproducible builds: pyproject.toml, the locks, this environment and the Lambda package agree."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_LOCK = ROOT / "src" / "requirements.txt"
DEV_LOCK = ROOT / "requirements" / "dev.txt"
DEMO_LOCK = ROOT / "requirements" / "demo.txt"


def pins(lock: Path) -> dict[str, str]:
    """name -> exact version, for every ``name==version \\`` line of a lock; each must carry hashes."""
    text = lock.read_text()
    found = {
        canonicalize_name(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", text, re.M)
    }
    assert found and text.count("--hash=sha256:") >= len(found), (
        f"{lock.name} must pin every package with hashes"
    )
    return found


def declared(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    if extra:
        requirements += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return [r for r in requirements if canonicalize_name(r.name) != "apigw-access-auditor"]


@pytest.mark.parametrize(("lock", "extra"), [(DEV_LOCK, "dev"), (DEMO_LOCK, "demo")], ids=["dev", "demo"])
def test_each_lock_satisfies_what_pyproject_declares(lock: Path, extra: str) -> None:
    locked = pins(lock)
    for requirement in declared(extra):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is declared but not locked in {lock.name}: run make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{lock.name} pins {name}=={locked[name]}, outside {requirement}: run make lock"
        )


def test_the_lambda_lock_satisfies_its_input_and_matches_the_tested_versions() -> None:
    lambda_pins, dev_pins = pins(LAMBDA_LOCK), pins(DEV_LOCK)
    for line in (ROOT / "src" / "requirements.in").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            assert requirement.specifier.contains(lambda_pins[canonicalize_name(requirement.name)])
    # what ships is what the tests run on
    assert {n: v for n, v in lambda_pins.items() if n in dev_pins} == {
        n: dev_pins[n] for n in lambda_pins if n in dev_pins
    }
    assert set(lambda_pins) <= set(dev_pins)


def test_this_environment_is_the_dev_lock() -> None:
    mismatched = {}
    for name, pinned in pins(DEV_LOCK).items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue  # a platform-specific package this machine does not need
        if installed != pinned:
            mismatched[name] = (installed, pinned)
    assert not mismatched, f"installed vs locked: {mismatched}; run make test on a fresh venv"
