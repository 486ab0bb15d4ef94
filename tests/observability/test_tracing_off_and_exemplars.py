"""Tracing's settings, its cost when off (nothing imported, nothing sent), and the
model-latency exemplars that lead from a Prometheus bucket to a trace."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import pytest

from ielts_service.config import ConfigError, load_settings
from ielts_service.observability.metrics import Metrics
from tests.conftest import ROOT, azure_env
from tests.observability.test_tracing import TRACE, otlp, traced_env, traceparent
from tests.support.process import base_env
from tests.support.worker_metrics import spread

__all__ = ["otlp"]  # the receiver fixture, shared with test_tracing
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def test_traces_go_to_the_endpoints_v1_traces_or_to_the_traces_endpoint_as_given():
    base = load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}, None)
    assert base.traces_endpoint == "http://collector:4318/v1/traces"
    own = load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                         "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://t.example/in"}, None)
    assert own.traces_endpoint == "https://t.example/in"
    off = load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                         "OTEL_SDK_DISABLED": "true"}, None)
    assert off.traces_endpoint is None and load_settings({}, None).traces_endpoint is None


def test_otlp_headers_are_a_secret_and_bad_tracing_values_stop_start_up_naming_the_variable():
    settings = load_settings({"OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cr%3Dt-value,x-a=b"},
                             None)
    assert settings.otlp_headers() == {"api-key": "s3cr=t-value", "x-a": "b"}
    assert "s3cr=t-value" in settings.secret_values() and "s3cr" not in repr(settings)
    for name, value in (("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                        ("OTEL_TRACES_SAMPLER", "sometimes"),
                        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
                        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
                        ("OTEL_EXPORTER_OTLP_HEADERS", "just-a-token")):
        with pytest.raises(ConfigError, match=f"^{name}: "):
            load_settings({name: value}, None)


# A fresh interpreter answers a request with a model and Redis configured, then reports
# whether anything of OpenTelemetry was imported.
SERVE_ONE = """
import asyncio, json, sys
from ielts_service.app import create_app
from ielts_service.config import load_settings

async def main():
    app = create_app(load_settings(env_file=None))
    async with app.test_app():
        response = await app.test_client().post(
            "/generate-question", json={"topic": "gardens", "part": 2})
        answered = response.status_code
    loaded = sorted(name for name, module in sys.modules.items()
                    if name.split(".")[0] == "opentelemetry" and module is not None)
    print(json.dumps({"status": answered, "opentelemetry": loaded}))

asyncio.run(main())
"""


@pytest.mark.parametrize("otel", [
    {},  # nothing configured
    {"OTEL_SERVICE_NAME": "ielts", "OTEL_TRACES_SAMPLER": "always_on"},  # no endpoint
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"},
], ids=["unconfigured", "no-endpoint", "sdk-disabled"])
def test_without_an_endpoint_opentelemetry_is_not_even_imported(fake_model, redis, otel):
    env = base_env(**azure_env(fake_model, REDIS_URL=redis.url, **otel))
    done = subprocess.run([sys.executable, "-c", SERVE_ONE], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"status": 200, "opentelemetry": []}


# `ielts-service serve` in an interpreter where no OpenTelemetry package can be imported.
NOT_INSTALLED = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(name)

sys.meta_path.insert(0, NotInstalled())
from ielts_service.cli import main
sys.exit(main(["serve", "--bind", "127.0.0.1:1"]))
"""


def test_tracing_configured_without_the_otel_extra_stops_start_up_with_one_line(tmp_path):
    env = base_env(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318")
    done = subprocess.run([sys.executable, "-c", NOT_INSTALLED], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "ielts-service: configuration error: OTEL_EXPORTER_OTLP_ENDPOINT is set but "
        "opentelemetry.sdk is not installed: pip install 'ielts-service[otel]'"]


def test_with_the_sdk_disabled_nothing_is_exported_and_no_line_carries_a_trace(
        serve, fake_model, otlp):
    server = serve(**traced_env(fake_model, otlp, OTEL_SDK_DISABLED="true"))
    response = httpx.post(server.url + "/generate-question", json={"topic": "kites", "part": 2},
                          headers={"traceparent": traceparent()}, timeout=60)
    assert response.status_code == 200 and response.json()["data"]["source"] == "ai"
    lines = server.stop()  # a stopping worker exports whatever it still holds
    assert otlp.posts == []
    assert not [line for line in lines if '"trace_id"' in line]


def test_model_latency_buckets_carry_the_trace_id_as_an_exemplar_in_openmetrics(
        serve, fake_model, otlp, tmp_path):
    metrics_dir = tmp_path / "metrics"
    server = serve("--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
                   **traced_env(fake_model, otlp))
    response = httpx.post(server.url + "/generate-question", json={"topic": "owls", "part": 3},
                          headers={"traceparent": traceparent()}, timeout=60)
    assert response.status_code == 200 and response.json()["data"]["source"] == "ai"
    exemplar = re.compile(r'^ielts_ai_request_duration_seconds_bucket\{[^}]*part="3"[^}]*\} '
                          r'\S+ # \{trace_id="' + TRACE + r'"\} ', re.MULTILINE)
    # Whichever worker answers the scrape shows the exemplar the other may have recorded.
    scrapes = spread(server.url + "/metrics", metrics_dir, method="GET", each=1,
                     headers={"Accept": OPENMETRICS})
    for scrape in scrapes:
        assert scrape.headers["Content-Type"].startswith("application/openmetrics-text")
        assert exemplar.search(scrape.text), scrape.text[-3000:]
    plain = httpx.get(server.url + "/metrics", timeout=30)  # Prometheus text: no exemplars
    assert plain.headers["Content-Type"].startswith("text/plain") and "# {" not in plain.text


def test_a_single_process_service_renders_exemplars_too():
    metrics = Metrics()
    metrics.observe_ai_duration(("azure", "m", "2", "success"), 0.3, trace_id=TRACE)
    body, content_type = metrics.render(OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    (line,) = [x for x in body.decode().splitlines() if f'trace_id="{TRACE}"' in x]
    assert line.startswith('ielts_ai_request_duration_seconds_bucket{le="0.5",')  # 0.3 s
    assert f'}} 1.0 # {{trace_id="{TRACE}"}} 0.3 ' in line
