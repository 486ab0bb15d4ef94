"""The baseline for figure (a): a bare Quart app with one POST route that echoes its JSON body.

Served like the service: the repo's hypercorn.toml and worker count, under the same master
(`ielts_service.workers.run`: one listening socket per worker), so the ratio measures what
the service itself adds (validation, limits, logging, metrics, Redis), not how connections
happened to fall on workers. `python -m bench.bare_app --bind HOST:PORT --workers N`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from quart import Quart, request

app = Quart(__name__)


@app.post("/generate-question")
async def echo() -> dict[str, Any]:
    body = await request.get_json()
    return {"status": "success", "data": body}


def main(argv: list[str]) -> int:
    from hypercorn.config import Config

    from ielts_service import workers

    args = argparse.ArgumentParser()
    args.add_argument("--bind", required=True)
    args.add_argument("--workers", type=int, default=1)
    args.add_argument("--config", default=str(Path(__file__).parent.parent / "hypercorn.toml"))
    parsed = args.parse_args(argv)
    config = Config.from_toml(parsed.config)
    config.bind, config.workers = [parsed.bind], parsed.workers
    config.application_path = "bench.bare_app:app"
    return workers.run(config)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
