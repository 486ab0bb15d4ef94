"""The OpenTelemetry settings (the standard OTEL_* variables), a part of `Settings`:
tracing is on only when an OTLP endpoint is set."""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote

from pydantic import BaseModel, Field, SecretStr, field_validator


def http_url(value: str | None) -> str | None:
    """An http(s) base URL without a trailing slash."""
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/") if value else value


class TelemetrySettings(BaseModel):
    """Where traces go and how they are described; `Settings` inherits these fields."""

    otel_exporter_otlp_endpoint: str | None = None  # base URL; traces go to {it}/v1/traces
    otel_exporter_otlp_traces_endpoint: str | None = None  # the full traces URL, as given
    otel_exporter_otlp_headers: SecretStr | None = None  # key=value,... (often an API key)
    otel_exporter_otlp_protocol: Literal["http/protobuf"] = "http/protobuf"
    otel_service_name: str = Field("ielts-service", min_length=1, max_length=200)
    otel_resource_attributes: str | None = None  # key=value,... e.g. deployment.environment=prod
    otel_traces_sampler: Literal["always_on", "always_off", "traceidratio",
                                 "parentbased_always_on", "parentbased_always_off",
                                 "parentbased_traceidratio"] = "parentbased_always_on"
    otel_traces_sampler_arg: float = Field(1.0, ge=0, le=1)  # the ratio of the *ratio samplers
    otel_sdk_disabled: bool = False  # true: no tracing even with an endpoint

    _otlp_urls = field_validator("otel_exporter_otlp_endpoint",
                                "otel_exporter_otlp_traces_endpoint")(http_url)

    @field_validator("otel_exporter_otlp_headers", "otel_resource_attributes")
    @classmethod
    def _key_values(cls, value: SecretStr | str | None) -> SecretStr | str | None:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is not None and any("=" not in pair or not pair.split("=", 1)[0].strip()
                                   for pair in raw.split(",") if pair.strip()):
            raise ValueError("must be key=value pairs separated by commas")
        return value

    @property
    def traces_endpoint(self) -> str | None:
        """Where spans are sent (OTLP/HTTP), or None: tracing off, the SDK never imported."""
        if self.otel_sdk_disabled:
            return None
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        if self.otel_exporter_otlp_endpoint:
            return self.otel_exporter_otlp_endpoint + "/v1/traces"
        return None

    def otlp_headers(self) -> dict[str, str]:
        """OTEL_EXPORTER_OTLP_HEADERS as a dict (values percent-decoded, as the spec says)."""
        raw = self.otel_exporter_otlp_headers
        return _key_value_pairs(raw.get_secret_value() if raw is not None else None)

    def resource_attributes(self) -> dict[str, str]:
        """OTEL_RESOURCE_ATTRIBUTES as a dict; OTEL_SERVICE_NAME wins for service.name."""
        return {**_key_value_pairs(self.otel_resource_attributes),
                "service.name": self.otel_service_name}


def _key_value_pairs(raw: str | None) -> dict[str, str]:
    pairs = (p.split("=", 1) for p in (raw or "").split(",") if p.strip())
    return {unquote(k.strip()): unquote(v.strip()) for k, v in pairs}
