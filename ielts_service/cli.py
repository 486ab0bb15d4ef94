"""`ielts-service serve | prompts lint | prompts render | prompts try`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
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
    from hypercorn.run import run

    from ielts_service.app import secret_values
    from ielts_service.clients import read_prompts
    from ielts_service.generation.prompts import PromptError
    from ielts_service.observability.logging import configure_logging
    from ielts_service.observability.multiprocess import MetricsDirInUse, instance_metrics_dir

    settings = _settings()  # fail fast, in the parent, with one clear line
    try:
        read_prompts(settings)
    except PromptError as exc:
        print(f"ielts-service: prompt error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, secret_values(settings))
    config = Config.from_toml(args.config) if Path(args.config).is_file() else Config()
    if args.bind:
        config.bind = [args.bind]
    if args.workers is not None:
        config.workers = args.workers
    config.application_path = "ielts_service.app:serve_app()"
    config.errorlog = logging.getLogger("hypercorn.error")
    config.accesslog = None
    try:
        with instance_metrics_dir(settings.prometheus_multiproc_dir) as metrics_dir:
            # Workers inherit the environment: they all write to this instance's directory.
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
            return run(config)
    except MetricsDirInUse as exc:
        print(f"ielts-service: PROMETHEUS_MULTIPROC_DIR: {exc}", file=sys.stderr)
        return 2


def prompts_lint(args: argparse.Namespace) -> int:
    from ielts_service.generation.prompts import PromptError, load_prompts

    directory = Path(args.dir) if args.dir else _settings().prompts_dir
    try:
        prompts = load_prompts(directory)
    except PromptError as exc:
        print(f"{directory}: {exc}", file=sys.stderr)
        return 1
    for part, prompt in prompts.items():
        print(f"part{part}: ok ({prompt.version})")
    return 0


def prompts_render(args: argparse.Namespace) -> int:
    from ielts_service.generation.prompts import load_prompts

    settings = _settings()
    prompt = load_prompts(Path(args.dir) if args.dir else settings.prompts_dir)[args.part]
    print(json.dumps(prompt.messages(args.topic, settings.pool_size), indent=2,
                     ensure_ascii=False))
    return 0


def prompts_try(args: argparse.Namespace) -> int:
    from ielts_service.clients import make_model_client
    from ielts_service.deadline import Deadline
    from ielts_service.generation.prompts import load_prompts
    from ielts_service.observability.metrics import Metrics

    settings = _settings()
    model = make_model_client(settings, Metrics())
    if model is None:
        print("prompts try needs a model: set AZURE_OPENAI_* or OPENAI_BASE_URL", file=sys.stderr)
        return 2
    prompt = load_prompts(Path(args.dir) if args.dir else settings.prompts_dir)[args.part]

    async def call() -> None:
        try:
            result = await model.generate(prompt, args.topic, settings.pool_size,
                                          Deadline.after(settings.request_timeout_seconds))
            print(json.dumps(result.items, indent=2, ensure_ascii=False))
        finally:
            await model.close()

    asyncio.run(call())
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ielts-service", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    s = commands.add_parser("serve", help="serve HTTP with Hypercorn")
    s.add_argument("--bind", help="HOST:PORT (default: hypercorn.toml)")
    s.add_argument("--workers", type=int, help="worker processes (default: hypercorn.toml)")
    s.add_argument("--config", default="hypercorn.toml", help="Hypercorn TOML file")
    s.set_defaults(func=serve)
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


if __name__ == "__main__":
    sys.exit(main())
