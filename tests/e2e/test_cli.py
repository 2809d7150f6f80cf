"""The command line as a user runs it: every documented example (docs/reference/cli.md), profiles, exit codes,
and the demo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from access_auditor.cli.main import main
from access_auditor.local_aws.demo import EXTRA, SCENARIOS
from access_auditor.local_aws.sample import STAGE
from access_auditor.policy.document import ApiRef
from tests.adversarial import adversarial_policies
from tests.harness import Harness

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "access-auditor")


def readme_examples() -> list[tuple[str, int]]:
    text = (ROOT / "docs" / "reference" / "cli.md").read_text()
    block = text.split("<!-- cli-examples:begin -->")[1].split("<!-- cli-examples:end -->")[0]
    examples = []
    for line in block.splitlines():
        if line.startswith("access-auditor "):
            exit_code = re.search(r"# exit (\d)", line)
            examples.append((line, int(exit_code[1]) if exit_code else 0))
    return examples


def shell_env(harness: Harness) -> dict[str, str]:
    function = harness.function_env()
    keep = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {
        **keep, **harness.aws.env,
        "AWS_ACCESS_KEY_ID": function["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": function["AWS_SECRET_ACCESS_KEY"],
        "AWS_SESSION_TOKEN": function["AWS_SESSION_TOKEN"], "PATH": f"{Path(CLI).parent}:{os.environ['PATH']}",
        "URL": harness.url, "API_ID": harness.sample.api_id, "REGION": harness.aws.region,
        "API_ARN": harness.sample.api.arn, "ROLE": harness.sample.allowed_role_arn,
        "OUTSIDER": harness.sample.outsider_role_arn,
    }  # fmt: skip


@pytest.fixture
def as_allowed_role(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """This process's AWS settings become the local AWS and a session of the allowed role."""
    for key, value in shell_env(harness).items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    return harness


def test_readme_has_examples() -> None:
    assert len(readme_examples()) >= 10


def test_every_readme_example_runs_as_documented(harness: Harness, tmp_path: Path) -> None:
    env = shell_env(harness)
    try:
        for command, expected in readme_examples():
            run = subprocess.run(
                ["bash", "-c", command],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert run.returncode == expected, (
                f"{command}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"
            )
            assert "Traceback" not in run.stderr, command
            for secret in (env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]):
                assert secret not in run.stdout + run.stderr, command
    finally:
        harness.restore()
    # and they did what they promise
    assert json.loads((tmp_path / "reply.json").read_text())["path"] == "/files/report 2026.pdf"
    rendered = json.loads((tmp_path / "expected.json").read_text())
    assert (
        rendered["Statement"][0]["Condition"]["StringNotEquals"]["aws:PrincipalArn"]
        == harness.sample.allowed_role_arn
    )


def test_verbose_call_shows_the_canonical_request_without_secrets(harness: Harness, tmp_path: Path) -> None:
    env = shell_env(harness)
    run = subprocess.run([CLI, "call", "--region", harness.aws.region, "-v", f"{harness.url}/items?q=a b"],
                         env=env, capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "q=a%20b" in run.stderr and "x-amz-security-token:<redacted>" in run.stderr
    assert "Signature=<redacted>" in run.stderr
    for secret in ("AWS_SESSION_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"):
        assert env[secret] not in run.stderr + run.stdout, secret
    # what -v shows is what was signed: the signed headers, never the Authorization header itself
    canonical = run.stderr.split("* canonical request:")[1].split("* string to sign:")[0]
    assert "authorization" not in canonical.lower() and "host;x-amz-date;x-amz-security-token" in canonical


def test_a_token_carried_in_the_query_string_never_reaches_the_output(
    harness: Harness, tmp_path: Path
) -> None:
    # GIVEN a URL that carries a session token in its query string (a presigned-style link pasted in); the body,
    # which the local API echoes the query into, is the user's data and goes to a file untouched
    env = shell_env(harness)
    token = env["AWS_SESSION_TOKEN"]
    url = f"{harness.url}/health?X-Amz-Security-Token={quote(token, safe='')}&q=1"
    command = [CLI, "call", "--region", harness.aws.region, "-v", "-i", "-o", str(tmp_path / "body"),
               "-w", "%{url_effective}", url]  # fmt: skip
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)
    # THEN neither -v (the canonical request, the request line), nor -i, nor -w %{url_effective} prints it
    assert "* canonical request:" in run.stderr and "<redacted>" in run.stdout + run.stderr
    for shape in (token, quote(token, safe=""), token[:40], quote(token, safe="")[:40]):
        assert shape not in run.stdout + run.stderr


def test_assume_role_profile_is_honoured(harness: Harness, tmp_path: Path) -> None:
    # GIVEN shared files whose profile assumes the allowed role from base credentials, through moto's STS
    (tmp_path / "config").write_text(
        f"[profile app]\nrole_arn = {harness.sample.allowed_role_arn}\nsource_profile = base\nregion = us-east-1\n"
        "[profile base]\nregion = us-east-1\n"
    )
    (tmp_path / "credentials").write_text(
        "[base]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    env = {
        k: v
        for k, v in shell_env(harness).items()
        if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    }
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials")
    )
    run = subprocess.run([CLI, "call", "--profile", "app", f"{harness.url}/health"], env=env,
                         capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    # THEN the call is signed as the role (the gateway names the caller)
    assert run.returncode == 0, run.stderr
    assert "assumed-role/orders-auditor/" in json.loads(run.stdout)["caller"]
    # and an unknown profile is a usage error naming it
    bad = subprocess.run([CLI, "call", "--profile", "nope", f"{harness.url}/health"], env=env,
                         capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_call_without_credentials_is_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", "--region", "us-east-1", "http://127.0.0.1:9/x"]) == 3
    assert "no AWS credentials" in capsys.readouterr().err


def test_call_to_a_dead_endpoint_is_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    assert main(["call", "--region", "us-east-1", "--timeout", "1", "http://127.0.0.1:9/x"]) == 3
    assert "could not connect" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not json at all", 2),
        ('{"Statement": [{"Effect": "Allow"}]}', 2),
        ('{"Version": "2012-10-17", "Statement": []}', 1),
    ],
)
def test_policy_check_exit_codes(
    tmp_path: Path, content: str, expected: int, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(content)
    code = main(["policy", "check", "--policy-file", str(policy), "--api-arn",
                 "arn:aws:execute-api:us-east-1:123456789012:abc123", "--role", "arn:aws:iam::123456789012:role/app"])  # fmt: skip
    assert code == expected
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err


def test_policy_check_reads_stdin_in_the_escaped_form(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    escaped = ('{\\"Version\\":\\"2012-10-17\\",\\"Statement\\":[{\\"Effect\\":\\"Deny\\",\\"Principal\\":\\"*\\",'
               '\\"Action\\":\\"execute-api:Invoke\\",\\"Resource\\":\\"arn:aws:execute-api:us-east-1:123456789012:abc123\\/*\\",'
               '\\"Condition\\":{\\"StringNotEquals\\":{\\"aws:PrincipalArn\\":\\"arn:aws:iam::123456789012:role\\/app\\"}}}]}')  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO(escaped))
    code = main(["policy", "check", "--policy-file", "-", "--json", "--api-arn",
                 "arn:aws:execute-api:us-east-1:123456789012:abc123", "--role", "arn:aws:iam::123456789012:role/app"])  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {"drift": False, "findings": []}


def test_audit_reports_findings_with_exit_1(
    as_allowed_role: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = as_allowed_role
    harness.save_and_deploy(json.dumps({"Version": "2012-10-17", "Statement": []}))
    try:
        code = main(["audit", "--api-id", harness.sample.api_id, "--stage", STAGE, "--region", harness.aws.region,
                     "--role", harness.sample.allowed_role_arn, "--outsider-role", harness.sample.outsider_role_arn,
                     "--endpoint", harness.url])  # fmt: skip
    finally:
        harness.restore()
    out = capsys.readouterr().out
    assert code == 1
    assert "OUTSIDER_CALL_ALLOWED" in out and "ACCESS_WEAKENED" in out


@pytest.mark.parametrize("chosen", ["ocsf", "asff", "sarif"])
def test_audit_writes_findings_in_the_security_formats(
    as_allowed_role: Harness, capsys: pytest.CaptureFixture[str], chosen: str
) -> None:
    # GIVEN an API whose policy grants nothing and denies nothing (weakened)
    harness = as_allowed_role
    harness.save_and_deploy(json.dumps({"Version": "2012-10-17", "Statement": []}))
    try:
        code = main(["audit", "--api-id", harness.sample.api_id, "--stage", STAGE, "--region", harness.aws.region,
                     "--role", harness.sample.allowed_role_arn, "--endpoint", harness.url, "--format", chosen])  # fmt: skip
    finally:
        harness.restore()
    # THEN stdout is one JSON document in that format naming the weakening, and the exit code says findings
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    text = json.dumps(out)
    assert "ACCESS_WEAKENED" in text
    if chosen == "ocsf":
        assert {e["class_name"] for e in out} >= {"IAM Analysis Finding"}
    elif chosen == "asff":
        assert all(f["RecordState"] == "ACTIVE" and f["Workflow"]["Status"] == "NEW" for f in out)
    else:
        assert out["version"] == "2.1.0" and out["runs"][0]["results"]


def test_audit_bad_config_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "targets.json"
    config.write_text(json.dumps([{"API_ID": "abc123", "API_STAGE": "prod", "API_REGION": "us-east-1"}]))
    assert main(["audit", "--config", str(config)]) == 2
    assert "ALLOWED_ROLE_ARN is required" in capsys.readouterr().err


def test_demo_detects_every_scenario() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run = subprocess.run([CLI, "demo"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    # every scripted scenario, and after them the change-driven one and the organization
    assert (
        run.stdout.count("\n      as expected") == len(SCENARIOS) + EXTRA
        and "NOT as expected" not in run.stdout
    )
    assert "\033[" not in run.stdout  # no colour codes when not on a terminal


def test_serve_prints_what_a_person_needs() -> None:
    # In a process of its own, as a person runs it: moto's state is per process, and a second local AWS here
    # would reset the one the other tests use.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    printed = ""
    with subprocess.Popen([CLI, "demo", "--serve"], env=env, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            for line in server.stdout:
                printed += line
                if "Ctrl-C" in line:
                    break
        finally:
            server.terminate()
            server.wait(30)
    # THEN the credentials to act as the allowed role, and the README's variables, are printed
    assert "export AWS_SESSION_TOKEN=" in printed and "export URL=http://127.0.0.1:" in printed
    assert "access-auditor call " in printed


def test_policy_render_looks_role_names_up_so_the_path_is_kept(
    as_allowed_role: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = as_allowed_role
    code = main(["policy", "render", "--region", harness.aws.region, "--account", harness.aws.account,
                 "--api-id", harness.sample.api_id, "--role", "orders-auditor"])  # fmt: skip
    assert code == 0
    exempt = json.loads(capsys.readouterr().out)["Statement"][0]["Condition"]["StringNotEquals"][
        "aws:PrincipalArn"
    ]
    assert exempt == "arn:aws:iam::123456789012:role/apigw-access-auditor/orders-auditor"
    # a name IAM does not know is bad input (exit 2) naming the role, not a network failure
    assert main(["policy", "render", "--api-arn", harness.sample.api.arn, "--role", "nobody"]) == 2
    assert "--role nobody: no IAM role of that name" in capsys.readouterr().err


def test_version_is_the_package_version() -> None:
    from access_auditor import __version__

    run = subprocess.run([CLI, "--version"], capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 0 and run.stdout.strip() == f"access-auditor {__version__}"


HOSTILE = {
    **{name: (text, 0 if name == "many statements of every kind" else 1)
       for name, text in adversarial_policies(ApiRef("us-east-1", "123456789012", "abc123"),
                                              "arn:aws:iam::123456789012:role/app").items()},
    "a number of 5,000 digits": ('{"Version":' + "9" * 5000 + ',"Statement":[]}', 2),
    "nesting 9,000 deep": ("[" * 9_000 + "]" * 9_000, 2),
}  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), HOSTILE.values(), ids=HOSTILE.keys())
def test_policy_check_answers_hostile_policies_with_a_verdict(
    tmp_path: Path, text: str, expected: int
) -> None:
    # GIVEN a policy of up to 8,192 characters built to stall an evaluator, checked as a user would check it
    policy = tmp_path / "hostile.json"
    policy.write_text(text)
    run = subprocess.run([CLI, "policy", "check", "--policy-file", str(policy), "--api-arn",
                          "arn:aws:execute-api:us-east-1:123456789012:abc123", "--role",
                          "arn:aws:iam::123456789012:role/app"], capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    # THEN a verdict (drift, or unreadable on one line), never a traceback
    assert run.returncode == expected, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    if expected == 2:
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr


URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/health"
BAD_INPUT = {
    "CR/LF in a header": ["call", "-H", "X-A: 1\r\nX-B: 2", URL],
    "negative timeout": ["call", "--timeout", "-1", URL],
    "NaN timeout": ["call", "--timeout", "nan", URL],
    "port 99999": ["call", URL.replace(".com/", ".com:99999/")],
    "unclosed IPv6 host": ["call", "https://[::1"],
    "raw CR/LF in the URL": ["call", URL + "\r\nX-Injected: 1"],
    "plain http to a remote host": ["call", URL.replace("https", "http")],
    "audit without a deadline's sense": ["audit", "--deadline", "inf", "--api-id", "abc123"],
}


@pytest.mark.parametrize("argv", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_cli_input_is_exit_2_with_one_line(argv: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run = subprocess.run([CLI, *argv], env=env, capture_output=True, text=True, timeout=30, check=False)
    lines = [line for line in run.stderr.splitlines() if not line.startswith("usage:") and line.strip()]
    assert run.returncode == 2, run.stderr
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr


def test_bytes_that_are_not_utf8_are_exit_2() -> None:
    run = subprocess.run(
        [CLI.encode(), b"call", URL.encode() + b"\xff"], capture_output=True, timeout=30, check=False
    )
    assert run.returncode == 2 and b"not valid UTF-8" in run.stderr and b"Traceback" not in run.stderr


def test_a_body_past_api_gateways_limit_is_refused_before_reading_it_all() -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
           "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x"}  # fmt: skip
    run = subprocess.run([CLI, "call", "-d", "@-", URL], input=b"x" * (11 * 1024 * 1024), env=env,
                         capture_output=True, timeout=30, check=False)  # fmt: skip
    assert run.returncode == 2 and b"10 MiB" in run.stderr


def cli(harness: Harness, *argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([CLI, "call", "--region", harness.aws.region, *argv], env=shell_env(harness),
                          input=stdin, capture_output=True, timeout=60, check=False)  # fmt: skip


def test_fail_exits_22_on_an_http_error_and_silent_says_nothing(harness: Harness) -> None:
    # a path that does not exist: API Gateway answers 403 Missing Authentication Token
    run = cli(harness, "--fail", f"{harness.url}/no/such/path")
    assert run.returncode == 22 and run.stdout == b"" and b"returned error: 403" in run.stderr
    quiet = cli(harness, "-sf", f"{harness.url}/no/such/path")
    assert quiet.returncode == 22 and quiet.stdout == b"" and quiet.stderr == b""
    assert cli(harness, f"{harness.url}/no/such/path").returncode == 1  # without --fail: 1 and the body


def test_head_prints_the_headers_only(harness: Harness) -> None:
    run = cli(harness, "-I", f"{harness.url}/health")
    assert run.returncode == 0 and run.stdout.startswith(b"HTTP/1.1 200")
    assert run.stdout.endswith(b"\r\n\r\n") and b"x-amzn-RequestId" in run.stdout


def test_write_out_reports_status_time_and_request_id(harness: Harness) -> None:
    run = cli(
        harness,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{request_id} %{num_redirects}\\n",
        f"{harness.url}/health",
    )
    status, request_id, hops = run.stdout.decode().split()
    assert run.returncode == 0 and status == "200" and len(request_id) == 36 and hops == "0"


def test_url_query_and_data_urlencode_are_encoded_as_signed(harness: Harness) -> None:
    run = cli(harness, "--url-query", "q=a b", "--url-query", "tag=x&y+z", f"{harness.url}/items")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["query"] == "q=a b&tag=x&y+z"  # the gateway's view, decoded
    form = cli(harness, "--data-urlencode", "name=café & co", f"{harness.url}/items")
    answer = json.loads(form.stdout)
    assert form.returncode == 0 and answer["method"] == "POST"
    assert answer["bodyBytes"] == len("name=caf%C3%A9%20%26%20co")


def test_role_arn_signs_as_the_assumed_role(harness: Harness) -> None:
    run = cli(harness, "--role-arn", harness.sample.allowed_role_arn, f"{harness.url}/health")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["caller"].endswith("assumed-role/orders-auditor/apigw-access-auditor")
    outsider = cli(harness, "-f", "--role-arn", harness.sample.outsider_role_arn, f"{harness.url}/health")
    assert outsider.returncode == 22  # the outsider is denied by the resource policy


def test_location_follows_the_same_host_signing_each_hop_and_refuses_another(harness: Harness) -> None:
    from access_auditor.local_aws.faults import FaultyUpstream

    with FaultyUpstream() as upstream:
        followed = cli(harness, "-L", "-v", upstream.url("redirect"))
        away = cli(harness, "-L", upstream.url("redirect-away"))
    assert followed.returncode == 0 and followed.stdout.startswith(b'{"status": "ok"}')
    signed = followed.stderr.decode().split("* canonical request:")
    assert len(signed) == 3 and "/ok/after-redirect" in signed[2]  # a second signature, for the new URL
    assert away.returncode == 2 and b"another host" in away.stderr


@pytest.mark.parametrize(
    ("line", "expected"), [("access-auditor ca", "call"), ("access-auditor call --rol", "--role-arn")]
)
def test_completion_comes_from_the_argument_parser(tmp_path: Path, line: str, expected: str) -> None:
    out = tmp_path / "completions"
    env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}  # fmt: skip
    run = subprocess.run([CLI], env=env, capture_output=True, timeout=30, check=False)
    assert run.returncode == 0 and expected in out.read_text().split()


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_for_bash_and_zsh(shell: str) -> None:
    run = subprocess.run([CLI, "completion", shell], capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 0 and "access-auditor" in run.stdout and "_ARGCOMPLETE" in run.stdout


def test_the_troubleshooting_example_shows_the_wrong_region(harness: Harness) -> None:
    # The signature-mismatch guide's example (docs/how-to/signature-mismatches.md), as it runs: signed for eu-west-1, the scope line names it
    run = subprocess.run([CLI, "call", "--region", "eu-west-1", "-v", f"{harness.url}/items?q=a b"],
                         env=shell_env(harness), capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert run.returncode == 1
    assert "/eu-west-1/execute-api/aws4_request" in run.stderr and "q=a%20b" in run.stderr
    assert "Credential should be scoped to a valid region, not 'eu-west-1'" in run.stdout


@pytest.mark.parametrize("command", [["findings"], ["schema"], ["findings", "--markdown"]])
def test_a_reader_that_goes_away_is_not_an_error(command: list[str]) -> None:
    # GIVEN a pipe whose reader has already gone (`access-auditor findings | head -1`, once head has its line)
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [CLI, *command], stdout=write, stderr=subprocess.PIPE, text=True, timeout=60, check=False
        )
    finally:
        os.close(write)
    # THEN the command ends quietly, exit 0
    assert (done.returncode, done.stderr) == (0, "")


def test_audit_errors_name_the_flags_the_user_typed(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "audit",
            "--api-id",
            "abc123",
            "--region",
            "us-east-1",
            "--role",
            "arn:aws:iam::123456789012:role/app",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--stage is required" in err and "API_STAGE" not in err
    code = main(["audit", "--api-id", "ABC", "--stage", "prod", "--region", "us-east-1",
                 "--role", "arn:aws:iam::123456789012:role/app"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--api-id: 'ABC' is not a REST API id" in err


def test_role_takes_a_name_in_audit_and_policy_check_as_in_render(
    as_allowed_role: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    harness = as_allowed_role
    # GIVEN the expected policy, rendered with the role's name
    assert main(["policy", "render", "--api-arn", harness.sample.api.arn, "--role", "orders-auditor"]) == 0
    policy = tmp_path / "expected.json"
    policy.write_text(capsys.readouterr().out)
    # THEN policy check and audit take the same name, and find the role, path included
    assert main(["policy", "check", "--policy-file", str(policy), "--api-arn", harness.sample.api.arn,
                 "--role", "orders-auditor"]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith("ok:")
    code = main(["audit", "--api-id", harness.sample.api_id, "--stage", STAGE, "--region", harness.aws.region,
                 "--role", "orders-auditor", "--endpoint", harness.url])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    # and the table says a healthy API's health is ok
    header, row = out.splitlines()[:2]
    assert dict(zip(header.split(), row.split(), strict=False))["HEALTH"] == "ok"


def test_an_empty_discovery_says_which_tag_it_looked_for(
    as_allowed_role: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["audit", "--discover", "ap-southeast-2", "--account", as_allowed_role.aws.account])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("nothing to audit: no REST API in ap-southeast-2 carries the tag ")
    assert "access-auditor:allowed-roles" in out


def test_every_command_s_help_has_examples() -> None:
    from access_auditor.cli.main import build_parser

    parser = build_parser()
    [commands] = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for name, command in commands.choices.items():  # type: ignore[attr-defined]
        helps = [command.format_help()]
        for action in command._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                helps += [sub.format_help() for sub in action.choices.values()]
        for text in helps:
            assert "examples:" in text, f"access-auditor {name}: no examples in its help"


def test_the_hint_for_the_demo_extras_names_what_a_clone_can_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import access_auditor.local_aws

    # as if the extras were absent: the demo module cannot be imported
    monkeypatch.setitem(sys.modules, "access_auditor.local_aws.demo", None)
    monkeypatch.delattr(access_auditor.local_aws, "demo", raising=False)
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert "make demo" in err and "pip install '.[demo]'" in err and "apigw-access-auditor[demo]" not in err


def test_a_missing_policy_names_the_command_that_fixes_it_and_the_command_does(
    as_allowed_role: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    import shlex

    from access_auditor.local_aws.sample import deploy

    # GIVEN the API as a first deploy often finds it: no resource policy at all
    harness = as_allowed_role
    apigw = harness.aws.client("apigateway")
    apigw.update_rest_api(
        restApiId=harness.sample.api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": ""}]
    )
    deploy(apigw, harness.sample.api_id)
    audit = ["audit", "--api-id", harness.sample.api_id, "--stage", STAGE, "--region", harness.aws.region,
             "--role", harness.sample.allowed_role_arn, "--endpoint", harness.url, "--json"]  # fmt: skip
    try:
        assert main(audit) == 1
        [missing] = [f for f in json.loads(capsys.readouterr().out)["targets"][0]["findings"]
                     if f["code"] == "POLICY_MISSING"]  # fmt: skip
        # WHEN the user runs the command the finding gives, then the same without --dry-run
        command = re.search(r"access-auditor policy apply [^,]+ --dry-run", missing["message"])
        assert command, missing["message"]
        argv = shlex.split(command[0])[1:]
        assert main(argv) == 0 and main([a for a in argv if a != "--dry-run"]) == 0
        capsys.readouterr()
        # THEN the next audit is quiet
        assert main(audit) == 0, capsys.readouterr().out
    finally:
        harness.restore()
