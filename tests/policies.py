"""Hypothesis strategies for resource policies and callers, from a small vocabulary chosen so that
generated statements often touch the callers and methods the tests use."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from access_auditor.policy.document import ApiRef
from access_auditor.policy.evaluator import RequestContext

API = ApiRef("us-east-1", "123456789012", "abc123")
ACCOUNT, OTHER = API.account, "999999999999"
ROLES = [
    f"arn:aws:iam::{ACCOUNT}:role/app",
    f"arn:aws:iam::{ACCOUNT}:role/team/other",
    f"arn:aws:iam::{OTHER}:role/app",
]
SESSIONS = {arn: f"arn:aws:sts::{arn.split(':')[4]}:assumed-role/{arn.rsplit('/', 1)[1]}/s1" for arn in ROLES}
METHOD_ARNS = [f"{API.arn}/prod/GET/health", f"{API.arn}/prod/POST/items", f"{API.arn}/dev/DELETE/items/7"]
IPS = ["10.1.2.3", "192.168.0.9", "203.0.113.10"]
# Through a VPC endpoint a request carries aws:SourceVpce, aws:SourceVpc and aws:VpcSourceIp, and no aws:SourceIp.
VPCES = ["vpce-0a1b2c3d", "vpce-0e5f6a7b"]
VPCS = ["vpc-0a11", "vpc-0b22"]
VPC_IPS = ["10.0.3.4", "10.1.9.9", "172.16.5.5"]

principal_entries = st.sampled_from(
    ["*", ACCOUNT, OTHER, f"arn:aws:iam::{ACCOUNT}:root", *ROLES, *SESSIONS.values()]
)
resources = st.sampled_from(
    [f"{API.arn}/*", f"{API.arn}/prod/*", f"{API.arn}/*/GET/*", f"{API.arn}/prod/POST/items", "*",
     f"{API.arn}/d?v/*"]
)  # fmt: skip
conditions = st.one_of(
    st.tuples(
        st.sampled_from(["StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "ArnLike", "ArnNotLike",
                         "ArnEquals", "StringNotEqualsIfExists", "StringLikeIfExists", "ForAnyValue:StringLike",
                         "ForAllValues:StringNotEquals", "ForAnyValue:StringLikeIfExists"]),
        st.just("aws:PrincipalArn"),
        st.lists(st.sampled_from([*ROLES, f"arn:aws:iam::{ACCOUNT}:role/*", "arn:aws:iam::*:role/app"]),
                 min_size=1, max_size=2),
    ),
    st.tuples(
        st.sampled_from(["StringEquals", "StringNotEquals", "StringEqualsIfExists", "ForAllValues:StringEquals"]),
        st.just("aws:PrincipalAccount"),
        st.lists(st.sampled_from([ACCOUNT, OTHER]), min_size=1, max_size=2),
    ),
    st.tuples(
        st.sampled_from(["IpAddress", "NotIpAddress", "IpAddressIfExists", "ForAnyValue:IpAddress"]),
        st.just("aws:SourceIp"),
        st.lists(st.sampled_from(["10.0.0.0/8", "192.168.0.0/16", "203.0.113.10/32"]), min_size=1, max_size=2),
    ),
    st.tuples(
        st.sampled_from(["StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "StringNotEqualsIfExists",
                         "ForAnyValue:StringEquals"]),
        st.sampled_from(["aws:SourceVpce", "aws:SourceVpc"]),
        st.lists(st.sampled_from([*VPCES, *VPCS, "vpce-*", "vpc-0a*"]), min_size=1, max_size=2),
    ),
    st.tuples(
        st.sampled_from(["IpAddress", "NotIpAddress", "IpAddressIfExists"]),
        st.just("aws:VpcSourceIp"),
        st.lists(st.sampled_from(["10.0.0.0/16", "10.1.0.0/16", "172.16.0.0/12"]), min_size=1, max_size=2),
    ),
    st.tuples(
        st.just("Null"),
        st.sampled_from(["aws:PrincipalArn", "aws:SourceVpce", "aws:SourceIp", "aws:SourceVpc", "aws:VpcSourceIp"]),
        st.lists(st.sampled_from(["true", "false", "True"]), min_size=1, max_size=2),
    ),
)  # fmt: skip


@st.composite
def statements(draw: st.DrawFn, effect: str | None = None) -> dict[str, Any]:
    chosen = effect or draw(st.sampled_from(["Allow", "Deny"]))
    statement: dict[str, Any] = {"Effect": chosen}
    entries = draw(st.lists(principal_entries, min_size=1, max_size=3))
    principal: Any = "*" if "*" in entries and draw(st.booleans()) else {"AWS": entries}
    statement["NotPrincipal" if chosen == "Deny" and draw(st.integers(0, 4)) == 0 else "Principal"] = (
        principal
    )
    statement["Action"] = draw(
        st.sampled_from(["execute-api:Invoke", "execute-api:*", "*", ["execute-api:Invoke"]])
    )
    key = "NotResource" if draw(st.integers(0, 5)) == 0 else "Resource"
    statement[key] = draw(st.lists(resources, min_size=1, max_size=2))
    block: dict[str, dict[str, list[str]]] = {}
    for operator, condition_key, values in draw(st.lists(conditions, max_size=2)):
        block.setdefault(operator, {})[condition_key] = values
    if block:
        statement["Condition"] = block
    return statement


policies = st.lists(statements(), max_size=4).map(lambda s: {"Version": "2012-10-17", "Statement": s})


@st.composite
def networks(draw: st.DrawFn) -> dict[str, str]:
    """Where a request comes from: the internet (a source IP), or a VPC endpoint (its id, its VPC, the
    caller's address in the VPC)."""
    if draw(st.booleans()):
        return {"source_ip": draw(st.sampled_from(IPS))}
    return {"source_vpce": draw(st.sampled_from(VPCES)), "source_vpc": draw(st.sampled_from(VPCS)),
            "vpc_source_ip": draw(st.sampled_from(VPC_IPS))}  # fmt: skip


@st.composite
def callers(draw: st.DrawFn) -> RequestContext:
    network = draw(networks())
    if draw(st.integers(0, 4)) == 0:
        return RequestContext(**network)
    arn = draw(st.sampled_from(ROLES))
    return RequestContext(principal_arn=arn, account=arn.split(":")[4], session_arn=SESSIONS[arn], **network)
