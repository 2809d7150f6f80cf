"""`sam build` with the runtime's interpreter, then the built package imported and run as Lambda would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from access_auditor.local_aws.invoke import TEMPLATE, invoke_auditor
from tests.harness import Harness

ROOT = TEMPLATE.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python313 = shutil.which("python3.13")
    assert python313, "python3.13 (the Lambda runtime) must be on PATH; `make test` puts pyenv's there"
    build_dir = tmp_path_factory.mktemp("sam-build")
    sam = shutil.which("sam", path=str(Path(sys.executable).parent)) or "sam"
    run = subprocess.run([sam, "build", "--template", str(TEMPLATE), "--build-dir", str(build_dir)], cwd=ROOT,
                         capture_output=True, text=True, check=False, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return build_dir / "AuditorFunction"


def test_package_holds_the_auditor_and_nothing_of_the_emulator(built: Path) -> None:
    assert (built / "access_auditor" / "handler.py").exists()
    assert (built / "aws_lambda_powertools").is_dir() and (built / "requests").is_dir()
    for unwanted in ("moto", "local_aws", "access_auditor/local_aws", "tests", "werkzeug", "flask", "boto3"):
        assert not (built / unwanted).exists(), unwanted


def test_built_handler_runs_under_the_runtime_interpreter(built: Path, harness: Harness) -> None:
    python313 = shutil.which("python3.13")
    assert python313
    run = invoke_auditor(harness.function_env(), python=python313, code_dir=built)
    assert run.error is None, run.error
    assert run.result is not None and run.result["ok"] is True
    assert run.result["targets"][0]["statusCode"] == 200


def test_package_holds_exactly_the_locked_versions(built: Path) -> None:
    from packaging.utils import canonicalize_name

    from tests.template.test_locks import LAMBDA_LOCK, pins

    shipped = {}
    for dist_info in built.glob("*.dist-info"):
        name, _, rest = dist_info.name.removesuffix(".dist-info").partition("-")
        shipped[canonicalize_name(name)] = rest
    assert shipped == pins(LAMBDA_LOCK)


def test_built_handler_reads_a_yaml_configuration_document(
    built: Path, harness: Harness, tmp_path: Path
) -> None:
    python313 = shutil.which("python3.13")
    assert python313
    env = harness.function_env()
    document = tmp_path / "fleet.yaml"
    document.write_text(f"defaults:\n  API_STAGE: prod\ntargets:\n  - API_ID: {env.pop('API_ID')}\n"
                        f"    ALLOWED_ROLE_ARN: [{env.pop('ALLOWED_ROLE_ARN')}]\n")  # fmt: skip
    run = invoke_auditor(
        {**env, "API_ID": "", "CONFIG_FILE": str(document)}, python=python313, code_dir=built
    )
    assert run.error is None and run.result is not None, run.error
    assert run.result["ok"] is True and run.result["targets"][0]["source"] == "config"


def test_a_rebuild_needs_no_package_index_once_the_wheels_are_cached(built: Path, tmp_path: Path) -> None:
    # GIVEN the build above (it cached the locked wheels), and a package index that cannot be reached
    python313 = shutil.which("python3.13")
    assert python313
    env = {**os.environ, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": "", "PIP_NO_INPUT": "1",
           "ARTIFACTS_DIR": str(tmp_path / "again"), "PYTHON": python313}  # fmt: skip
    # WHEN the function is built again, the way sam build runs it
    run = subprocess.run(["make", "-C", str(ROOT / "src"), "build-AuditorFunction"], env=env, capture_output=True,
                         text=True, timeout=300, check=False)  # fmt: skip
    # THEN it builds the same package
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "again").glob("*.dist-info")) == sorted(
        p.name for p in built.glob("*.dist-info")
    )
