"""Which alarms of template.yaml would be in ALARM, worked out from EMF output and the alarm definitions
themselves (never from a copy of them), so that changing an alarm in the template changes the verdict."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from access_auditor.local_aws.server import ACCOUNT, REGION

STACK_NAME = "apigw-access-auditor"  # the local stack's name (AWS::StackName, and so the default ServiceName)


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
    evaluation_periods: int = 1
    datapoints_to_alarm: int = 1


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


def translate_template(path: Path, parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """A template as CloudFormation receives it after SAM's transform (samtranslator, the SAM CLI's own), with
    every local CodeUri (a function's, or the Globals') an uploaded artifact as `sam package` makes it. A
    template without the transform comes back as it is. samtranslator reads the region from boto3's default."""
    from samtranslator.translator.transform import transform  # type: ignore[import-untyped]  # the dev toolchain

    class NoManagedPolicies:  # the templates name no managed policy by name; nothing to look up
        def load(self) -> dict[str, str]:
            return {}

    template = load_template(path)
    if "Transform" not in template:
        return template
    for props in [template.get("Globals", {}).get("Function", {})] + [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"
    ]:
        if "CodeUri" in props:
            props["CodeUri"] = "s3://artifacts/auditor.zip"
    output: dict[str, Any] = transform(template, parameters or {}, NoManagedPolicies())
    return output


def parameter_defaults(template: dict[str, Any]) -> dict[str, str]:
    return {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}


def resolver(
    template: dict[str, Any],
    overrides: dict[str, str] | None = None,
    stack: str = STACK_NAME,
    attributes: dict[str, str] | None = None,
) -> Any:
    """``resolve(value)``: a template value with parameters (their defaults, or ``overrides``), pseudo
    parameters, conditions (Fn::If, Fn::Equals, Fn::Not, Fn::And, Fn::Or) and Fn::Sub worked out. A Ref to a
    resource resolves to its logical id, as the local stack names it."""
    params = {**parameter_defaults(template), "AWS::StackName": stack, "AWS::Region": REGION,
              "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::NoValue": "", **(overrides or {})}  # fmt: skip
    conditions = template.get("Conditions", {})

    def condition(name: str) -> bool:
        return bool(resolve(conditions[name]))

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::", "Condition")):
            return {k: resolve(v) for k, v in value.items()}
        ((key, arg),) = value.items()
        if key == "Ref":
            return str(params.get(arg, arg))
        if key == "Condition":
            return condition(arg)
        if key == "Fn::GetAtt":
            name = ".".join(arg)
            return (attributes or {}).get(name, name)
        if key == "Fn::If":
            return resolve(arg[1] if condition(arg[0]) else arg[2])
        if key == "Fn::Equals":
            return str(resolve(arg[0])) == str(resolve(arg[1]))
        if key == "Fn::Not":
            return not resolve(arg[0])
        if key == "Fn::And":
            return all(resolve(a) for a in arg)
        if key == "Fn::Or":
            return any(resolve(a) for a in arg)
        if key == "Fn::Join":
            return str(arg[0]).join(str(v) for v in resolve(arg[1]))
        if key == "Fn::Split":
            return str(resolve(arg[1])).split(str(arg[0]))
        if key == "Fn::Sub":
            text, names = (
                (arg, {}) if isinstance(arg, str) else (arg[0], {k: resolve(v) for k, v in arg[1].items()})
            )
            for name in re.findall(r"\$\{([^}!]+)\}", text):
                found = names.get(
                    name, params.get(name, (attributes or {}).get(name, name.replace(".", "-")))
                )
                text = text.replace("${" + name + "}", str(found))
            return text
        return value

    return resolve


def template_alarms(
    template: dict[str, Any], overrides: dict[str, str] | None = None, stack: str = STACK_NAME
) -> list[Alarm]:
    """Every AWS::CloudWatch::Alarm on one metric, with parameters resolved to their defaults (or
    ``overrides``)."""
    resolve = resolver(template, overrides, stack)

    alarms = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm" or "Metrics" in resource["Properties"]:
            continue  # metric math alarms: see shard_alarm
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
                evaluation_periods=int(props.get("EvaluationPeriods", 1)),
                datapoints_to_alarm=int(props.get("DatapointsToAlarm", props.get("EvaluationPeriods", 1))),
            )
        )
    return alarms


def alarm_arn(name: str) -> str:
    """The ARN CloudWatch gives the local stack's alarm ``name``."""
    return f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"


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


def evaluate(alarm: Alarm, *periods: Iterable[Datapoint]) -> str:
    """ALARM, OK or INSUFFICIENT_DATA after ``periods`` (oldest first, one per run), as CloudWatch decides it:
    ALARM when at least DatapointsToAlarm of the last EvaluationPeriods periods breach (a missing period
    counts as TreatMissingData says). A datapoint counts only when its namespace, name and *whole* dimension
    set equal the alarm's."""
    verdicts = [_period(alarm, points) for points in periods[-alarm.evaluation_periods :]]
    if verdicts.count("ALARM") >= alarm.datapoints_to_alarm:
        return "ALARM"
    return "INSUFFICIENT_DATA" if all(v == "INSUFFICIENT_DATA" for v in verdicts) else "OK"


def _period(alarm: Alarm, points: Iterable[Datapoint]) -> str:
    stat = _statistic(points, (alarm.namespace, alarm.metric, alarm.dimensions), alarm.statistic)
    if stat is None:
        return {"breaching": "ALARM", "notBreaching": "OK"}.get(alarm.treat_missing, "INSUFFICIENT_DATA")
    return "ALARM" if _breach(stat, alarm.comparison, alarm.threshold) else "OK"


def _statistic(points: Iterable[Datapoint], metric: tuple[Any, ...], statistic: str) -> float | None:
    values = [v for p in points if (p.namespace, p.metric, p.dimensions) == metric for v in p.values]
    if not values:
        return None
    return {
        "Maximum": max(values),
        "Minimum": min(values),
        "Sum": sum(values),
        "Average": sum(values) / len(values),
        "SampleCount": float(len(values)),
    }[statistic]


def _breach(stat: float, comparison: str, threshold: float) -> bool:
    return {
        "GreaterThanOrEqualToThreshold": stat >= threshold,
        "GreaterThanThreshold": stat > threshold,
        "LessThanThreshold": stat < threshold,
        "LessThanOrEqualToThreshold": stat <= threshold,
    }[comparison]


@dataclass(frozen=True)
class MathAlarm:
    """An alarm on a metric math expression (``Metrics``): its inputs by id, and the one that returns data."""

    name: str
    expression: str
    inputs: dict[str, tuple[tuple[Any, ...], str]]  # id -> ((namespace, metric, dimensions), statistic)
    threshold: float
    comparison: str
    treat_missing: str
    evaluation_periods: int
    datapoints_to_alarm: int


def template_math_alarms(
    template: dict[str, Any], overrides: dict[str, str] | None = None, stack: str = STACK_NAME
) -> list[MathAlarm]:
    resolve = resolver(template, overrides, stack)
    alarms = []
    for name, resource in template["Resources"].items():
        props = resource["Properties"]
        if resource["Type"] != "AWS::CloudWatch::Alarm" or "Metrics" not in props:
            continue
        inputs, expression = {}, ""
        for query in props["Metrics"]:
            if "Expression" in query:
                expression = str(query["Expression"])
                continue
            stat = query["MetricStat"]
            metric = stat["Metric"]
            dims = tuple(sorted((d["Name"], resolve(d["Value"])) for d in metric.get("Dimensions", [])))
            inputs[query["Id"]] = (
                (resolve(metric["Namespace"]), metric["MetricName"], dims),
                str(stat["Stat"]),
            )
        periods = int(props.get("EvaluationPeriods", 1))
        alarms.append(MathAlarm(name, expression, inputs, float(props["Threshold"]), props["ComparisonOperator"],
                                props.get("TreatMissingData", "missing"), periods,
                                int(props.get("DatapointsToAlarm", periods))))  # fmt: skip
    return alarms


def evaluate_math(alarm: MathAlarm, *periods: Iterable[Datapoint]) -> str:
    """As ``evaluate``, for an expression of the inputs with ``+``, ``-``, numbers, FILL(input, number) and
    DIFF(input) (the subset of CloudWatch metric math the templates use): no data in an input makes the period
    missing unless FILL supplies it; DIFF is an input's value less its value in the latest earlier period that
    had one (missing without either)."""
    series: list[dict[str, float | None]] = []
    for points in periods:
        points = list(points)
        series.append({id_: _statistic(points, metric, stat) for id_, (metric, stat) in alarm.inputs.items()})
    verdicts = []
    for index in range(max(0, len(series) - alarm.evaluation_periods), len(series)):
        result = _expression(ast.parse(alarm.expression, mode="eval").body, series[: index + 1])
        if result is None:
            verdicts.append(
                {"breaching": "ALARM", "notBreaching": "OK"}.get(alarm.treat_missing, "INSUFFICIENT_DATA")
            )
        else:
            verdicts.append("ALARM" if _breach(result, alarm.comparison, alarm.threshold) else "OK")
    if verdicts.count("ALARM") >= alarm.datapoints_to_alarm:
        return "ALARM"
    return "INSUFFICIENT_DATA" if all(v == "INSUFFICIENT_DATA" for v in verdicts) else "OK"


def _expression(node: ast.expr, series: list[dict[str, float | None]]) -> float | None:
    """The expression's value in the last period of ``series`` (each period: input id -> value)."""
    values = series[-1]
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "FILL":
        value = _expression(node.args[0], series)
        return value if value is not None else _expression(node.args[1], series)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "DIFF":
        now = _expression(node.args[0], series)
        before = next(
            (
                v
                for i in range(len(series) - 1, 0, -1)
                if (v := _expression(node.args[0], series[:i])) is not None
            ),
            None,
        )
        return None if now is None or before is None else now - before
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        left, right = _expression(node.left, series), _expression(node.right, series)
        if left is None or right is None:
            return None
        return left + right if isinstance(node.op, ast.Add) else left - right
    raise ValueError(f"metric math this local AWS does not evaluate: {ast.unparse(node)}")


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: str
    handler: str
    timeout_s: int
    memory_mb: int
    service: str
    namespace: str
    log_group: str = ""


def function_spec(
    template: dict[str, Any], logical_id: str = "AuditorFunction", stack: str = STACK_NAME
) -> FunctionSpec:
    """How Lambda would load the function: CodeUri and Handler (from the template's Globals when the function
    does not say), plus the Powertools settings it gets."""
    resolve = resolver(template, stack=stack)
    props = {
        **template.get("Globals", {}).get("Function", {}),
        **template["Resources"][logical_id]["Properties"],
    }
    variables = props["Environment"]["Variables"]

    def value(raw: Any) -> str:
        return str(resolve(raw))

    return FunctionSpec(
        logical_id=logical_id,
        code_uri=str(props["CodeUri"]),
        handler=str(props["Handler"]),
        timeout_s=int(value(props["Timeout"])),
        memory_mb=int(value(props["MemorySize"])),
        service=value(variables["POWERTOOLS_SERVICE_NAME"]),
        namespace=value(variables["POWERTOOLS_METRICS_NAMESPACE"]),
        log_group=value(
            template["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]["LogGroupName"]
        ),
    )
