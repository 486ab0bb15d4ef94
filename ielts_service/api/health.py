"""Liveness and readiness for orchestrators."""

from __future__ import annotations

from quart import Blueprint, Response

from ielts_service.api.envelope import error_response, success
from ielts_service.errors import APIError
from ielts_service.services import services

blueprint = Blueprint("health", __name__)
CHECK_TIMEOUT_CAP = 0.8  # readiness answers within a second, whatever a dependency does


@blueprint.route("/health/live")
async def live() -> tuple[Response, int]:
    """The process is up; checks nothing else."""
    return success({"live": True})


@blueprint.route("/health/ready")
async def ready() -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    """200 when the service can answer questions, 503 when it cannot; names each check."""
    svc = services()
    report = await svc.questions.readiness(min(svc.settings.redis_timeout_seconds,
                                               CHECK_TIMEOUT_CAP))
    down = [name for name, result in report.items() if result["state"] != "ok"]
    if not down:
        return success({"ready": True, "checks": report})
    error = APIError.of("not_ready", f"not ready: {', '.join(down)} down",
                        details=[{"field": name, "problem": report[name].get("error", "down")}
                                 for name in down])
    return error_response(error, checks=report)
