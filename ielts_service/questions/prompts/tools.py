"""The prompt editor's commands: `prompts lint`, `prompts render`, `prompts try`."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ielts_service.config import Settings
from ielts_service.llm.call import chat_body
from ielts_service.questions.bank import Bank, pool_topic
from ielts_service.questions.prompts.files import PromptError, PromptSet, load_prompts


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
    call = prompt.call(pool_topic(Bank.load(), topic), prompt.items or settings.pool_size)
    return chat_body(call, settings.model_name, settings.ai_temperature, stream=settings.ai_stream)


def render(settings: Settings, directory: Path, part: int, topic: str) -> int:
    prompts = _load(directory)
    if prompts is None:
        return 1
    print(json.dumps(request_body(settings, prompts[part], topic), indent=2, ensure_ascii=False))
    return 0


def try_prompt(settings: Settings, directory: Path, part: int, topic: str) -> int:
    """Call the configured model once (with the retry policy); show kept and rejected items."""
    from ielts_service.deadline import Deadline, DeadlineExceeded
    from ielts_service.llm.errors import ContentFiltered, ModelUnavailable
    from ielts_service.llm.providers import open_model
    from ielts_service.observability.logging import configure_logging
    from ielts_service.observability.metrics import Metrics
    from ielts_service.questions.validators import Batch, parse_answer

    # Results go to stdout; the ai_call lines go to stderr for the editor to read.
    configure_logging(settings.log_level, settings.log_format, settings.secret_values(),
                      stream=sys.stderr)
    prompts = _load(directory)
    if prompts is None:
        return 1
    model = open_model(settings, Metrics())
    if model is None:
        print("prompts try needs a model: set AZURE_OPENAI_* or OPENAI_BASE_URL",
              file=sys.stderr)
        return 2
    prompt = prompts[part]
    sent_topic = pool_topic(Bank.load(), topic)
    count = prompt.items or settings.pool_size

    async def call() -> int:
        try:
            result: Batch = await model.generate(
                prompt.call(sent_topic, count), lambda payload: parse_answer(part, payload),
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
                          "items": result.items,
                          "rejected": [str(r) for r in result.rejected]},
                         indent=2, ensure_ascii=False))
        return 0

    return asyncio.run(call())
