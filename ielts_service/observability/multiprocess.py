"""The metrics directory of one running instance: emptied at start, never shared."""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class MetricsDirInUse(Exception):
    """Another running instance holds the directory: sharing it would mix their counts."""


@contextmanager
def instance_metrics_dir(configured: Path | None) -> Iterator[Path]:
    """A fresh temporary directory, or `configured` emptied and locked for this instance."""
    path = configured or Path(tempfile.mkdtemp(prefix="ielts-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MetricsDirInUse(f"{path} is in use by another running instance") from None
        for stale in (*path.glob("*.db"), *path.glob("exemplars_*.json")):
            stale.unlink()
        try:
            yield path
        finally:
            if configured is None:
                shutil.rmtree(path, ignore_errors=True)
