"""Operator actions, behind `Authorization: Bearer <ADMIN_TOKEN>`."""

from __future__ import annotations

from quart import Blueprint, Response

from ielts_service.api.envelope import success
from ielts_service.guards.security import require_bearer
from ielts_service.questions.prompts import PromptError
from ielts_service.services import services

blueprint = Blueprint("admin", __name__, url_prefix="/admin")


@blueprint.before_request
async def require_admin() -> None:
    """401 without a bearer token, 403 with a wrong one or when ADMIN_TOKEN is unset."""
    await require_bearer(services().settings.admin_token, "ADMIN_TOKEN")


@blueprint.get("/prompts")
async def prompts() -> tuple[Response, int]:
    """The prompt versions in use, per part, and the last failed reload if any."""
    store = services().prompts
    return success({"prompts": store.versions(), "error": store.error})


@blueprint.post("/prompts/reload")
async def reload_prompts() -> tuple[Response, int]:
    """Read the prompt files again; a bad file leaves the current prompts in place."""
    store = services().prompts
    if problems := await store.reload():
        raise PromptError(problems)
    return success({"prompts": store.versions()})


@blueprint.post("/cache/purge")
async def purge_cache() -> tuple[Response, int]:
    """Drop every pool, so the next request per topic calls the model again."""
    return success({"purged_pools": await services().questions.purge()})
