"""Operator actions, behind `Authorization: Bearer <ADMIN_TOKEN>`."""

from __future__ import annotations

from quart import Blueprint, Response

from ielts_service.api.envelope import success
from ielts_service.guards.security import require_bearer
from ielts_service.services import services
from ielts_service.errors import APIError
from ielts_service.state.pools import CacheError

blueprint = Blueprint("admin", __name__, url_prefix="/admin")


@blueprint.before_request
async def require_admin() -> None:
    """401 without a bearer token, 403 with a wrong one or when ADMIN_TOKEN is unset."""
    require_bearer(services().settings.admin_token, "ADMIN_TOKEN")


def _versions() -> dict[str, str]:
    return {f"part{part}": p.version for part, p in services().prompts.current.items()}


@blueprint.get("/prompts")
async def prompts() -> tuple[Response, int]:
    """The prompt versions in use, per part, and the last failed reload if any."""
    return success({"prompts": _versions(), "error": services().prompts.error})


@blueprint.post("/prompts/reload")
async def reload_prompts() -> tuple[Response, int]:
    """Read the prompt files again; a bad file leaves the current prompts in place."""
    if problems := await services().prompts.reload():
        raise APIError(422, "invalid_prompts", "; ".join(problems),
                       [{"field": p.split(": ", 1)[0], "problem": p.split(": ", 1)[-1]}
                        for p in problems])
    return success({"prompts": _versions()})


@blueprint.post("/cache/purge")
async def purge_cache() -> tuple[Response, int]:
    """Drop every pool, so the next request per topic calls the model again."""
    try:
        purged = await services().store.purge()
        services().questions.local.clear()  # other workers' copies expire within seconds
    except CacheError as exc:
        raise APIError(503, "cache_unavailable", f"the cache did not answer ({exc})",
                       headers={"Retry-After": "5"}) from None
    return success({"purged_pools": purged})
