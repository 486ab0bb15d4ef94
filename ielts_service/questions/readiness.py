"""Readiness: can this worker answer questions? Each dependency checked concurrently, each
within a timeout, so the answer comes in bounded time whatever a dependency does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from ielts_service.llm.client import ModelClient
from ielts_service.questions.items import PARTS
from ielts_service.questions.prompts import PromptStore
from ielts_service.state.pools import PoolStore, StoreError


class CheckFailed(Exception):
    """A readiness check found its dependency unusable."""


async def check_dependencies(store: PoolStore, prompts: PromptStore, model: ModelClient | None,
                             timeout: float) -> dict[str, dict[str, Any]]:
    """`{"cache": {...}, "prompts": {...}, "model": {...}}`, each with `state` ok or down."""

    async def cache() -> dict[str, Any]:
        await store.ping()
        return {"backend": store.backend}

    async def prompt_files() -> dict[str, Any]:
        loaded = sorted(prompts.current)
        if model is not None and loaded != list(PARTS):
            raise CheckFailed(f"prompts loaded for parts {loaded}, need {list(PARTS)}")
        # A broken edit is reported, while the last good version keeps serving.
        return {"parts": loaded, "reload_error": prompts.error}

    async def model_state() -> dict[str, Any]:
        # An open circuit is reported, not failed: pools and the bank still serve.
        if model is None:
            return {"provider": "bank", "model": "bank", "circuit": "none"}
        return {"provider": model.provider, "model": model.model, "circuit": model.circuit}

    checks = {"cache": cache(), "prompts": prompt_files(), "model": model_state()}
    results = await asyncio.gather(*(_timed(check, timeout) for check in checks.values()))
    return dict(zip(checks, results, strict=True))


async def _timed(check: Awaitable[dict[str, Any]], timeout: float) -> dict[str, Any]:
    started = time.monotonic()
    try:
        result = {"state": "ok", **await asyncio.wait_for(check, timeout)}
    except TimeoutError:
        result = {"state": "down", "error": "timeout"}
    except (StoreError, CheckFailed) as exc:
        result = {"state": "down", "error": str(exc)}
    result["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result
