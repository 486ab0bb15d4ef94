"""`ielts-service serve | warm | prompts lint | prompts render | prompts try`."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

from ielts_service.config import ConfigError, Settings, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"ielts-service: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def serve(args: argparse.Namespace) -> int:
    from hypercorn.config import Config

    from ielts_service import workers
    from ielts_service.observability.logging import configure_logging
    from ielts_service.observability.multiprocess import MetricsDirInUse, instance_metrics_dir
    from ielts_service.observability.otel import missing_packages
    from ielts_service.questions.prompts import PromptError

    # The master process only checks and forks: it imports no model or Redis client, so
    # it stays small (each worker imports the app itself).
    from ielts_service.questions.prompts.store import PromptStore

    settings = _settings()  # fail fast, in the parent, with one clear line
    if (missing := missing_packages(settings)) is not None:
        print(f"ielts-service: configuration error: {missing}", file=sys.stderr)
        return 2
    try:
        PromptStore(settings.prompts_dir, required=settings.ai_provider != "bank").load()
    except PromptError as exc:
        print(f"ielts-service: prompt error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
    config = Config.from_toml(args.config) if Path(args.config).is_file() else Config()
    if args.bind:
        config.bind = [args.bind]
    if args.workers is not None:
        config.workers = args.workers
    # Hypercorn's read timeout also runs while a request waits for its answer (the client
    # sends nothing meanwhile): it must outlast the longest request.
    longest = math.ceil(settings.request_timeout_seconds) + 15
    config.read_timeout = max(config.read_timeout or 0, longest)
    config.application_path = "ielts_service.app:serve_app()"
    config.errorlog = logging.getLogger("hypercorn.error")
    config.accesslog = None
    try:
        with instance_metrics_dir(settings.prometheus_multiproc_dir) as metrics_dir:
            # Workers inherit the environment: they all write to this instance's directory.
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
            return workers.run(config)
    except MetricsDirInUse as exc:
        print(f"ielts-service: PROMETHEUS_MULTIPROC_DIR: {exc}", file=sys.stderr)
        return 2
    except workers.AddressInUse as exc:
        print(f"ielts-service: {exc}", file=sys.stderr)
        return 2


def _prompts_dir(args: argparse.Namespace) -> Path:
    return Path(args.dir) if args.dir else _settings().prompts_dir


def prompts_lint(args: argparse.Namespace) -> int:
    from ielts_service.questions.prompts.tools import lint

    return lint(_prompts_dir(args))


def prompts_render(args: argparse.Namespace) -> int:
    from ielts_service.questions.prompts.tools import render

    return render(_settings(), _prompts_dir(args), args.part, args.topic)


def prompts_try(args: argparse.Namespace) -> int:
    from ielts_service.questions.prompts.tools import try_prompt

    return try_prompt(_settings(), _prompts_dir(args), args.part, args.topic)


def warm(args: argparse.Namespace) -> int:
    """Fill every catalogue pool for every part; a progress line on a terminal, a summary."""
    import asyncio

    from ielts_service.observability.logging import configure_logging
    from ielts_service.observability.metrics import Metrics
    from ielts_service.questions.operations import WarmProgress
    from ielts_service.questions.operations import warm as warm_pools
    from ielts_service.services import close_services, open_services

    settings = _settings()
    if settings.ai_provider == "bank":
        print("ielts-service: nothing to warm: no model is configured (the bank answers)")
        return 0
    # The summary goes to stdout; log lines (one ai_call per model attempt) to stderr.
    configure_logging(settings.log_level, settings.log_format, settings.secret_values(),
                      stream=sys.stderr, background=False)
    on_terminal = sys.stderr.isatty()

    def show(progress: WarmProgress) -> None:
        if on_terminal:
            print(f"\rwarming {progress.line()}", end="", file=sys.stderr, flush=True)

    async def run() -> WarmProgress:
        svc = await open_services(settings, Metrics())
        try:
            return await warm_pools(svc.questions, concurrency=args.concurrency or
                                    settings.warm_concurrency,
                                    fill_seconds=settings.refill_timeout_seconds, progress=show)
        finally:
            await close_services(svc)

    result = asyncio.run(run())
    if on_terminal:
        print(file=sys.stderr)
    print(f"ielts-service: warmed {result.line()}")
    return 1 if result.outcomes["failed"] else 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ielts-service", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    s = commands.add_parser("serve", help="serve HTTP with Hypercorn")
    s.add_argument("--bind", help="HOST:PORT (default: hypercorn.toml)")
    s.add_argument("--workers", type=int, help="worker processes (default: hypercorn.toml)")
    s.add_argument("--config", default="hypercorn.toml", help="Hypercorn TOML file")
    s.set_defaults(func=serve)
    w = commands.add_parser("warm", help="fill every catalogue topic's pools, for every part")
    w.add_argument("--concurrency", type=int, help="pools filled at once (default: WARM_CONCURRENCY)")
    w.set_defaults(func=warm)
    p = commands.add_parser("prompts", help="prompt editor's tools").add_subparsers(
        dest="action", required=True)
    lint = p.add_parser("lint", help="check every prompt file")
    lint.set_defaults(func=prompts_lint)
    for name, func in (("render", prompts_render), ("try", prompts_try)):
        sub = p.add_parser(name, help=f"{name} one part's prompt for a topic")
        sub.add_argument("part", type=int, choices=(1, 2, 3))
        sub.add_argument("--topic", required=True)
        sub.set_defaults(func=func)
    for sub in p.choices.values():
        sub.add_argument("--dir", help="prompts folder (default: PROMPTS_DIR)")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args) or 0)
