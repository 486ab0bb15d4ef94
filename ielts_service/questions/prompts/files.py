"""Prompt files as prompt editors write them: front matter, then a sandboxed Jinja template.

```
---
description: Part 2 cue cards
temperature: 0.9
max_tokens: 1500
items: 5
---
Write {{ count }} different cue cards ... Topic: {{ topic }}
```

Placeholders: `topic` (quoted JSON), `count`, `part`; `card` (Part 3 after a cue card: its
title as quoted JSON, else empty; part3.txt must use it) and `held` (a widening or refill
call: what the pool holds, a quoted JSON list, else empty), both for `{% if ... %}` blocks.
`system.txt` is plain text (front matter: `description` only) and may hold no placeholder:
what the student typed and what a model wrote reach the model only inside the user
message, as quoted JSON. `prompt_version` hashes both files' bytes, so any edit starts
fresh pools.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from ielts_service.llm.call import ChatCall
from ielts_service.questions.items import PARTS, Item, item_id, response_format, summary

VARIABLES = frozenset({"topic", "count", "part", "card", "held"})
SAMPLE_TOPIC = "a memorable trip"
SAMPLE_CARD = {"type": "event", "title": "Describe a journey you enjoyed"}
SAMPLE_HELD: dict[int, Item] = {  # one item the pool holds, per part
    1: {"questions": ["What kind of music do you like?", "Why do you like it?"]},
    2: {"title": "Describe a city you would like to visit"},
    3: {"questions": ["Why do people travel?", "How has tourism changed?"]},
}
_PART_KEYS = {"description": str, "temperature": float, "max_tokens": int, "items": int}
_LIMITS = {"temperature": (0.0, 2.0), "max_tokens": (64, 16000), "items": (1, 20)}
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                            keep_trailing_newline=False)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class PromptError(Exception):
    """One or more prompt files are broken; `problems` says where."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class PromptSet:
    """The system prompt and one part's template, with its settings and version; for a
    Part 3 written after a cue card, that card's title (`for_card`)."""

    part: int
    system: str
    template: str
    version: str
    options: dict[str, Any] = field(default_factory=dict)
    card: str | None = None  # the title of the card a Part 3 is written for
    card_id: str = ""

    def for_card(self, card: Item | None) -> PromptSet:
        """The same prompt (same version: same files), writing for the cue card `card`."""
        return self if card is None else replace(self, card=card["title"],
                                                 card_id=item_id(2, card))

    def pool_name(self, topic: str) -> str:
        """What the pool is kept under: the topic, and the card when written for one."""
        return f"{topic}\ncard:{self.card_id}" if self.card_id else topic

    @property
    def temperature(self) -> float | None:
        return self.options.get("temperature")

    @property
    def max_tokens(self) -> int | None:
        return self.options.get("max_tokens")

    @property
    def items(self) -> int | None:
        return self.options.get("items")

    @property
    def compiled(self) -> Template:
        """The template compiled once (compiling costs more than rendering)."""
        return _compile(self.template)

    def messages(self, topic: str, count: int,
                 held: Sequence[Item] = ()) -> list[dict[str, str]]:
        """Chat messages for one call: fixed system prompt, and in the user turn, as quoted
        JSON data only, the topic, the card (if any) and the items the pool already holds."""
        user = self.compiled.render(
            topic=_quoted(topic), count=count, part=self.part,
            card=_quoted(self.card) if self.card else "",
            held=_quoted([summary(self.part, item) for item in held]) if held else "")
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def call(self, topic: str, count: int, held: Sequence[Item] = ()) -> ChatCall:
        """The model call for `count` items on `topic`, other than `held`, with this file's
        settings."""
        return ChatCall(self.messages(topic, count, held), response_format(self.part),
                        self.part, self.version, self.temperature, self.max_tokens)


def _quoted(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


@functools.lru_cache(maxsize=32)
def _compile(template: str) -> Template:
    return _ENV.from_string(template)


@dataclass
class _File:
    name: str
    options: dict[str, Any]
    body: str
    body_line: int  # the file line the body starts on
    raw: bytes


def _parse(name: str, raw: bytes, keys: dict[str, type], problems: list[Problem]) -> _File:
    text = raw.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        problems.append(Problem(name, 1, "must start with front matter between '---' lines"))
        return _File(name, {}, text, 1, raw)
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        problems.append(Problem(name, 1, "front matter is not closed with '---'"))
        return _File(name, {}, "", 1, raw)
    options: dict[str, Any] = {}
    for number, line in enumerate(lines[1:end], start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = (part.strip() for part in line.partition(":"))
        if not sep or key not in keys:
            problems.append(Problem(name, number, f"unknown front matter line {line.strip()!r}; "
                                                  f"allowed keys: {', '.join(keys)}"))
            continue
        try:
            options[key] = keys[key](value)
        except ValueError:
            problems.append(Problem(name, number, f"{key} must be a {keys[key].__name__}"))
            continue
        low, high = _LIMITS.get(key, (None, None))
        if low is not None and not low <= options[key] <= high:
            problems.append(Problem(name, number, f"{key} must be between {low} and {high}"))
    if not options.get("description"):
        problems.append(Problem(name, 1, "front matter needs a description"))
    body = "\n".join(lines[end + 1:]).strip("\n")
    return _File(name, options, body, end + 2, raw)


def _line_of(body: str, name: str, first_line: int) -> int:
    for offset, line in enumerate(body.split("\n")):
        if re.search(rf"{{[{{%][^}}]*\b{re.escape(name)}\b", line):
            return first_line + offset
    return first_line


def _check_template(file: _File, problems: list[Problem]) -> None:
    try:
        names = meta.find_undeclared_variables(_ENV.parse(file.body))
    except TemplateSyntaxError as exc:
        problems.append(Problem(file.name, file.body_line + (exc.lineno or 1) - 1,
                                f"template syntax error: {exc.message}"))
        return
    for unknown in sorted(names - VARIABLES):
        problems.append(Problem(file.name, _line_of(file.body, unknown, file.body_line),
                                f"unknown placeholder {{{{ {unknown} }}}}; "
                                f"known: {', '.join(sorted(VARIABLES))}"))
    if "topic" not in names:
        problems.append(Problem(file.name, file.body_line, "the template never uses {{ topic }}"))
    if file.name == "part3.txt" and "card" not in names:
        problems.append(Problem(file.name, file.body_line, "the template never uses {{ card }}: "
                                "a mock test's Part 3 would not be written for its card"))


def parse_prompts(files: dict[str, bytes]) -> dict[int, PromptSet]:
    """Prompt sets from file contents by name; raise PromptError listing every problem."""
    problems: list[Problem] = []
    missing = [n for n in ("system.txt", *(f"part{p}.txt" for p in PARTS)) if n not in files]
    problems += [Problem(n, 1, "file is missing or unreadable") for n in missing]
    system = None
    if "system.txt" in files:
        system = _parse("system.txt", files["system.txt"], {"description": str}, problems)
        if re.search(r"{[{%]", system.body):
            problems.append(Problem("system.txt", _line_of(system.body, "", system.body_line),
                                    "the system prompt is not a template: keep the topic "
                                    "and every placeholder in the part files"))
        if not system.body.strip():
            problems.append(Problem("system.txt", system.body_line, "the system prompt is empty"))
    prompts = {}
    for part in PARTS:
        name = f"part{part}.txt"
        if name not in files or system is None:
            continue
        before = len(problems)
        parsed = _parse(name, files[name], _PART_KEYS, problems)
        _check_template(parsed, problems)
        if len(problems) > before:
            continue
        digest = hashlib.sha256(system.raw + b"\0" + parsed.raw).hexdigest()[:12]
        prompt = PromptSet(part, system.body, parsed.body, f"p{part}-{digest}", parsed.options)
        try:  # both ways: a cold call, and a widening Part 3 call after a card
            prompt.messages(SAMPLE_TOPIC, 5)
            prompt.for_card(SAMPLE_CARD).messages(SAMPLE_TOPIC, 5, [SAMPLE_HELD[part]])
        except Exception as exc:  # a sandbox or runtime error in the template
            problems.append(Problem(name, parsed.body_line, f"template does not render: {exc}"))
            continue
        prompts[part] = prompt
    if problems:
        raise PromptError(problems)
    return prompts


def read_files(directory: Path) -> dict[str, bytes]:
    """The prompt files' bytes by name (missing ones left out)."""
    files = {}
    for name in ("system.txt", *(f"part{p}.txt" for p in PARTS)):
        try:
            files[name] = (directory / name).read_bytes()
        except OSError:
            continue
    return files


def load_prompts(directory: Path) -> dict[int, PromptSet]:
    """Read and check every prompt file in `directory`."""
    return parse_prompts(read_files(directory))
