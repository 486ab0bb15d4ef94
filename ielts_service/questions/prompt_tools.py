"""The prompt editor's commands: `prompts lint`, `prompts render`, `prompts try`."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ielts_service.config import Settings
from ielts_service.questions.bank import Bank
from ielts_service.llm.client import chat_body
from ielts_service.questions.prompts import PromptError, PromptSet, load_prompts
from ielts_service.questions.service import pool_topic


def _load(directory: Path) -> dict[int, PromptSet] | None:
    try:
        return load_prompts(directory)
    except PromptError as exc:
        for problem in exc.problems:
            print(f"{directory / problem.file}:{problem.line}: {problem.message}", file=sys.stderr)
        return None


def lint(directory: Path) -> int:
    """Check every file (front matter, template, a sample render); 1 on any problem."""
    prompts = _load(directory)
    if prompts is None:
        return 1
    for part, prompt in prompts.items():
        options = ", ".join(f"{k}={v}" for k, v in prompt.options.items() if k != "description")
        print(f"{directory / f'part{part}.txt'}: ok {prompt.version} ({options})")
    return 0


def request_body(settings: Settings, prompt: PromptSet, topic: str) -> dict[str, Any]:
    """Exactly what the service sends for `topic`: the same topic mapping, messages, format."""
    messages = prompt.messages(pool_topic(Bank.load(), topic), prompt.items or settings.pool_size)
    return chat_body(settings.model_name, settings.ai_temperature, prompt, messages)


def render(settings: Settings, directory: Path, part: int, topic: str) -> int:
    prompts = _load(directory)
    if prompts is None:
        return 1
    print(json.dumps(request_body(settings, prompts[part], topic), indent=2, ensure_ascii=False))
    return 0


def try_prompt(settings: Settings, directory: Path, part: int, topic: str) -> int:
    """Call the configured model once (with the retry policy); show kept and rejected items."""
    from ielts_service.services import make_model_client
    from ielts_service.deadline import Deadline
    from ielts_service.llm.client import DeadlineExceeded, ModelUnavailable
    from ielts_service.llm.retry import ContentFiltered
    from ielts_service.observability.logging import configure_logging
    from ielts_service.observability.metrics import Metrics

    # Results go to stdout; the ai_call lines go to stderr for the editor to read.
    configure_logging(settings.log_level, settings.log_format, settings.secret_values(),
                      stream=sys.stderr)
    prompts = _load(directory)
    if prompts is None:
        return 1
    model = make_model_client(settings, Metrics())
    if model is None:
        print("prompts try needs a model: set AZURE_OPENAI_* or OPENAI_BASE_URL",
              file=sys.stderr)
        return 2
    prompt = prompts[part]
    sent_topic = pool_topic(Bank.load(), topic)
    count = prompt.items or settings.pool_size

    async def call() -> int:
        try:
            result = await model.generate(prompt, sent_topic, count,
                                          Deadline.after(settings.request_timeout_seconds))
        except ModelUnavailable as exc:
            print(f"no valid answer ({exc.reason}): {exc.detail}", file=sys.stderr)
            return 1
        except (ContentFiltered, DeadlineExceeded) as exc:
            print(f"no answer: {type(exc).__name__}", file=sys.stderr)
            return 1
        finally:
            await model.close()
        print(json.dumps({"topic": sent_topic, "prompt_version": prompt.version,
                          "items": result.items, "rejected": result.rejected},
                         indent=2, ensure_ascii=False))
        return 0

    return asyncio.run(call())
