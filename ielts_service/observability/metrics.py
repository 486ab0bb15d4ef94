"""Prometheus metrics with the contract's names, correct across Hypercorn workers.

Each app owns a `Metrics` with its own registry. Under `ielts-service serve`, every worker
writes to the instance's multiprocess directory and a scrape builds a fresh registry with
`MultiProcessCollector`, so the numbers add up whichever worker answers the scrape.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Generic, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
AI_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 12, 20, 30, 45, 60)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LIVE_FILE = re.compile(r"gauge_live\w*_(\d+)\.db$")
M = TypeVar("M", Counter, Gauge, Histogram)


class Labelled(Generic[M]):
    """A metric's children by label values, each looked up once: `labels()` validates its
    arguments and takes the metric's lock on every call, on every request. The label
    values must be bounded (route templates, methods, statuses), as they are anyway."""

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


class Metrics:
    """The service's metrics; pass one to whatever records them."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        if multiprocess_dir is not None and not getattr(values.ValueClass, "_multiprocess", False):
            # prometheus_client picks its value class at import; choose it explicitly so
            # the import order of our modules cannot matter.
            values.ValueClass = values.MultiProcessValue()
        r = self.registry = CollectorRegistry()
        self.http_requests = Counter("ielts_http_requests", "HTTP requests answered.",
                                     ["method", "route", "status"], registry=r)
        self.http_duration = Histogram("ielts_http_request_duration_seconds",
                                       "Time to answer an HTTP request.", ["method", "route"],
                                       buckets=HTTP_BUCKETS, registry=r)
        self.ai_duration = Histogram("ielts_ai_request_duration_seconds",
                                     "Time of one model attempt.",
                                     ["provider", "model", "part", "outcome"],
                                     buckets=AI_BUCKETS, registry=r)
        self.ai_requests = Counter("ielts_ai_requests", "Model attempts, by outcome.",
                                   ["provider", "model", "part", "outcome"], registry=r)
        self.ai_retries = Counter("ielts_ai_retries", "Model retries, by the reason for them.",
                                  ["reason"], registry=r)
        self.ai_tokens = Counter("ielts_ai_tokens", "Tokens the provider reported using.",
                                 ["model", "kind"], registry=r)
        self.cache_requests = Counter("ielts_cache_requests", "Pool look-ups, by result.",
                                      ["result"], registry=r)
        self.items_rejected = Counter("ielts_items_rejected",
                                      "Model items dropped by the IELTS validators.",
                                      ["part", "reason"], registry=r)
        self.budget_remaining = Gauge("ielts_ai_budget_remaining",
                                      "Model budget left in the shared buckets, as last seen.",
                                      ["kind"], registry=r, multiprocess_mode="mostrecent")
        self.generations_refused = Counter(
            "ielts_generations_refused",
            "Model calls refused before they were made: a client's quota or the deployment's "
            "daily ceiling.", ["reason"], registry=r)
        self.inflight = Gauge("ielts_inflight_requests", "HTTP requests being answered now.",
                              registry=r, multiprocess_mode="livesum")
        self.overhead = Histogram("ielts_overhead_seconds",
                                  "The service's own time per question answer: total minus the "
                                  "time spent waiting for the model.", ["route"],
                                  buckets=HTTP_BUCKETS, registry=r)

    def __repr__(self) -> str:
        mode = "multiprocess" if self.multiprocess_dir else "single-process"
        return f"Metrics({mode})"

    def render(self) -> tuple[bytes, str]:
        """The text exposition: every worker's values under multiprocess mode."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        mark_dead_workers(self.multiprocess_dir)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def worker_stopped(self) -> None:
        """A worker's live gauges leave with it."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), str(self.multiprocess_dir))


def mark_dead_workers(directory: Path) -> None:
    """Drop the live-gauge files of workers that are gone (a crash skips `worker_stopped`)."""
    for path in directory.glob("gauge_live*.db"):
        match = _LIVE_FILE.search(path.name)
        if match and not _alive(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)), str(directory))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def method_label(method: str) -> str:
    """A bounded method label: unusual methods count as OTHER."""
    return method if method in METHODS else "OTHER"
