"""Bad configuration fails at start-up with an error naming the variable and what was expected."""

from __future__ import annotations

import json

import pytest

from access_auditor.config import load_config
from access_auditor.errors import ConfigError

GOOD = {"API_ID": "abc123", "API_STAGE": "prod", "AWS_REGION": "us-east-1",
        "ALLOWED_ROLE_ARN": "arn:aws:iam::123456789012:role/team/app"}  # fmt: skip


def test_defaults_and_invoke_url() -> None:
    target = load_config(GOOD).targets[0]
    assert target.health_url == "https://abc123.execute-api.us-east-1.amazonaws.com/prod/health"
    assert target.account == "123456789012" and target.health_method == "GET"
    assert 204 in target.expected_status and 302 not in target.expected_status


def test_status_ranges_stay_ranges() -> None:
    statuses = load_config({**GOOD, "EXPECTED_STATUS": "100-599"}).targets[0].expected_status
    assert 100 in statuses and 599 in statuses and 600 not in statuses and str(statuses) == "100-599"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"API_ID": ""}, "API_ID"),
        ({"API_ID": "ABC 123"}, "API_ID"),
        ({"API_STAGE": "prod/x"}, "API_STAGE"),
        ({"AWS_REGION": "", "API_REGION": ""}, "API_REGION"),
        ({"ALLOWED_ROLE_ARN": "arn:aws:iam::123456789012:user/bob"}, "ALLOWED_ROLE_ARN"),
        ({"HEALTH_PATH": "health"}, "HEALTH_PATH"),
        ({"HEALTH_METHOD": "FETCH"}, "HEALTH_METHOD"),
        ({"API_ENDPOINT": "http://api.example.com"}, "API_ENDPOINT"),
        ({"EXPECTED_STATUS": "2xx"}, "EXPECTED_STATUS"),
        ({"HTTP_READ_TIMEOUT": "-1"}, "HTTP_READ_TIMEOUT"),
        ({"CLOUDTRAIL_LOOKUP": "maybe"}, "CLOUDTRAIL_LOOKUP"),
        ({"AUDIT_TARGETS": "[{"}, "AUDIT_TARGETS"),
        ({"AUDIT_TARGETS": json.dumps([{"API_ID": "x1", "STAGE": "prod"}])}, "AUDIT_TARGETS[0]"),
        ({"ASSUME_ROLE_ARN": "role/app"}, "ASSUME_ROLE_ARN"),
        ({"EXPECTED_STATUS": "²"}, "EXPECTED_STATUS"),  # a digit to str.isdigit, not to int()
        ({"EXPECTED_STATUS": "0-30000000"}, "EXPECTED_STATUS"),  # not HTTP statuses
        ({"EXPECTED_STATUS": "299-200"}, "EXPECTED_STATUS"),
        ({"API_ENDPOINT": "https://[::1"}, "API_ENDPOINT"),  # urlsplit raises ValueError
        ({"API_ENDPOINT": "https://h:99999/x"}, "API_ENDPOINT"),
        ({"API_ENDPOINT": "https://h/a\r\nX-Injected: 1"}, "API_ENDPOINT"),
        ({"HTTP_READ_TIMEOUT": "nan"}, "HTTP_READ_TIMEOUT"),
        ({"HTTP_CONNECT_TIMEOUT": "inf"}, "HTTP_CONNECT_TIMEOUT"),
        ({"MAX_CONCURRENCY": "100000"}, "MAX_CONCURRENCY"),
    ],
)
def test_bad_values_name_the_variable(override: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({**GOOD, **override})
    assert named in str(info.value)


def test_http_endpoint_allowed_for_loopback_only() -> None:
    target = load_config({**GOOD, "API_ENDPOINT": "http://127.0.0.1:8080/abc123/prod"}).targets[0]
    assert target.health_url == "http://127.0.0.1:8080/abc123/prod/health"


def test_audit_targets_inherit_shared_settings() -> None:
    env = {**GOOD, "AUDIT_TARGETS": json.dumps([{"API_ID": "one1"}, {"API_ID": "two2", "API_STAGE": "dev"}])}
    targets = load_config(env).targets
    assert [(t.api_id, t.stage) for t in targets] == [("one1", "prod"), ("two2", "dev")]


def test_the_notifications_settings_are_read_once_and_named_when_wrong() -> None:
    from access_auditor.config import load_notify_config

    env = {"ALARM_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:alarms", "AWS_REGION": "eu-west-1",
           "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/stack-auditor", "ALARM_PERIOD_SECONDS": "60"}  # fmt: skip
    config = load_notify_config(env)
    assert (config.topic_arn, config.log_group, config.period_s, config.region) == (
        env["ALARM_TOPIC_ARN"], env["AWS_LAMBDA_LOG_GROUP_NAME"], 60, "eu-west-1")  # fmt: skip
    for name, bad in (
        ("ALARM_TOPIC_ARN", "alarms"),
        ("ALARM_PERIOD_SECONDS", "soon"),
        ("AWS_REGION", "mars"),
    ):
        with pytest.raises(ConfigError, match=name):
            load_notify_config({**env, name: bad})


@pytest.mark.parametrize(
    "path", ["/../other/health", "/health/..", "/a/./health", "/%2e%2e/health", "/.%2E/x"]
)
def test_a_health_path_that_would_leave_the_stage_is_refused(path: str) -> None:
    # GIVEN a health path with a dot segment (plain or percent-encoded), which a client resolves before sending
    with pytest.raises(ConfigError, match="HEALTH_PATH.*'..' segment"):
        load_config({**GOOD, "HEALTH_PATH": path})


def test_a_health_path_is_normalised() -> None:
    target = load_config({**GOOD, "HEALTH_PATH": "//status//live/"}).targets[0]
    assert target.health_url.endswith("/prod/status/live")


def test_a_health_role_tag_naming_another_account_s_role_makes_no_target() -> None:
    from access_auditor.config import discovered_target

    config = load_config(GOOD)
    with pytest.raises(ConfigError, match="not a role of the API's account 123456789012"):
        discovered_target(config, "abc123", "us-east-1", "123456789012", "arn:aws:iam::123456789012:role/app", "prod",
                          "", "arn:aws:iam::999999999999:role/attacker")  # fmt: skip
    same = discovered_target(config, "abc123", "us-east-1", "123456789012", "arn:aws:iam::123456789012:role/app",
                             "prod", "", "health/orders")  # fmt: skip
    assert same.assume_role_arn == "arn:aws:iam::123456789012:role/health/orders"


@pytest.mark.parametrize(
    "role",
    ["admin", "arn:aws:iam::123456789012:role/admin", "apigw-access-auditor/healthy/x", "other/path/x"],
)
def test_a_health_role_tag_outside_the_health_roles_path_makes_no_target(role: str) -> None:
    from access_auditor.config import discovered_target

    # GIVEN the hub's HEALTH_ROLE_PATH (the member template's HealthRolePath), and a tag naming a role of the
    # account outside it (one an insider who may tag APIs would pick: an administrator role)
    config = load_config({**GOOD, "HEALTH_ROLE_PATH": "/apigw-access-auditor/health/"})
    # THEN the tag is refused, naming the path; a role under it is taken
    with pytest.raises(ConfigError, match="not under the health roles' path /apigw-access-auditor/health/"):
        discovered_target(config, "abc123", "us-east-1", "123456789012", "arn:aws:iam::123456789012:role/app",
                          "prod", "", role)  # fmt: skip
    kept = discovered_target(config, "abc123", "us-east-1", "123456789012", "arn:aws:iam::123456789012:role/app",
                             "prod", "", "apigw-access-auditor/health/orders")  # fmt: skip
    assert kept.assume_role_arn == "arn:aws:iam::123456789012:role/apigw-access-auditor/health/orders"


def test_a_health_role_path_that_is_not_an_iam_path_is_refused() -> None:
    with pytest.raises(ConfigError, match="HEALTH_ROLE_PATH: 'health' is not an IAM path"):
        load_config({**GOOD, "HEALTH_ROLE_PATH": "health"})


def test_the_configuration_parameter_is_read_with_the_stack_s_key() -> None:
    # GIVEN the template's CONFIG_KEY beside CONFIG_PARAMETER (the reader refuses a parameter not under it)
    asked: list[tuple[str, str]] = []

    def read(name: str, key: str) -> str:
        asked.append((name, key))
        return '{"targets": [{"API_ID": "abc123", "API_STAGE": "prod", "ALLOWED_ROLE_ARN": "arn:aws:iam::123456789012:role/app"}]}'

    load_config({"CONFIG_PARAMETER": "/auditor/fleet", "CONFIG_KEY": " arn:aws:kms:us-east-1:123456789012:key/k ",
                 "AWS_REGION": "us-east-1"}, read)  # fmt: skip
    # THEN the document is read with that key, and without one when the template set none
    load_config({"CONFIG_PARAMETER": "/auditor/fleet", "AWS_REGION": "us-east-1"}, read)
    assert asked == [("/auditor/fleet", "arn:aws:kms:us-east-1:123456789012:key/k"), ("/auditor/fleet", "")]
