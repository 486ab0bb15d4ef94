"""How the Redis settings fit together, checked by `Settings` at start-up: which
topology needs which variable, and which TLS files need which scheme. Each problem is one
line that starts with the variable's name and never shows a value (a URL may carry a
password). Defaults stay in `config/__init__.py`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator

if TYPE_CHECKING:
    from ielts_service.config import Settings


def parse_sentinels(value: object) -> object:
    """`host:port,...` (IPv6 as `[::1]:26379`) as (host, port) pairs."""
    if not isinstance(value, str):
        return value
    found = []
    for entry in (e.strip() for e in value.split(",") if e.strip()):
        host, _, port = entry.rpartition(":")
        if not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("entries must be host:port, comma-separated")
        found.append((host.strip("[]"), int(port)))
    return tuple(found)


def _readable(path: Path) -> Path:
    if not path.is_file():
        raise ValueError("no such file")
    return path


RedisMode = Literal["standalone", "cluster", "sentinel"]
Sentinels = Annotated[tuple[tuple[str, int], ...], BeforeValidator(parse_sentinels)]
ReadableFile = Annotated[Path, AfterValidator(_readable)]


def check_redis(settings: Settings) -> Settings:
    """Settings' model validator: a bad combination is one line naming the variable."""
    if problem := redis_problem(settings):
        raise ValueError(problem)
    return settings


def redis_problem(settings: Settings) -> str | None:
    """What is wrong with the Redis settings taken together (the variable first), or None."""
    mode, url = settings.redis_mode, settings.redis_url
    tls_files = ("redis_ca_file", "redis_cert_file", "redis_key_file")
    if url is None:
        if mode != "standalone":
            return f"REDIS_URL is required when REDIS_MODE={mode}"
        unused = [n for n in ("redis_sentinels", "redis_sentinel_master", *tls_files)
                  if getattr(settings, n)]
        return f"{unused[0].upper()} is set but REDIS_URL is not" if unused else None
    parts = urlsplit(url.get_secret_value())
    schemes = ("redis", "rediss", "unix") if mode == "standalone" else ("redis", "rediss")
    if parts.scheme not in schemes:
        return f"REDIS_URL must start with {' or '.join(s + '://' for s in schemes)}"
    try:
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        return "REDIS_URL has a port that is not a number from 1 to 65535"
    if mode == "cluster" and parts.path.strip("/") not in ("", "0"):
        return "REDIS_URL names a database other than 0, and a cluster has only database 0"
    if mode == "sentinel":
        if not settings.redis_sentinels:
            return "REDIS_SENTINELS is required when REDIS_MODE=sentinel"
        if not settings.redis_sentinel_master:
            return "REDIS_SENTINEL_MASTER is required when REDIS_MODE=sentinel"
    elif settings.redis_sentinels or settings.redis_sentinel_master:
        name = "REDIS_SENTINELS" if settings.redis_sentinels else "REDIS_SENTINEL_MASTER"
        return f"{name} is only used when REDIS_MODE=sentinel"
    if parts.scheme != "rediss" and (given := [n for n in tls_files if getattr(settings, n)]):
        return f"{given[0].upper()} needs a rediss:// REDIS_URL (TLS)"
    if settings.redis_cert_file and not settings.redis_key_file:
        return "REDIS_KEY_FILE is required with REDIS_CERT_FILE"
    if settings.redis_key_file and not settings.redis_cert_file:
        return "REDIS_CERT_FILE is required with REDIS_KEY_FILE"
    return None
