"""`create_app(settings)`: wiring only. Clients open before serving and close after."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncGenerator

from quart import Quart, g

from ielts_service.api import admin, catalogue, docs, health, page, questions
from ielts_service.api import metrics as metrics_api
from ielts_service.api.envelope import register_error_handlers
from ielts_service.config import Settings, load_settings
from ielts_service.deadline import Deadline
from ielts_service.guards.clients import init_clients
from ielts_service.guards.limits import init_rate_limits
from ielts_service.guards.security import init_security
from ielts_service.guards.validation import validate_payload
from ielts_service.observability.http import init_request_observability
from ielts_service.observability.logging import configure_logging
from ielts_service.observability.metrics import Metrics
from ielts_service.observability.otel import init_tracing
from ielts_service.observability.sentry import init_error_tracking
from ielts_service.questions.operations import warm_once
from ielts_service.services import EXTENSION, close_services, open_services


def create_app(settings: Settings) -> Quart:
    app = Quart("ielts_service", static_folder=None)
    metrics = Metrics(settings.prometheus_multiproc_dir)
    # BODY_TIMEOUT: a body dribbled in byte by byte holds a worker's slot only this long (408).
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, PROVIDE_AUTOMATIC_OPTIONS=True,
                      BODY_TIMEOUT=settings.body_timeout_seconds)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.before_serving
    async def _open() -> None:
        app.extensions[EXTENSION] = await open_services(settings, metrics)
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # GC's full collections, whose pauses otherwise grow with the heap.
        gc.collect()
        gc.freeze()

    @app.after_serving
    async def _close() -> None:
        await close_services(app.extensions.pop(EXTENSION))
        metrics.worker_stopped()

    @app.while_serving
    async def _background() -> AsyncGenerator[None, None]:
        """Watch the prompt files; warm the catalogue once (WARM_ON_START)."""
        svc = app.extensions[EXTENSION]
        tasks = []
        if settings.prompts_reload_seconds > 0:
            tasks.append(asyncio.create_task(svc.prompts.watch(settings.prompts_reload_seconds)))
        if settings.warm_on_start and svc.model is not None:
            tasks.append(asyncio.create_task(warm_once(
                svc.questions, concurrency=settings.warm_concurrency,
                fill_seconds=settings.refill_timeout_seconds)))
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    init_tracing(app, settings)  # only with an OTLP endpoint: the SDK is imported then
    init_request_observability(app, metrics)

    @app.before_request
    async def _start_deadline() -> None:
        g.deadline = Deadline.after(settings.request_timeout_seconds)

    init_clients(app, settings)
    init_security(app, settings)  # API keys before rate limits: a key is whom a limit counts
    init_rate_limits(app, settings)  # cheap rejections before parsing
    app.before_request(validate_payload)

    app.register_blueprint(questions.blueprint)
    app.register_blueprint(catalogue.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(metrics_api.blueprint)
    app.register_blueprint(docs.blueprint)
    app.register_blueprint(page.blueprint)
    register_error_handlers(app)
    init_error_tracking(app, settings)  # only with SENTRY_DSN; after the error handlers
    return app


def serve_app() -> Quart:
    """Hypercorn's entry point (`ielts_service.app:serve_app()`): settings, logging, app."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
    return create_app(settings)
