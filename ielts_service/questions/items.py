"""Question items: the model's output schema per part, ids, and the shape sent to clients."""

from __future__ import annotations

import hashlib
import json
from typing import Any

Item = dict[str, Any]
PARTS = (1, 2, 3)

_QUESTIONS = {
    "type": "object",
    "properties": {"questions": {"type": "array", "items": {"type": "string"}}},
    "required": ["questions"],
    "additionalProperties": False,
}
_CUE_CARD = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "bullets": {"type": "array", "items": {"type": "string"}},
        "explain": {"type": "string"},
        "follow_ups": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["title", "bullets", "explain", "follow_ups"],
    "additionalProperties": False,
}


def output_schema(part: int) -> dict[str, Any]:
    """The strict JSON schema the model must answer with: `{"items": [ITEM, ...]}`."""
    item = _CUE_CARD if part == 2 else _QUESTIONS
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item}},
        "required": ["items"],
        "additionalProperties": False,
    }


def response_format(part: int) -> dict[str, Any]:
    """The `response_format` argument for a structured-output chat completion."""
    return {
        "type": "json_schema",
        "json_schema": {"name": f"ielts_part{part}", "strict": True, "schema": output_schema(part)},
    }


def item_id(part: int, item: Item) -> str:
    """A stable id: the same item always gets the same id, wherever it came from."""
    canonical = json.dumps([part, item], sort_keys=True, ensure_ascii=False).lower()
    return f"p{part}-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def render_text(part: int, item: Item) -> str:
    """The item as one plain-text string, laid out as the test shows it."""
    if part != 2:
        return "\n".join(item["questions"])
    lines = [item["title"] + ".", "You should say:"]
    lines += [f"  {bullet}" for bullet in item["bullets"]]
    lines.append(item["explain"] + ".")
    return "\n".join(lines)


def to_data(
    part: int, topic: str, item: Item, *, source: str, degraded: bool, prompt_version: str
) -> dict[str, Any]:
    """The `data` of a successful /generate-question response."""
    data: dict[str, Any] = {
        "id": item_id(part, item),
        "part": part,
        "topic": topic,
        "question": render_text(part, item),
    }
    if part == 2:
        data["cue_card"] = {k: item[k] for k in ("title", "bullets", "explain", "follow_ups")}
    else:
        data["questions"] = list(item["questions"])
    data.update(source=source, degraded=degraded, prompt_version=prompt_version)
    return data
