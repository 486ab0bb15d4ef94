"""Prometheus metrics with the contract's names, correct across Hypercorn workers.

Each app owns a `Metrics` with its own registry. Under `ielts-service serve`, every worker
writes to the instance's multiprocess directory and a scrape builds a fresh registry with
`MultiProcessCollector`, so the numbers add up whichever worker answers the scrape.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

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
from prometheus_client.exposition import choose_encoder
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
AI_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 12, 20, 30, 45, 60)
AI_DURATION = "ielts_ai_request_duration_seconds"
OPENMETRICS = "application/openmetrics-text"
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
        self._exemplars: dict[str, list[Any]] = {}  # "labels|le" -> [trace id, value, time]
        r = self.registry = CollectorRegistry()
        self.http_requests = Counter("ielts_http_requests", "HTTP requests answered.",
                                     ["method", "route", "status"], registry=r)
        self.http_duration = Histogram("ielts_http_request_duration_seconds",
                                       "Time to answer an HTTP request.", ["method", "route"],
                                       buckets=HTTP_BUCKETS, registry=r)
        self.ai_duration = Histogram(AI_DURATION,
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

    def observe_ai_duration(self, labels: tuple[str, ...], seconds: float,
                            trace_id: str | None = None) -> None:
        """One model attempt's time; with a trace id, also the exemplar of its bucket."""
        exemplar = {"trace_id": trace_id} if trace_id else None
        self.ai_duration.labels(*labels).observe(seconds, exemplar=exemplar)
        if trace_id and self.multiprocess_dir is not None:
            save_exemplar(self.multiprocess_dir, self._exemplars, labels, seconds, trace_id)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """Every worker's values under multiprocess mode: Prometheus text, or OpenMetrics
        (the format that carries exemplars) when the scraper's Accept asks for it."""
        encoder: Callable[..., bytes] = generate_latest
        content_type = CONTENT_TYPE_LATEST
        if OPENMETRICS in accept:
            encoder, content_type = choose_encoder(accept)
        if self.multiprocess_dir is None:
            return encoder(self.registry), content_type
        mark_dead_workers(self.multiprocess_dir)
        registry = CollectorRegistry()
        registry.register(_WithExemplars(self.multiprocess_dir))
        return encoder(registry), content_type

    def worker_stopped(self) -> None:
        """A worker's live gauges leave with it."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), str(self.multiprocess_dir))


# prometheus_client's multiprocess mode drops exemplars (MultiProcessValue.set_exemplar is
# a no-op), so each worker keeps its latest exemplar per bucket in a small file of its own,
# and a scrape puts them back on the buckets. Written only for traced model attempts.
def _exemplar_file(directory: Path, pid: int) -> Path:
    return directory / f"exemplars_{pid}.json"


def save_exemplar(directory: Path, latest: dict[str, list[Any]], labels: tuple[str, ...],
                  seconds: float, trace_id: str) -> None:
    """Note `trace_id` as the exemplar of the bucket `seconds` falls in; write the file."""
    le = next(b for b in (*AI_BUCKETS, float("inf")) if seconds <= b)
    latest["|".join((*labels, floatToGoString(le)))] = [trace_id, seconds, time.time()]
    path = _exemplar_file(directory, os.getpid())
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(latest))
    os.replace(temporary, path)  # a scrape reads a whole file or the previous one


def load_exemplars(directory: Path) -> dict[str, Exemplar]:
    """The newest exemplar of each bucket across this instance's workers."""
    found: dict[str, Exemplar] = {}
    for path in directory.glob("exemplars_*.json"):
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a worker writing it right now: its previous exemplars are skipped once
        for key, (trace_id, value, ts) in entries.items():
            if key not in found or float(found[key].timestamp or 0) < ts:
                found[key] = Exemplar({"trace_id": trace_id}, value, ts)
    return found


class _WithExemplars:
    """MultiProcessCollector, with the workers' exemplars on the model-latency buckets."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.inner = multiprocess.MultiProcessCollector(None, path=str(directory))

    def collect(self) -> Iterator[Any]:
        exemplars = load_exemplars(self.directory)
        for family in self.inner.collect():
            if family.name == AI_DURATION and exemplars:
                family.samples = [_with_exemplar(s, exemplars) for s in family.samples]
            yield family


def _with_exemplar(sample: Sample, exemplars: dict[str, Exemplar]) -> Sample:
    if not sample.name.endswith("_bucket"):
        return sample
    labels = [sample.labels.get(n, "") for n in ("provider", "model", "part", "outcome", "le")]
    return sample._replace(exemplar=exemplars.get("|".join(labels)))


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
