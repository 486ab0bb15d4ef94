"""Opens the service's clients once for the app's lifetime and closes them after serving.

The one place that decides what to open: Redis (once, shared by every store), the model
client, the prompts, the per-client allowances, and the question service that holds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from quart import current_app

from ielts_service.config import Settings
from ielts_service.llm.client import ModelClient
from ielts_service.llm.providers import open_model
from ielts_service.observability.metrics import Metrics
from ielts_service.questions.bank import Bank
from ielts_service.questions.pooling import PoolMaker, PoolSettings
from ielts_service.questions.prompts import PromptStore
from ielts_service.questions.service import QuestionService
from ielts_service.state.background import BackgroundTasks
from ielts_service.state.flight import SingleFlight
from ielts_service.state.pools import MemoryPoolStore, PoolStore, RedisPoolStore
from ielts_service.state.quota import Allowance
from ielts_service.state.redis import SharedRedis

log = structlog.get_logger("ielts_service.clients")
EXTENSION = "ielts_service"
HOUR = 3600.0


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    redis: SharedRedis | None
    prompts: PromptStore
    model: ModelClient | None
    questions: QuestionService
    auth_failures: Allowance  # wrong tokens and API keys, per client


def services() -> Services:
    """The running app's services (inside a request or app context)."""
    found: Services = current_app.extensions[EXTENSION]
    return found


def read_prompts(settings: Settings) -> PromptStore:
    """The prompt files; required when a model is configured, optional for the bank."""
    store = PromptStore(settings.prompts_dir, required=settings.ai_provider != "bank")
    store.load()
    return store


def pool_settings(settings: Settings) -> PoolSettings:
    """How pools grow and live; a worker keeps a local copy of hot pools only beside Redis
    (alone, the in-process store is as fast)."""
    return PoolSettings(settings.pool_size, settings.pool_ttl_seconds,
                        settings.pool_soft_ttl_seconds, settings.pool_max_items,
                        settings.refill_timeout_seconds,
                        settings.local_pool_ttl_seconds if settings.redis_url else 0.0,
                        settings.session_ttl_seconds, settings.ai_stream,
                        settings.variety_serves_per_item)


async def open_services(settings: Settings, metrics: Metrics) -> Services:
    redis = None
    if settings.redis_url is not None:
        redis = SharedRedis.open(settings)
        await redis.warm()
    store: PoolStore = RedisPoolStore(redis) if redis is not None else MemoryPoolStore()
    model = open_model(settings, metrics, redis)
    prompts = read_prompts(settings)
    refused = metrics.generations_refused.labels("client_quota").inc
    pools = PoolMaker(
        store=store, model=model, settings=pool_settings(settings), metrics=metrics,
        flight=SingleFlight(redis, settings.lock_lease_seconds),
        quota=Allowance("gen", settings.generations_per_client_per_hour, HOUR, redis, refused))
    questions = QuestionService(pools=pools, bank=Bank.load(), prompts=prompts,
                                background=BackgroundTasks(settings.background_tasks_max))
    auth_failures = Allowance("authfail", settings.auth_failures_per_hour, HOUR, redis)
    log.info("services_opened", provider=settings.ai_provider, model=settings.model_name,
             cache="redis" if redis is not None else "memory",
             redis_mode=settings.redis_mode if redis is not None else None)
    return Services(settings, metrics, redis, prompts, model, questions, auth_failures)


async def close_services(svc: Services) -> None:
    await svc.questions.background.close()
    await svc.questions.flight.close()
    if svc.model is not None:
        await svc.model.close()
    await svc.questions.store.close()
    if svc.redis is not None:
        await svc.redis.close()
