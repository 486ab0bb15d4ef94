"""Liveness and readiness for orchestrators.

Readiness is public (probes send no token): it names each check's state, never what an
operator alone should read. A failed prompt reload is `reload_failed: true` (its file,
line and error are on `/admin/prompts`); the deployment's name is not shown.
"""

from __future__ import annotations

from typing import Any

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
    report = _public(await svc.questions.readiness(min(svc.settings.redis_timeout_seconds,
                                                       CHECK_TIMEOUT_CAP)))
    down = [name for name, result in report.items() if result["state"] != "ok"]
    if not down:
        return success({"ready": True, "checks": report})
    error = APIError.of("not_ready", f"not ready: {', '.join(down)} down",
                        details=[{"field": name, "problem": report[name].get("error", "down")}
                                 for name in down])
    return error_response(error, checks=report)


def _public(report: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The report without a reload's error text or the model deployment's name."""
    public = {name: dict(check) for name, check in report.items()}
    if "prompts" in public:
        public["prompts"]["reload_failed"] = bool(public["prompts"].pop("reload_error", None))
    if "model" in public:
        public["model"].pop("model", None)
    return public
