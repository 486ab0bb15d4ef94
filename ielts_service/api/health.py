"""Liveness and readiness for orchestrators."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Blueprint, Response, jsonify

from ielts_service.api.envelope import success
from ielts_service.services import Services, services
from ielts_service.questions.items import PARTS
from ielts_service.state.pools import CacheError

blueprint = Blueprint("health", __name__)
CHECK_TIMEOUT_CAP = 0.8  # readiness answers within a second, whatever a dependency does


class CheckFailed(Exception):
    """A readiness check found its dependency unusable."""


@blueprint.route("/health/live")
async def live() -> tuple[Response, int]:
    """The process is up; checks nothing else."""
    return success({"live": True})


async def _timed(check: Callable[[], Awaitable[dict[str, Any]]], timeout: float) -> dict[str, Any]:
    started = time.monotonic()
    try:
        result = {"state": "ok", **await asyncio.wait_for(check(), timeout)}
    except TimeoutError:
        result = {"state": "down", "error": "timeout"}
    except (CacheError, CheckFailed) as exc:
        result = {"state": "down", "error": str(exc)}
    result["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def _checks(svc: Services) -> dict[str, Callable[[], Awaitable[dict[str, Any]]]]:
    async def cache() -> dict[str, Any]:
        await svc.store.ping()
        return {"backend": "redis" if svc.settings.redis_url else "memory"}

    async def prompts() -> dict[str, Any]:
        loaded = sorted(svc.prompts.current)
        if svc.model is not None and loaded != list(PARTS):
            raise CheckFailed(f"prompts loaded for parts {loaded}, need {list(PARTS)}")
        # A broken edit is reported, while the last good version keeps serving.
        return {"parts": loaded, "reload_error": svc.prompts.error}

    async def model() -> dict[str, Any]:
        # An open circuit is reported, not failed: pools and the bank still serve.
        circuit = svc.model.breaker.state if svc.model is not None else "none"
        return {"provider": svc.settings.ai_provider, "model": svc.settings.model_name,
                "circuit": circuit}

    return {"cache": cache, "prompts": prompts, "model": model}


@blueprint.route("/health/ready")
async def ready() -> tuple[Response, int]:
    """200 when the service can answer questions, 503 when it cannot; names each check.

    The checks run concurrently, each bounded by its own timeout."""
    svc = services()
    timeout = min(svc.settings.redis_timeout_seconds, CHECK_TIMEOUT_CAP)
    checks = _checks(svc)
    results = await asyncio.gather(*(_timed(check, timeout) for check in checks.values()))
    report = dict(zip(checks, results, strict=True))
    down = [name for name, result in report.items() if result["state"] != "ok"]
    if not down:
        return success({"ready": True, "checks": report})
    body = {
        "status": "error",
        "code": "not_ready",
        "message": f"not ready: {', '.join(down)} down",
        "details": [{"field": name, "problem": report[name].get("error", "down")}
                    for name in down],
        "checks": report,
    }
    return jsonify(body), 503
