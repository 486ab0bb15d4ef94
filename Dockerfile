# Build a wheel in one stage; run it as a non-root user in a slim second stage.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ielts_service ./ielts_service
# With the otel extra: traces are on only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[otel]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY prompts ./prompts
COPY hypercorn.toml ./
ENV PROMPTS_DIR=/app/prompts PYTHONUNBUFFERED=1 PROMETHEUS_MULTIPROC_DIR=/tmp/ielts-metrics
USER app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health/live', timeout=2)"
# One worker per container: if a Hypercorn worker dies its master exits (status 0) and
# nothing restarts it, so let the orchestrator restart the container (restart: always).
CMD ["ielts-service", "serve", "--bind", "0.0.0.0:8000", "--workers", "1"]
