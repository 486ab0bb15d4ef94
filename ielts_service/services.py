"""Opens the service's clients once for the app's lifetime and closes them after serving."""

from __future__ import annotations

from dataclasses import dataclass

import openai
import structlog
from quart import current_app
from redis.asyncio import Redis

from ielts_service.config import Settings
from ielts_service.state.background import BackgroundTasks
from ielts_service.questions.bank import Bank
from ielts_service.llm.budget import Budget
from ielts_service.llm.breaker import CircuitBreaker, RedisGate
from ielts_service.state.flight import SingleFlight
from ielts_service.llm.client import ModelClient
from ielts_service.state.pools import MemoryPoolStore, PoolStore, RedisPoolStore
from ielts_service.questions.prompt_store import PromptStore
from ielts_service.llm.retry import RetryPolicy
from ielts_service.questions.service import PoolSettings, QuestionService
from ielts_service.observability.metrics import Metrics

log = structlog.get_logger("ielts_service.services")
EXTENSION = "ielts_service"


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    store: PoolStore
    prompts: PromptStore
    model: ModelClient | None
    questions: QuestionService


def services() -> Services:
    """The running app's services (inside a request or app context)."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.ai_max_attempts,
        attempt_timeout=settings.ai_attempt_timeout_seconds,
        retry_after_cap=settings.ai_retry_after_cap_seconds,
        backoff_base=settings.ai_backoff_base_seconds,
        backoff_max=settings.ai_backoff_max_seconds,
    )


def make_budget(settings: Settings, metrics: Metrics, redis: Redis | None,
                gate: RedisGate | None = None) -> Budget | None:
    """The shared model budget, when one is configured (0 means no limit on that kind)."""
    if not (settings.ai_budget_rpm or settings.ai_budget_tpm):
        return None
    unlimited = 10**12
    return Budget(redis, settings.ai_budget_rpm or unlimited, settings.ai_budget_tpm or unlimited,
                  metrics, gate=gate)


def make_model_client(
    settings: Settings, metrics: Metrics, redis: Redis | None = None,
    gate: RedisGate | None = None,
) -> ModelClient | None:
    """The SDK client for the configured provider, its own retries off; None for the bank."""
    client: openai.AsyncOpenAI
    if settings.ai_provider == "azure":
        assert settings.azure_openai_api_key is not None
        client = openai.AsyncAzureOpenAI(
            azure_endpoint=settings.azure_openai_endpoint,
            api_key=settings.azure_openai_api_key.get_secret_value(),
            api_version=settings.azure_openai_api_version,
            max_retries=0,
            timeout=settings.ai_attempt_timeout_seconds,
        )
    elif settings.ai_provider == "openai":
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "none"
        client = openai.AsyncOpenAI(
            base_url=settings.openai_base_url, api_key=key, max_retries=0,
            timeout=settings.ai_attempt_timeout_seconds,
        )
    else:
        return None
    return ModelClient(client, provider=settings.ai_provider, model=settings.model_name,
                       policy=retry_policy(settings), metrics=metrics,
                       temperature=settings.ai_temperature,
                       budget=make_budget(settings, metrics, redis, gate),
                       breaker=CircuitBreaker(
                           window=settings.circuit_window_seconds,
                           min_calls=settings.circuit_min_calls,
                           failure_ratio=settings.circuit_failure_ratio,
                           cooldown=settings.circuit_cooldown_seconds))


def read_prompts(settings: Settings) -> PromptStore:
    """The prompt files; required when a model is configured, optional for the bank."""
    store = PromptStore(settings.prompts_dir, required=settings.ai_provider != "bank")
    store.load()
    return store


async def open_services(settings: Settings, metrics: Metrics) -> Services:
    store: PoolStore
    if settings.redis_url is not None:
        store = RedisPoolStore.from_url(settings.redis_url.get_secret_value(),
                                        settings.redis_timeout_seconds)
    else:
        store = MemoryPoolStore()
    gate = getattr(store, "gate", None)
    model = make_model_client(settings, metrics, store.redis, gate)
    prompts = read_prompts(settings)
    questions = QuestionService(
        store=store, bank=Bank.load(), prompts=prompts, model=model,
        pools=PoolSettings(settings.pool_size, settings.pool_ttl_seconds,
                           settings.pool_soft_ttl_seconds),
        metrics=metrics,
        flight=SingleFlight(store.redis, settings.lock_lease_seconds, gate=gate),
        background=BackgroundTasks(settings.background_tasks_max),
    )
    log.info("services_opened", provider=settings.ai_provider, model=settings.model_name,
             cache="redis" if settings.redis_url else "memory")
    return Services(settings, metrics, store, prompts, model, questions)


async def close_services(svc: Services) -> None:
    await svc.questions.background.close()
    await svc.questions.flight.close()
    if svc.model is not None:
        await svc.model.close()
    await svc.store.close()
