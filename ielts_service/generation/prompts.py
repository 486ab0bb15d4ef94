"""Prompt files: `system.txt` plus one template per part, as prompt editors write them.

Templates use `{{ name }}` placeholders, so JSON examples with single braces render as
written. `{{ topic }}` is replaced by the topic as a JSON string literal: the topic reaches
the model only as quoted data in the user message, never in the system prompt.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ielts_service.generation.items import PARTS

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
VARIABLES = frozenset({"topic", "count", "part"})


class PromptError(Exception):
    """A prompt file is missing or breaks the rules `lint` checks."""


@dataclass(frozen=True)
class PromptSet:
    """The system prompt and the template of one part, with the version of their content."""

    part: int
    system: str
    template: str
    version: str

    def messages(self, topic: str, count: int) -> list[dict[str, str]]:
        """Chat messages for one call: fixed system prompt, topic only inside the user turn."""
        values = {"topic": json.dumps(topic, ensure_ascii=False), "count": str(count),
                  "part": str(self.part)}
        user = PLACEHOLDER.sub(lambda m: values[m.group(1)], self.template)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


def lint_texts(system: str, template: str) -> list[str]:
    """Problems with one part's prompt texts (empty list: fine)."""
    problems = []
    if not system.strip():
        problems.append("system prompt is empty")
    if PLACEHOLDER.search(system):
        problems.append("system prompt must not contain placeholders (the topic is user data)")
    names = set(PLACEHOLDER.findall(template))
    if unknown := names - VARIABLES:
        problems.append(f"unknown placeholders: {', '.join(sorted(unknown))}")
    if "topic" not in names:
        problems.append("template never uses {{ topic }}")
    return problems


def load_prompts(directory: Path) -> dict[int, PromptSet]:
    """Read and lint every prompt file; raise PromptError naming the first bad file."""
    try:
        system = (directory / "system.txt").read_text(encoding="utf-8")
        templates = {p: (directory / f"part{p}.txt").read_text(encoding="utf-8") for p in PARTS}
    except OSError as exc:
        raise PromptError(f"cannot read prompt file {exc.filename}: {exc.strerror}") from None
    prompts = {}
    for part, template in templates.items():
        if problems := lint_texts(system, template):
            raise PromptError(f"part{part}.txt: {'; '.join(problems)}")
        digest = hashlib.sha256(f"{system}\0{template}".encode()).hexdigest()[:12]
        prompts[part] = PromptSet(part, system, template, f"p{part}-{digest}")
    return prompts
