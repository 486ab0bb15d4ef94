"""Liveness and readiness for orchestrators."""

from __future__ import annotations

import asyncio
import time

from quart import Blueprint, Response, jsonify

from ielts_service.api.envelope import success
from ielts_service.clients import services
from ielts_service.generation.pools import CacheError

blueprint = Blueprint("health", __name__)


@blueprint.route("/health/live")
async def live() -> tuple[Response, int]:
    """The process is up; checks nothing else."""
    return success({"live": True})


@blueprint.route("/health/ready")
async def ready() -> tuple[Response, int]:
    """200 when the service can answer questions, 503 when it cannot; names each check."""
    svc = services()
    started = time.monotonic()
    try:
        await asyncio.wait_for(svc.store.ping(), timeout=svc.settings.redis_timeout_seconds)
        cache = {"state": "ok"}
    except (CacheError, TimeoutError) as exc:
        cache = {"state": "down", "error": str(exc) or "timeout"}
    cache["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    checks = {
        "cache": cache,
        "prompts": {"state": "ok" if svc.questions.prompts or svc.model is None else "down"},
        "model": {"state": "ok", "provider": svc.settings.ai_provider},
    }
    down = [name for name, check in checks.items() if check["state"] != "ok"]
    if not down:
        return success({"ready": True, "checks": checks})
    body = {
        "status": "error",
        "code": "not_ready",
        "message": f"not ready: {', '.join(down)} down",
        "details": [{"field": name, "problem": "down"} for name in down],
        "checks": checks,
    }
    return jsonify(body), 503
