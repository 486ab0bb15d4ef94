"""Small readers for the operator files of ops/ (tests/test_ops.py): YAML read line by line
(no YAML parser in the project: promtool validates the files, these only pick out a few
facts of files we write) and the metric and label names a PromQL expression uses."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

# ------------------------------------------------------------------- small YAML line readers


def indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def is_blank_or_comment(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


def list_items(lines: list[str], first_key: str) -> Iterator[list[str]]:
    """Each YAML list item starting with `- first_key:`, with the lines nested under it."""
    i = 0
    while i < len(lines):
        if not re.match(rf"^\s*-\s+{re.escape(first_key)}:", lines[i]):
            i += 1
            continue
        base = indent(lines[i])
        item = [lines[i]]
        i += 1
        while i < len(lines) and (is_blank_or_comment(lines[i]) or indent(lines[i]) > base):
            item.append(lines[i])
            i += 1
        yield item


def block_items(lines: list[str], key: str) -> Iterator[list[str]]:
    """The items of every block list `key:` (e.g. all `alert_rule_test:` lists)."""
    i = 0
    while i < len(lines):
        head = re.match(rf"^(\s*){re.escape(key)}:\s*(#.*)?$", lines[i])
        i += 1
        if not head:
            continue
        body: list[str] = []
        while i < len(lines) and (
            is_blank_or_comment(lines[i]) or indent(lines[i]) > len(head.group(1))
        ):
            body.append(lines[i])
            i += 1
        dashes = [indent(line) for line in body
                  if not is_blank_or_comment(line) and line.lstrip().startswith("- ")]
        item: list[str] | None = None
        for line in body:
            if not is_blank_or_comment(line) and line.lstrip().startswith("- ") \
                    and indent(line) == min(dashes):
                if item is not None:
                    yield item
                item = []
            if item is not None:
                item.append(line)
        if item is not None:
            yield item


def scalar(item: list[str], key: str) -> str | None:
    """The value of `key:` in an item: inline (plain or quoted) or a `|` / `>` block."""
    for n, line in enumerate(item):
        m = re.match(rf"^(\s*)(?:-\s+)?{re.escape(key)}:\s*(.*?)\s*$", line)
        if not m:
            continue
        value = m.group(2)
        if value[:1] in ("|", ">"):
            base = indent(line)
            block = []
            for nested in item[n + 1:]:
                if nested.strip() and indent(nested) <= base:
                    break
                block.append(nested.strip())
            return "\n".join(block).strip()
        if value[:1] == "'" and value[-1:] == "'":
            return value[1:-1].replace("''", "'")
        if value[:1] == '"' and value[-1:] == '"':
            return json.loads(value)
        return value
    return None


# ------------------------------------------------------------------------- PromQL names

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "and",
                       "or", "unless", "bool", "offset", "inf", "nan"})


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) used by a PromQL expression (Grafana variables allowed)."""
    e = re.sub(r"#[^\n]*", "", expr)
    e = _STRING.sub('""', e)
    e = re.sub(r"\$\{?\w+(?::\w+)?\}?", "", e)  # $model, ${DS_PROMETHEUS}, $__rate_interval
    labels: set[str] = set()
    for matchers in re.findall(r"\{([^}]*)\}", e):
        labels |= set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    for grouping in _GROUPING.findall(e):
        labels |= {name.strip() for name in grouping.split(",") if name.strip()}
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = _GROUPING.sub(" ", e)
    metrics = set()
    for m in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:])(\s*\()?", e):
        if m.group(2) is None and m.group(1).lower() not in _KEYWORDS:
            metrics.add(m.group(1))
    return metrics, labels
