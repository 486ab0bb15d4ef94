"""structlog, configured once before the app is created.

JSON lines on stdout off a TTY, a readable console on a TTY. The standard library's
records (Hypercorn, redis, openai) go through the same chain via `ProcessorFormatter`, so
every line has one shape. Secret values are replaced wherever they appear.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import sys
from collections.abc import Iterable
from queue import Full, Queue
from typing import Any

import structlog
from structlog.types import EventDict, Processor

REDACTED = "[REDACTED]"
QUEUE_LINES = 10_000  # lines waiting for stdout before new ones are dropped (and counted)


class SecretRedactor:
    """Replaces every configured secret value, anywhere in a log event, with [REDACTED]."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._scrub(v) for v in value)
        return value

    def __call__(self, logger: Any, name: str, event: EventDict) -> EventDict:
        if not self.secrets:
            return event
        return {k: self._scrub(v) for k, v in event.items()}


class _Writer(logging.handlers.QueueHandler):
    """Formats on the caller's thread, hands the finished line to a writer thread.

    A slow or stalled stdout (a full pipe, a log driver pushing back) then blocks only
    that thread, never the event loop. When the queue is full, lines are dropped and
    counted, and the count is reported once the queue has room again."""

    def __init__(self, queue: Queue[logging.LogRecord]) -> None:
        super().__init__(queue)
        self.dropped = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        line = self.format(record)
        prepared = logging.makeLogRecord({"msg": line, "levelno": record.levelno,
                                          "levelname": record.levelname})
        return prepared

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            if self.dropped:
                note = {"event": "log_lines_dropped", "count": self.dropped, "level": "warning"}
                self.queue.put_nowait(logging.makeLogRecord({"msg": json.dumps(note)}))
                self.dropped = 0
            self.queue.put_nowait(record)
        except Full:
            self.dropped += 1


_listener: logging.handlers.QueueListener | None = None


def _stop_listener() -> None:
    global _listener
    if _listener is not None:
        _listener.stop()  # writes out what is queued
        _listener = None


def configure_logging(
    level: str = "info", fmt: str = "auto", secrets: Iterable[str] = (), stream: Any = None,
    *, background: bool = True,
) -> None:
    """Route structlog and stdlib logging to one handler on stdout.

    With `background`, lines are written by a thread (see `_Writer`); tests that read the
    stream right after logging pass False."""
    stream = stream or sys.stdout
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if as_json:
        final.append(structlog.processors.format_exc_info)
    final += [SecretRedactor(secrets), renderer]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    _stop_listener()
    handler: logging.Handler
    if background:
        global _listener
        queue: Queue[logging.LogRecord] = Queue(maxsize=QUEUE_LINES)
        handler = _Writer(queue)
        _listener = logging.handlers.QueueListener(queue, logging.StreamHandler(stream))
        _listener.start()
        atexit.register(_stop_listener)
    else:
        handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("hypercorn.error", "hypercorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    for noisy in ("httpx", "httpx2", "httpcore", "openai"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
