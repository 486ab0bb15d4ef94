"""Request ids: kept when the client sends a well-formed one, made up otherwise."""

from __future__ import annotations

import re
import uuid

_VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_from(header: str | None) -> str:
    """The incoming `X-Request-ID` if it is 1-64 chars of [A-Za-z0-9._-], else a new id."""
    if header is not None and _VALID.fullmatch(header):
        return header
    return uuid.uuid4().hex
