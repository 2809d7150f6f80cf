"""The product as a user installs it: a wheel, built from the tree, installed into a clean virtual
environment, then ``access-auditor --version`` and ``access-auditor demo`` run from somewhere else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from access_auditor import __version__

ROOT = Path(__file__).resolve().parents[2]
TREE = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "LICENSE",
    "template.yaml",
    "events",
    "organization",
    "src",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # GIVEN the project's files only (no caches, no venv), built offline with this environment's setuptools
    source = tmp_path_factory.mktemp("source")
    for name in TREE:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(
            ROOT / name,
            source / name,
            **({"ignore": shutil.ignore_patterns("__pycache__", "data")} if (ROOT / name).is_dir() else {}),
        )
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(out), str(source)], capture_output=True, text=True, check=False)  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    assert "warning" not in (built.stdout + built.stderr).lower(), built.stdout + built.stderr
    [wheel] = out.glob("apigw_access_auditor-*.whl")
    return wheel


def test_the_wheel_is_one_namespaced_package_with_what_the_demo_reads(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {
        "access_auditor",
        f"apigw_access_auditor-{__version__}.dist-info",
    }
    assert "access_auditor/local_aws/data/template.yaml" in names
    assert "access_auditor/local_aws/data/scheduled.json" in names
    assert {"access_auditor/local_aws/data/hub.yaml", "access_auditor/local_aws/data/member.yaml"} <= set(
        names
    )


def test_the_installed_wheel_runs_the_demo(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "clean"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # No network in tests: the dependencies come from this environment's site-packages, appended after the
    # clean environment's own (a .pth file), and the product itself only from the wheel.
    site = Path(sysconfig.get_paths(vars={"base": str(env_dir), "platbase": str(env_dir)})["purelib"])
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert install.returncode == 0, install.stderr
    cli = env_dir / "bin" / "access-auditor"
    version = subprocess.run([cli, "--version"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert version.stdout.strip() == f"access-auditor {__version__}"
    where = subprocess.run([python, "-c", "import access_auditor; print(access_auditor.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert where.stdout.startswith(str(env_dir)), where.stdout  # the wheel's copy, not the clone's
    demo = subprocess.run(
        [cli, "demo", "--scenarios", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert demo.returncode == 0 and "all scenarios detected as expected" in demo.stdout, (
        demo.stdout + demo.stderr
    )
