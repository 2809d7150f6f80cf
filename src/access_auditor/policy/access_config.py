"""What decides who may invoke a stage, as one value: the resource policy and each method's authorization.
Pure code: the adapters read it (saved, or deployed), the audit compares the two."""

from __future__ import annotations

from dataclasses import dataclass

from access_auditor.errors import PolicyParseError
from access_auditor.policy.document import ApiRef, canonicalize_policy, load_policy, parse_policy_text
from access_auditor.policy.matrix import Method


@dataclass(frozen=True)
class AccessConfig:
    """What decides who may invoke a stage: the resource policy (its text as API Gateway returns it, None for
    no policy) and every method's authorizationType."""

    policy: str | None
    methods: tuple[Method, ...]

    def differs_from(self, other: AccessConfig, api: ApiRef) -> bool:
        """Whether the two could grant different access: see policy_differs and methods_differ."""
        return self.methods_differ(other) or self.policy_differs(other, api)

    def policy_differs(self, other: AccessConfig, api: ApiRef) -> bool:
        """A structurally different policy (API Gateway's rewrites on save ignored); two unreadable policies
        differ when their text does."""
        return _canonical(self.policy, api) != _canonical(other.policy, api)

    def methods_differ(self, other: AccessConfig) -> bool:
        """A method added, removed, or authorized differently."""

        def authorizations(config: AccessConfig) -> set[tuple[str, str, str]]:
            return {(m.http_method, m.path, m.authorization_type) for m in config.methods}

        return authorizations(self) != authorizations(other)


def _canonical(policy: str | None, api: ApiRef) -> str | None:
    if policy is None:
        return None
    try:
        return canonicalize_policy(load_policy(parse_policy_text(policy), api))
    except PolicyParseError:
        return policy
