"""Settings: the only reader of the environment.

`load_settings()` merges the process environment over a `.env` file, validates every
value once at start-up and raises `ConfigError` with one line naming the variable.
Secrets are `SecretStr`, so neither `repr` nor an error message can print them.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from dotenv import dotenv_values
from pydantic import (
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ielts_service.config.redis import ReadableFile, RedisMode, Sentinels, check_redis
from ielts_service.config.telemetry import TelemetrySettings, http_url

Provider = Literal["azure", "openai", "bank"]

# Values people paste from examples; refusing them beats a confusing 401 later.
_PLACEHOLDERS = {"changeme", "change-me", "your-key", "your-api-key", "xxx", "<key>", "secret"}


# Bearer tokens anyone on the network may try: long enough that guessing is hopeless
# (32 characters of `openssl rand -hex 16` carry 128 bits).
MIN_TOKEN_LENGTH = 32

_API_KEY = re.compile(r"([A-Za-z0-9._-]{1,32}):([0-9a-f]{64})(?::([1-9][0-9]{0,6}))?")


@dataclass(frozen=True)
class ApiKey:
    """A client API key as configured: a name, the key's SHA-256, its own per-minute limit."""

    name: str
    sha256: str
    per_minute: int | None = None


class ConfigError(Exception):
    """A bad configuration value; the message names the variable and never its value."""


class Settings(TelemetrySettings):
    """Every setting of the service, validated; field names are the variables, lower-cased."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)
    # OpenTelemetry settings: `TelemetrySettings` (config/telemetry.py).

    ai_provider: Provider = "bank"
    azure_openai_endpoint: str | None = None
    azure_openai_api_key: SecretStr | None = None
    azure_openai_api_version: str = "2024-10-21"
    azure_openai_deployment: str | None = None
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    openai_model: str | None = None

    redis_url: SecretStr | None = None  # may carry a password
    redis_mode: RedisMode = "standalone"
    redis_sentinels: Sentinels = ()  # host:port,... for REDIS_MODE=sentinel
    redis_sentinel_master: str | None = None  # the name the sentinels monitor
    redis_ca_file: ReadableFile | None = None  # the CA that signed a TLS Redis's certificate
    redis_cert_file: ReadableFile | None = None  # a client certificate, when Redis asks for one
    redis_key_file: ReadableFile | None = None  # its private key
    redis_timeout_seconds: float = Field(0.5, gt=0, le=10)
    prompts_dir: Path = Path("prompts")
    prompts_reload_seconds: float = Field(1.0, ge=0, le=3600)  # 0: no hot reload
    admin_token: SecretStr | None = None
    cors_origins: tuple[str, ...] = ()

    request_timeout_seconds: float = Field(30.0, gt=0, le=300)
    ai_max_attempts: int = Field(4, ge=1, le=10)
    ai_attempt_timeout_seconds: float = Field(20.0, gt=0, le=300)
    ai_retry_after_cap_seconds: float = Field(20.0, ge=0, le=120)
    ai_backoff_base_seconds: float = Field(0.5, ge=0, le=30)
    ai_backoff_max_seconds: float = Field(8.0, ge=0, le=120)
    circuit_min_calls: int = Field(10, ge=1)  # calls in the window before the breaker may open
    circuit_failure_ratio: float = Field(0.5, gt=0, le=1)
    circuit_window_seconds: float = Field(30.0, gt=0)
    circuit_cooldown_seconds: float = Field(15.0, gt=0)  # open this long, then one probe
    ai_temperature: float = Field(0.9, ge=0, le=2)
    ai_stream: bool = True  # stream answers: a cold request is served its pool's first item
    pool_size: int = Field(5, ge=1, le=20)
    pool_ttl_seconds: int = Field(86400, ge=1)
    pool_soft_ttl_seconds: int = Field(21600, ge=1)  # past it a pool is served stale and refilled
    # Widening stops here; past it, repeats. 30: six calls of five items, a class of 30
    # on one topic sees 30 different items.
    pool_max_items: int = Field(30, ge=1, le=200)
    # A pool is widened (one call, in the background) once every item has been served this
    # many times, across sessions; 0: only when a session has seen the whole pool. 1: each
    # student of a class gets an item nobody else got while the pool can grow.
    variety_serves_per_item: int = Field(1, ge=0, le=1000)
    local_pool_ttl_seconds: float = Field(2.0, ge=0, le=60)  # a worker's copy of a hot pool
    refill_timeout_seconds: float = Field(60.0, gt=0, le=600)  # a background refill's deadline
    warm_on_start: bool = False  # fill every catalogue pool after start-up, once across instances
    warm_concurrency: int = Field(4, ge=1, le=64)  # pools filled at once by a warm
    lock_lease_seconds: float = Field(5.0, gt=0, le=120)  # single-flight lease, renewed by its holder
    background_tasks_max: int = Field(16, ge=0, le=1000)  # refills running at once per worker
    ai_budget_rpm: int = Field(0, ge=0)  # model requests per minute for all instances; 0: no budget
    ai_budget_tpm: int = Field(0, ge=0)  # model tokens per minute for all instances; 0: no budget
    # The deployment's ceiling: model calls (attempts) per UTC day, all instances together.
    # ~5000 calls of at most ~2,200 tokens each; raise it on purpose, never off.
    ai_calls_per_day: int = Field(5000, ge=1)
    # Fresh model calls one client may cause per hour (0: no per-client quota). 30 students
    # behind one school address, each starting a mock test on a topic of their own every
    # 15 minutes, cause 240 (Part 2 and Part 3; Part 1 comes from pools).
    generations_per_client_per_hour: int = Field(300, ge=0)
    session_ttl_seconds: int = Field(10800, ge=60, le=7 * 86400)  # a session's seen items
    auth_failures_per_hour: int = Field(20, ge=1, le=100000)  # wrong tokens/keys per client
    body_timeout_seconds: float = Field(10.0, gt=0, le=300)  # a request body's whole upload
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose X-Forwarded-For is believed
    client_api_keys: tuple[ApiKey, ...] = ()  # name:sha256hex[:per_minute], comma-separated
    metrics_token: SecretStr | None = None  # when set, /metrics needs it as a bearer token
    rate_limit_per_minute: int = Field(60, ge=0, le=100000)  # per client, question routes; 0: off
    max_body_bytes: int = Field(16384, ge=256, le=1048576)
    prometheus_multiproc_dir: Path | None = None  # set by `ielts-service serve`
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    sentry_dsn: SecretStr | None = None  # set: unhandled exceptions go to Sentry

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(o.strip() for o in value.split(",") if o.strip())
        return value

    @field_validator("client_api_keys", mode="before")
    @classmethod
    def _api_keys(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        keys = []
        for entry in (e.strip() for e in value.split(",") if e.strip()):
            if not (match := _API_KEY.fullmatch(entry)):
                raise ValueError("entries must be name:sha256hex or name:sha256hex:per_minute "
                                 "(the key's SHA-256, never the key itself)")
            name, digest, limit = match.groups()
            keys.append(ApiKey(name, digest, int(limit) if limit else None))
        return tuple(keys)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad entry
        return value

    _model_urls = field_validator("azure_openai_endpoint", "openai_base_url")(http_url)

    @field_validator("azure_openai_api_key", "openai_api_key", "admin_token", "metrics_token")
    @classmethod
    def _no_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("is a placeholder, not a real secret")
        return value

    @field_validator("admin_token", "metrics_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters "
                             "(for example: openssl rand -hex 32)")
        return value

    @field_validator("sentry_dsn")
    @classmethod
    def _dsn(cls, value: SecretStr | None) -> SecretStr | None:
        parts = urlsplit(value.get_secret_value()) if value is not None else None
        if parts and (parts.scheme not in ("http", "https") or not parts.username
                      or not parts.hostname or not parts.path.strip("/")):
            raise ValueError("must look like https://PUBLIC_KEY@HOST/PROJECT_ID")
        return value

    @model_validator(mode="after")
    def _provider_needs(self) -> Settings:
        required = {
            "azure": ("azure_openai_endpoint", "azure_openai_api_key", "azure_openai_deployment"),
            "openai": ("openai_base_url", "openai_model"),
            "bank": (),
        }[self.ai_provider]
        for name in required:
            if getattr(self, name) is None:
                raise ValueError(f"{name.upper()} is required when AI_PROVIDER={self.ai_provider}")
        return self

    check_redis_settings = model_validator(mode="after")(check_redis)  # config/redis.py

    @property
    def model_name(self) -> str:
        """The deployment or model that answers: one name for logs, metrics and pool keys."""
        if self.ai_provider == "azure":
            return self.azure_openai_deployment or ""
        if self.ai_provider == "openai":
            return self.openai_model or ""
        return "bank"

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redactor."""
        secrets = (self.azure_openai_api_key, self.openai_api_key, self.admin_token,
                   self.metrics_token, self.sentry_dsn)
        values = [s.get_secret_value() for s in secrets if s is not None]
        if self.redis_url is not None:
            password = urlsplit(self.redis_url.get_secret_value()).password
            values += [password, unquote(password)] if password else []
        return values + list(self.otlp_headers().values())


def _default_provider(values: Mapping[str, str]) -> str:
    if values.get("AZURE_OPENAI_ENDPOINT") and values.get("AZURE_OPENAI_API_KEY"):
        return "azure"
    if values.get("OPENAI_BASE_URL"):
        return "openai"
    return "bank"


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Build Settings from `.env` overlaid by the environment; raise ConfigError on a bad value."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    known = {name.upper() for name in Settings.model_fields}
    raw = {k.lower(): v for k, v in values.items() if k in known and v != ""}
    raw.setdefault("ai_provider", _default_provider(values))
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    error = exc.errors(include_input=False, include_url=False)[0]
    message = error["msg"].removeprefix("Value error, ")
    if error["loc"]:
        return f"{str(error['loc'][0]).upper()}: {message}"
    return message
