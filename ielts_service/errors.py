"""`APIError`: an HTTP status and a stable code, mapped to the envelope in one place."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class APIError(Exception):
    """Raised anywhere; `api.envelope` turns it into `{"status": "error", ...}`."""

    status: int
    code: str
    message: str
    details: list[dict[str, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"
