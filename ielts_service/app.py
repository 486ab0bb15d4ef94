"""`create_app(settings)`: wiring only. Clients open before serving and close after."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import structlog
from quart import Quart, Response, g, request

from ielts_service.api import admin, health, questions
from ielts_service.api.envelope import register_error_handlers
from ielts_service.api.limits import init_rate_limits
from ielts_service.api.validation import validate_payload
from ielts_service.clients import EXTENSION, close_services, open_services
from ielts_service.config import Settings, load_settings
from ielts_service.deadline import Deadline
from ielts_service.observability.logging import configure_logging
from ielts_service.observability.request_id import request_id_from

log = structlog.get_logger("ielts_service.http")


def create_app(settings: Settings) -> Quart:
    app = Quart("ielts_service", static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, PROVIDE_AUTOMATIC_OPTIONS=True)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.before_serving
    async def _open() -> None:
        app.extensions[EXTENSION] = await open_services(settings)

    @app.after_serving
    async def _close() -> None:
        await close_services(app.extensions.pop(EXTENSION))

    @app.before_request
    async def _start_request() -> None:
        g.started = time.monotonic()
        g.request_id = request_id_from(request.headers.get("X-Request-ID"))
        g.deadline = Deadline.after(settings.request_timeout_seconds)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    init_rate_limits(app, settings.rate_limit_per_minute)  # cheap rejections before parsing
    app.before_request(validate_payload)

    @app.after_request
    async def _finish_request(response: Response) -> Response:
        request_id = g.get("request_id") or request_id_from(None)
        response.headers["X-Request-ID"] = request_id
        log.info(
            "request",
            method=request.method,
            route=request.url_rule.rule if request.url_rule else None,
            path=request.path,
            status=response.status_code,
            duration_ms=round((time.monotonic() - g.get("started", time.monotonic())) * 1000, 1),
        )
        return response

    app.register_blueprint(questions.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(admin.blueprint)
    register_error_handlers(app)
    return app


def serve_app() -> Quart:
    """Hypercorn's entry point (`ielts_service.app:serve_app()`): settings, logging, app."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format, secret_values(settings))
    return create_app(settings)


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret, for the log redactor."""
    secrets = (settings.azure_openai_api_key, settings.openai_api_key, settings.admin_token)
    values = [s.get_secret_value() for s in secrets if s is not None]
    if settings.redis_url is not None:
        password = urlsplit(settings.redis_url.get_secret_value()).password
        values += [password] if password else []
    return values
