"""The published API is the API: a third-party contract tester (schemathesis, every check)
sends generated requests to a running service and finds no answer the document does not
describe, and no request the document allows that the service refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import azure_env

pytestmark = pytest.mark.e2e
ADMIN_TOKEN = "contract-admin-token-7b2e-01234567"
EXAMPLES = "25"  # per operation and phase: enough to find drift, bounded for `make test`


HOOKS = Path(__file__).resolve().parents[1] / "support" / "schemathesis_hooks.py"


def schemathesis(url: str, tmp_path: Path, *extra: str,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run schemathesis's CLI (the one a user would run) with a fixed seed."""
    command = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}/openapi.json",
               "--checks", "all", "--max-examples", EXAMPLES, "--seed", "20261202",
               "--header", f"Authorization: Bearer {ADMIN_TOKEN}",
               "--request-timeout", "20", "--workers", "1", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          check=False, env={**os.environ, **(env or {})})


def test_schemathesis_finds_nothing_against_the_bank(serve, tmp_path):
    server = serve(RATE_LIMIT_PER_MINUTE="0", ADMIN_TOKEN=ADMIN_TOKEN)
    # A generated topic the bank has nothing on is 422 topic_unavailable by design: the hooks'
    # check accepts exactly that, and holds every other schema-valid request to the built-in's.
    result = schemathesis(server.url, tmp_path, "--exclude-checks", "positive_data_acceptance",
                          env={"SCHEMATHESIS_HOOKS": str(HOOKS)})
    assert result.returncode == 0, result.stdout[-6000:]
    assert "No issues found" in result.stdout


def test_schemathesis_finds_nothing_with_a_model_and_redis(serve, fake_model, redis, tmp_path):
    server = serve(**azure_env(fake_model, REDIS_URL=redis.url, RATE_LIMIT_PER_MINUTE="0",
                               ADMIN_TOKEN=ADMIN_TOKEN))
    result = schemathesis(server.url, tmp_path)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "No issues found" in result.stdout
    assert fake_model.requests, "generated topics reached the model"
