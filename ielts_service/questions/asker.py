"""Who asks, and what their request may cost.

Every model attempt a request causes, in the foreground or in a refill or widening it
started, is taken from its client's hourly quota (`GENERATIONS_PER_CLIENT_PER_HOUR`);
answers from pools and the bank cost nothing and are never limited by it. A request that
may not call the model at all (`GET`: any web page can make a browser send one) is
answered from pools or the bank only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ielts_service.llm.client import Admit
from ielts_service.state.quota import Allowance


class NotCached(Exception):
    """A request that may not call the model found no pool, and the bank has no area."""


@dataclass(frozen=True)
class Asker:
    """The client whose quota a model call spends (None: the operator's own tools, no
    quota), and whether this request may call the model at all."""

    client: str | None = None
    fresh: bool = True

    def admission(self, quota: Allowance | None, *, spend: bool = True) -> Admit | None:
        """What runs before each model attempt: one from the client's quota (or, not
        spending, a check that one is left), raising QuotaExhausted; None: no quota."""
        if quota is None or self.client is None or not quota.enabled:
            return None
        return functools.partial(quota.spend if spend else quota.require, self.client)


OPERATOR = Asker()
