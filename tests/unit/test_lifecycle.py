"""A finding's life (outputs/lifecycle.py) and the suppressions that mute it (outputs/suppression.py): pure
functions, tested over generated runs."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from access_auditor.errors import ConfigError
from access_auditor.findings import finding
from access_auditor.outputs.lifecycle import Seen, State, advance
from access_auditor.outputs.suppression import parse_suppressions

T0 = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
TARGETS = [("123456789012", "us-east-1", f"api{n}", "prod") for n in range(3)]
seen_items = st.lists(st.builds(Seen, target=st.sampled_from(TARGETS), code=st.sampled_from(["ACCESS_WEAKENED", "METHOD_NOT_IAM"]),
                                severity=st.just("high"), message=st.text(max_size=20),
                                subject=st.sampled_from(["", "GET /a"])), max_size=8)  # fmt: skip


@given(seen_items, st.lists(st.text(max_size=20), min_size=8, max_size=8))
def test_the_same_findings_seen_again_are_no_transition_and_no_change(
    seen: list[Seen], messages: list[str]
) -> None:
    # GIVEN a run's findings; WHEN the next run sees the same ones, worded anew
    first = advance({}, seen, TARGETS, {}, T0)
    again = [Seen(s.target, s.code, s.severity, m, s.subject) for s, m in zip(seen, messages, strict=False)]
    second = advance(first.records, again, TARGETS, {}, T0 + dt.timedelta(minutes=5))
    # THEN nothing is told and nothing needs exporting; every open finding is ACTIVE
    assert second.transitions == [] and second.changed == set()
    assert {r.state for r in second.records.values()} <= {State.ACTIVE}
    assert all(r.first_seen == T0.isoformat(timespec="seconds") for r in second.records.values())


@given(seen_items)
def test_absence_resolves_only_where_the_audit_was_complete(seen: list[Seen]) -> None:
    first = advance({}, seen, TARGETS, {}, T0)
    complete = TARGETS[:1]
    step = advance(first.records, [], complete, {}, T0 + dt.timedelta(minutes=5))
    for record in step.records.values():
        expected = State.RESOLVED if record.target in complete else State.NEW
        assert record.state is expected
    assert {t.kind for t in step.transitions} <= {"resolved"}


def test_a_suppression_mutes_then_returns_and_a_gone_target_resolves_with_its_reason() -> None:
    s = Seen(TARGETS[0], "ACCESS_WEAKENED", "critical", "anonymous caller can invoke", "anonymous caller")
    muted = Seen(
        s.target, s.code, s.severity, s.message, s.subject, "agreed window", "2026-12-05T00:00:00+00:00"
    )
    one = advance({}, [s], TARGETS, {}, T0)
    two = advance(one.records, [muted], TARGETS, {}, T0 + dt.timedelta(minutes=5))
    three = advance(two.records, [s], TARGETS, {}, T0 + dt.timedelta(days=1))
    gone = advance(
        three.records, [], [], {TARGETS[0]: "API api0 no longer exists"}, T0 + dt.timedelta(days=2)
    )
    assert [t.kind for t in one.transitions + two.transitions + three.transitions + gone.transitions] == [
        "opened", "suppressed", "returned", "resolved"]  # fmt: skip
    (record,) = gone.records.values()
    assert record.state is State.RESOLVED and record.reason == "API api0 no longer exists"
    assert record.first_seen == T0.isoformat(timespec="seconds")


def test_suppressions_are_checked_where_they_enter() -> None:
    ok = {"justification": "agreed with the security team", "expires": "2027-01-31"}
    with pytest.raises(ConfigError, match="tag suppression must name its codes"):
        parse_suppressions([{**ok, "tag": "team=sandbox"}], "doc", T0)
    with pytest.raises(ConfigError, match="more than a year ahead"):
        parse_suppressions([{**ok, "apis": ["a1"], "expires": "2029-01-01"}], "doc", T0)
    with pytest.raises(ConfigError, match="justification"):
        parse_suppressions([{"apis": ["a1"], "expires": "2027-01-31", "justification": "ok"}], "doc", T0)
    with pytest.raises(ConfigError, match="matches everything"):
        parse_suppressions([ok], "doc", T0)
    with pytest.raises(ConfigError, match="not a finding code"):
        parse_suppressions([{**ok, "codes": ["NOPE"]}], "doc", T0)


def test_a_principal_pattern_mutes_a_finding_only_if_it_covers_every_caller_named() -> None:
    (rule,) = parse_suppressions([{"principal": "arn:aws:iam::111122223333:role/ci-*", "expires": "2027-01-31",
                                   "justification": "the CI role is being migrated"}], "doc", T0)  # fmt: skip
    ci = finding("ACCESS_WEAKENED", "m", subject="arn:aws:iam::111122223333:role/ci-deploy")
    both = finding(
        "ACCESS_WEAKENED", "m", subject="anonymous caller, arn:aws:iam::111122223333:role/ci-deploy"
    )
    assert rule.matches(ci, "a1", {}, T0) and not rule.matches(both, "a1", {}, T0)
    assert not rule.matches(ci, "a1", {}, dt.datetime(2027, 2, 1, tzinfo=dt.UTC))  # expired: it comes back
