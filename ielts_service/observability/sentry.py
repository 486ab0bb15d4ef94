"""Optional error tracking: with SENTRY_DSN set, unhandled exceptions go to Sentry.

Each event is tagged with the request id and has every configured secret replaced, in
any field, before it leaves the process. Without SENTRY_DSN the SDK is not even imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from quart import Quart
from quart.signals import got_request_exception

from ielts_service import __version__
from ielts_service.config import Settings
from ielts_service.observability.logging import SecretRedactor

Event = dict[str, Any]


def scrub_event(secrets: list[str]) -> Callable[[Event, Any], Event]:
    """A `before_send` hook: the request id as a tag, and no configured secret anywhere."""
    redact = SecretRedactor(secrets)

    def before_send(event: Event, hint: Any) -> Event:
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            event.setdefault("tags", {})["request_id"] = request_id
        return dict(redact(None, "sentry", event))

    return before_send


def init_error_tracking(app: Quart, settings: Settings) -> bool:
    """Start the Sentry SDK when SENTRY_DSN is set; call after the error handlers exist.

    Returns whether it was started."""
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.integrations.quart import QuartIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        release=f"ielts-service@{__version__}",
        # No personal data (client address, cookies, auth headers): the SDK's default,
        # left implicit because newer SDKs deprecate `send_default_pii` itself.
        before_send=scrub_event(settings.secret_values()),  # type: ignore[arg-type]
        # Log lines become breadcrumbs only: the `unhandled_exception` line must not make a
        # second event for the same exception.
        integrations=[QuartIntegration(), LoggingIntegration(event_level=None)],
    )
    _signal_answered_exceptions(app)
    return True


def _signal_answered_exceptions(app: Quart) -> None:
    """Send `got_request_exception` from the app's catch-all error handler.

    That handler answers every exception with a 500 envelope, so Quart never sends the
    signal itself, and the signal is what Sentry's Quart integration listens to."""
    handlers = app.error_handler_spec[None][None]
    answer = handlers.get(Exception)
    if answer is None:  # no catch-all: Quart signals unhandled exceptions itself
        return

    async def signal_then_answer(error: Exception) -> Any:
        await got_request_exception.send_async(
            app, _sync_wrapper=app.ensure_async, exception=error)  # type: ignore[arg-type]
        return await app.ensure_async(answer)(error)

    handlers[Exception] = signal_then_answer
