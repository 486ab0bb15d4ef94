"""structlog, configured once before the app is created.

JSON lines on stdout off a TTY, a readable console on a TTY. The standard library's
records (Hypercorn, redis, openai) go through the same chain via `ProcessorFormatter`, so
every line has one shape. Secret values are replaced wherever they appear.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

import structlog
from structlog.types import EventDict, Processor

from ielts_service.observability import tracing

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


def add_trace_ids(logger: Any, name: str, event: EventDict) -> EventDict:
    """`trace_id` and `span_id` of the span this line was logged in (tracing on only)."""
    if (ids := tracing.log_ids()) is not None:
        for key, value in ids.items():
            event.setdefault(key, value)
    return event


class BatchWriter(logging.Handler):
    """Formats on the caller's thread; a writer thread writes what piled up, in batches.

    The event loop only appends a finished line to a deque, so a slow or stalled stdout
    (a full pipe, a log driver pushing back) never blocks it, and writing costs one
    system call per batch rather than per line. Past `max_lines` waiting, lines are
    dropped and counted, and the count is written once there is room. (The standard
    library's QueueHandler/QueueListener write one record per call and either block or
    raise on a full queue: neither batches nor counts what it dropped.)"""

    def __init__(self, stream: Any, max_lines: int = QUEUE_LINES, interval: float = 0.05) -> None:
        super().__init__()
        self.stream, self.max_lines, self.interval = stream, max_lines, interval
        self.lines: deque[str] = deque()
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.append(line)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()
        self.flush()

    def append(self, line: str) -> None:
        """Queue one finished line (the access logger's way in, past the stdlib chain)."""
        if len(self.lines) >= self.max_lines:
            self.dropped += 1
            return
        self.lines.append(line)

    def flush(self) -> None:
        batch = []
        while self.lines:
            batch.append(self.lines.popleft())
        if self.dropped:
            batch.append(json.dumps({"event": "log_lines_dropped", "count": self.dropped,
                                     "level": "warning"}))
            self.dropped = 0
        if batch:
            try:
                self.stream.write("\n".join(batch) + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # stdout closed under us: nothing left to tell
                pass

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        super().close()


def add_pid(logger: Any, name: str, event: EventDict) -> EventDict:
    """`pid`: which worker wrote the line (several share one stdout)."""
    event["pid"] = os.getpid()
    return event


_writer: BatchWriter | None = None
_direct: list[Processor] = []  # the whole chain, when lines go to `_writer` as JSON


class _Sink:
    """The end of a direct chain: a named logger whose every method queues its line."""

    def __init__(self, name: str, writer: BatchWriter) -> None:
        self.name, self.writer = name, writer

    def msg(self, line: str) -> None:
        self.writer.append(line)

    info = warning = error = msg


def fast_logger(name: str) -> Any:
    """A logger for lines written once per request (the access line) whose JSON is the same
    as `structlog.get_logger(name)`'s, but built by one structlog chain straight into the
    writer's queue: the stdlib round trip (a LogRecord, the handler's lock,
    ProcessorFormatter) cost more than the rest of the line. Anywhere else (a terminal,
    tests reading records) it is `structlog.get_logger(name)`; call after
    `configure_logging`."""
    if _writer is None or not _direct:
        return structlog.get_logger(name)
    level = logging.getLogger(name).getEffectiveLevel()
    return structlog.wrap_logger(_Sink(name, _writer), processors=list(_direct),
                                 wrapper_class=structlog.make_filtering_bound_logger(level))


def _close_writer() -> None:
    global _writer
    if _writer is not None:
        _writer.close()  # writes out what is waiting
        _writer = None


def configure_logging(
    level: str = "info", fmt: str = "auto", secrets: Iterable[str] = (), stream: Any = None,
    *, background: bool = True,
) -> None:
    """Route structlog and stdlib logging to one handler on stdout.

    With `background`, lines are written by a thread (see `BatchWriter`); tests that read the
    stream right after logging pass False."""
    stream = stream or sys.stdout
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_pid,
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
    _close_writer()
    _direct.clear()
    handler: logging.Handler
    if background:
        global _writer
        handler = _writer = BatchWriter(stream)
        atexit.register(_close_writer)
        if as_json:
            _direct.extend([*shared, *final[1:]])
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
