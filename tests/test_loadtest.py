"""The shipped locustfile, run by locust (from `make install`'s .venv-load) against a server."""

from __future__ import annotations

import csv
import subprocess

import pytest

from tests.conftest import ROOT, azure_env
from tests.support.process import base_env

pytestmark = pytest.mark.e2e
LOCUST = ROOT / ".venv-load" / "bin" / "locust"


def test_the_locustfile_runs_15_s_against_a_service_with_no_failures(
        serve, fake_model, redis, tmp_path):
    assert LOCUST.exists(), "locust is installed by `make install` (into .venv-load)"
    server = serve(**azure_env(fake_model, REDIS_URL=redis.url, RATE_LIMIT_PER_MINUTE="0",
                               GENERATIONS_PER_CLIENT_PER_HOUR="0"))  # limits off
    run = subprocess.run(
        [str(LOCUST), "-f", str(ROOT / "locustfile.py"), "--headless", "--host", server.url,
         "--users", "10", "--spawn-rate", "5", "--run-time", "15s", "--only-summary",
         "--csv", str(tmp_path / "load")],
        cwd=tmp_path, env=base_env(), capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]  # 1: any failure
    with open(tmp_path / "load_stats.csv") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    total = rows.pop("Aggregated")
    assert int(total["Request Count"]) > 0 and int(total["Failure Count"]) == 0
    # The mix reached the service: the page and its files, the catalogue, questions.
    assert {"/ (page)", "/static/* (page)", "/v1/topics",
            "/generate-question [catalogue]"} <= set(rows)
    assert fake_model.requests  # some answers were fresh from the model
