"""The part of CloudWatch Logs Insights the dashboard's per-API widget uses, run over captured log records,
so that the demo shows that widget's table from the query written in template.yaml (never a copy of it).

Supported: ``filter F = "text" and G = 1``, ``stats latest(F) as A, max(F) as B, ... by F as X, ...``,
``sort A asc|desc, ...`` and ``limit N``. Fields are dotted paths into the JSON record; ``@timestamp`` is its
timestamp. The local AWS answers StartQuery with it too (``emulation``).
"""

from __future__ import annotations

import re
from typing import Any


def _field(record: dict[str, Any], path: str) -> Any:
    if path == "@timestamp":
        return record.get("timestamp")
    value: Any = record
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit():
            value = value[int(part)] if int(part) < len(value) else None
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def run_query(query: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the query returns over ``records`` (oldest first)."""
    rows: list[dict[str, Any]] = list(records)
    for command in (part.strip() for part in query.split("|")):
        verb, _, rest = command.partition(" ")
        if verb == "filter":
            for condition in re.split(r"\s+and\s+", rest.strip()):
                field, raw = re.fullmatch(r'\s*(\S+)\s*=\s*(".*"|[\w.-]+)\s*', condition).groups()  # type: ignore[union-attr]
                wanted: Any = raw[1:-1] if raw.startswith('"') else _literal(raw)
                rows = [r for r in rows if _field(r, field) == wanted]
        elif verb == "limit":
            rows = rows[: int(rest)]
        elif verb == "stats":
            rows = _stats(rest, rows)
        elif verb == "sort":
            for key in reversed([k.split() for k in rest.split(",")]):
                name, order = key[0], key[1] if len(key) > 1 else "asc"
                rows.sort(key=lambda r, n=name: (r.get(n) is None, str(r.get(n))), reverse=order == "desc")  # type: ignore[misc]
        elif verb:
            raise ValueError(f"the local Logs Insights does not know {verb!r}")
    return rows


def _literal(text: str) -> Any:
    if text in {"true", "false"}:
        return text == "true"
    try:
        return int(text)
    except ValueError:
        return float(text)


def _stats(spec: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    aggregates, _, by = spec.partition(" by ")
    functions = re.findall(r"(\w+)\(([^)]+)\)\s+as\s+(\w+)", aggregates)
    keys = [tuple(part.split(" as ")) for part in (p.strip() for p in by.split(","))]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(_field(row, k[0].strip()) for k in keys), []).append(row)
    out = []
    for values, members in groups.items():
        result = {k[-1].strip(): v for k, v in zip(keys, values, strict=True)}
        for function, field, name in functions:
            seen = [_field(m, field.strip()) for m in members]
            present = [v for v in seen if v is not None]
            if function == "latest":
                result[name] = seen[-1] if seen else None
            elif function == "max":
                result[name] = max(present, default=None)
            else:
                raise ValueError(f"the local Logs Insights does not know {function}()")
        out.append(result)
    return out
