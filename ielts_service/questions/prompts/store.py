"""The prompts in use, reloaded when their files change, never replaced by a broken edit."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import structlog

from ielts_service.questions.items import PARTS
from ielts_service.questions.prompts.files import (
    Problem,
    PromptError,
    PromptSet,
    parse_prompts,
    read_files,
)

log = structlog.get_logger("ielts_service.prompts")
FILES = ("system.txt", *(f"part{p}.txt" for p in PARTS))


def _stamp(directory: Path) -> tuple[tuple[int, int], ...]:
    """What changes when an editor saves a file (size and mtime in ns)."""
    stamps = []
    for name in FILES:
        try:
            stat = os.stat(directory / name)
            stamps.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append((0, -1))
    return tuple(stamps)


class PromptStore:
    """`current` holds the last good prompts; `error` the last failed reload, if any."""

    def __init__(self, directory: Path, *, required: bool) -> None:
        self.directory = directory
        self.required = required
        self.current: dict[int, PromptSet] = {}
        self.error: str | None = None
        self._stamp: tuple[tuple[int, int], ...] = ()

    def __repr__(self) -> str:
        return f"PromptStore(directory={str(self.directory)!r}, parts={sorted(self.current)})"

    def load(self) -> None:
        """Start-up load: a broken file stops start-up when a model needs the prompts."""
        self._stamp = _stamp(self.directory)
        try:
            self.current = parse_prompts(read_files(self.directory))
        except PromptError as exc:
            if self.required:
                raise
            self.error = str(exc)
            log.warning("prompts_not_loaded", problems=[str(p) for p in exc.problems])

    def versions(self) -> dict[str, str]:
        """The version in use per part, as `{"part1": ..., ...}`."""
        return {f"part{part}": prompt.version for part, prompt in self.current.items()}

    async def reload(self) -> list[Problem]:
        """Read the files again (off the event loop); return the problems, empty when swapped."""
        self._stamp = await asyncio.to_thread(_stamp, self.directory)
        files = await asyncio.to_thread(read_files, self.directory)
        try:
            prompts = parse_prompts(files)
        except PromptError as exc:
            self.error = str(exc)
            log.error("prompts_reload_failed", problems=[str(p) for p in exc.problems],
                      serving=self.versions())
            return exc.problems
        changed = {f"part{k}": v.version for k, v in prompts.items()
                   if k not in self.current or self.current[k].version != v.version}
        self.current, self.error = prompts, None
        log.info("prompts_reloaded", changed=changed)
        return []

    async def watch(self, interval: float) -> None:
        """Reload whenever a file changes; runs for the app's lifetime."""
        while True:
            await asyncio.sleep(interval)
            if await asyncio.to_thread(_stamp, self.directory) != self._stamp:
                await self.reload()
