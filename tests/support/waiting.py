"""Waiting on a condition with a deadline, instead of sleeping and hoping."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


async def eventually(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll `condition` (sync or async) until it returns something truthy; fail at the deadline.

    The deadline only bounds a failing test, so it is generous: a busy machine must not fail it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        assert loop.time() < deadline, "condition not met within the deadline"
        await asyncio.sleep(0.02)


async def generations_settled(client: Any, timeout: float = 30.0) -> None:
    """Wait until the app behind a test client has no generation running: every pool it
    was writing (a streamed answer goes on after the first item is served) has landed."""
    flight = client.app.extensions["ielts_service"].questions.flight
    await eventually(lambda: flight.in_flight == 0, timeout)
