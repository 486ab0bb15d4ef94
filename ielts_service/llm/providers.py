"""The model client for the configured provider, built from Settings."""

from __future__ import annotations

import openai

from ielts_service.config import Settings
from ielts_service.llm.breaker import CircuitBreaker
from ielts_service.llm.budget import Budget
from ielts_service.llm.client import ModelClient
from ielts_service.llm.retry import RetryPolicy
from ielts_service.observability.metrics import Metrics
from ielts_service.state.redis import SharedRedis


def sdk_client(settings: Settings) -> openai.AsyncOpenAI | None:
    """The openai SDK client (its own retries off: the service's policy owns them)."""
    if settings.ai_provider == "azure":
        # Settings requires both for azure.
        assert settings.azure_openai_api_key is not None and settings.azure_openai_endpoint
        return openai.AsyncAzureOpenAI(
            azure_endpoint=settings.azure_openai_endpoint,
            api_key=settings.azure_openai_api_key.get_secret_value(),
            api_version=settings.azure_openai_api_version,
            max_retries=0,
            timeout=settings.ai_attempt_timeout_seconds,
        )
    if settings.ai_provider == "openai":
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "none"
        return openai.AsyncOpenAI(base_url=settings.openai_base_url, api_key=key, max_retries=0,
                                  timeout=settings.ai_attempt_timeout_seconds)
    return None


def open_model(settings: Settings, metrics: Metrics,
               redis: SharedRedis | None = None) -> ModelClient | None:
    """The model client with its retry policy, breaker and budget; None for the bank."""
    client = sdk_client(settings)
    if client is None:
        return None
    policy = RetryPolicy.from_settings(settings)
    return ModelClient(
        client, provider=settings.ai_provider, model=settings.model_name, policy=policy,
        metrics=metrics, temperature=settings.ai_temperature,
        budget=Budget.from_settings(settings, metrics, redis, policy.min_attempt_seconds),
        breaker=CircuitBreaker.from_settings(settings))
