"""Which alarms of template.yaml would be in ALARM, worked out from EMF output and the alarm definitions
themselves (never from a copy of them), so that changing an alarm in the template changes the verdict."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Alarm:
    name: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    threshold: float
    comparison: str
    treat_missing: str


@dataclass(frozen=True)
class Datapoint:
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]  # exactly the dimension set the value was emitted under
    values: tuple[float, ...]


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, !If ...) as their long forms."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else "Fn::GetAtt" if suffix == "GetAtt" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return data


def parameter_defaults(template: dict[str, Any]) -> dict[str, str]:
    return {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}


def template_alarms(template: dict[str, Any], overrides: dict[str, str] | None = None) -> list[Alarm]:
    """Every AWS::CloudWatch::Alarm, with parameters resolved to their defaults (or ``overrides``).
    A Ref to a resource resolves to its logical id."""
    params = {**parameter_defaults(template), **(overrides or {})}

    def resolve(value: Any) -> str:
        if isinstance(value, dict) and "Ref" in value:
            return str(params.get(value["Ref"], value["Ref"]))
        return str(value)

    alarms = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        alarms.append(
            Alarm(
                name=name,
                namespace=resolve(props["Namespace"]),
                metric=resolve(props["MetricName"]),
                dimensions=tuple(
                    sorted((d["Name"], resolve(d["Value"])) for d in props.get("Dimensions", []))
                ),
                statistic=props["Statistic"],
                threshold=float(props["Threshold"]),
                comparison=props["ComparisonOperator"],
                treat_missing=props.get("TreatMissingData", "missing"),
            )
        )
    return alarms


def parse_emf(lines: Iterable[str]) -> list[Datapoint]:
    """Datapoints from stdout lines in CloudWatch Embedded Metric Format; other lines are skipped."""
    points = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or "_aws" not in record:
            continue
        for directive in record["_aws"].get("CloudWatchMetrics", []):
            for dimension_set in directive.get("Dimensions", []):
                dims = tuple(sorted((d, str(record[d])) for d in dimension_set))
                for metric in directive.get("Metrics", []):
                    raw = record.get(metric["Name"])
                    values = tuple(
                        float(v) for v in (raw if isinstance(raw, list) else [raw]) if v is not None
                    )
                    points.append(Datapoint(directive["Namespace"], metric["Name"], dims, values))
    return points


def evaluate(alarm: Alarm, points: Iterable[Datapoint]) -> str:
    """ALARM, OK or INSUFFICIENT_DATA for one evaluation period holding ``points``. A datapoint counts only
    when its namespace, name and *whole* dimension set equal the alarm's, as in CloudWatch."""
    values = [
        v for p in points
        if (p.namespace, p.metric, p.dimensions) == (alarm.namespace, alarm.metric, alarm.dimensions)
        for v in p.values
    ]  # fmt: skip
    if not values:
        return {"breaching": "ALARM", "notBreaching": "OK"}.get(alarm.treat_missing, "INSUFFICIENT_DATA")
    stat = {
        "Maximum": max(values),
        "Minimum": min(values),
        "Sum": sum(values),
        "Average": sum(values) / len(values),
        "SampleCount": float(len(values)),
    }[alarm.statistic]
    breach = {
        "GreaterThanOrEqualToThreshold": stat >= alarm.threshold,
        "GreaterThanThreshold": stat > alarm.threshold,
        "LessThanThreshold": stat < alarm.threshold,
        "LessThanOrEqualToThreshold": stat <= alarm.threshold,
    }[alarm.comparison]
    return "ALARM" if breach else "OK"


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: str
    handler: str
    timeout_s: int
    memory_mb: int
    service: str
    namespace: str


def function_spec(template: dict[str, Any], logical_id: str = "AuditorFunction") -> FunctionSpec:
    """How Lambda would load the function: CodeUri and Handler, plus the Powertools settings it gets."""
    params = parameter_defaults(template)
    props = template["Resources"][logical_id]["Properties"]
    variables = props["Environment"]["Variables"]

    def value(raw: Any) -> str:
        return params[raw["Ref"]] if isinstance(raw, dict) and "Ref" in raw else str(raw)

    return FunctionSpec(
        logical_id=logical_id,
        code_uri=str(props["CodeUri"]),
        handler=str(props["Handler"]),
        timeout_s=int(value(props["Timeout"])),
        memory_mb=int(value(props["MemorySize"])),
        service=value(variables["POWERTOOLS_SERVICE_NAME"]),
        namespace=value(variables["POWERTOOLS_METRICS_NAMESPACE"]),
    )
