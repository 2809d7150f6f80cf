"""The organization's pure core: shards, their messages, their reports; the hub's configuration."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from access_auditor.audit import TargetResult
from access_auditor.config import load_hub_config
from access_auditor.errors import ConfigError
from access_auditor.findings import finding
from access_auditor.observation import Scope
from access_auditor.org import Shard, member_role_arn, plan_shards, report_shard
from access_auditor.sources import placeholder

CYCLE = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
accounts_ = st.lists(st.from_regex(r"\d{12}", fullmatch=True), max_size=30)


@given(accounts_, accounts_)
def test_one_shard_per_account_and_region_and_none_for_an_excluded_account(
    accounts: list[str], excluded: list[str]
) -> None:
    regions = ("us-east-1", "eu-west-1")
    shards = plan_shards(accounts, regions, excluded, CYCLE)
    expected = {(a, r) for a in accounts if a not in excluded for r in regions}
    assert {(s.account, s.region) for s in shards} == expected and len(shards) == len(expected)
    assert plan_shards(list(reversed(accounts)), regions, excluded, CYCLE) == shards  # a stable order


def test_a_shard_survives_its_message_and_a_foreign_message_is_named() -> None:
    shard = Shard("111122223333", "eu-west-1", CYCLE)
    assert Shard.from_body(shard.body()) == shard
    for body, says in (("{nope", "not JSON"), ('{"kind": "other"}', "not a shard"),
                       ('{"kind": "access-auditor/shard", "account": "12", "region": "eu-west-1", "cycle": "x"}', "not valid"),
                       ('{"kind": "access-auditor/shard", "account": "111122223333", "region": "eu-west-1", "cycle": "x"}', "not a UTC time")):  # fmt: skip
        with pytest.raises(ValueError, match=says):
            Shard.from_body(body)


def test_a_shard_report_says_audited_deferred_or_failed_with_the_reason() -> None:
    from access_auditor.config import Target

    shard = Shard("111122223333", "eu-west-1", CYCLE)
    api = Target("abc123", "prod", "eu-west-1", "111122223333", ("arn:aws:iam::111122223333:role/app",))
    assert report_shard(shard, [TargetResult(api)], 1.0).outcome == "audited"
    late = TargetResult(api, [finding("AUDIT_DEFERRED", "later")])
    deferred = report_shard(shard, [late, TargetResult(api)], 1.0)
    assert (deferred.outcome, deferred.reason) == ("deferred", "1 of 2 targets deferred to the next cycle")
    whole = TargetResult(
        placeholder(Scope(shard.account, shard.region)), [finding("MEMBER_ROLE_UNAVAILABLE", "gone")]
    )
    failed = report_shard(shard, [whole], 1.0)
    assert (failed.outcome, failed.reason) == ("failed", "MEMBER_ROLE_UNAVAILABLE: gone")


def test_the_member_role_arn_is_the_role_name_in_the_account() -> None:
    assert member_role_arn("111122223333", "auditor") == "arn:aws:iam::111122223333:role/auditor"
    with pytest.raises(ConfigError, match="12-digit"):
        member_role_arn("1111", "auditor")


@pytest.mark.parametrize(("env", "says"), [
    ({}, "MEMBER_ROLE_NAME"),
    ({"MEMBER_ROLE_NAME": "bad name!"}, "MEMBER_ROLE_NAME"),
    ({"MEMBER_ROLE_NAME": "auditor", "ORG_ACCOUNTS": "123"}, "ORG_ACCOUNTS: '123'"),
    ({"MEMBER_ROLE_NAME": "auditor", "EXCLUDED_ACCOUNTS": "x"}, "EXCLUDED_ACCOUNTS"),
    ({"MEMBER_ROLE_NAME": "auditor"}, "SHARD_QUEUE_URL"),
])  # fmt: skip
def test_a_bad_hub_setting_is_named(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_hub_config({"AWS_REGION": "us-east-1", **env}, planner=True)


def test_the_hub_reads_a_static_list_or_asks_organizations() -> None:
    base = {"AWS_REGION": "us-east-1", "MEMBER_ROLE_NAME": "auditor"}
    assert load_hub_config(base).accounts is None
    listed = load_hub_config(
        {**base, "ORG_ACCOUNTS": "111122223333, 444455556666", "EXCLUDED_ACCOUNTS": "444455556666"}
    )
    assert listed.accounts == ("111122223333", "444455556666") and listed.excluded == ("444455556666",)


def test_only_a_shard_the_planner_could_have_planned_is_inside_the_plan() -> None:
    from access_auditor.org import MAX_SHARD_AGE, outside_plan

    now = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
    members, regions = {"111122223333", "444455556666"}, ("us-east-1",)

    def why(account: str = "111122223333", region: str = "us-east-1", cycle: dt.datetime = now) -> str | None:
        return outside_plan(Shard(account, region, cycle), regions, ["444455556666"], members, now)

    assert why() is None and why(cycle=now - MAX_SHARD_AGE + dt.timedelta(seconds=1)) is None
    assert "not an active account" in str(why("999999999999"))
    assert "excluded" in str(why("444455556666"))
    assert "region eu-west-1" in str(why(region="eu-west-1"))
    assert "cycle" in str(why(cycle=now + dt.timedelta(minutes=5))) and "cycle" in str(
        why(cycle=now - MAX_SHARD_AGE - dt.timedelta(seconds=1))
    )
